"""Quality upgrades: library tracks below ``downloads.upgrade_until`` get a better file.

A track is *cutoff unmet* when its file ranks (:func:`~soulsync_core.matching.quality.quality_rank`,
from the stream figures the library stored, never the extension alone) below the quality
profile entry ``downloads.upgrade_until`` names. An upgrade run (a ``library_upgrade`` job: on
its schedule, ``downloads.upgrade_interval_hours``, or ``POST /api/v1/library/upgrades/run``)
takes up to ``downloads.upgrades_per_run`` of them and for each:

1. searches Soulseek (:func:`~soulsync_core.matching.search_queries`, one query at a time),
   ranks the results as downloads do and keeps the accepted ones that rank strictly higher
   than the library's file and were never refused before;
2. downloads the best one and follows its transfer with the monitor's own verdicts
   (:func:`~soulsync_core.downloads.transfers.judge`: queued/stalled timeouts, failures);
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

Album-wise acquisition (a whole album below the cutoff fetched as one folder) is the album
requests' part; until then such an album's tracks are upgraded one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
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
from soulsync_core.downloads.importer import BadFile, Importer, ImportFailed
from soulsync_core.downloads.models import Wanted
from soulsync_core.downloads.tagging import AudioInfo, TagSet, probe, write_tags
from soulsync_core.downloads.transfers import Limits, Watch, judge
from soulsync_core.downloads.upgrade_store import LibraryFile, UpgradeStore
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


class UpgradeService:
    """The cutoff list, upgrade runs as jobs, their schedule, and the trash folder."""

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, activity: Activity,
                 library: LibraryService, client: Callable[[], DownloadClient], data_dir: Path,
                 playlists_replaced: Callable[[str, str], Awaitable[object]] | None = None,
                 clock: Clock = utc_now):
        self._settings = settings
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

    async def _unmet(self) -> list[LibraryFile]:
        cutoff = self.cutoff()
        if cutoff is None:
            return []
        profile = self.profile()
        files = await self.store.library_files()
        # Ranking a whole library is CPU work: not on the event loop.
        return await asyncio.to_thread(
            lambda: [f for f in files if file_rank(profile, f).rule > cutoff])

    async def cutoff_unmet(self, offset: int, limit: int) -> tuple[list[UpgradeTrack], int]:
        """Return ``(tracks below the cutoff from offset, total)``, by artist, album, disc and
        track; ``([], 0)`` when upgrades are off. Raises UpgradesOff (see :meth:`cutoff`)."""
        unmet = await self._unmet()
        page = [UpgradeTrack(f.track_id, f.title, f.artist, f.album, f.path,
                             _label(f.format, f.bitrate, f.bit_depth, f.sample_rate),
                             f.format.lower(), f.bitrate, f.bit_depth, f.sample_rate)
                for f in unmet[offset:offset + limit]]
        return page, len(unmet)

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

    async def run_scheduler(self) -> None:
        """Run upgrades every ``downloads.upgrade_interval_hours`` (0: never) and purge the
        trash daily, until cancelled."""
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
            unmet = await self._unmet()
            client = self._client()
        except Exception as exc:
            raise JobFailed(str(exc)) from None
        profile = self.profile()
        refused = await self.store.refused()
        for file in unmet[:self._settings.get("downloads.upgrades_per_run")]:
            counts["tracks"] += 1
            ctx.progress(**counts)
            try:
                upgrade = await self._upgrade(client, file, profile, refused)
            except ImportFailed as exc:
                log.warning("upgrade of track %d failed: %s", file.track_id, exc)
                counts["failed"] += 1
                counts["failures"].append({"track_id": file.track_id, "error": str(exc)})
                continue
            if upgrade is None:
                counts["no_better"] += 1
            else:
                counts["upgraded"] += 1
                counts["upgrades"].append(upgrade)
        ctx.progress(**counts)
        await self._activity.record(
            "library.upgrades_completed", "Quality Upgrades Completed",
            f"{counts['upgraded']} of {counts['tracks']} track(s) below the cutoff upgraded")
        return counts

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
                outcome = await self._try(client, file, candidate, current, profile)
                if isinstance(outcome, dict):
                    return outcome
                refused.add((candidate.username, candidate.filename))  # not again this run
                if outcome is None:
                    continue
                await self.store.refuse(candidate.username, candidate.filename, file.track_id,
                                        outcome, iso(self.clock()))
                log.info("upgrade of track %d: %s %s not taken: %s", file.track_id,
                         candidate.username, candidate.filename, outcome)
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
                   current: QualityRank, profile: QualityProfile) -> dict[str, Any] | str | None:
        """Download ``candidate`` and replace ``file`` with it when it passes the checks.

        Returns the upgrade's description, why the file was not taken (to be remembered), or
        None when it could not even be asked for (to be tried again another time).
        """
        transfer = await self._enqueue(client, candidate)
        if transfer is None:
            return None
        try:
            outcome = await self._follow(client, transfer)
            if isinstance(outcome, str):
                return outcome
            source = await self.importer.locate(client, outcome,
                                                self._settings.get("downloads.file_wait_seconds"))
            try:
                return await self._check_and_replace(file, source, current, profile)
            finally:
                left = await self.importer.discard(source)
                if left is not None:
                    log.warning("upgrade: %s", left)
        finally:
            with contextlib.suppress(ProviderError):
                await client.cancel(transfer)

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

    async def _follow(self, client: DownloadClient, transfer: Transfer) -> Transfer | str:
        """Wait for ``transfer`` to complete (the completed transfer) or fail (why)."""
        limits = Limits(self._settings.get("downloads.queued_timeout_seconds"),
                        self._settings.get("downloads.stalled_timeout_seconds"))
        watch = Watch(enqueued_at=self.monotonic())
        listed_ok = watch.enqueued_at
        while True:
            await asyncio.sleep(self._settings.get("downloads.monitor_interval_seconds"))
            listed_at = self.monotonic()
            try:
                listed = await client.transfers()
            except ProviderError as exc:
                # Nothing is judged on a list we do not have; but the run does not wait forever.
                if listed_at - listed_ok > limits.stalled_timeout:
                    raise ImportFailed(f"the download client's transfer list has been "
                                       f"unavailable for {limits.stalled_timeout:g} s: {exc}") from None
                continue
            listed_ok = listed_at
            seen = next((t for t in listed if t.id == transfer.id), None) or next(
                (t for t in listed if (t.username, t.filename) == (transfer.username,
                                                                   transfer.filename)), None)
            verdict = judge(seen, watch, self.monotonic(), listed_at, limits)
            if verdict.action == "import" and seen is not None:
                return seen
            if verdict.action == "give_up":
                return verdict.reason or "the transfer was given up"

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
        return {"track_id": file.track_id, "old_path": str(old),
                "new_path": str(replaced.new_path), "old_quality": old_quality,
                "new_quality": new_quality, "trash_path": str(replaced.trash_path)}

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

