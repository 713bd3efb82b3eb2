"""Run as root on a data directory another user owns, the command line refuses and names the
owner, instead of leaving root-owned database files that lock the daemon's user out."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="needs root, as an operator's sudo would be")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soulsync_core", *map(str, args)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SOULSYNC_CONFIG": ""})


def test_root_is_refused_on_a_data_dir_another_user_owns_and_creates_nothing(tmp_path: Path):
    nobody = pwd.getpwnam("nobody")
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
    done = run_cli("keys", "list", "--data-dir", data_dir)
    assert done.returncode == 2, done.stderr
    assert f"the data directory {data_dir} belongs to user nobody; run this as that user " \
           "(sudo -u nobody soulsync …)" in done.stderr
    assert list(data_dir.iterdir()) == []  # no root-owned database, -wal or -shm


def test_root_may_use_its_own_data_dir(tmp_path: Path):
    done = run_cli("keys", "list", "--data-dir", tmp_path / "data")
    assert done.returncode == 0, done.stderr
