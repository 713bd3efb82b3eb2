"""Backups of the database: on request, on a schedule, listed, pruned; and ``soulsync restore``.

A backup is a ``backup`` job (see :mod:`soulsync_core.jobs`), so one runs at a time and its
result (name, size, integrity check) is readable afterwards and after a restart. The copy is
made by SQLite's online backup API in a worker thread: the daemon keeps serving and writing
meanwhile. Older backups are pruned only after the new one passed ``PRAGMA integrity_check``.

Restoring needs the daemon stopped. :func:`restore` takes the data directory's lock file
(``soulsync.lock``, held with ``flock`` by a running daemon) without waiting, so it refuses
while a daemon runs on that directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from soulsync_core.datalock import DataDirLock, DataDirLocked, read_holder
from soulsync_core.db import DB_FILENAME, Database
from soulsync_core.db.migrate import load_migrations
from soulsync_core.db.snapshot import (
    BACKUP_NAME,
    BACKUPS_DIRNAME,
    FILE_MODE,
    LABEL,
    PRE_MIGRATION,
    SnapshotError,
    backup_name,
    backup_time,
    inspect_file,
    write_snapshot,
)
from soulsync_core.jobs import JobContext, JobFailed, JobInfo, JobRunner
from soulsync_core.paths import fsync_dir, fsync_file
from soulsync_core.schedule import Clock, Schedule, iso, utc_now
from soulsync_core.settings import Settings

log = logging.getLogger(__name__)

JOB_KIND = "backup"
SECONDS_PER_HOUR = 3600
# The first scheduled backup of a new install comes this long after its first start.
FIRST_BACKUP_DELAY = 600.0


class BackupInputError(ValueError):
    """A label that cannot be part of a backup's name; ``str()`` says what it must be."""


class DaemonRunning(RuntimeError):
    """A SoulSync daemon holds the data directory's lock."""


class BackupFile(msgspec.Struct):
    """One backup in the backup folder. ``kind`` is ``pre-migration`` for the copy made before
    an upgrade (never pruned), else ``regular``."""

    name: str
    size_bytes: int
    created_at: str
    kind: str
    label: str | None


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did: the restored schema version and where the replaced database is
    (None when the data directory had none)."""

    schema_version: int
    replaced: Path | None


class BackupService:
    """Backups of one database into the folder of the ``backup.dir`` setting."""

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, data_dir: Path,
                 clock: Clock = utc_now):
        self._db = db
        self._settings = settings
        self._jobs = jobs
        self._data_dir = data_dir
        self._clock = clock
        self.schedule = Schedule(db, JOB_KIND, self._interval_seconds, self._start_scheduled,
                                 clock=clock, first_delay=FIRST_BACKUP_DELAY)
        settings.on_change("backup.interval_hours", lambda _changed: self.schedule.reschedule())

    def folder(self) -> Path:
        """Return the backup folder: ``backup.dir``, else ``<data dir>/backups``."""
        configured = self._settings.get("backup.dir")
        return Path(configured).expanduser() if configured else self._data_dir / BACKUPS_DIRNAME

    def _interval_seconds(self) -> float:
        return self._settings.get("backup.interval_hours") * SECONDS_PER_HOUR

    async def _start_scheduled(self) -> None:
        if self._jobs.running(JOB_KIND) is None:
            await self.start(reason="schedule")

    async def start(self, *, label: str | None = None, to: Path | None = None,
                    reason: str = "api") -> JobInfo:
        """Start a backup job and return its row. ``label`` (see :func:`check_label`) becomes
        part of the file name in the backup folder; ``to`` writes that file instead (from the
        command line, never from the API) and prunes nothing. Raises BackupInputError for a bad
        label and JobConflict while a backup runs."""
        check_label(label)
        params: dict[str, Any] = {"reason": reason, "label": label}
        if to is not None:
            params["to"] = str(to)
        return await self._jobs.start(JOB_KIND, self._run, params)

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        label, to = ctx.params.get("label"), ctx.params.get("to")
        target = Path(to) if to else self.folder() / backup_name(self._clock(), label)
        ctx.progress(target=target.name)
        try:
            snapshot = await asyncio.to_thread(write_snapshot, self._db.path, target)
        except SnapshotError as exc:
            # Kept with the job's row: the health list tells a failed check from a full disk.
            ctx.progress(integrity="failed", integrity_checked_at=iso(self._clock()))
            raise JobFailed(f"The backup was not kept: {exc}. Older backups were left alone; "
                            "see docs/operations.md, 'Database integrity'.") from None
        except OSError as exc:
            raise JobFailed(f"Cannot write the backup in {target.parent}: "
                            f"{exc.strerror or exc}. Check backup.dir and its free space.") from None
        pruned = [] if to else await asyncio.to_thread(self._prune)
        log.info("backup %s written (%d bytes, schema version %d)", target, snapshot.size_bytes,
                 snapshot.schema_version)
        return {"name": target.name, "path": str(target), "size_bytes": snapshot.size_bytes,
                "schema_version": snapshot.schema_version, "integrity": "ok",
                "integrity_checked_at": iso(self._clock()), "pruned": pruned}

    def _prune(self) -> list[str]:
        keep = self._settings.get("backup.keep")
        regular = [b for b in self._scan() if b.kind == "regular"]
        pruned = []
        for backup in regular[keep:]:
            with contextlib.suppress(FileNotFoundError):
                (self.folder() / backup.name).unlink()
                pruned.append(backup.name)
        return pruned

    async def backups(self) -> list[BackupFile]:
        """Return the backups in the backup folder, newest first (none when it does not exist)."""
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> list[BackupFile]:
        found: list[tuple[datetime, BackupFile]] = []
        try:
            entries = list(os.scandir(self.folder()))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for entry in entries:
            made = backup_time(entry.name)
            if made is None or not entry.is_file(follow_symlinks=False):
                continue
            match = BACKUP_NAME.match(entry.name)
            label = match["label"] if match else None
            kind = PRE_MIGRATION if label and label.startswith(PRE_MIGRATION) else "regular"
            found.append((made, BackupFile(entry.name, entry.stat().st_size, iso(made), kind,
                                           label)))
        found.sort(key=lambda pair: (pair[0], pair[1].name), reverse=True)
        return [backup for _made, backup in found]

    async def last_run(self) -> JobInfo | None:
        """Return the running backup job, else the latest one, else None."""
        return await self._jobs.latest(JOB_KIND)

    async def last_success(self) -> JobInfo | None:
        """Return the latest backup job that completed, or None."""
        row = await self._db.fetchone(
            "SELECT id FROM jobs WHERE kind = ? AND state = 'completed' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1", (JOB_KIND,))
        return None if row is None else await self._jobs.get(row["id"])

    async def run_scheduler(self) -> None:
        """Back up every ``backup.interval_hours`` (0: never) until cancelled."""
        await self.schedule.run_forever()


def check_label(label: str | None) -> None:
    """Raise BackupInputError unless ``label`` is None or fits in a backup's file name."""
    if label is None:
        return
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        raise BackupInputError(
            "label must be 1 to 40 lowercase letters, digits and dashes, starting with a letter "
            "or digit (it becomes part of the file name, so no slashes or dots).")
    if label.startswith(PRE_MIGRATION):
        raise BackupInputError(f"label must not start with {PRE_MIGRATION!r}: that name is kept "
                               "for the backups made before an upgrade.")


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock for the block; raise DaemonRunning when it is held.

    It is the daemon's own :class:`~soulsync_core.datalock.DataDirLock`, taken without waiting.
    """
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
    except DataDirLocked:
        holder = read_holder(data_dir)
        raise DaemonRunning(
            f"a SoulSync daemon is running on {data_dir} "
            f"({holder.describe() if holder else 'pid unknown'}); stop it first "
            "(e.g. systemctl stop soulsync) and run the restore again.") from None
    try:
        yield
    finally:
        lock.release()


def restore(data_dir: Path, backup: Path, clock: Clock = utc_now) -> Restored:
    """Make the database of ``data_dir`` a copy of ``backup``; return what was done.

    Refuses (DaemonRunning) while a daemon runs on ``data_dir``, and (SnapshotError) a file
    that is not a sound SoulSync database or was made by a newer SoulSync. The database it
    replaces is kept beside it as ``soulsync.db.replaced-<time>`` (its WAL folded in). The new
    file is copied under a temporary name, fsynced and renamed into place. Blocking.
    """
    version = inspect_file(backup)
    latest = max((m.version for m in load_migrations()), default=0)
    if version > latest:
        raise SnapshotError(
            f"{backup} was made by a newer SoulSync (schema version {version}; this one knows "
            f"up to {latest}). Install that SoulSync version (or newer) to restore it.")
    with data_dir_lock(data_dir):
        database = data_dir / DB_FILENAME
        temp = data_dir / f".{DB_FILENAME}.restoring"
        try:
            shutil.copyfile(backup, temp)
            os.chmod(temp, FILE_MODE)
            owner = (database if database.exists() else data_dir).stat()
            _give(temp, owner)
            fsync_file(temp)
            replaced = None
            if database.exists():
                stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                replaced = data_dir / f"{DB_FILENAME}.replaced-{stamp}"
                _copy_live(database, replaced)
                _give(replaced, owner)
            # The old WAL and shared-memory files belong to the replaced database; SQLite
            # would apply that WAL to the restored file.
            for suffix in ("-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{database}{suffix}").unlink()
            os.replace(temp, database)
            fsync_dir(data_dir)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return Restored(version, replaced)


def _give(path: Path, owner: os.stat_result) -> None:
    # Run as root (sudo soulsync restore …), the files would be root's and the daemon's user
    # could not write its own database: they get the owner of what they replace.
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def _copy_live(database: Path, target: Path) -> None:
    # Through SQLite, not a file copy: committed rows still in the WAL (after a crash) go along.
    src = sqlite3.connect(database)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, FILE_MODE)
    fsync_file(target)
