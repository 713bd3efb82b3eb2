"""Quality upgrades: library tracks below ``downloads.upgrade_until`` get a better file.

A track is *cutoff unmet* when its file ranks (:func:`~soulsync_core.matching.quality.quality_rank`,
from the stream figures the library stored, never the extension alone) below the quality
profile entry ``downloads.upgrade_until`` names. An upgrade run (a ``library_upgrade`` job: on
its schedule, ``downloads.upgrade_interval_hours``, or ``POST /api/v1/library/upgrades/run``)
takes up to ``downloads.upgrades_per_run`` of them and for each:

1. searches Soulseek (:func:`~soulsync_core.matching.search_queries`, one query at a time),
   ranks the results as downloads do and keeps the accepted ones that rank strictly higher
   than the library's file and were never refused before;
2. downloads the best one and follows its transfer with the monitor's own verdicts and
   limits (:func:`~soulsync_core.downloads.transfers.judge`: queued/stalled timeouts,
   failures), one transfer list per tick for all of a run's transfers;
3. checks the file: it opens as audio, its length is within
   ``downloads.duration_tolerance_seconds`` of the track's, and its *real* stream ranks higher
   than the library's file (the peer's figures are only a claim);
4. replaces the file: the new one is copied beside the old one under a hidden name, tagged
   with the old file's tags, flushed; the old file is copied into ``<data dir>/trash`` (and
   recorded) before the new one takes its final name (the old name, or the same stem with the
   new extension, whose old file is then removed); the library row is re-pointed, keeping its
   id (playlist entries, requests and pins refer to it), and M3U8 files listing the old name
   are rewritten.

Any file tried and not taken (not better, wrong length, broken, transfer failed) is
remembered per (peer, file) in ``upgrade_refused`` and never asked for again, so upgrades do
not loop. Trashed files are deleted ``downloads.trash_days`` days later by the daily
``trash_purge`` schedule (and at the start of each run).

A whole album below the cutoff (every library track of it) is fetched as one peer's folder:
one album search, the folders scored by :mod:`.folder_scoring`, the better files asked for in
one batch (:meth:`AlbumService.enqueue_folder`), each replaced as above; tracks the folder
does not give are upgraded on their own, and a folder tried is remembered per (peer, folder).

Every file asked for is recorded in ``upgrade_transfers`` (with its transfer id) until it is
in place or given up, so a run the daemon's stop interrupted is resumed at the next start
(:meth:`UpgradeService.resume`): the transfer is picked up again, never asked for twice.
The cutoff list reads the ranks stored in ``track_quality`` (:meth:`refresh_ranks`).
Events: ``upgrade.run.started``, ``upgrade.started``, ``upgrade.completed``,
``upgrade.failed``, ``upgrade.run.finished`` (docs/events.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec

from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.downloads.folder_scoring import FolderScore, score_folders
from soulsync_core.downloads.importer import BadFile, Importer, ImportFailed
from soulsync_core.downloads.models import Wanted
from soulsync_core.downloads.tagging import AudioInfo, TagSet, probe, write_tags
from soulsync_core.downloads.transfers import Limits, Watch, judge
from soulsync_core.downloads.upgrade_store import LibraryFile, UpgradeStore, UpgradeTransfer
from soulsync_core.events import EventBus
from soulsync_core.hooks import DownloadClient, ProviderError, RateLimited
from soulsync_core.jobs import JobConflict, JobContext, JobFailed, JobInfo, JobRunner
from soulsync_core.library import LibraryService
from soulsync_core.library.tags import PROVIDER_TAGS, TrackRecord, UnreadableFile, read_track
from soulsync_core.matching import (
    QualityProfile,
    TrackInfo,
    parse_quality_profile,
    rank_candidates,
    search_queries,
)
from soulsync_core.matching.quality import (
    QualityRank,
    audio_format,
    bitrate_kbps,
    cutoff_rule,
    extension_of,
    quality_label,
    quality_rank,
)
from soulsync_core.matching.queries import album_search_queries
from soulsync_core.models import Candidate, Transfer
from soulsync_core.paths import fsync_file
from soulsync_core.schedule import Clock, Schedule, iso, utc_now
from soulsync_core.settings import Settings

log = logging.getLogger(__name__)

JOB_KIND = "library_upgrade"
PURGE_KIND = "trash_purge"
SECONDS_PER_HOUR = 3600  # the unit of downloads.upgrade_interval_hours (tests shorten it)
PURGE_INTERVAL_SECONDS = 86400.0
TRASH_FOLDER = "trash"
# Better files downloaded and checked per track before the run moves on to the next track.
MAX_TRIES_PER_TRACK = 3
# Enqueues asked again while the client answers 429 (as downloads do).
BUSY_RETRIES = 3

# What became of one track's try: the upgrade's description, why the file was not taken
# (remembered), a set-up failure, or None (not asked for / no better file).
Outcome = dict[str, Any] | str | ImportFailed | None
# Asks the download client for one peer's files in one request: (transfers, (file, why) failures).
FolderEnqueue = Callable[[str, list[Candidate]],
                         Awaitable[tuple[list[Transfer], list[tuple[str, str]]]]]


class UpgradesOff(Exception):
    """Upgrades cannot run as configured; ``str()`` says which setting to change."""


class UpgradeTrack(msgspec.Struct):
    """A library track whose file is below the cutoff: its file and what the library stored
    about its stream (``quality`` as ``"mp3 192 kbps"``)."""

    track_id: int
    title: str
    artist: str
    album: str
    path: str
    quality: str
    format: str
    bitrate: int | None
    bit_depth: int | None
    sample_rate: int | None


class UpgradeRunStatus(msgspec.Struct):
    """The latest upgrade run (running or finished); ``state`` is ``idle`` when none ran.

    Counters: ``tracks`` taken up, ``upgraded``, ``no_better`` (no better file found or none
    passed the checks), ``failed`` (a track whose file could not be replaced: ``failures``
    says why, as ``{track_id, error}``); ``upgrades`` lists ``{track_id, old_path, new_path,
    old_quality, new_quality, trash_path}``.
    """

    state: str
    job_id: str | None = None
    tracks: int = 0
    upgraded: int = 0
    no_better: int = 0
    failed: int = 0
    trash_purged: int = 0
    upgrades: list[dict[str, Any]] = msgspec.field(default_factory=list)
    failures: list[dict[str, Any]] = msgspec.field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


def run_status(job: JobInfo | None) -> UpgradeRunStatus:
    """Return the :class:`UpgradeRunStatus` of an upgrade job row (``idle`` for None)."""
    if job is None:
        return UpgradeRunStatus("idle")
    known = set(UpgradeRunStatus.__struct_fields__) - {"state", "job_id"}
    figures = {k: v for k, v in {**job.progress, **(job.result or {})}.items() if k in known}
    return UpgradeRunStatus(job.state, job.id, started_at=job.created_at,
                            finished_at=job.finished_at, error=job.error, **figures)


def file_rank(profile: QualityProfile, file: LibraryFile) -> QualityRank:
    """Return the rank of a library file from the figures the library stored."""
    return quality_rank(profile, file.format, file.bitrate, file.bit_depth, file.sample_rate)


def candidate_rank(profile: QualityProfile, candidate: Candidate) -> QualityRank:
    """Return the rank a Soulseek candidate claims (its format and the peer's figures)."""
    fmt = audio_format(candidate) or extension_of(candidate.filename)
    return quality_rank(profile, fmt, bitrate_kbps(candidate), candidate.bit_depth,
                        candidate.sample_rate)


def info_rank(profile: QualityProfile, info: AudioInfo) -> QualityRank:
    """Return the rank of a downloaded file's real stream."""
    return quality_rank(profile, info.format, info.bitrate, info.bit_depth, info.sample_rate)


def _label(fmt: str, bitrate: int | None, bit_depth: int | None, sample_rate: int | None) -> str:
    name = fmt.lower()
    return quality_label(Candidate("", f"file.{name}", 0, name, bitrate, bit_depth, sample_rate))


def _tags_of(record: TrackRecord) -> TagSet:
    """Return the tags of the library's file, to be written into its replacement."""
    custom = {name: value for key, name in PROVIDER_TAGS.items()
              if (value := getattr(record, key, None))}
    return TagSet(title=record.title, artists=[record.track_artist or record.artist],
                  album_artist=record.artist, album=record.album,
                  track_number=record.track_number, disc_number=record.disc_number,
                  date=str(record.year) if record.year else None, isrc=record.isrc,
                  custom=custom or None)


@dataclass(frozen=True)
class Replaced:
    """Where the track's file is now, and where its old file went."""

    new_path: Path
    trash_path: Path
    record: TrackRecord


def _stage(source: Path, old: Path, temp: Path, root: str) -> TrackRecord:
    """Copy ``source`` to ``temp`` beside ``old``, tagged with ``old``'s tags, flushed; return
    the old file's record. Blocking. ``root`` is the music folder (a file without tags is
    named from its path under it)."""
    record = read_track(str(old), root, 0, 0)
    try:
        shutil.copyfile(source, temp)
        write_tags(str(temp), _tags_of(record))
        fsync_file(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return record


# Library columns SoulSync's tag writer does not carry; the row keeps the old file's values.
_KEPT_FIELDS = ("genres", "bpm", "musicbrainz_artist_id", "musicbrainz_release_id",
                "musicbrainz_recording_id")


def _keep_old_fields(new: TrackRecord, old: TrackRecord) -> TrackRecord:
    """Return ``new`` with the :data:`_KEPT_FIELDS` it lacks taken from ``old``."""
    for name in _KEPT_FIELDS:
        if not getattr(new, name) and getattr(old, name):
            setattr(new, name, getattr(old, name))
    return new


def _write_failure(folder: Path, exc: OSError) -> str:
    """Return what to tell the user when an upgrade cannot write in ``folder``."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk of {folder} is full ({reason}); the library's file was left as it "
                "was: free some space for the upgrade")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"SoulSync may not write in {folder} ({reason}); the library's file was left "
                "as it was: give SoulSync's user write access there (under systemd also "
                "ReadWritePaths=)")
    return f"could not write in {folder} ({reason}); the library's file was left as it was"


def _to_trash(old: Path, trash: Path) -> None:
    """Copy ``old`` into the trash (the data dir may be on another file system). Blocking."""
    trash.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(old, trash)
    fsync_file(trash)


def _tally(counts: dict[str, Any], file: LibraryFile, outcome: Outcome) -> None:
    """Count one track's outcome into a run's figures."""
    if isinstance(outcome, ImportFailed):
        log.warning("upgrade of track %d failed: %s", file.track_id, outcome)
        counts["failed"] += 1
        counts["failures"].append({"track_id": file.track_id, "error": str(outcome)})
    elif isinstance(outcome, dict):
        counts["upgraded"] += 1
        counts["upgrades"].append(outcome)
    else:
        counts["no_better"] += 1


def _pick_folder(folders: list[FolderScore], files: list[LibraryFile], found: list[Candidate],
                 profile: QualityProfile, refused: set[tuple[str, str]],
                 refused_folders: set[tuple[str, str]],
                 ) -> tuple[FolderScore, list[tuple[LibraryFile, Candidate]]] | None:
    """Return the best accepted folder not tried before with files that claim to rank above
    their tracks' (and were never refused), and those files per track; None when none has."""
    by_name = {(c.username, c.filename): c for c in found}
    for folder in folders:
        if not folder.accepted or (folder.username, folder.folder) in refused_folders:
            continue
        asked = []
        for match in folder.matched:
            file, candidate = files[match.track], by_name[(folder.username, match.filename)]
            if ((candidate.username, candidate.filename) not in refused
                    and candidate_rank(profile, candidate) < file_rank(profile, file)):
                asked.append((file, candidate))
        if asked:
            return folder, asked
    return None


class UpgradeService:
    """The cutoff list, upgrade runs as jobs, their schedule, and the trash folder."""

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, activity: Activity,
                 library: LibraryService, client: Callable[[], DownloadClient], data_dir: Path,
                 playlists_replaced: Callable[[str, str], Awaitable[object]] | None = None,
                 clock: Clock = utc_now, *, events: EventBus | None = None,
                 enqueue_folder: FolderEnqueue | None = None):
        self._settings = settings
        self._events = events or EventBus()
        self._enqueue_folder = enqueue_folder
        self._rank_lock = asyncio.Lock()
        self._jobs = jobs
        self._activity = activity
        self._library = library
        self._client = client
        self._playlists_replaced = playlists_replaced
        self.store = UpgradeStore(db)
        self.importer = Importer(library)
        self.trash_dir = data_dir / TRASH_FOLDER
        self.clock = clock
        # Monotonic seconds for the transfer timeouts (as the download monitor's).
        self.monotonic: Callable[[], float] = time.monotonic
        self.schedule = Schedule(db, JOB_KIND, self._interval_seconds, self._start_scheduled,
                                 clock=lambda: self.clock())
        self.purge_schedule = Schedule(db, PURGE_KIND, lambda: PURGE_INTERVAL_SECONDS,
                                       self._purge_scheduled, clock=lambda: self.clock())
        settings.on_change("downloads.upgrade_interval_hours",
                           lambda _changed: self.schedule.reschedule())

    # ---------------------------------------------------------------------- the cutoff

    def profile(self) -> QualityProfile:
        """Return the quality profile downloads use."""
        return parse_quality_profile(self._settings.get("downloads.quality_profile"),
                                     fallback=self._settings.get("downloads.quality_fallback"))

    def cutoff(self) -> int | None:
        """Return the profile index of ``downloads.upgrade_until``, None when upgrades are off.

        Raises UpgradesOff when the entry is not one of the quality profile's.
        """
        entry = self._settings.get("downloads.upgrade_until").strip()
        if not entry:
            return None
        try:
            return cutoff_rule(self.profile(), entry)
        except ValueError as exc:
            raise UpgradesOff(str(exc)) from None

    async def refresh_ranks(self) -> int:
        """Bring the stored ranks up to date; return how many files were ranked.

        Ranks only the files without one (new or changed files; all of them under a new
        quality profile): files written or rescanned lose their stored rank through the
        triggers of migration 0023. A new cutoff only resets the ``below`` flags in SQL.
        Nothing is done when upgrades are off.
        """
        cutoff = self.cutoff()
        if cutoff is None:
            return 0
        async with self._rank_lock:
            profile = self.profile()
            key = json.dumps([self._settings.get("downloads.quality_profile"),
                              self._settings.get("downloads.quality_fallback")])
            stored_profile, stored_cutoff = await self.store.rank_state()
            if stored_profile != key:
                await self.store.set_rank_profile(key)
                stored_cutoff = None
            if stored_cutoff != cutoff:
                await self.store.set_cutoff(cutoff)
            if await self.store.all_ranked():
                return 0
            unranked = await self.store.unranked()

            def rank() -> list[tuple[Any, ...]]:
                rows = []
                for track_id, fmt, kbps, depth, rate, *place in unranked:
                    rule = quality_rank(profile, fmt, kbps, depth, rate).rule
                    rows.append((track_id, rule, int(rule > cutoff), *place))
                return rows

            # Ranking many files is CPU work: not on the event loop.
            ranks = await asyncio.to_thread(rank)
            await self.store.store_ranks(ranks)
            return len(ranks)

    async def _unmet(self) -> list[LibraryFile]:
        if self.cutoff() is None:
            return []
        await self.refresh_ranks()
        files, _total = await self.store.below(0, -1)
        return files

    async def cutoff_unmet(self, offset: int, limit: int) -> tuple[list[UpgradeTrack], int]:
        """Return ``(tracks below the cutoff from offset, total)``, by artist, album, disc and
        track; ``([], 0)`` when upgrades are off. Raises UpgradesOff (see :meth:`cutoff`).

        A paged indexed query on the stored ranks (:meth:`refresh_ranks` first)."""
        if self.cutoff() is None:
            return [], 0
        await self.refresh_ranks()
        files, total = await self.store.below(offset, limit)
        page = [UpgradeTrack(f.track_id, f.title, f.artist, f.album, f.path,
                             _label(f.format, f.bitrate, f.bit_depth, f.sample_rate),
                             f.format.lower(), f.bitrate, f.bit_depth, f.sample_rate)
                for f in files]
        return page, total

    # -------------------------------------------------------------------------- runs

    async def start_run(self, reason: str = "api") -> JobInfo:
        """Start an upgrade run and return its job row.

        Raises UpgradesOff when ``downloads.upgrade_until`` is empty or not a profile entry,
        NoDownloadClient without a configured download client, JobConflict while one runs.
        """
        if self.cutoff() is None:
            raise UpgradesOff("quality upgrades are off: set downloads.upgrade_until to a "
                              "downloads.quality_profile entry (e.g. flac)")
        self._client()
        return await self._jobs.start(JOB_KIND, self._run, {"reason": reason})

    async def status(self) -> UpgradeRunStatus:
        """Return the running upgrade run, else the latest one, else ``idle``."""
        return run_status(await self._jobs.latest(JOB_KIND))

    async def resume(self) -> bool:
        """Start a run when the last one left transfers in flight (the daemon stopped during
        it); return True when one was started. The run picks them up first (see _resume)."""
        if not await self.store.transfers():
            return False
        try:
            await self.start_run("resume")
        except JobConflict:
            return False
        except Exception as exc:  # upgrades off or no client now: the rows wait for a run
            log.warning("upgrade transfers of the last run not resumed: %s", exc)
            return False
        return True

    async def run_scheduler(self) -> None:
        """Resume an interrupted run, then run upgrades every
        ``downloads.upgrade_interval_hours`` (0: never) and purge the trash daily, until
        cancelled."""
        await self.resume()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.schedule.run_forever())
            group.create_task(self.purge_schedule.run_forever())

    def _interval_seconds(self) -> float:
        return self._settings.get("downloads.upgrade_interval_hours") * SECONDS_PER_HOUR

    async def _start_scheduled(self) -> None:
        try:
            await self.start_run("schedule")
        except JobConflict:
            log.info("scheduled upgrade run skipped: one is already running")
        except Exception as exc:  # off, misconfigured or no client: nothing to do this time
            log.info("scheduled upgrade run skipped: %s", exc)

    async def _purge_scheduled(self) -> None:
        purged = await self.purge_trash()
        if purged:
            log.info("deleted %d file(s) from the upgrade trash", purged)

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        counts: dict[str, Any] = {"tracks": 0, "upgraded": 0, "no_better": 0, "failed": 0,
                                  "trash_purged": await self.purge_trash(), "upgrades": [],
                                  "failures": []}
        try:
            client = self._client()
            unmet = await self._unmet()
        except Exception as exc:
            raise JobFailed(str(exc)) from None
        profile = self.profile()
        refused = await self.store.refused()
        refused_folders = await self.store.refused_folders()
        self._events.publish("upgrade.run.started", {"job_id": ctx.info.id,
                                                     "reason": ctx.params.get("reason"),
                                                     "cutoff_unmet": len(unmet)})
        handled = await self._resume(client, profile, unmet, refused, counts, ctx)
        budget = self._settings.get("downloads.upgrades_per_run")
        for unit in await self._units([f for f in unmet if f.track_id not in handled]):
            if counts["tracks"] >= budget:
                break
            outcomes: dict[int, Outcome] = {}
            if len(unit) > 1:
                outcomes = await self._upgrade_album(client, unit, profile, refused,
                                                     refused_folders)
            for file in unit:
                counts["tracks"] += 1
                ctx.progress(**counts)
                outcome = outcomes.get(file.track_id)
                if not isinstance(outcome, dict | ImportFailed):
                    # Not in the folder, or its file there was not taken: on its own.
                    try:
                        outcome = await self._upgrade(client, file, profile, refused)
                    except ImportFailed as exc:
                        outcome = exc
                _tally(counts, file, outcome)
        ctx.progress(**counts)
        await self._activity.record(
            "library.upgrades_completed", "Quality Upgrades Completed",
            f"{counts['upgraded']} of {counts['tracks']} track(s) below the cutoff upgraded")
        self._events.publish("upgrade.run.finished", {
            "job_id": ctx.info.id, **{k: counts[k] for k in (
                "tracks", "upgraded", "no_better", "failed", "trash_purged")}})
        return counts

    async def _units(self, unmet: list[LibraryFile]) -> list[list[LibraryFile]]:
        """Return ``unmet`` in its order as units of work: a whole album below the cutoff
        (two tracks or more, every library track of it unmet) is one unit, else each track."""
        albums: dict[int, list[LibraryFile]] = {}
        for file in unmet:
            albums.setdefault(file.album_id, []).append(file)
        sizes = await self.store.album_sizes(list(albums))
        units: list[list[LibraryFile]] = []
        for album_id, files in albums.items():
            if len(files) > 1 and sizes.get(album_id) == len(files):
                units.append(files)
            else:
                units += [[file] for file in files]
        return units

    async def _resume(self, client: DownloadClient, profile: QualityProfile,
                      unmet: list[LibraryFile], refused: set[tuple[str, str]],
                      counts: dict[str, Any], ctx: JobContext) -> set[int]:
        """Finish the transfers a previous run left in flight (the daemon stopped); return
        the track ids they were for. Their transfers are picked up, not asked for again."""
        pending = await self.store.transfers()
        if not pending:
            return set()
        by_id = {f.track_id: f for f in unmet}
        rows: list[tuple[UpgradeTransfer, LibraryFile]] = []
        for row in pending:
            file = by_id.get(row.track_id) or await self.store.library_file(row.track_id)
            if file is None:  # the track left the library meanwhile
                await self._drop(client, row, None)
                continue
            rows.append((row, file))
        log.info("upgrade run: resuming %d transfer(s) of the last run", len(rows))
        outcomes = await self._fetch(client, rows, profile, resumed=True)
        for row, file in rows:
            counts["tracks"] += 1
            outcome = outcomes.get(file.track_id)
            await self._remember(row, file, outcome, refused)
            _tally(counts, file, outcome)
        ctx.progress(**counts)
        return {file.track_id for _row, file in rows}

    # ----------------------------------------------------------------- one album

    async def _upgrade_album(self, client: DownloadClient, files: list[LibraryFile],
                             profile: QualityProfile, refused: set[tuple[str, str]],
                             refused_folders: set[tuple[str, str]]) -> dict[int, Outcome]:
        """Fetch a whole album below the cutoff as one peer's folder: one search (more only
        while no folder fits), the folders scored as album requests score them, the better
        files of the best one asked for in one batch, each replaced as a single upgrade is.

        Returns the outcome per track whose file came with the folder (the caller upgrades
        the others on their own); ``{}`` when no folder fits or the peer refused the batch.
        """
        first = files[0]
        tracks = [Wanted(f.title, [f.artist], f.album, duration_ms=f.duration_ms or 0,
                         track_number=f.track_number, disc_number=f.disc_number) for f in files]
        tolerance = self._settings.get("downloads.duration_tolerance_seconds")
        found: list[Candidate] = []
        choice: tuple[FolderScore, list[tuple[LibraryFile, Candidate]]] | None = None
        for query in album_search_queries(first.album, [first.artist]):
            try:
                found += await self._search(client, query)
            except (TimeoutError, ProviderError) as exc:
                log.info("album upgrade of %r: search %r failed: %s", first.album, query, exc)
                continue
            # Coverage is not a reason to refuse here: the tracks a folder lacks are
            # upgraded on their own.
            folders = await asyncio.to_thread(score_folders, found, tracks, first.album, profile,
                                              min_coverage=0.0, tolerance_s=tolerance)
            choice = _pick_folder(folders, files, found, profile, refused, refused_folders)
            if choice is not None:
                break
        if choice is None or self._enqueue_folder is None:
            return {}
        folder, asked = choice
        at = iso(self.clock())
        rows = [await self.store.add_transfer(file.track_id, c.username, c.filename, c.size,
                                              folder.folder, at) for file, c in asked]
        try:
            got, failures = await self._enqueue_folder(folder.username, [c for _f, c in asked])
        except (ProviderError, RateLimited) as exc:
            # An offline peer says nothing about its files: the next run may ask again.
            log.info("album upgrade of %r: %s refused the folder %s: %s", first.album,
                     folder.username, folder.folder, exc)
            for row in rows:
                await self.store.forget_transfer(row.id)
            return {}
        transfers = {t.filename: t for t in got}
        live: list[tuple[UpgradeTransfer, LibraryFile]] = []
        for row, (file, candidate) in zip(rows, asked, strict=True):
            transfer = transfers.get(candidate.filename)
            if transfer is None:
                await self.store.forget_transfer(row.id)
                continue
            await self.store.set_transfer_id(row.id, transfer.id)
            live.append((dataclasses.replace(row, transfer_id=transfer.id), file))
            self._started(file, candidate, folder.folder)
        if failures:
            log.info("album upgrade of %r: %s did not enqueue %d file(s): %s", first.album,
                     folder.username, len(failures), failures[:3])
        outcomes = await self._fetch(client, live, profile)
        for row, file in live:
            await self._remember(row, file, outcomes.get(file.track_id), refused)
        taken = sum(isinstance(o, dict) for o in outcomes.values())
        await self.store.refuse_folder(folder.username, folder.folder,
                                       f"tried for {len(live)} track(s), {taken} upgraded", at)
        refused_folders.add((folder.username, folder.folder))
        return outcomes

    # ----------------------------------------------------------------- one track

    async def _upgrade(self, client: DownloadClient, file: LibraryFile, profile: QualityProfile,
                       refused: set[tuple[str, str]]) -> dict[str, Any] | None:
        """Find, fetch, check and put in place a better file for ``file``; return what was
        done, None when no better file passed the checks. Raises ImportFailed when the file
        cannot be replaced for a reason of the set-up (the music or data folder)."""
        current = file_rank(profile, file)
        duration_ms = file.duration_ms or 0
        wanted = TrackInfo(file.title, (file.artist,), file.album, duration_ms)
        found: list[Candidate] = []
        tries = 0
        for query in search_queries(file.title, [file.artist], file.album or None):
            try:
                found += await self._search(client, query)
            except (TimeoutError, ProviderError) as exc:
                log.info("upgrade of track %d: search %r failed: %s", file.track_id, query, exc)
                continue
            ranked = await asyncio.to_thread(
                rank_candidates, wanted, found, profile,
                duration_tolerance_s=self._settings.get("downloads.duration_tolerance_seconds"),
                min_confidence=self._settings.get("downloads.min_confidence"))
            better = [s.candidate for s in ranked if s.accepted
                      and (s.candidate.username, s.candidate.filename) not in refused
                      and candidate_rank(profile, s.candidate) < current]
            for candidate in better:
                if tries >= MAX_TRIES_PER_TRACK:
                    return None
                tries += 1
                outcome = await self._try(client, file, candidate, profile)
                if isinstance(outcome, ImportFailed):
                    raise outcome
                if isinstance(outcome, dict):
                    return outcome
                refused.add((candidate.username, candidate.filename))  # not again this run
        return None

    async def _search(self, client: DownloadClient, query: str) -> list[Candidate]:
        """Run one search within ``downloads.search_timeout_seconds`` (429s are retried)."""
        timeout = self._settings.get("downloads.search_timeout_seconds")
        async with asyncio.timeout(timeout):
            while True:
                try:
                    return await client.search(query)
                except RateLimited as exc:
                    await asyncio.sleep(exc.retry_after)

    async def _try(self, client: DownloadClient, file: LibraryFile, candidate: Candidate,
                   profile: QualityProfile) -> Outcome:
        """Download ``candidate`` and replace ``file`` with it when it passes the checks.

        Returns the upgrade's description, why the file was not taken (remembered), an
        ImportFailed for the set-up, or None when it could not even be asked for (to be tried
        again another time). The transfer is recorded before it is asked for (see
        :meth:`_resume`).
        """
        row = await self.store.add_transfer(file.track_id, candidate.username, candidate.filename,
                                            candidate.size, None, iso(self.clock()))
        transfer = await self._enqueue(client, candidate)
        if transfer is None:
            await self.store.forget_transfer(row.id)
            self._failed(file, candidate.username, candidate.filename, "the peer's client did "
                         "not take the request; it is asked again another time")
            return None
        await self.store.set_transfer_id(row.id, transfer.id)
        self._started(file, candidate, None)
        row = dataclasses.replace(row, transfer_id=transfer.id)
        outcome = (await self._fetch(client, [(row, file)], profile)).get(file.track_id)
        await self._remember(row, file, outcome, refused=None)
        return outcome

    async def _remember(self, row: UpgradeTransfer, file: LibraryFile, outcome: Outcome,
                        refused: set[tuple[str, str]] | None) -> None:
        """Remember a file that was tried and not taken (a reason), so it is never asked again."""
        if not isinstance(outcome, str):
            return
        if refused is not None:
            refused.add((row.username, row.filename))
        await self.store.refuse(row.username, row.filename, file.track_id, outcome,
                                iso(self.clock()))
        log.info("upgrade of track %d: %s %s not taken: %s", file.track_id, row.username,
                 row.filename, outcome)

    def _started(self, file: LibraryFile, candidate: Candidate, folder: str | None) -> None:
        self._events.publish("upgrade.started", {
            "track_id": file.track_id, "old_quality": _label(file.format, file.bitrate,
                                                             file.bit_depth, file.sample_rate),
            "candidate_quality": quality_label(candidate), "username": candidate.username,
            "filename": candidate.filename, "album_folder": folder})

    def _failed(self, file: LibraryFile, username: str, filename: str, error: str) -> None:
        self._events.publish("upgrade.failed", {"track_id": file.track_id, "username": username,
                                                "filename": filename, "error": error})

    async def _enqueue(self, client: DownloadClient, candidate: Candidate) -> Transfer | None:
        """Ask the client for ``candidate``; None when it refuses or stays busy.

        A refused enqueue (the peer is offline) says nothing about the file, so it is not
        remembered: the next run may ask again. Waits for a busy client (429) are bounded by
        ``downloads.search_timeout_seconds``, as a download's are.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.get("downloads.search_timeout_seconds")
        for _attempt in range(BUSY_RETRIES):
            try:
                return await client.enqueue(candidate)
            except RateLimited as exc:
                if loop.time() + exc.retry_after >= deadline:
                    break
                await asyncio.sleep(exc.retry_after)
            except ProviderError as exc:
                log.info("upgrade: %s %s not enqueued: %s", candidate.username,
                         candidate.filename, exc)
                return None
        log.info("upgrade: %s %s not enqueued: the client stayed busy", candidate.username,
                 candidate.filename)
        return None

    # ------------------------------------------------------------- the transfers

    async def _fetch(self, client: DownloadClient, rows: list[tuple[UpgradeTransfer, LibraryFile]],
                     profile: QualityProfile, *, resumed: bool = False) -> dict[int, Outcome]:
        """Follow the transfers of ``rows`` until each completed (then checked and put in
        place) or was given up; return the outcome per track id.

        One transfer list per ``downloads.monitor_interval_seconds`` for all of them, each
        judged with the download monitor's verdicts (:func:`~.transfers.judge`, its limits).
        ``resumed``: the rows come from a previous run; as the monitor does after a restart,
        lists from before it prove nothing, and a file whose enqueue was never answered
        (no transfer id, not in the list) is asked for again, which slskd answers with its
        existing transfer — never a second download.
        """
        limits = Limits(self._settings.get("downloads.queued_timeout_seconds"),
                        self._settings.get("downloads.stalled_timeout_seconds"))
        since = -math.inf if resumed else self.monotonic()
        watches = {row.id: Watch(enqueued_at=since) for row, _file in rows}
        waiting = {row.id: (row, file) for row, file in rows}
        outcomes: dict[int, Outcome] = {}
        listed_ok = self.monotonic()
        while waiting:
            await asyncio.sleep(self._settings.get("downloads.monitor_interval_seconds"))
            listed_at = self.monotonic()
            try:
                listed = await client.transfers()
            except ProviderError as exc:
                # Nothing is judged on a list we do not have; but the run does not wait forever.
                if listed_at - listed_ok > limits.stalled_timeout:
                    failure = ImportFailed(f"the download client's transfer list has been "
                                           f"unavailable for {limits.stalled_timeout:g} s: {exc}")
                    for row, file in waiting.values():
                        outcomes[file.track_id] = failure
                        self._failed(file, row.username, row.filename, str(failure))
                    return outcomes
                continue
            listed_ok = listed_at
            by_id = {t.id: t for t in listed}
            by_file = {(t.username, t.filename): t for t in listed}
            for row, file in list(waiting.values()):
                seen = by_id.get(row.transfer_id or "") or by_file.get((row.username, row.filename))
                if seen is None and row.transfer_id is None:
                    waiting[row.id] = (await self._ask_again(client, row, file, outcomes), file)
                    if file.track_id in outcomes:
                        del waiting[row.id]
                    else:
                        watches[row.id] = Watch(enqueued_at=self.monotonic())
                    continue
                verdict = judge(seen, watches[row.id], self.monotonic(), listed_at, limits)
                if verdict.action == "wait":
                    continue
                del waiting[row.id]
                if verdict.action == "import" and seen is not None:
                    outcome = await self._take(client, row, file, seen, profile)
                else:
                    outcome = verdict.reason or "the transfer was given up"
                    await self._drop(client, row, seen)
                if not isinstance(outcome, dict):
                    self._failed(file, row.username, row.filename,
                                 str(outcome) if outcome is not None else "not asked for")
                outcomes[file.track_id] = outcome
        return outcomes

    async def _ask_again(self, client: DownloadClient, row: UpgradeTransfer, file: LibraryFile,
                         outcomes: dict[int, Outcome]) -> UpgradeTransfer:
        """Ask again for a file whose enqueue a stop interrupted; sets ``outcomes[track]`` to
        None when the client refuses (the row is dropped)."""
        transfer = await self._enqueue(client, Candidate(row.username, row.filename, row.size))
        if transfer is None:
            await self.store.forget_transfer(row.id)
            outcomes[file.track_id] = None
            return row
        await self.store.set_transfer_id(row.id, transfer.id)
        return dataclasses.replace(row, transfer_id=transfer.id)

    async def _take(self, client: DownloadClient, row: UpgradeTransfer, file: LibraryFile,
                    transfer: Transfer, profile: QualityProfile) -> Outcome:
        """Check a completed transfer's file and put it in place of ``file`` when it is
        really better; the row is dropped only after (a stop before that redoes it)."""
        try:
            source = await self.importer.locate(client, transfer,
                                                self._settings.get("downloads.file_wait_seconds"))
            try:
                return await self._check_and_replace(file, source, file_rank(profile, file),
                                                     profile)
            finally:
                left = await self.importer.discard(source)
                if left is not None:
                    log.warning("upgrade: %s", left)
        except ImportFailed as exc:
            return exc
        finally:
            await self._drop(client, row, transfer)

    async def _drop(self, client: DownloadClient, row: UpgradeTransfer,
                    transfer: Transfer | None) -> None:
        """Remove an upgrade's transfer from the client (when known) and forget it."""
        if transfer is not None:
            with contextlib.suppress(ProviderError):
                await client.cancel(transfer)
        await self.store.forget_transfer(row.id)

    async def _check_and_replace(self, file: LibraryFile, source: Path, current: QualityRank,
                                 profile: QualityProfile) -> dict[str, Any] | str:
        old = Path(file.path)
        duration_ms = file.duration_ms
        if not duration_ms:
            with contextlib.suppress(UnreadableFile, OSError):
                duration_ms = round((await asyncio.to_thread(probe, str(old))).length_s * 1000)
        wanted = Wanted(file.title, [file.artist], file.album, duration_ms=duration_ms or 0)
        try:
            info = await self.importer.check(
                source, wanted, self._settings.get("downloads.duration_tolerance_seconds"))
        except BadFile as exc:
            return str(exc)
        new_rank = info_rank(profile, info)
        new_quality = _label(info.format, info.bitrate, info.bit_depth, info.sample_rate)
        old_quality = _label(file.format, file.bitrate, file.bit_depth, file.sample_rate)
        if not new_rank < current:
            return f"the file is {new_quality}, not better than the library's {old_quality}"
        replaced = await self._replace(file, source)
        await self._library.store.replace_file(file.track_id, replaced.record)
        if replaced.new_path != old and self._playlists_replaced is not None:
            await self._playlists_replaced(str(old), str(replaced.new_path))
        await self._activity.record("library.track_upgraded", "Track Upgraded",
                                    f"{file.artist} - {file.title}: {old_quality} -> "
                                    f"{new_quality} ({replaced.new_path})")
        upgrade = {"track_id": file.track_id, "old_path": str(old),
                   "new_path": str(replaced.new_path), "old_quality": old_quality,
                   "new_quality": new_quality, "trash_path": str(replaced.trash_path)}
        self._events.publish("upgrade.completed", upgrade)
        return upgrade

    async def _replace(self, file: LibraryFile, source: Path) -> Replaced:
        """Put ``source`` in place of the track's file; the old one goes to the trash first.

        Raises ImportFailed when a folder cannot be written, or when another file already
        has the new name.
        """
        old = Path(file.path)
        new = old.with_suffix(source.suffix.lower())
        temp = old.with_name(f".soulsync-upgrade-{file.track_id}{new.suffix}")
        stamp = self.clock().strftime("%Y%m%dT%H%M%S")
        trash = self.trash_dir / f"{stamp}-{file.track_id}" / old.name
        if new != old and await asyncio.to_thread(new.exists):
            raise ImportFailed(f"{new} exists already and is not track {file.track_id}'s file; "
                               "move it away to let the upgrade replace the track")
        try:
            previous = await asyncio.to_thread(_stage, source, old, temp,
                                               str(self._library.music_dir()))
        except OSError as exc:
            raise ImportFailed(_write_failure(temp.parent, exc)) from None
        except UnreadableFile as exc:
            raise ImportFailed(f"the library's file {old} cannot be read any more ({exc}); "
                               "rescan the library") from None
        try:
            try:
                await asyncio.to_thread(_to_trash, old, trash)
            except OSError as exc:
                raise ImportFailed(_write_failure(self.trash_dir, exc)) from None
            await self.store.add_trash(file.track_id, str(old), str(trash), iso(self.clock()))
            try:
                await asyncio.to_thread(os.replace, temp, new)
            except OSError as exc:
                raise ImportFailed(_write_failure(new.parent, exc)) from None
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(temp.unlink)
        if new != old:
            try:
                await asyncio.to_thread(old.unlink)
            except OSError as exc:
                # The new file is in place and the old one is safe in the trash.
                log.warning("upgrade: could not remove %s (a copy is in the trash): %s", old, exc)
        root = str(self._library.music_dir())
        stat = await asyncio.to_thread(new.stat)
        record = await asyncio.to_thread(read_track, str(new), root, stat.st_size,
                                         stat.st_mtime_ns)
        return Replaced(new, trash, _keep_old_fields(record, previous))

    # ------------------------------------------------------------------------ trash

    async def purge_trash(self) -> int:
        """Delete trashed files older than ``downloads.trash_days``; return how many."""
        days = self._settings.get("downloads.trash_days")
        limit = iso(self.clock() - timedelta(days=days))
        purged = 0
        for entry in await self.store.trash_before(limit):
            path = Path(entry.trash_path)
            try:
                await asyncio.to_thread(path.unlink)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete %s from the upgrade trash: %s", path, exc)
                continue
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.parent.rmdir)  # only when empty
            await self.store.forget_trash(entry.id)
            purged += 1
        return purged

