"""The lock that keeps a second daemon off a data directory.

``soulsync serve`` takes an exclusive ``flock`` on ``soulsync.lock`` in the data directory
before it opens the database, and holds it until it exits. The kernel drops the lock with the
process (crash, ``kill -9``), so a stale file never blocks a restart. The file also says who
holds it (pid, listen address), which a second daemon names in its refusal and the command
line uses to tell which daemon serves which data directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soulsync_core.paths import PRIVATE_FILE_MODE, make_private_dir

LOCK_FILENAME = "soulsync.lock"


class DataDirLocked(RuntimeError):
    """Another process holds the data directory; ``str()`` names it and says what to do."""


@dataclass(frozen=True)
class Holder:
    """What the lock file says about the daemon holding it (fields may be unknown)."""

    pid: int | None
    host: str | None
    port: int | None

    def describe(self) -> str:
        where = f", listening on {self.host}:{self.port}" if self.port else ""
        return f"pid {self.pid if self.pid is not None else 'unknown'}{where}"


class DataDirLock:
    """An exclusive lock on one data directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (creating the data dir ``0700`` and the file ``0600``); blocking.

        Raises :class:`DataDirLocked` naming the holder when another process has it.
        """
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        if os.geteuid() == 0:
            # Made by root (a restore, a daemon started by hand), the daemon's own user could
            # not open the file to lock it: it belongs to the data directory's owner.
            owner = self.path.parent.stat()
            os.fchown(fd, owner.st_uid, owner.st_gid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(self.path.parent)
            raise DataDirLocked(
                f"the data directory {self.path.parent} is in use by another SoulSync daemon "
                f"({holder.describe() if holder else 'pid unknown'}); stop it first, or give "
                "this one another --data-dir") from None
        os.fchmod(fd, PRIVATE_FILE_MODE)
        self._fd = fd
        self.update()

    def update(self, host: str | None = None, port: int | None = None) -> None:
        """Rewrite the holder description (the listen address once it is known)."""
        assert self._fd is not None, "acquire() first"
        text = json.dumps({"pid": os.getpid(), "host": host, "port": port}).encode()
        # Written over the old text, then cut to length: a reader never finds the file empty.
        os.pwrite(self._fd, text, 0)
        os.ftruncate(self._fd, len(text))

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file means nobody holds it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_holder(data_dir: Path) -> Holder | None:
    """Return who holds the lock of ``data_dir``, or None when no daemon holds it; blocking."""
    path = data_dir / LOCK_FILENAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            # A shared lock we can take means no daemon holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            return None
        with contextlib.suppress(OSError, ValueError):
            data: Any = json.loads(os.pread(fd, 4096, 0) or b"{}")
            if isinstance(data, dict):
                return Holder(_int(data.get("pid")), _str(data.get("host")), _int(data.get("port")))
        return Holder(None, None, None)
    finally:
        os.close(fd)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
