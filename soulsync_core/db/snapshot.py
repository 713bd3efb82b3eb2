"""Copies of the SQLite database file: written atomically, checked, readable without SoulSync.

These functions block (they copy the whole database); callers on the event loop run them with
``asyncio.to_thread``. They need nothing of SoulSync but the file, so the migration runner can
back up before it touches the schema and ``soulsync restore`` can work with no daemon running.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from soulsync_core.paths import fsync_dir, fsync_file

# Backups hold every API key hash and account token: readable by the daemon's user only.
FILE_MODE = 0o600
DIR_MODE = 0o700

# The folder of backups inside the data directory (the default of the backup.dir setting, and
# always where the backup before a migration goes: settings are read only after migrating).
BACKUPS_DIRNAME = "backups"
PRE_MIGRATION = "pre-migration"
# soulsync-20261207T120000Z.db, soulsync-20261207T120000Z-pre-migration-v10.db
BACKUP_NAME = re.compile(r"^soulsync-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<label>[a-z0-9][a-z0-9-]{0,39}))?\.db$")
LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_STAMP = "%Y%m%dT%H%M%SZ"


class SnapshotError(RuntimeError):
    """A copy could not be made or does not check out; ``str()`` says what is wrong."""


@dataclass(frozen=True)
class Snapshot:
    """A database copy that passed ``PRAGMA integrity_check``."""

    path: Path
    size_bytes: int
    schema_version: int


def backup_name(moment: datetime, label: str | None = None) -> str:
    """Return the file name of a backup made at ``moment`` (``label``: see :data:`LABEL`)."""
    stamp = moment.astimezone(UTC).strftime(_STAMP)
    return f"soulsync-{stamp}-{label}.db" if label else f"soulsync-{stamp}.db"


def backup_time(name: str) -> datetime | None:
    """Return when the backup ``name`` was made, None when it is not a backup's name."""
    match = BACKUP_NAME.match(name)
    if not match:
        return None
    return datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)


def write_snapshot(source: Path, target: Path) -> Snapshot:
    """Copy the database ``source`` to ``target`` with SQLite's online backup API and return it.

    Other connections may read and write ``source`` meanwhile (the copy is one consistent
    state of it, WAL included). The copy is written under a temporary name in ``target``'s
    folder, checked with ``PRAGMA integrity_check``, fsynced and only then renamed to
    ``target`` (and the folder fsynced), so ``target`` is either absent or a whole, checked
    copy with mode 0600. Raises SnapshotError when the check fails (nothing is left behind)
    and OSError when the folder cannot be written.
    """
    target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    temp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # whatever the umask
    os.close(fd)
    try:
        src = sqlite3.connect(_read_only_uri(source), uri=True)
        try:
            dst = sqlite3.connect(temp)
            try:
                src.backup(dst)
                # A copy of a WAL database is a WAL database; one self-contained file is what
                # a backup should be.
                dst.execute("PRAGMA journal_mode = DELETE")
                problems = check_integrity(dst)
                if problems:
                    raise SnapshotError("the copy failed PRAGMA integrity_check: "
                                        + "; ".join(problems[:5]))
                version = schema_version(dst)
            finally:
                dst.close()
        finally:
            src.close()
        fsync_file(temp)
        os.replace(temp, target)
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return Snapshot(target, target.stat().st_size, version)


def _read_only_uri(path: Path) -> str:
    # as_uri() percent-encodes, so a folder named "a?b#c" cannot change the URI's meaning.
    return f"{path.resolve().as_uri()}?mode=ro"


def check_integrity(conn: sqlite3.Connection) -> list[str]:
    """Return the problems ``PRAGMA integrity_check`` finds (empty when the database is sound)."""
    rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    return [] if rows == ["ok"] else rows


def schema_version(conn: sqlite3.Connection) -> int:
    """Return the highest migration recorded in ``schema_version``; raise SnapshotError when
    the database has no such table (it is not a SoulSync database)."""
    try:
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"it is not a SoulSync database ({exc})") from None
    return int(row[0])


def inspect_file(path: Path) -> int:
    """Check the database file ``path`` without changing it; return its schema version.

    Raises SnapshotError when it is not an SQLite file, not a SoulSync database, or fails
    ``PRAGMA integrity_check``.
    """
    if not path.is_file():
        raise SnapshotError(f"{path} does not exist or is not a file")
    try:
        # immutable: just the file, as it will be copied; no -wal/-shm is made beside it.
        conn = sqlite3.connect(_read_only_uri(path) + "&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise SnapshotError(f"{path} cannot be opened: {exc}") from None
    try:
        problems = check_integrity(conn)
        if problems:
            raise SnapshotError(f"{path} failed PRAGMA integrity_check: " + "; ".join(problems[:5]))
        return schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path} is not an SQLite database ({exc})") from None
    finally:
        conn.close()
