"""The library feature as the rest of SoulSync sees it: scans as jobs, their schedule, imports.

Everything that starts a scan (the API, the CLI, start-up, the interval) goes through
:meth:`LibraryService.start_scan`, which runs it as a ``library_scan`` job of the core's
:class:`~soulsync_core.jobs.JobRunner`: at most one at a time (a second start raises
:class:`~soulsync_core.jobs.JobConflict`), its progress readable while it runs and its result
kept afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec

from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.events import EventBus
from soulsync_core.jobs import JobConflict, JobContext, JobInfo, JobRunner
from soulsync_core.library.queries import LibraryQueries
from soulsync_core.library.scanner import ScanError, Scanner, missing_folder_message
from soulsync_core.library.store import LibraryStore
from soulsync_core.library.tags import AUDIO_EXTENSIONS, read_track
from soulsync_core.metrics import Metrics
from soulsync_core.schedule import Schedule
from soulsync_core.settings import Settings
from soulsync_core.stats import SystemStats

log = logging.getLogger(__name__)

JOB_KIND = "library_scan"
SECONDS_PER_MINUTE = 60  # the unit of library.scan_interval_minutes (tests shorten it)


class ScanStatus(msgspec.Struct):
    """The latest scan (running or finished); ``state`` is ``idle`` when none ever ran.

    ``files_total`` is null until the files are counted; the counters are explained in
    :class:`~soulsync_core.library.scanner.ScanProgress`.
    """

    state: str
    job_id: str | None = None
    phase: str | None = None
    music_dir: str | None = None
    files_total: int | None = None
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_moved: int = 0
    files_removed: int = 0
    errors: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


def scan_status(job: JobInfo | None) -> ScanStatus:
    """Return the :class:`ScanStatus` of a scan job row (``idle`` for None)."""
    if job is None:
        return ScanStatus("idle")
    known = set(ScanStatus.__struct_fields__)
    progress = {k: v for k, v in job.progress.items() if k in known and k not in ("state", "job_id")}
    return ScanStatus(job.state, job.id, started_at=job.created_at, finished_at=job.finished_at,
                      error=job.error, **progress)


def _normalized(path: str | Path) -> Path:
    # Lexical only (no file system access): "/music/../etc" must not pass as inside "/music".
    return Path(os.path.normpath(path))


class LibraryService:
    """Scans, their schedule, single-file imports and the library's share of the stats."""

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, activity: Activity,
                 events: EventBus | None = None, metrics: Metrics | None = None):
        self._db = db
        self._events = events or EventBus()
        self._metrics = metrics or Metrics()
        self._settings = settings
        self._jobs = jobs
        self._activity = activity
        self.store = LibraryStore(db)
        self.queries = LibraryQueries(db, cache_bytes=settings.get("library.answer_cache_mb") << 20)
        settings.on_change("library.answer_cache_mb", self._cache_size_changed)
        # The interval scan runs on the shared schedule, so its next run time is persisted and
        # shown by /system/jobs; the first one comes a whole interval after the first start.
        self.schedule = Schedule(db, JOB_KIND, self._interval_seconds,
                                 lambda: self._start_scheduled("interval"), first_delay=float("inf"))
        settings.on_change("library.scan_interval_minutes",
                           lambda _changed: self.schedule.reschedule())
        # Set by each import: the upkeep loop then looks at the search indexes' segments.
        self._imported = asyncio.Event()

    def _cache_size_changed(self, changed: dict[str, Any]) -> None:
        self.queries.cache.clear()
        self.queries.cache.max_bytes = changed["library.answer_cache_mb"] << 20

    def music_dir(self) -> Path:
        """Return the configured music folder, ``~`` expanded, made absolute (not resolved)."""
        return Path(os.path.abspath(os.path.expanduser(self._settings.get("library.music_dir"))))

    async def start_scan(self, reason: str = "api") -> JobInfo:
        """Start a scan job and return its row.

        Raises JobConflict while one runs, and ScanError (no job started) when the music
        folder does not exist.
        """
        root = self.music_dir()
        if not await asyncio.to_thread(root.is_dir):
            raise ScanError(missing_folder_message(root))
        return await self._jobs.start(JOB_KIND, self._run_scan, {"reason": reason})

    async def status(self) -> ScanStatus:
        """Return the running scan, else the latest one, else ``idle``."""
        return scan_status(await self._jobs.latest(JOB_KIND))

    async def _run_scan(self, ctx: JobContext) -> dict[str, Any]:
        scanner = Scanner(self.store, self.music_dir(), self._settings.get("library.scan_workers"))
        self._events.publish("library.scan.started", scan_status(ctx.info))
        started = time.monotonic()
        try:
            result = await scanner.run(lambda p: self._scan_progress(ctx, p.as_dict()))
        except ScanError as exc:
            await self._activity.record("library.scan_failed", "Library Scan Failed", str(exc))
            self._events.publish("library.scan.finished", msgspec.structs.replace(
                scan_status(ctx.info), state="failed", error=str(exc)))
            raise
        self._metrics.scan_finished(result.files_seen, time.monotonic() - started)
        await self._activity.record("library.scan_completed", "Library Scan Completed",
                                    result.summary())
        self._events.publish("library.scan.finished",
                             msgspec.structs.replace(scan_status(ctx.info), state="completed"))
        if result.files_read or result.files_removed:
            self._events.publish("library.changed", {"source": "scan", "files_read": result.files_read,
                                                     "files_removed": result.files_removed})
        return result.as_dict()

    def _scan_progress(self, ctx: JobContext, progress: dict[str, Any]) -> None:
        ctx.progress(**progress)
        self._events.publish("library.scan.progress", scan_status(ctx.info), key=ctx.info.id)

    async def import_file(self, path: str | Path) -> int:
        """Add or update one file of the music folder (the download pipeline calls this).

        Returns the track id. Raises ValueError for a path that is not absolute, outside
        ``library.music_dir`` or not an audio file, FileNotFoundError when it does not exist, and
        :class:`~soulsync_core.library.tags.UnreadableFile` when it cannot be read.
        """
        root = self.music_dir()
        file_path = _normalized(path)
        if not file_path.is_absolute() or not file_path.is_relative_to(root):
            raise ValueError(f"{file_path} is not inside the music folder {root}")
        if file_path.suffix.lower() not in AUDIO_EXTENSIONS:
            raise ValueError(f"{file_path} is not an audio file SoulSync reads "
                             f"({', '.join(sorted(AUDIO_EXTENSIONS))})")
        stat = await asyncio.to_thread(file_path.stat)
        record = await asyncio.to_thread(read_track, str(file_path), str(root), stat.st_size,
                                         stat.st_mtime_ns)
        await self.store.save([record])
        track_id = await self.store.track_id(record.folder, record.file_name)
        assert track_id is not None  # just written
        self._events.publish("library.changed", {"source": "import", "track_id": track_id})
        self._imported.set()
        return track_id

    async def contribute_stats(self, stats: SystemStats) -> None:
        """Fill the library counts and the last library change into ``/system/stats``."""
        row = await self.queries.stats()
        stats.library.artists = row["artists"]
        stats.library.albums = row["albums"]
        stats.library.tracks = row["tracks"]
        stats.database.last_update = row["last_update"]

    async def run_scheduler(self) -> None:
        """Scan at start-up and every ``library.scan_interval_minutes`` (0: never), per the settings.

        Runs until cancelled. A scheduled scan that finds one already running is skipped.
        """
        if self._settings.get("library.scan_on_start"):
            await self._start_scheduled("start-up")
        await self.schedule.run_forever()

    async def run_index_upkeep(self) -> None:
        """Merge the search indexes when writes have split them (see :mod:`search_index`): at
        start-up, then after imports (a scan merges them itself). Runs until cancelled.

        A failed merge (a full disk) is logged and tried again after the next import.
        """
        while True:
            try:
                await self.store.merge_search_indexes()
            except (sqlite3.Error, ValueError) as exc:  # ValueError: see segment_count
                log.warning("could not merge the library search indexes: %s", exc)
            await self._imported.wait()
            self._imported.clear()

    def _interval_seconds(self) -> float:
        return self._settings.get("library.scan_interval_minutes") * SECONDS_PER_MINUTE

    async def _start_scheduled(self, reason: str) -> None:
        try:
            await self.start_scan(reason)
        except JobConflict:
            log.info("library scan (%s) skipped: one is already running", reason)
        except ScanError as exc:
            log.warning("library scan (%s) skipped: %s", reason, exc)

