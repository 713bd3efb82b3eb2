"""Album downloads: a whole release, searched once and taken from one peer's folder.

Statuses (stored in ``album_downloads.status``)::

    queued ──> searching ──tracks added──> downloading ──every track finished──> completed
                                                                            └──> failed
    cancelled: asked for through the API (``DELETE /downloads/{id}?kind=album``) while unfinished.

* **Search**: :func:`soulsync_core.matching.queries.album_search_queries` run one at a time
  through the download service's search (its bounds and retries); after each, every result
  so far is grouped and scored (:mod:`.folder_scoring`) and, once a folder is accepted, no
  further query runs.
* **Enqueue**: the best accepted folder is asked for in one request (the client's
  ``enqueue_folder``: slskd's batch endpoint, or its legacy per-user enqueue); a folder the
  peer refuses (offline, rejected) is noted in ``tried_folders`` and the next one is asked.
  With no accepted folder the one covering most tracks (refused only for its coverage) is
  taken, and the tracks it lacks are fetched on their own; with no folder at all, every
  track is.
* **Follow**: each tracklist entry becomes an ordinary download (:meth:`DownloadService.
  add_planned`) carrying the album's tags; the one monitor loop follows its transfer. Its
  candidates are its file in the chosen folder, then its file in the other accepted folders
  (a transfer given up on moves to the next folder's copy), then its own searches.
* **Failover**: when two or more of the chosen folder's files are given up on in one monitor
  tick (the peer rejects, errors or holds them queued), the folder has failed: the tracks still
  waiting on it are asked of the next folder in ONE request, as the first was, and the folder
  goes to ``tried_folders``. A single file failing moves only its track.
* **Library**: tracks the library has already (the downloads' library matcher) are not fetched
  (``in_library``); the folders are scored on the rest.
* **Import**: the downloads import as any download does (the path template per track, the
  album's tags); each completed track gets the cover: the folder's cover image, else the
  metadata source's image (fetched once), saved as ``cover.jpg`` beside it and embedded.
* **Cancel**: the search or enqueue in flight stops, every unfinished track download is
  cancelled (its transfer removed from the client), as are the folder's transfers no track
  download took over yet and the cover's; tracks already imported stay in the library.
* **Status**: while ``downloading``, the album's status follows its tracks' (read on demand).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiohttp

from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.downloads.album_store import (
    ALBUM_FINISHED,
    AlbumDownload,
    AlbumDownloadDetail,
    AlbumDownloadObject,
    AlbumStore,
    AlbumTrackState,
    AlbumWanted,
    TriedFolder,
    album_key,
)
from soulsync_core.downloads.cover_art import embed_cover
from soulsync_core.downloads.folder_scoring import FileMatch, FolderScore, score_folders
from soulsync_core.downloads.models import FINISHED, CandidateInfo, Download, download_object
from soulsync_core.downloads.service import DownloadConflict, DownloadNotFound, DownloadService
from soulsync_core.downloads.wanted import wanted_from_track
from soulsync_core.hooks import DownloadClient, ProviderError, RateLimited
from soulsync_core.matching import QualityProfile, parse_quality_profile, peer_score, quality_label
from soulsync_core.matching.queries import album_search_queries
from soulsync_core.models import Album, Candidate, Track, Transfer
from soulsync_core.search import MetadataSearch
from soulsync_core.settings import Settings

log = logging.getLogger(__name__)

COVER_NAME = "cover.jpg"
# The metadata source's cover image: bounded in time and size (a cover is well under this).
COVER_TIMEOUT_SECONDS = 20.0
MAX_COVER_BYTES = 10 * 1024 * 1024


class AlbumNotFound(LookupError):
    """The metadata source lists no tracks for the album; ``str()`` says which."""


class AlbumInLibrary(Exception):
    """The library has every track of the album already; ``track_ids`` are its tracks, in
    tracklist order."""

    def __init__(self, album: AlbumWanted, track_ids: list[int]):
        super().__init__(f"the library has every track of {album.artist} - {album.name} already")
        self.track_ids = track_ids


def album_wanted(source: str, album: Album, tracks: Sequence[Track]) -> AlbumWanted:
    """Return the release to fetch from a metadata source's album and its tracks (in order).

    Every track gets the album's tags: album name, album artist (the album's first artist),
    album id, total tracks, total discs (the highest disc number), release date (the track's
    own when it has one), compilation.
    Raises AlbumNotFound when no track has a title.
    """
    listed = [t for t in tracks if t.name.strip()]
    if not listed:
        raise AlbumNotFound(f"{source} lists no tracks for album {album.id!r}.")
    name = album.name.strip() or (listed[0].album or "").strip()
    artists = [a for a in album.artists if a.strip()] or list(listed[0].artists)
    album_artist = artists[0] if artists else ""
    release_date = album.release_date or listed[0].release_date
    discs = max((t.disc_number or 1 for t in listed), default=1)
    wanted = []
    for track in listed:
        item = wanted_from_track(track, source)
        item.album, item.album_artist = name, album_artist
        item.album_id = item.album_id or album.id
        item.track_total = len(listed)
        item.disc_total = discs
        item.release_date = item.release_date or release_date
        item.compilation = album.album_type == "compilation"
        wanted.append(item)
    return AlbumWanted(name, artists, wanted, album_artist, release_date, album.id,
                       wanted[0].source, album.album_type, album.image_url or listed[0].image_url)


async def album_from_source(search: MetadataSearch, source: str, album: Album) -> AlbumWanted:
    """Return the release ``album`` of ``source`` with the tracklist that source lists for it.

    Raises UnknownSource, SourceUnavailable (from the search) and AlbumNotFound.
    """
    search.provider(source)
    tracks: list[Track] = await search.call(source, "album_tracks", album.id)
    return album_wanted(source, album, tracks)


@runtime_checkable
class FolderEnqueuer(Protocol):
    """A download client that asks one peer for many files in one request (slskd)."""

    async def enqueue_folder(self, username: str, files: Sequence[Candidate],
                             batch_id: str) -> tuple[list[Transfer], list[tuple[str, str]]]: ...


class AlbumService:
    """Album requests: search, folder choice, one enqueue per folder, tracks, covers."""

    def __init__(self, db: Database, settings: Settings, activity: Activity,
                 downloads: DownloadService, search: MetadataSearch):
        self._settings = settings
        self._search = search
        self._activity = activity
        self._downloads = downloads
        self.store = AlbumStore(db)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._covers: dict[int, asyncio.Lock] = {}
        self._finished_listeners: list[Callable[[int], None]] = []
        # Failover: one lock per album, and the next folder's transfers waiting for the track
        # downloads that are giving up on the failed folder (download id -> file, transfer).
        self._failover_locks: dict[int, asyncio.Lock] = {}
        self._refresh_locks: dict[int, asyncio.Lock] = {}
        self._handover: dict[int, tuple[CandidateInfo, Transfer]] = {}
        downloads.on_completed(self._track_completed)
        downloads.set_failover(self._failover)

    def on_finished(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(album download id)`` (sync, must not raise) when an album download
        becomes completed, failed or cancelled (the wishlist waits on it)."""
        self._finished_listeners.append(listener)

    async def _finish(self, row: AlbumDownload, status: str, **fields: object) -> None:
        """Give ``row`` a final status and tell the listeners."""
        await self.store.update(row, status=status, **fields)
        for listener in self._finished_listeners:
            try:
                listener(row.id)
            except Exception:
                log.exception("album download listener failed")

    # ------------------------------------------------------------------------ requests

    async def request(self, album: AlbumWanted, *, force: bool = False) -> tuple[AlbumDownload, bool]:
        """Queue an album download; return ``(album download, created)``.

        The tracks the library has already (the downloads' library matcher decides) are not
        fetched, unless ``force``. While an album download of the same release is unfinished,
        that one is returned with ``created`` False. Raises AlbumInLibrary when the library has
        every track (and not ``force``), NoDownloadClient when no client is configured,
        ValueError for an album without tracks.
        """
        if not album.tracks:
            raise ValueError(f"the album {album.name!r} has no tracks to download")
        client = self._downloads.client()
        existing = await self.store.unfinished_with_key(album_key(album))
        if existing is not None:
            return existing, False
        owned: list[int | None] = [None] * len(album.tracks)
        if not force:
            matches = await self._downloads.in_library_many(album.tracks)
            owned = [m.track_id if m is not None else None for m in matches]
            if all(t is not None for t in owned):
                raise AlbumInLibrary(album, [t for t in owned if t is not None])
        row = await self.store.create(album, client.name, owned)
        log.info("album download %d queued: %s - %s (%d tracks)", row.id, album.artist, album.name,
                 len(album.tracks))
        self._spawn(row)
        return row, True

    async def request_from_source(self, source: str, album: Album) -> tuple[AlbumDownload, bool]:
        """Request ``album`` of metadata source ``source`` with the tracklist it lists (the
        wishlist and the watchlist ask this way); see :meth:`request`.

        Raises UnknownSource, SourceUnavailable, AlbumNotFound and NoDownloadClient.
        """
        self._downloads.client()
        return await self.request(await album_from_source(self._search, source, album))

    async def cancel(self, album_download_id: int) -> AlbumDownload:
        """Cancel an unfinished album download (see the module docstring); return it.

        Raises DownloadNotFound for an unknown id, DownloadConflict when it is finished.
        """
        row = await self.get(album_download_id)
        if row is None:
            raise DownloadNotFound(f"Album download {album_download_id} not found.")
        if row.status in ALBUM_FINISHED:
            raise DownloadConflict(f"Album download {album_download_id} is already {row.status}.")
        task = self._tasks.get(row.id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        row = await self.store.get(album_download_id)  # the task may have written meanwhile
        assert row is not None
        for download_id in row.tracks:
            if download_id is not None:
                # A finished track stays as it is; one being imported finishes its import.
                with contextlib.suppress(DownloadNotFound, DownloadConflict):
                    await self._downloads.cancel(download_id)
        await self._cancel_unclaimed(row)
        await self._clean_cover(row)
        await self._finish(row, "cancelled")
        log.info("album download %d cancelled", row.id)
        return row

    async def _cancel_unclaimed(self, row: AlbumDownload) -> None:
        """Remove the transfers of the chosen folder that no track download follows (a cancel
        between the folder's enqueue and the track downloads being added)."""
        if row.chosen is None:
            return
        folder = row.folders[row.chosen]
        unclaimed = {m.filename for m in folder.matched if row.tracks[m.track] is None}
        if not unclaimed:
            return
        client = self._downloads.client()
        try:
            for transfer in await client.transfers():
                if transfer.username == folder.username and transfer.filename in unclaimed:
                    await client.cancel(transfer)
        except ProviderError as exc:
            log.warning("album download %d: could not remove its transfers from %s: %s", row.id,
                        client.name, exc)

    async def get(self, album_download_id: int) -> AlbumDownload | None:
        """Return one album download (its status brought up to date with its tracks), or None."""
        row = await self.store.get(album_download_id)
        if row is not None:
            await self._refresh(row)
        return row

    async def page(self, offset: int, limit: int,
                   statuses: tuple[str, ...] = ()) -> tuple[list[AlbumDownload], int]:
        """Return ``(album downloads newest first, total)``, only those in ``statuses`` when
        given."""
        rows, total = await self.store.page(offset, limit, statuses)
        for row in rows:
            await self._refresh(row)
        return rows, total

    async def detail(self, row: AlbumDownload) -> AlbumDownloadDetail:
        """Return the API object of an album download with every track's download."""
        downloads = {d: await self._downloads.get(d) for d in row.tracks if d is not None}
        chosen = row.folders[row.chosen] if row.chosen is not None else None
        in_folder = {m.track for m in chosen.matched} if chosen else set()
        tracks = []
        for index, (wanted, download_id) in enumerate(zip(row.album.tracks, row.tracks, strict=True)):
            download = downloads.get(download_id) if download_id is not None else None
            owned = row.owned(index)
            tracks.append(AlbumTrackState(wanted.disc_number, wanted.track_number, wanted.title,
                                          download_object(download) if download else None,
                                          index in in_folder, owned is not None, owned))
        completed = sum((t.download is not None and t.download.status == "completed")
                        or t.already_in_library for t in tracks)
        return AlbumDownloadDetail(**self._object_fields(row, completed), tracks=tracks,
                                   queries=row.queries, folders=row.folders,
                                   tried_folders=row.tried_folders)

    async def summary(self, row: AlbumDownload) -> AlbumDownloadObject:
        """Return the API object of an album download (without its tracks and folders)."""
        statuses = await self._downloads.statuses(d for d in row.tracks if d is not None)
        completed = sum(status == "completed" for status in statuses.values())
        completed += sum(row.owned(i) is not None for i in range(len(row.tracks)))
        return AlbumDownloadObject(**self._object_fields(row, completed))

    @staticmethod
    def _object_fields(row: AlbumDownload, completed: int) -> dict[str, object]:
        chosen = row.folders[row.chosen] if row.chosen is not None else None
        return dict(id=row.id, status=row.status, album_name=row.album.name,
                    artist_name=row.album.artist, source=row.album.source,
                    album_id=row.album.album_id, total_tracks=len(row.album.tracks),
                    completed_tracks=completed, username=chosen.username if chosen else None,
                    folder=chosen.folder if chosen else None, chosen_reason=row.chosen_reason,
                    error=row.error, note=row.note, created_at=row.created_at,
                    updated_at=row.updated_at, finished_at=row.finished_at)

    async def _refresh(self, row: AlbumDownload) -> None:
        """Finish a ``downloading`` album download whose tracks have all finished."""
        if row.status != "downloading":
            return
        # Two tracks completing at once both find every track finished: one lock per album,
        # and the stored status read again inside it, so the album finishes (and is recorded
        # in the activity feed, and told to the wishlist) exactly once.
        async with self._refresh_locks.setdefault(row.id, asyncio.Lock()):
            stored = await self.store.get(row.id)
            if stored is not None and stored.status != "downloading":
                row.status, row.error, row.finished_at = stored.status, stored.error, stored.finished_at
                row.updated_at = stored.updated_at
                return
            await self._finish_when_done(row)

    async def _finish_when_done(self, row: AlbumDownload) -> None:
        statuses = await self._downloads.statuses(d for d in row.tracks if d is not None)
        needed = sum(row.owned(i) is None for i in range(len(row.tracks)))
        if len(statuses) < needed or any(s not in FINISHED for s in statuses.values()):
            return
        failed = [row.album.tracks[i].title for i, d in enumerate(row.tracks)
                  if d is not None and statuses.get(d) != "completed"]
        if failed:
            await self._finish(row, "failed", error=f"{len(failed)} of "
                                    f"{needed} track(s) did not download: "
                                    + ", ".join(repr(t) for t in failed))
            await self._clean_cover(row)
        else:
            await self._finish(row, "completed")
            await self._clean_cover(row)
            await self._activity.record("download.completed", "Album Download Completed",
                                        f"{row.album.artist} - {row.album.name}: "
                                        f"{len(row.tracks)} track(s)")

    # ------------------------------------------------------------- lifecycle

    async def recover(self) -> None:
        """Start again the album downloads a previous run left queued or searching (their
        searches are run again: search results are not kept between runs)."""
        for row in await self.store.with_status(("queued", "searching")):
            if row.id not in self._tasks:
                await self.store.update(row, next_query=0)
                self._spawn(row)

    async def stop(self) -> None:
        """Cancel the searches in flight; :meth:`recover` starts them again."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self) -> None:
        """Wait until no album download is searching or enqueueing (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _spawn(self, row: AlbumDownload) -> None:
        task = asyncio.create_task(self._guard(row), name=f"album-download:{row.id}")
        self._tasks[row.id] = task
        task.add_done_callback(lambda done: self._tasks.pop(row.id, None)
                               if self._tasks.get(row.id) is done else None)

    async def _guard(self, row: AlbumDownload) -> None:
        try:
            await self._work(row)
        except Exception as exc:
            log.exception("album download %d failed unexpectedly", row.id)
            with contextlib.suppress(Exception):
                await self._finish(row, "failed",
                                   error=f"unexpected error ({type(exc).__name__}); see the log")

    # ----------------------------------------------------------- search and choice

    def _profile(self) -> QualityProfile:
        return parse_quality_profile(self._settings.get("downloads.quality_profile"),
                                     fallback=self._settings.get("downloads.quality_fallback"))

    def _score(self, row: AlbumDownload, found: list[Candidate]) -> list[FolderScore]:
        owned = frozenset(i for i in range(len(row.album.tracks)) if row.owned(i) is not None)
        return score_folders(found, row.album.tracks, row.album.name, self._profile(),
                             min_coverage=self._settings.get("downloads.album_min_coverage"),
                             tolerance_s=self._settings.get("downloads.duration_tolerance_seconds"),
                             owned=owned)

    async def _work(self, row: AlbumDownload) -> None:
        album = row.album
        queries = album_search_queries(album.name, [album.artist, *album.artists])
        await self.store.update(row, status="searching", queries=queries)
        found: list[Candidate] = []
        problems: list[str] = []
        folders: list[FolderScore] = []
        for number, query in enumerate(queries):
            try:
                found += await self._downloads.search(query)
            except TimeoutError:
                problems.append(f"the search {query!r} took too long")
            except ProviderError as exc:
                problems.append(f"searching {query!r} failed: {exc}")
            folders = await asyncio.to_thread(self._score, row, found)
            await self.store.update(row, next_query=number + 1, folders=folders)
            if folders and folders[0].accepted:
                break
        await self._take(row, found, problems)

    async def _take(self, row: AlbumDownload, found: list[Candidate], problems: list[str]) -> None:
        """Enqueue the best folder that a peer gives, then add a download per track (those no
        folder gives search on their own)."""
        client = self._downloads.client()
        files = {(c.username, c.filename): c for c in found}
        order = [i for i, f in enumerate(row.folders) if f.accepted]
        fallback = not order
        if fallback:
            order = _partial_folders(row.folders)
        tried: list[TriedFolder] = []
        chosen: int | None = None
        transfers: dict[str, Transfer] = {}
        for index in order:
            folder = row.folders[index]
            asked = [files[(folder.username, m.filename)] for m in folder.matched]
            answer = await _ask_folder(client, folder, asked)
            if isinstance(answer, str):
                tried.append(TriedFolder(folder.username, folder.folder, answer))
                continue
            transfers = answer
            chosen = index
            break
        reason = self._reason(row.folders, chosen, fallback) if chosen is not None else None
        await self.store.update(row, chosen=chosen, chosen_reason=reason, tried_folders=tried)
        given_up = {(t.username, t.folder) for t in tried}
        await self._add_tracks(row, files, transfers, chosen, given_up)
        await self.store.update(row, status="downloading",
                                note="; ".join(problems) if problems else None)
        await self._refresh(row)

    def _reason(self, folders: list[FolderScore], chosen: int, fallback: bool) -> str:
        folder = folders[chosen]
        accepted = sum(f.accepted for f in folders)
        parts = [f"{len(folder.matched)} of {len(folder.matched) + len(folder.missing)} tracks",
                 folder.quality]
        if folder.quality_rank is not None:
            parts.append(f"quality profile entry {folder.quality_rank + 1}")
        parts.append("free upload slot" if folder.has_free_slot else
                     f"no free slot, queue {folder.queue_length}")
        parts.append(f"{folder.upload_speed / 1_048_576:.1f} MiB/s")
        head = ("no folder holds the whole album: took the one covering most tracks; the rest "
                "are fetched on their own" if fallback else
                f"best of {accepted} accepted folder(s) of {len(folders)} found")
        return f"{head}: " + ", ".join(parts)

    async def _add_tracks(self, row: AlbumDownload, files: dict[tuple[str, str], Candidate],
                          transfers: dict[str, Transfer], chosen: int | None,
                          given_up: set[tuple[str, str]]) -> None:
        """Add a download per tracklist entry: its file in the chosen folder (enqueued), then
        in the other accepted folders, then in the folders refused only for their coverage;
        folders whose peer refused the enqueue are left out."""
        profile = self._profile()
        order = [chosen] if chosen is not None else []
        order += [i for i, f in enumerate(row.folders) if f.accepted and i != chosen]
        order += [i for i in _partial_folders(row.folders) if i not in order]
        order = [i for i in order if (row.folders[i].username, row.folders[i].folder) not in given_up]
        ids: list[int | None] = []
        for index, wanted in enumerate(row.album.tracks):
            if row.owned(index) is not None:
                ids.append(None)  # the library has it: nothing to fetch
                continue
            pairs: list[tuple[int, CandidateInfo]] = []
            for folder_index in order:
                folder = row.folders[folder_index]
                match = next((m for m in folder.matched if m.track == index), None)
                if match is not None:
                    pairs.append((folder_index, _candidate_info(
                        files[(folder.username, match.filename)], match, wanted.title, row.album,
                        profile)))
            transfer = None
            if pairs and pairs[0][0] == chosen:
                transfer = transfers.get(pairs[0][1].filename)
                if transfer is None:
                    pairs.pop(0)  # slskd refused it in the batch: the next folder's copy
            candidates = [info for _, info in pairs]
            download = await self._downloads.add_planned(wanted, candidates, transfer)
            ids.append(download.id)
        await self.store.update(row, tracks=ids)

    # ----------------------------------------------------------------- failover

    async def _failover(self, download: Download,
                        reason: str) -> tuple[CandidateInfo, Transfer] | None:
        """Where a track download whose transfer was given up on goes next (the download
        service asks; see :meth:`DownloadService.set_failover`).

        When two or more of the chosen folder's files fail in the same monitor tick, the
        folder has failed (its peer went offline, rejects or stalls): the next folder is asked
        for every track still waiting on the failed one in ONE request, like the first, and
        each of those track downloads moves to its file there. One file failing alone moves
        only its track, to its own next candidate (None).
        """
        planned = self._handover.pop(download.id, None)
        if planned is not None:
            return planned
        owner = await self.store.owner_of(download.id)
        if owner is None:
            return None
        async with self._failover_locks.setdefault(owner.id, asyncio.Lock()):
            planned = self._handover.pop(download.id, None)
            if planned is not None:
                return planned
            row = await self.store.get(owner.id)
            if row is None or row.status != "downloading" or row.chosen is None:
                return None
            return await self._switch_folder(row, download, reason)

    async def _switch_folder(self, row: AlbumDownload, download: Download,
                             reason: str) -> tuple[CandidateInfo, Transfer] | None:
        folder = row.folders[row.chosen] if row.chosen is not None else None
        files = {m.filename for m in folder.matched} if folder else set()
        if folder is None or download.username != folder.username or download.filename not in files:
            return None
        waiting: dict[int, Download] = {}   # tracklist entry -> its download on this folder
        failing = 0
        for index, download_id in enumerate(row.tracks):
            other = download if download_id == download.id else (
                self._downloads.followed(download_id) if download_id is not None else None)
            if other is None or other.username != folder.username or other.filename not in files:
                continue
            if other is download or self._downloads.giving_up(other.id):
                failing += 1
                waiting[index] = other
            elif not other.bytes_transferred:
                waiting[index] = other      # still queued at the failed peer
        if failing < 2:
            return None
        outcome = f"{failing} of its files failed at once ({reason})"
        tried = [*row.tried_folders, TriedFolder(folder.username, folder.folder, outcome)]
        given_up = {(t.username, t.folder) for t in tried}
        order = [i for i, f in enumerate(row.folders) if f.accepted]
        order += [i for i in _partial_folders(row.folders) if i not in order]
        client = self._downloads.client()
        for index in order:
            nxt = row.folders[index]
            if (nxt.username, nxt.folder) in given_up:
                continue
            infos: dict[int, CandidateInfo] = {}
            for match in nxt.matched:
                track = waiting.get(match.track)
                info = next((c for c in track.candidates if c.key == (nxt.username, match.filename)),
                            None) if track is not None else None
                if info is not None and track is not None and info.key not in track.tried_keys():
                    infos[match.track] = info
            if not infos:
                continue
            answer = await _ask_folder(client, nxt, [info.candidate() for info in infos.values()])
            if isinstance(answer, str):
                tried.append(TriedFolder(nxt.username, nxt.folder, answer))
                continue
            plans = {i: (info, answer[info.filename]) for i, info in infos.items()
                     if info.filename in answer}
            note = (f"moved on from {folder.username} {folder.folder!r}, {outcome}; "
                    + self._reason(row.folders, index, not nxt.accepted))
            await self.store.update(row, chosen=index, chosen_reason=note, tried_folders=tried)
            await self._drop_cover_transfer(folder)
            log.info("album download %d: %s", row.id, note)
            return await self._hand_over(row, download, waiting, plans, nxt.username)
        await self.store.update(row, tried_folders=tried)
        return None

    async def _hand_over(self, row: AlbumDownload, download: Download, waiting: dict[int, Download],
                         plans: dict[int, tuple[CandidateInfo, Transfer]],
                         username: str) -> tuple[CandidateInfo, Transfer] | None:
        """Give each waiting track download its file in the new folder; return the asking
        download's."""
        mine = None
        for index, plan in plans.items():
            track = waiting[index]
            if track is download:
                mine = plan
            elif self._downloads.giving_up(track.id):
                self._handover[track.id] = plan     # taken when its give-up asks
            elif not await self._downloads.move(track.id, *plan,
                                                reason=f"the album moved to {username}'s folder"):
                # It started other work meanwhile: the new transfer would be left unfollowed.
                with contextlib.suppress(ProviderError):
                    await self._downloads.client().cancel(plan[1])
        return mine

    async def _drop_cover_transfer(self, folder: FolderScore) -> None:
        """Remove a given-up folder's cover transfer from the client (failures only logged)."""
        if folder.cover is None:
            return
        client = self._downloads.client()
        try:
            for transfer in await client.transfers():
                if (transfer.username, transfer.filename) == (folder.username, folder.cover):
                    await client.cancel(transfer)
        except ProviderError as exc:
            log.warning("could not remove the cover transfer of %s from %s: %s", folder.username,
                        client.name, exc)

    # ------------------------------------------------------------------- covers

    async def _track_completed(self, download: Download) -> None:
        """Give a completed track of an album its cover (``cover.jpg`` beside it, embedded)."""
        row = await self.store.owner_of(download.id)
        if row is None or not download.final_path or not download.tagged:
            return
        path = Path(download.final_path)
        lock = self._covers.setdefault(row.id, asyncio.Lock())
        async with lock:  # one fetch of the cover per album
            data = await self._cover(row, path.parent / COVER_NAME)
        if data is None:
            return
        try:
            await asyncio.to_thread(embed_cover, path, data)
        except Exception as exc:
            log.warning("album download %d: could not embed the cover in %s: %s", row.id, path, exc)
        if all(status in FINISHED for status in
               (await self._downloads.statuses(d for d in row.tracks if d is not None)).values()):
            self._covers.pop(row.id, None)
        await self._refresh(row)

    async def _cover(self, row: AlbumDownload, target: Path) -> bytes | None:
        """Return the album's cover, saving it as ``target`` first when it is not there."""
        if await asyncio.to_thread(target.is_file):
            return await asyncio.to_thread(target.read_bytes)
        data = await self._folder_cover(row) or await self._source_cover(row)
        if data is None:
            return None
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")

        def save() -> None:
            temp.write_bytes(data)
            temp.replace(target)

        try:
            await asyncio.to_thread(save)
        except OSError as exc:
            log.warning("album download %d: could not save %s: %s", row.id, target, exc)
        return data

    async def _clean_cover(self, row: AlbumDownload) -> None:
        """Remove the folder's cover transfer from the client and its copy from the client's
        folder, as the tracks' are after their import (failures are only logged)."""
        folder = row.folders[row.chosen] if row.chosen is not None else None
        if folder is None or folder.cover is None:
            return
        client = self._downloads.client()
        try:
            for transfer in await client.transfers():
                if (transfer.username, transfer.filename) == (folder.username, folder.cover):
                    await client.cancel(transfer)
            path = await client.local_file(Transfer("", folder.username, folder.cover, "completed",
                                                    size=folder.cover_size))
            if path is not None:
                await asyncio.to_thread(path.unlink, missing_ok=True)
        except Exception as exc:
            log.warning("album download %d: the folder's cover could not be removed from %s: %s",
                        row.id, client.name, exc)

    async def _folder_cover(self, row: AlbumDownload) -> bytes | None:
        folder = row.folders[row.chosen] if row.chosen is not None else None
        if folder is None or folder.cover is None:
            return None
        client = self._downloads.client()
        try:
            path = await client.local_file(Transfer("", folder.username, folder.cover, "completed",
                                                    size=folder.cover_size))
            return await asyncio.to_thread(path.read_bytes) if path is not None else None
        except Exception as exc:
            log.info("album download %d: the folder's cover is not there: %s", row.id, exc)
            return None

    async def _source_cover(self, row: AlbumDownload) -> bytes | None:
        url = row.album.image_url
        if not url:
            return None
        try:
            timeout = aiohttp.ClientTimeout(total=COVER_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                if response.status != 200:
                    raise ProviderError(f"HTTP {response.status}")
                data = await response.content.read(MAX_COVER_BYTES + 1)
            if len(data) > MAX_COVER_BYTES or not data:
                raise ProviderError(f"{len(data)} bytes is not a cover image")
            return data
        except (aiohttp.ClientError, TimeoutError, ProviderError) as exc:
            log.warning("album download %d: the cover image %s could not be fetched: %s", row.id,
                        url, exc)
            return None

    async def enqueue_folder(self, username: str, files: list[Candidate],
                             ) -> tuple[list[Transfer], list[tuple[str, str]]]:
        """Ask the download client for ``username``'s ``files`` in one request (a batch when
        the client can, else file by file); return ``(transfers, (filename, why) failures)``.

        Raises ProviderError / RateLimited when the whole request is refused. Quality
        upgrades fetch a whole album's folder with it.
        """
        return await _enqueue_folder(self._downloads.client(), username, files)


def _partial_folders(folders: list[FolderScore]) -> list[int]:
    """The folders refused only for their coverage, most tracks first."""
    partial = [i for i, f in enumerate(folders)
               if f.matched and all(r.startswith("covers ") for r in f.reasons)]
    return sorted(partial, key=lambda i: (-folders[i].coverage, folders[i].quality_rank or 0,
                                          -folders[i].peer_score))


async def _ask_folder(client: DownloadClient, folder: FolderScore,
                      asked: list[Candidate]) -> dict[str, Transfer] | str:
    """Ask ``folder``'s peer for ``asked`` and the folder's cover in one request; return the
    transfers by file name, or why the folder is given up (the client's error, or the peer
    enqueued none of ``asked``)."""
    files = [*asked, Candidate(folder.username, folder.cover, folder.cover_size)] \
        if folder.cover else asked
    try:
        got, failures = await _enqueue_folder(client, folder.username, files)
    except (ProviderError, RateLimited) as exc:
        return str(exc)
    transfers = {t.filename: t for t in got}
    if not any(c.filename in transfers for c in asked):
        reasons = "; ".join(f"{name}: {why}" for name, why in failures[:3])
        return f"the peer's client enqueued none of its files ({reasons})"
    return transfers


async def _enqueue_folder(client: DownloadClient, username: str,
                          files: list[Candidate]) -> tuple[list[Transfer], list[tuple[str, str]]]:
    """Ask ``client`` for one peer's files: in one request when it can, else file by file."""
    if isinstance(client, FolderEnqueuer):
        return await client.enqueue_folder(username, files, str(uuid.uuid4()))
    got: list[Transfer] = []
    failures: list[tuple[str, str]] = []
    for candidate in files:
        try:
            got.append(await client.enqueue(candidate))
        except ProviderError as exc:
            failures.append((candidate.filename, str(exc)))
    return got, failures


def _candidate_info(candidate: Candidate, match: FileMatch, title: str, album: AlbumWanted,
                    profile: QualityProfile) -> CandidateInfo:
    """The verdict on a folder file as a track download's candidate."""
    return CandidateInfo(
        candidate.username, candidate.filename, candidate.size, True, [], match.score,
        quality_label(candidate), profile.rank(candidate), match.title_score or 0.0, 1.0, 1.0,
        match.duration_delta_s, peer_score(candidate), title, album.artist, album.name, [],
        candidate.extension, candidate.bitrate, candidate.bit_depth, candidate.sample_rate,
        candidate.duration_s, candidate.has_free_slot, candidate.queue_length,
        candidate.upload_speed)

