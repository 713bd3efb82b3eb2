"""The data directory: one daemon at a time (an flock'd lock file), private file modes, and
commands that say which directory they use.

The lock tests run two real ``soulsync serve`` processes; the mode tests check as the
unprivileged ``nobody`` user, since root reads any file whatever its mode.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from soulsync_core.core import Core
from soulsync_core.datalock import DataDirLock, DataDirLocked, read_holder
from tests.daemon_process import DaemonProcess, clean_env, command, run_cli


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def spawn(tmp_path: Path, home: Path, data_dir: Path) -> Iterator[Any]:
    started: list[DaemonProcess] = []

    async def start(*, ready: bool = True, env: dict[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(data_dir, tmp_path / f"daemon-{len(started) + 1}.log", home, env)
        started.append(daemon)
        if ready:
            await daemon.start()
        else:
            daemon.spawn()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def _count(db_path: Path, sql: str) -> Any:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return db.execute(sql).fetchone()[0]


# --- one daemon per data dir ---------------------------------------------------------------

async def test_second_daemon_on_the_same_data_dir_refuses_naming_the_first(spawn, data_dir):
    first = await spawn()
    db_path = data_dir / "soulsync.db"
    activity_before = _count(db_path, "SELECT COUNT(*) FROM activity")
    jobs_before = _count(db_path, "SELECT COUNT(*) FROM jobs")

    second = await spawn(ready=False)
    code = await second.wait(15)
    log = second.log_text()
    assert code == 1, log
    assert f"pid {first.pid}" in log, log
    assert f"127.0.0.1:{first.port}" in log, log
    assert "Traceback" not in log, log
    assert "listening on http://" not in log and len(log.splitlines()) == 1, log
    # It stopped before the database: no activity written, no job recovered.
    assert _count(db_path, "SELECT COUNT(*) FROM activity") == activity_before
    assert _count(db_path, "SELECT COUNT(*) FROM jobs") == jobs_before
    assert first.proc is not None and first.proc.poll() is None  # the first one serves on


async def test_a_killed_daemon_leaves_no_lock_behind(spawn, data_dir):
    first = await spawn()
    assert read_holder(data_dir) is not None
    first.kill()  # SIGKILL: no clean-up code runs; the kernel drops the flock
    assert read_holder(data_dir) is None
    restarted = await spawn()
    assert restarted.proc is not None and restarted.proc.poll() is None
    holder = read_holder(data_dir)
    assert holder is not None and holder.pid == restarted.pid and holder.port == restarted.port
    assert await restarted.stop() == 0, restarted.log_text()
    assert read_holder(data_dir) is None


def test_lock_is_exclusive_between_two_holders(data_dir):
    first = DataDirLock(data_dir)
    first.acquire()
    try:
        with pytest.raises(DataDirLocked, match=rf"pid {os.getpid()}"):
            DataDirLock(data_dir).acquire()
    finally:
        first.release()
    again = DataDirLock(data_dir)
    again.acquire()
    again.release()


# --- private modes -------------------------------------------------------------------------

@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp dir every user may enter (pytest's own is root-only, which would hide the
    modes under test)."""
    base = Path(tempfile.mkdtemp(prefix="soulsync-modes-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _read_as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/python3", "-I", "-c", f"open({str(path)!r}, 'rb').read(1)"],
                          user="nobody", cwd="/", capture_output=True, text=True, timeout=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root (and a system python) to run a check as another user")
def test_another_user_cannot_read_the_database_whatever_the_umask(shared_tmp):
    data_dir = shared_tmp / "data"
    home = shared_tmp / "home"
    created = subprocess.run(command("keys", "create", "--data-dir", data_dir),
                             env=clean_env(home), capture_output=True, text=True, timeout=30,
                             preexec_fn=lambda: os.umask(0))  # the loosest umask there is
    assert created.returncode == 0, created.stderr
    db_path = data_dir / "soulsync.db"
    assert _mode(data_dir) == 0o700 and _mode(db_path) == 0o600

    refused = _read_as_nobody(db_path)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr, refused
    # The file itself is private too, not only the folder around it.
    os.chmod(data_dir, 0o755)
    refused = _read_as_nobody(db_path)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr, refused
    # Opening again (an upgrade from a loose install) tightens the folder back.
    listed = subprocess.run(command("keys", "list", "--data-dir", data_dir), env=clean_env(home),
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert _mode(data_dir) == 0o700


async def test_wal_and_shm_files_are_private_and_loose_files_are_tightened(data_dir):
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    db_path = data_dir / "soulsync.db"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("CREATE TABLE leftover (x)")
    os.chmod(db_path, 0o644)
    old = os.umask(0)
    try:
        core = await Core.open(data_dir, environ={}, entry_points=False)
    finally:
        os.umask(old)
    try:
        await core.keys.create("probe")
        for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            assert _mode(path) == 0o600, path
        assert _mode(data_dir) == 0o700
    finally:
        await core.close()


# --- which data dir a command uses ---------------------------------------------------------

async def test_cli_says_its_data_dir_and_warns_about_a_daemon_on_another(spawn, tmp_path, home):
    daemon = await spawn()  # started with --data-dir
    # The command reads the daemon's port from its settings, as a user's command would; run
    # without --data-dir it uses the default under its own $HOME.
    env = {"SOULSYNC_SERVER__PORT": str(daemon.port)}
    other_home = tmp_path / "another-user"
    listed = await run_cli(["keys", "list"], other_home, env=env)
    assert listed.returncode == 0, listed.stderr
    default = other_home / ".local" / "share" / "soulsync"
    assert f"using the data directory {default} (the default;" in listed.stderr
    assert f"daemon listening on port {daemon.port} uses another data directory" in listed.stderr
    # On the daemon's own directory there is nothing to say.
    same = await run_cli(["keys", "list"], home, env=env | {"SOULSYNC_DATA_DIR": str(daemon.data_dir)})
    assert same.returncode == 0, same.stderr
    assert f"using the data directory {daemon.data_dir} (SOULSYNC_DATA_DIR;" in same.stderr
    assert "warning" not in same.stderr


async def test_cli_with_a_chosen_data_dir_and_no_daemon_is_quiet(tmp_path, home):
    env = {"SOULSYNC_SERVER__PORT": str(_closed_port())}
    listed = await run_cli(["keys", "list", "--data-dir", tmp_path / "alone"], home, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "data directory" not in listed.stderr and "warning" not in listed.stderr


def _closed_port() -> int:
    from tests.daemon_process import free_port

    return free_port()


async def test_ping_identity_matches_only_its_own_data_dir(spawn, data_dir, tmp_path):
    from soulsync_core.paths import data_dir_id

    daemon = await spawn()
    async with aiohttp.ClientSession() as session, session.get(f"{daemon.base_url}/ping") as r:
        pong = await r.json()
    assert pong["data_dir_id"] == data_dir_id(data_dir)
    assert pong["data_dir_id"] != data_dir_id(tmp_path / "other")


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root (and a system python) to run a command as another user")
def test_a_command_run_by_another_user_says_whose_directory_it_is(shared_tmp):
    data_dir = shared_tmp / "data"
    created = subprocess.run(command("keys", "create", "--data-dir", data_dir),
                             env=clean_env(shared_tmp / "home"), capture_output=True, text=True,
                             timeout=30)
    assert created.returncode == 0, created.stderr
    # The test's interpreter may live where nobody cannot enter (root's pyenv): nobody runs
    # the same code with the system's python and this environment's packages.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = clean_env(shared_tmp / "nobody-home") | {
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *site])}
    argv = ["/usr/bin/python3", *command("keys", "list", "--data-dir", data_dir)[1:]]
    listed = subprocess.run(argv, env=env, user="nobody", cwd="/", capture_output=True,
                            text=True, timeout=30)
    assert listed.returncode == 2, listed
    assert "permission denied" in listed.stderr and "Traceback" not in listed.stderr, listed
