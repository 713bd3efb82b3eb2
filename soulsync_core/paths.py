"""Where SoulSync keeps its state by default (XDG base directories), and how it is kept private.

The data directory holds the database with slskd's key, client secrets and OAuth tokens, so it
is made ``0700`` and every file of it ``0600``, whatever the umask of whoever started us.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$SOULSYNC_DATA_DIR``, else ``$XDG_DATA_HOME/soulsync``, else ``~/.local/share/soulsync``."""
    env = os.environ if environ is None else environ
    if env.get("SOULSYNC_DATA_DIR"):
        return Path(env["SOULSYNC_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "soulsync"


def data_dir_id(path: Path) -> str:
    """Return a short, stable identity of the data directory ``path`` (as ``GET /ping`` shows
    it), so a command can tell whether a daemon uses the same directory without learning
    where it is."""
    digest = hashlib.sha256(f"soulsync data dir {path.expanduser().resolve()}".encode())
    return digest.hexdigest()[:16]


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and leave it ``0700``; blocking, run it in a thread.

    A directory an older SoulSync created ``0755`` is tightened too. One owned by another user
    (a folder shared on purpose) is left as it is, with a warning, since only its owner may
    change it.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    _tighten(path, PRIVATE_DIR_MODE)


def make_private_file(path: Path) -> None:
    """Create ``path`` if missing and leave it ``0600`` (blocking). SQLite gives its WAL and
    shared-memory files the mode of the database file, so creating that one first is enough
    for them."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    os.close(fd)
    _tighten(path, PRIVATE_FILE_MODE)


def tighten_if_exists(path: Path) -> None:
    """Make an existing file ``0600`` (blocking); a missing one is fine."""
    try:
        _tighten(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if stat.S_IMODE(info.st_mode) == mode:
        return
    if info.st_uid != os.geteuid():
        if not stat.S_IMODE(info.st_mode) & 0o077:
            return
        log.warning("%s is owned by another user and readable by others (mode %o); SoulSync "
                    "cannot make it private", path, stat.S_IMODE(info.st_mode))
        return
    os.chmod(path, mode)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk (blocking: call it in a thread)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk (blocking)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
