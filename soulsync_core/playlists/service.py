"""Playlist sync: a streaming playlist becomes an M3U8 of library files, and what is missing
is wanted.

A sync (a job of kind ``playlist_sync:<id>``, so one per playlist at a time) takes the tracks
the client sent, or fetches them from the playlist source; matches each against the library
(:class:`soulsync_core.library.matcher.LibraryMatcher`); writes ``<playlists_dir>/<name>.m3u8``
with paths relative to it; puts each missing track on the wishlist (``source_type``
``playlist``) and, with ``playlist_sync.download_missing``, into the download pipeline. When
such a download completes, the entry gets its library track and the M3U8 is written again.

What a sync saw is stored per playlist, so the next one reuses it: an entry whose key was
matched before keeps its match while that library track exists, and an entry that was
missing is looked for again only after the library changed. A re-sync of an unchanged
playlist against an unchanged library does no matching. Matches a person pinned win always.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from soulsync_core import faultpoints
from soulsync_core.accounts import service_title
from soulsync_core.activity import Activity
from soulsync_core.downloads.models import UNFINISHED, Download
from soulsync_core.downloads.service import DownloadService, NoDownloadClient
from soulsync_core.events import EventBus
from soulsync_core.hooks import AccountLogin, PlaylistSource
from soulsync_core.jobs import JobContext, JobFailed, JobInfo, JobRunner
from soulsync_core.library.matcher import LibraryMatch, LibraryMatcher
from soulsync_core.models import Playlist
from soulsync_core.music_folder import MusicFolderMissing, require_music_folder
from soulsync_core.playlists import m3u
from soulsync_core.playlists.store import Entry, PlaylistStore, SyncedPlaylist
from soulsync_core.playlists.tracks import (
    display_of,
    key_of,
    source_track_objects,
    wanted_of_object,
)
from soulsync_core.profiles import DEFAULT_PROFILE
from soulsync_core.settings import Settings
from soulsync_core.timefmt import utc_now_iso
from soulsync_core.wishlist import WishlistService

log = logging.getLogger(__name__)

JOB_PREFIX = "playlist_sync:"
SyncMode = Literal["replace", "append"]
SYNC_MODES: tuple[str, ...] = ("replace", "append")
MISSING_REASON = "Missing from the library after playlist sync"


class UnknownSource(ValueError):
    """No playlist source has that name; ``str()`` lists the valid ones."""


class NoPlaylistSource(UnknownSource):
    """No playlist source is installed at all (a missing plugin, not a wrong name)."""


class NotConnected(Exception):
    """The source's account is not logged in; ``str()`` says how to log in."""


class SyncEntry(msgspec.Struct):
    """One track of a sync result.

    ``status`` ``matched`` (``library_track_id`` and ``confidence`` set) or ``missing``;
    ``method`` how it was found (``id``, ``isrc``, ``exact``, ``fuzzy``, ``pinned``,
    ``download``); ``action`` what was done about a missing track (``wishlist``,
    ``downloading``, ``downloaded``, ``download_failed``, ``none``).
    """

    position: int
    track: dict[str, Any]
    status: Literal["matched", "missing"]
    library_track_id: int | None
    confidence: float | None
    method: str | None
    pinned: bool
    action: str
    download_id: int | None
    download_status: str | None


class SyncTotals(msgspec.Struct):
    """Counts of the last sync; ``reused`` entries kept an earlier match without matching."""

    total: int = 0
    matched: int = 0
    missing: int = 0
    reused: int = 0
    wishlisted: int = 0
    downloading: int = 0
    downloaded: int = 0
    in_m3u8: int = 0


class SyncStatus(msgspec.Struct):
    """A playlist's sync: the running or last job and the stored result of the last sync."""

    playlist_id: str
    playlist_name: str | None
    source: str | None
    state: Literal["running", "completed", "failed", "cancelled", "interrupted", "never"]
    mode: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    progress: dict[str, Any]
    totals: SyncTotals
    m3u8_path: str | None
    notes: list[str]
    tracks: list[SyncEntry]


@dataclass
class _Run:
    """One sync's inputs and what it found."""

    playlist_id: str
    name: str | None
    source: str | None
    objects: list[dict[str, Any]] | None
    mode: SyncMode
    download_missing: bool
    snapshot_id: str | None = None
    notes: list[str] = field(default_factory=list)
    profile_id: int = DEFAULT_PROFILE


class PlaylistService:
    """Playlist listing through the sources, and syncing playlists into the library.

    Listing, reading and syncing go through the sources of the profile that asks
    (``sources_of(profile_id)``; ``sources`` are profile 1's), so each profile sees its own
    account's playlists. A playlist's sync state belongs to the profile that synced it last:
    the playlist id is the source's, and one M3U8 per playlist is written into the shared
    library.
    """

    def __init__(self, store: PlaylistStore, settings: Settings, jobs: JobRunner, activity: Activity,
                 matcher: LibraryMatcher, wishlist: WishlistService, downloads: DownloadService,
                 music_dir: Callable[[], Path], sources: Sequence[PlaylistSource],
                 sources_of: Callable[[int], Awaitable[Sequence[PlaylistSource]]] | None = None,
                 events: EventBus | None = None):
        self.store = store
        self._events = events or EventBus()
        self._settings = settings
        self._jobs = jobs
        self._activity = activity
        self._matcher = matcher
        self._wishlist = wishlist
        self._downloads = downloads
        self._music_dir = music_dir
        self._sources = {source.name: source for source in sources}
        self._sources_of = sources_of
        # Serialises a sync and the download listener's updates of the same playlist.
        self._locks: dict[str, asyncio.Lock] = {}
        downloads.on_completed(self._download_completed)

    # ------------------------------------------------------------------------ sources

    def source_names(self) -> list[str]:
        """Return the names of the installed playlist sources."""
        return list(self._sources)

    def source(self, name: str) -> PlaylistSource:
        """Return the source named ``name``; raise UnknownSource listing the valid names."""
        try:
            return self._sources[name]
        except KeyError:
            if not self._sources:
                raise NoPlaylistSource("No playlist source is installed: the soulsync-spotify "
                                       "and soulsync-tidal plugins provide them.") from None
            valid = ", ".join(f"'{n}'" for n in self._sources)
            raise UnknownSource(f"source must be one of: {valid}.") from None

    async def source_of(self, name: str, profile_id: int) -> PlaylistSource:
        """Return the source named ``name`` of ``profile_id`` (logged in as that profile's
        account); raise UnknownSource listing the valid names."""
        source = self.source(name)
        if profile_id == DEFAULT_PROFILE or self._sources_of is None:
            return source
        return next(s for s in await self._sources_of(profile_id) if s.name == source.name)

    async def check_connected(self, source: PlaylistSource) -> None:
        """Raise NotConnected when ``source`` logs in users and nobody is logged in."""
        if isinstance(source, AccountLogin) and not (await source.account()).connected:
            raise NotConnected(f"{service_title(source.name)} account not connected: log in with "
                               f"`soulsync auth {source.name}` or GET /api/v1/auth/{source.name}.")

    async def list_playlists(self, source_name: str,
                             profile_id: int = DEFAULT_PROFILE) -> list[Playlist]:
        """Return every playlist of the profile's account at the source (ProviderError and
        friends pass)."""
        source = await self.source_of(source_name, profile_id)
        await self.check_connected(source)
        return await source.list_playlists()

    async def get_playlist(self, source_name: str, playlist_id: str,
                           profile_id: int = DEFAULT_PROFILE) -> Playlist:
        """Return one playlist with its tracks, read as the profile's account; LookupError
        when the source has no such one."""
        source = await self.source_of(source_name, profile_id)
        await self.check_connected(source)
        return await source.get_playlist(playlist_id)

    # --------------------------------------------------------------------------- sync

    def playlists_dir(self) -> Path:
        """Return where M3U8 files go: ``library.playlists_dir``, else ``<music dir>/Playlists``."""
        configured = self._settings.get("library.playlists_dir").strip()
        if configured:
            return Path(os.path.abspath(os.path.expanduser(configured)))
        return self._music_dir() / "Playlists"

    async def start_sync(self, playlist_id: str, *, name: str | None,
                         tracks: list[dict[str, Any]] | None, source: str | None,
                         mode: SyncMode | None, download_missing: bool | None,
                         profile_id: int = DEFAULT_PROFILE) -> JobInfo:
        """Start syncing a playlist for ``profile_id`` and return the job; raise JobConflict
        while one runs.

        ``tracks`` are checked track objects (see :mod:`.tracks`), or None to fetch them from
        ``source`` as the profile's account (checked here: UnknownSource, NotConnected).
        Missing tracks go onto that profile's wishlist. ``mode`` and ``download_missing``
        default to the ``playlist_sync.*`` settings.
        """
        if tracks is None:
            await self.check_connected(await self.source_of(source or "", profile_id))
        run = _Run(playlist_id, name, source, tracks, mode or self._settings.get("playlist_sync.mode"),
                   self._settings.get("playlist_sync.download_missing")
                   if download_missing is None else download_missing, profile_id=profile_id)
        params = {"playlist_id": playlist_id, "playlist_name": name, "source": source,
                  "mode": run.mode, "download_missing": run.download_missing,
                  "tracks": None if tracks is None else len(tracks), "profile_id": profile_id}

        async def job(ctx: JobContext) -> dict[str, Any]:
            return await self._sync(ctx, run)

        return await self._jobs.start(JOB_PREFIX + playlist_id, job, params)

    def running(self, playlist_id: str) -> JobInfo | None:
        """Return the running sync of the playlist, or None."""
        return self._jobs.running(JOB_PREFIX + playlist_id)

    async def wait(self, playlist_id: str) -> None:
        """Wait until a running sync of the playlist has ended (tests and the CLI use this)."""
        await self._jobs.wait(JOB_PREFIX + playlist_id)

    def _lock(self, playlist_id: str) -> asyncio.Lock:
        return self._locks.setdefault(playlist_id, asyncio.Lock())

    async def _sync(self, ctx: JobContext, run: _Run) -> dict[str, Any]:
        """Run one sync; ``playlist.sync.finished`` is published whether it succeeds or fails
        (``state`` tells which), so a listener waiting for the end always hears of it."""
        try:
            result = await self._sync_steps(ctx, run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A JobFailed says what to fix; anything else is a bug whose text stays in the log.
            error = str(exc) if isinstance(exc, JobFailed) else \
                f"Playlist sync failed: {type(exc).__name__}"
            self._events.publish("playlist.sync.finished", {
                "playlist_id": run.playlist_id, "job_id": ctx.info.id, "state": "failed",
                "playlist_name": run.name, "error": error})
            raise
        self._events.publish("playlist.sync.finished", {
            "playlist_id": run.playlist_id, "job_id": ctx.info.id, "state": "completed", **result})
        return result

    async def _sync_steps(self, ctx: JobContext, run: _Run) -> dict[str, Any]:
        # Before anything is wanted or downloaded: the M3U8 could not be written anyway.
        await require_music_folder(self._music_dir(), self.playlists_dir())
        self._progress(ctx, run, phase="reading the playlist")
        objects = await self._fetch(run)
        # Held from reading the last sync's state to saving the new one (not while a slow
        # source is read): a download finishing meanwhile waits, then updates the saved rows.
        async with self._lock(run.playlist_id):
            self._progress(ctx, run, phase="matching", total=len(objects))
            previous = await self.store.playlist(run.playlist_id)
            old_entries = {e.wanted_key: e for e in await self.store.entries(run.playlist_id)}
            library_state = await self.store.library_state()
            entries, totals = await self._match(run, objects, previous, old_entries, library_state)
            self._progress(ctx, run, phase="wanting missing tracks", matched=totals.matched)
            await self._want_missing(run, entries, totals)
            self._progress(ctx, run, phase="writing the playlist")
            name = run.name or (previous.name if previous else run.playlist_id)
            path = await self._write_m3u8(run.playlist_id, name, run.mode, entries,
                                          previous.m3u8_path if previous else None, totals)
            keys = "\n".join(e.wanted_key for e in entries)
            await self.store.save(SyncedPlaylist(
                run.playlist_id, run.source, name, run.mode, run.snapshot_id,
                hashlib.sha1(keys.encode()).hexdigest(), library_state, str(path), ctx.info.id,
                utc_now_iso(), run.profile_id), entries)
        await self._activity.record(
            "playlist.synced", "Playlist Synced",
            f"'{name}': {totals.matched} of {totals.total} tracks in the library, "
            f"{totals.missing} missing ({totals.downloading} downloading)")
        result = {"playlist_name": name, "totals": msgspec.to_builtins(totals), "m3u8_path": str(path),
                  "notes": run.notes}
        return result

    def _progress(self, ctx: JobContext, run: _Run, **fields: Any) -> None:
        ctx.progress(**fields)
        self._events.publish("playlist.sync.progress", {"playlist_id": run.playlist_id,
                                                        "job_id": ctx.info.id, **ctx.info.progress})

    async def _fetch(self, run: _Run) -> list[dict[str, Any]]:
        """Return the run's track objects, fetching the playlist from its source if needed."""
        if run.objects is not None:
            return run.objects
        source = await self.source_of(run.source or "", run.profile_id)
        try:
            playlist = await source.get_playlist(run.playlist_id)
        except LookupError:
            raise JobFailed(f"Playlist {run.playlist_id} not found at {source.name}.") from None
        except Exception as exc:  # ProviderError, NotAuthenticated, RateLimited
            raise JobFailed(f"Could not read the playlist from {source.name}: {exc}") from None
        run.name = run.name or playlist.name
        run.snapshot_id = playlist.snapshot_id
        return source_track_objects(playlist.tracks, source.name)

    async def _match(self, run: _Run, objects: list[dict[str, Any]], previous: SyncedPlaylist | None,
                     old: dict[str, Entry], library_state: str) -> tuple[list[Entry], SyncTotals]:
        """Return the entries with their matches: pinned, reused from the last sync, or new."""
        pins = await self.store.pins(run.playlist_id)
        library_changed = previous is None or previous.library_state != library_state
        entries = [Entry(i, key_of(obj), obj) for i, obj in enumerate(objects)]
        reused_ids: dict[int, Entry] = {}
        to_match: list[Entry] = []
        totals = SyncTotals(total=len(entries))
        for entry in entries:
            before = old.get(entry.wanted_key)
            if before is not None:  # what was done about it stays (a download under way)
                entry.action, entry.download_id = before.action, before.download_id
                if before.method == "pinned":
                    before = None  # a pin since removed: the matcher decides again
            if entry.wanted_key in pins:
                entry.library_track_id = pins[entry.wanted_key]
                entry.confidence = 1.0 if entry.library_track_id is not None else None
                entry.method = "pinned"
            elif before is not None and before.library_track_id is not None:
                entry.library_track_id, entry.confidence, entry.method = (
                    before.library_track_id, before.confidence, before.method)
                reused_ids[entry.position] = entry
            elif before is not None and not library_changed:
                totals.reused += 1  # missing before, and the library has not changed since
            else:
                to_match.append(entry)
        files = await self.store.track_files(
            e.library_track_id for e in entries if e.library_track_id is not None)
        for entry in reused_ids.values():
            if entry.library_track_id in files:
                totals.reused += 1
            else:  # the matched file left the library: look again
                entry.library_track_id = entry.confidence = entry.method = None
                to_match.append(entry)
        for entry in entries:
            if entry.method == "pinned" and entry.library_track_id not in files:
                entry.library_track_id = None  # a pinned track that left the library
        found = await self._matcher.match_many([wanted_of_object(e.wanted) for e in to_match])
        for entry, match in zip(to_match, found, strict=True):
            self._apply(entry, match)
        totals.matched = sum(e.library_track_id is not None for e in entries)
        totals.missing = totals.total - totals.matched
        return entries, totals

    @staticmethod
    def _apply(entry: Entry, match: LibraryMatch | None) -> None:
        if match is not None:
            entry.library_track_id, entry.confidence, entry.method = (
                match.track_id, match.confidence, match.method)

    async def _want_missing(self, run: _Run, entries: list[Entry], totals: SyncTotals) -> None:
        """Put missing entries on the wishlist and, when asked, into the download pipeline."""
        info = {"playlist_name": run.name, "playlist_id": run.playlist_id, "source": run.source,
                "sync_type": "playlist_sync"}
        statuses = await self._downloads.statuses(_downloading(entries))
        for entry in entries:
            if entry.library_track_id is not None:
                if entry.action == "downloading":
                    entry.action = "downloaded"
                continue
            if entry.action == "downloading" and statuses.get(entry.download_id or 0) in UNFINISHED:
                totals.downloading += 1
                continue
            await self._wishlist.add(entry.wanted, failure_reason=MISSING_REASON,
                                     source_type="playlist", source_info=info,
                                     profile_id=run.profile_id)
            await faultpoints.areached("playlist.wanted")
            entry.action = "wishlist"
            totals.wishlisted += 1
            if run.download_missing:
                try:
                    download, _created = await self._downloads.request(wanted_of_object(entry.wanted))
                except NoDownloadClient as exc:
                    if str(exc) not in run.notes:
                        run.notes.append(f"Missing tracks were not downloaded: {exc}")
                    continue
                entry.action, entry.download_id = "downloading", download.id
                totals.downloading += 1
        totals.downloaded = sum(e.action == "downloaded" for e in entries)

    async def _write_m3u8(self, playlist_id: str, name: str, mode: str, entries: Sequence[Entry],
                          old_path: str | None, totals: SyncTotals) -> Path:
        """Write the playlist's M3U8 and return its path (a name another playlist's file
        already has gets the playlist id added). Raises MusicFolderMissing rather than
        creating the music folder or the playlists folder's parent."""
        folder = self.playlists_dir()
        await require_music_folder(self._music_dir(), folder)
        path = folder / m3u.file_name(name)
        owner = await self.store.m3u8_owner(str(path))
        if owner is not None and owner != playlist_id:
            path = folder / m3u.file_name(f"{name} ({playlist_id})")
        files = await self.store.track_files(
            e.library_track_id for e in entries if e.library_track_id is not None)
        lines = []
        for entry in entries:
            if entry.library_track_id in files:
                file, duration, label = files[entry.library_track_id]  # type: ignore[index]
                lines.append(m3u.Entry(m3u.relative_entry(path, file),
                                       round(duration / 1000) if duration else -1, label))
        totals.in_m3u8 = await asyncio.to_thread(m3u.write_playlist, path, lines,
                                                 append=mode == "append")
        if old_path and old_path != str(path) and mode == "replace":
            # Renamed playlist: the old file is ours (its path is on this playlist's row).
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.remove, old_path)
        return path

    async def track_file_replaced(self, old_file: str, new_file: str) -> int:
        """Rewrite the M3U8 entries for ``old_file`` to ``new_file`` in the synced playlists
        and every other ``.m3u8`` of the playlists folder; return how many entries changed.

        A quality upgrade calls this when the new file's name differs from the old one's, so
        media servers keep finding the track. A playlist file that cannot be rewritten is
        logged and skipped.
        """
        folder = self.playlists_dir()

        def listed() -> list[Path]:
            with contextlib.suppress(OSError):
                return sorted(folder.glob("*.m3u8"))
            return []

        files = {Path(p) for p in await self.store.m3u8_paths()} | set(await asyncio.to_thread(listed))
        changed = 0
        for path in sorted(files):
            try:
                changed += await asyncio.to_thread(m3u.retarget, path, old_file, new_file)
            except OSError as exc:
                log.warning("could not point %s at %s: %s", path, new_file, exc)
        return changed

    async def _download_completed(self, download: Download) -> None:
        """A download finished: its playlist entries get the track, their M3U8s are rewritten."""
        waiting = await self.store.entries_downloading(download.id)
        for playlist_id in sorted({p for p, _position in waiting}):
            async with self._lock(playlist_id):
                playlist = await self.store.playlist(playlist_id)
                if playlist is None:
                    continue
                entries = await self.store.entries(playlist_id)
                for entry in entries:
                    if entry.download_id == download.id and download.library_track_id is not None:
                        entry.library_track_id, entry.confidence = download.library_track_id, 1.0
                        entry.method, entry.action = "download", "downloaded"
                        await self.store.set_entry(playlist_id, entry.position,
                                                   library_track_id=entry.library_track_id,
                                                   confidence=1.0, method="download",
                                                   action="downloaded")
                try:
                    await self._write_m3u8(playlist_id, playlist.name, playlist.mode, entries,
                                           playlist.m3u8_path, SyncTotals())
                except MusicFolderMissing as exc:
                    # The entry is saved; the next sync or download writes the file.
                    log.warning("playlist %s: M3U8 not updated: %s", playlist_id, exc)
                    continue
            log.info("playlist %s: download %d arrived, M3U8 updated", playlist_id, download.id)

    # ------------------------------------------------------------------ result, pins

    async def status(self, playlist_id: str,
                     profile_id: int | None = None) -> SyncStatus | None:
        """Return the running or last sync and the stored result; None when never synced
        (or, with ``profile_id``, when that profile did not run the last sync)."""
        job = await self._jobs.latest(JOB_PREFIX + playlist_id)
        playlist = await self.store.playlist(playlist_id)
        if job is None and playlist is None:
            return None
        if profile_id is not None and _synced_by(job, playlist) != profile_id:
            return None
        entries = await self.store.entries(playlist_id) if playlist else []
        pins = await self.store.pins(playlist_id)
        statuses = await self._downloads.statuses(_downloading(entries))
        tracks = [self._sync_entry(e, pins, statuses) for e in entries]
        result = (job.result or {}) if job else {}
        totals = msgspec.convert(result.get("totals") or {}, SyncTotals)
        if playlist is not None and (job is None or job.state != "running"):
            totals = self._totals(tracks, totals)
            if playlist.m3u8_path:  # downloads that arrived since the sync added entries
                entries_now = await asyncio.to_thread(m3u.read_entries, Path(playlist.m3u8_path))
                totals.in_m3u8 = len(entries_now)
        params = job.params if job else {}
        return SyncStatus(
            playlist_id=playlist_id,
            playlist_name=playlist.name if playlist else params.get("playlist_name"),
            source=playlist.source if playlist else params.get("source"),
            state=job.state if job else "never",
            mode=playlist.mode if playlist else params.get("mode"),
            started_at=job.created_at if job else None,
            finished_at=job.finished_at if job else (playlist.synced_at if playlist else None),
            error=job.error if job else None, progress=dict(job.progress) if job else {},
            totals=totals, m3u8_path=playlist.m3u8_path if playlist else None,
            notes=list(result.get("notes") or []), tracks=tracks)

    @staticmethod
    def _totals(tracks: list[SyncEntry], last: SyncTotals) -> SyncTotals:
        """Return the totals as they are now (downloads may have arrived since the sync)."""
        matched = sum(t.status == "matched" for t in tracks)
        return SyncTotals(
            total=len(tracks), matched=matched, missing=len(tracks) - matched, reused=last.reused,
            wishlisted=last.wishlisted,
            downloading=sum(t.download_status in UNFINISHED for t in tracks),
            downloaded=sum(t.action == "downloaded" for t in tracks), in_m3u8=last.in_m3u8)

    @staticmethod
    def _sync_entry(entry: Entry, pins: dict[str, int | None],
                    statuses: dict[int, str]) -> SyncEntry:
        download_status = None
        action = entry.action
        if entry.download_id is not None and action == "downloading":
            download_status = statuses.get(entry.download_id)
            if download_status in ("failed", "not_found", "cancelled"):
                action = "download_failed"
        return SyncEntry(entry.position, display_of(entry.wanted),
                         "matched" if entry.library_track_id is not None else "missing",
                         entry.library_track_id, entry.confidence, entry.method,
                         entry.wanted_key in pins, action, entry.download_id, download_status)

    async def pin(self, playlist_id: str, position: int, library_track_id: int | None,
                  pinned: bool = True, profile_id: int | None = None) -> SyncEntry:
        """Pin entry ``position`` of the last sync to a library track (None: "not in the
        library"), or remove its pin (``pinned`` False); the M3U8 is rewritten at once.

        Raises LookupError when the playlist, the entry or the library track does not exist,
        or (with ``profile_id``) when the playlist's last sync was another profile's;
        MusicFolderMissing when the M3U8 cannot be rewritten (the pin is kept). A running sync
        of the playlist is waited for (its lock), never refused.
        """
        async with self._lock(playlist_id):
            playlist = await self.store.playlist(playlist_id)
            if playlist is None or profile_id not in (None, playlist.profile_id):
                raise LookupError(f"Playlist {playlist_id} was never synced: POST "
                                  f"/api/v1/playlists/{playlist_id}/sync first.")
            entries = await self.store.entries(playlist_id)
            if not 0 <= position < len(entries):
                raise LookupError(f"The last sync of playlist {playlist_id} has no track at "
                                  f"position {position} (positions 0 to {len(entries) - 1}).")
            entry = entries[position]
            if not pinned:
                await self.store.unpin(playlist_id, entry.wanted_key)
            else:
                if library_track_id is not None and not await self.store.track_files([library_track_id]):
                    raise LookupError(f"Library track {library_track_id} not found.")
                await self.store.pin(playlist_id, entry.wanted_key, library_track_id)
                entry.library_track_id = library_track_id
                entry.confidence = 1.0 if library_track_id is not None else None
                entry.method = "pinned"
                await self.store.set_entry(playlist_id, position, library_track_id=library_track_id,
                                           confidence=entry.confidence, method="pinned")
                await self._write_m3u8(playlist_id, playlist.name, playlist.mode, entries,
                                       playlist.m3u8_path, SyncTotals())
            return self._sync_entry(entry, await self.store.pins(playlist_id),
                                    await self._downloads.statuses(_downloading([entry])))


def _synced_by(job: JobInfo | None, playlist: SyncedPlaylist | None) -> int:
    """Return the profile of the newest sync: the running or last job's, else the stored row's."""
    if job is not None:
        return int(job.params.get("profile_id", DEFAULT_PROFILE))
    return playlist.profile_id if playlist is not None else DEFAULT_PROFILE


def _downloading(entries: Sequence[Entry]) -> list[int]:
    """Return the download ids of the entries still waiting for a download."""
    return [e.download_id for e in entries if e.action == "downloading" and e.download_id is not None]
