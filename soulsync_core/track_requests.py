"""Track requests: the "request a track for a bot" flow of ``POST /api/v1/request``.

A bot (Riff, a Discord bot) names a track, by ``query`` ("Artist - Title") or by ``title``,
``artist`` and ``duration_ms``, and polls ``GET /api/v1/request/<id>`` or waits for a POST to
its ``notify_url``. Statuses (stored in ``track_requests.status``)::

    queued ──> searching ──> found ──┬── in the library ──────────────────> completed
                  │                  └── download started ──> downloading ──> completed
                  v                                                │
              not_found (no metadata source knows it)               └──> failed / not_found

* **searching**: the ``auto`` metadata search chain resolves the request to one track
  (:func:`soulsync_core.downloads.wanted.resolve_query`, the same as ``POST /downloads``).
* **found**: the track is known; the library is asked first (:class:`LibraryMatcher`) and a
  match completes the request at once with ``already_in_library`` (unless ``force``).
  Otherwise a download is requested through the downloads service (a download of the same
  track already under way is shared).
* **downloading** ends when the download does: ``completed`` with the library track, or
  ``failed``/``not_found`` with the download's reason. Completion is heard from the downloads
  service at once; other ends are read from the downloads table (:meth:`refresh`, run by the
  background loop, and for one request whenever it is read).
* A final status owes the ``notify_url`` one POST of the status object (JSON), delivered in the
  background by :mod:`soulsync_core.outbound` (timeout, retries, address checks); the outcome
  is kept in ``notify``.
* Finished requests are deleted ``request.keep_days`` after they ended (by the background
  loop, once their notification is settled).
* **Restart**: requests that were queued, searching or found run again (resolving twice is
  harmless and the download is shared); downloading ones are refreshed; owed notifications
  are delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any, Literal

import aiohttp
import msgspec

from soulsync_core.db import Database, Row
from soulsync_core.downloads.models import FINISHED, Download, Wanted
from soulsync_core.downloads.service import DownloadService, NoDownloadClient
from soulsync_core.downloads.wanted import resolve_query
from soulsync_core.library.matcher import LibraryMatcher
from soulsync_core.library.objects import LibraryTrack
from soulsync_core.library.queries import LibraryQueries
from soulsync_core.outbound import check_destination, guarded_session, post_json
from soulsync_core.search import MetadataSearch, SourceUnavailable
from soulsync_core.settings import Settings
from soulsync_core.timefmt import iso_from_epoch, utc_now_iso

log = logging.getLogger(__name__)

Status = Literal["queued", "searching", "found", "downloading", "completed", "not_found", "failed"]
STATUSES: tuple[str, ...] = ("queued", "searching", "found", "downloading", "completed",
                             "not_found", "failed")
FINAL: tuple[str, ...] = ("completed", "not_found", "failed")
# Statuses whose work (resolving, matching, starting the download) is redone after a restart.
RESUMABLE: tuple[str, ...] = ("queued", "searching", "found")
NotifyState = Literal["none", "pending", "delivered", "failed"]
# How often the background loop reads the downloads of downloading requests.
REFRESH_SECONDS = 5.0
# The first wait before retrying a notify_url POST; it doubles each time.
NOTIFY_BACKOFF_SECONDS = 1.0
# notify_url POSTs in flight at once (the rest wait): bots' webhooks are not flooded after a
# restart delivers what it owed, and slow receivers hold few connections.
MAX_DELIVERIES = 4


class Asked(msgspec.Struct, omit_defaults=True):
    """The request as given: ``query``, or ``title`` and ``artist`` (``duration_ms`` 0: unknown)."""

    query: str = ""
    title: str = ""
    artist: str = ""
    duration_ms: int = 0

    @property
    def text(self) -> str:
        """The request as one search text, ``"Artist - Title"`` for a structured request."""
        return self.query or f"{self.artist} - {self.title}"


class MatchedTrack(msgspec.Struct):
    """The metadata track a request was resolved to; ``source`` names whose ``id`` it is."""

    title: str
    artists: list[str]
    album: str
    duration_ms: int
    id: str | None
    source: str | None
    isrc: str | None


class Notify(msgspec.Struct):
    """The notification owed to ``notify_url`` (the URL itself is never shown: it may hold a
    token). ``state`` none: no URL was given."""

    state: NotifyState
    attempts: int
    error: str | None


class RequestStatus(msgspec.Struct):
    """A track request as the API shows it (and as ``notify_url`` receives it when it ends).

    ``query`` is the request as text; ``match`` the track it was resolved to (null before);
    ``library_track`` the library's track once ``completed`` (null if it has since left the
    library); ``error`` says why it failed or was not found.
    """

    request_id: str
    query: str
    status: Status
    already_in_library: bool
    match: MatchedTrack | None
    download_id: int | None
    library_track_id: int | None
    library_track: LibraryTrack | None
    error: str | None
    metadata: dict[str, Any]
    notify: Notify
    created_at: str
    updated_at: str
    completed_at: str | None


class TrackRequest(msgspec.Struct):
    """One ``track_requests`` row."""

    id: str
    query: str
    asked: Asked
    force: bool
    status: Status
    already_in_library: bool
    match: MatchedTrack | None
    download_id: int | None
    library_track_id: int | None
    error: str | None
    metadata: dict[str, Any]
    notify_url: str | None
    notify_state: NotifyState
    notify_attempts: int
    notify_error: str | None
    created_at: str
    updated_at: str
    completed_at: str | None


_encode = msgspec.json.Encoder().encode
_JSON_COLUMNS: dict[str, Any] = {"asked": Asked, "match": MatchedTrack | None,
                                 "metadata": dict[str, Any]}
_COLUMNS = frozenset(TrackRequest.__struct_fields__) - {"id", "created_at"}


def _from_row(row: Row) -> TrackRequest:
    values = {key: row[key] for key in row.keys()}
    for column, kind in _JSON_COLUMNS.items():
        if values[column] is not None:
            values[column] = msgspec.json.decode(values[column], type=kind)
    for column in ("force", "already_in_library"):
        values[column] = bool(values[column])
    return msgspec.convert(values, TrackRequest)


def _to_column(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and value is not None:
        return _encode(value).decode()
    return value


def _matched(wanted: Wanted) -> MatchedTrack:
    return MatchedTrack(wanted.title, list(wanted.artists), wanted.album, wanted.duration_ms,
                        wanted.track_id, wanted.source, wanted.isrc)


class NotifyUrlRefused(ValueError):
    """``notify_url`` may not be posted to; ``str()`` says why."""


class TrackRequestService:
    """Creates, runs, refreshes and reports track requests; delivers their notifications."""

    def __init__(self, db: Database, settings: Settings, search: MetadataSearch,
                 matcher: LibraryMatcher, downloads: DownloadService, library: LibraryQueries):
        self._db = db
        self._settings = settings
        self._search = search
        self._matcher = matcher
        self._downloads = downloads
        self._library = library
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._deliveries = asyncio.Semaphore(MAX_DELIVERIES)
        self._lock = asyncio.Lock()  # one status change of a request at a time
        # Set once run() has restarted the work a restart interrupted.
        self.resumed = asyncio.Event()
        # After stop() no new background work starts (owed notifications stay pending in the
        # database and are delivered at the next start).
        self._stopping = False
        downloads.on_completed(self._download_completed)

    # -------------------------------------------------------------------------- requests

    async def create(self, asked: Asked, *, metadata: dict[str, Any] | None = None,
                     notify_url: str | None = None, force: bool = False) -> TrackRequest:
        """Store a new ``queued`` request, start working on it in the background, return it.

        Raises NotifyUrlRefused when ``notify_url`` is not an http(s) URL or (unless
        ``request.notify_allow_private``) resolves to a non-public address.
        """
        if notify_url is not None:
            try:
                await check_destination(notify_url, allow_private=self._allow_private())
            except ValueError as exc:
                raise NotifyUrlRefused(f"notify_url is refused: {exc}") from None
        now = utc_now_iso()
        request_id = str(uuid.uuid4())
        await self._db.execute(
            "INSERT INTO track_requests (id, query, asked, force, status, metadata, notify_url, "
            "notify_state, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            (request_id, asked.text, _to_column("asked", asked), int(force),
             _to_column("metadata", metadata or {}), notify_url,
             "pending" if notify_url else "none", now, now))
        log.info("track request %s queued: %s", request_id, asked.text)
        request = await self._get(request_id)
        assert request is not None  # just written
        self._spawn(self._work(request_id), f"track request {request_id}")
        return request

    async def get(self, request_id: str) -> TrackRequest | None:
        """Return the request, its download's end applied if it ended meanwhile; None if unknown."""
        request = await self._get(request_id)
        if request is not None and request.status == "downloading":
            await self._refresh([request])
            request = await self._get(request_id)
        return request

    async def status(self, request: TrackRequest) -> RequestStatus:
        """Return the API object of ``request``, with its library track read now."""
        track = None
        if request.library_track_id is not None:
            text = await self._library.track(request.library_track_id)
            track = msgspec.json.decode(text, type=LibraryTrack) if text else None
        return RequestStatus(
            request.id, request.query, request.status, request.already_in_library, request.match,
            request.download_id, request.library_track_id, track, request.error,
            request.metadata, Notify(request.notify_state, request.notify_attempts,
                                     request.notify_error),
            request.created_at, request.updated_at, request.completed_at)

    async def _get(self, request_id: str) -> TrackRequest | None:
        row = await self._db.fetchone("SELECT * FROM track_requests WHERE id = ?", (request_id,))
        return _from_row(row) if row else None

    async def _with_status(self, statuses: tuple[str, ...]) -> list[TrackRequest]:
        marks = ", ".join("?" * len(statuses))
        rows = await self._db.fetchall(
            f"SELECT * FROM track_requests WHERE status IN ({marks}) ORDER BY created_at", statuses)
        return [_from_row(row) for row in rows]

    async def _update(self, request_id: str, **fields: Any) -> None:
        """Write ``fields``; a final status also stamps ``completed_at`` and owes the notification."""
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"not columns of track_requests: {sorted(unknown)}")
        now = utc_now_iso()
        fields["updated_at"] = now
        if fields.get("status") in FINAL:
            fields["completed_at"] = now
        assignments = ", ".join(f"{column} = ?" for column in fields)
        await self._db.execute(f"UPDATE track_requests SET {assignments} WHERE id = ?",
                               (*(_to_column(c, v) for c, v in fields.items()), request_id))
        if fields.get("status") in FINAL:
            log.info("track request %s %s", request_id, fields["status"])
            self._spawn(self._deliver(request_id), f"track request {request_id} notification")

    # ---------------------------------------------------------------------- the pipeline

    async def _work(self, request_id: str) -> None:
        """Resolve, match and start the download of one request (its background task)."""
        try:
            await self._resolve_and_fetch(request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("track request %s failed unexpectedly", request_id)
            await self._update(request_id, status="failed",
                               error=f"the request failed unexpectedly ({type(exc).__name__})")

    async def _resolve_and_fetch(self, request_id: str) -> None:
        request = await self._get(request_id)
        if request is None or request.status not in RESUMABLE:
            return
        await self._update(request_id, status="searching")
        try:
            wanted = await resolve_query(self._search, request.asked.text,
                                         duration_ms=request.asked.duration_ms)
        except SourceUnavailable as exc:
            await self._update(request_id, status="failed", error=str(exc))
            return
        if wanted is None:
            await self._update(request_id, status="not_found",
                               error=f"No metadata source found a track for {request.query!r}.")
            return
        if request.asked.duration_ms and not wanted.duration_ms:
            wanted.duration_ms = request.asked.duration_ms
        await self._update(request_id, status="found", match=_matched(wanted))
        if not request.force:
            match = await self._matcher.match(wanted)
            if match is not None:
                await self._update(request_id, status="completed", already_in_library=True,
                                   library_track_id=match.track_id, error=None)
                return
        try:
            download, _created = await self._downloads.request(wanted)
        except NoDownloadClient as exc:
            await self._update(request_id, status="failed", error=str(exc))
            return
        async with self._lock:
            await self._update(request_id, status="downloading", download_id=download.id)
        # A download shared with an earlier request may have ended before we noted its id.
        current = await self._get(request_id)
        if current is not None:
            await self._refresh([current])

    async def _download_completed(self, download: Download) -> None:
        """Downloads listener: complete the requests waiting for ``download``."""
        rows = await self._db.fetchall(
            "SELECT * FROM track_requests WHERE download_id = ? AND status = 'downloading'",
            (download.id,))
        await self._refresh([_from_row(row) for row in rows])

    async def refresh(self) -> None:
        """Apply the end of every download a ``downloading`` request waits for (one read)."""
        await self._refresh(await self._with_status(("downloading",)))

    async def forget_old(self) -> int:
        """Delete requests that ended over ``request.keep_days`` ago; return how many."""
        cutoff = iso_from_epoch(time.time() - self._settings.get("request.keep_days") * 86400)
        return await self._db.execute(
            "DELETE FROM track_requests WHERE completed_at IS NOT NULL AND completed_at < ? "
            "AND notify_state != 'pending'", (cutoff,))

    async def _refresh(self, requests: list[TrackRequest]) -> None:
        waiting = [r for r in requests if r.status == "downloading" and r.download_id is not None]
        if not waiting:
            return
        async with self._lock:
            statuses = await self._downloads.statuses(r.download_id for r in waiting
                                                      if r.download_id is not None)
            for request in waiting:
                assert request.download_id is not None
                status = statuses.get(request.download_id)
                if status is None or status in FINISHED:
                    await self._download_ended(request, request.download_id)

    async def _download_ended(self, request: TrackRequest, download_id: int) -> None:
        current = await self._get(request.id)
        if current is None or current.status != "downloading":
            return  # another refresh got there first
        download = await self._downloads.get(download_id)
        if download is None:
            await self._update(request.id, status="failed",
                               error=f"download {download_id} no longer exists")
        elif download.status == "completed":
            await self._update(request.id, status="completed", error=None,
                               library_track_id=download.library_track_id)
        elif download.status == "not_found":
            await self._update(request.id, status="not_found",
                               error=f"the download found no file: {download.error}")
        elif download.status == "cancelled":
            await self._update(request.id, status="failed", error="the download was cancelled")
        else:
            await self._update(request.id, status="failed",
                               error=f"the download failed: {download.error or 'no reason given'}")

    # -------------------------------------------------------------------- notifications

    def _allow_private(self) -> bool:
        return bool(self._settings.get("request.notify_allow_private"))

    async def _deliver(self, request_id: str) -> None:
        """POST the final status to the request's notify_url, once; record how it went."""
        request = await self._get(request_id)
        if request is None or request.notify_state != "pending" or not request.notify_url:
            return
        if self._session is None:
            self._session = guarded_session(allow_private=self._allow_private)
        body = msgspec.to_builtins(await self.status(request))
        async with self._deliveries:
            result = await post_json(
                self._session, request.notify_url, body, allow_private=self._allow_private(),
                headers={"X-SoulSync-Request-Id": request.id},
                timeout_seconds=self._settings.get("request.notify_timeout_seconds"),
                retries=self._settings.get("request.notify_retries"),
                backoff=NOTIFY_BACKOFF_SECONDS)
        if not result.delivered:
            log.warning("track request %s: its notify_url was not notified: %s", request_id,
                        result.error)
        await self._db.execute(
            "UPDATE track_requests SET notify_state = ?, notify_attempts = ?, notify_error = ?, "
            "updated_at = ? WHERE id = ?",
            ("delivered" if result.delivered else "failed", result.attempts, result.error,
             utc_now_iso(), request_id))

    # ---------------------------------------------------------------- loop and lifecycle

    async def run(self) -> None:
        """Resume what a restart interrupted, then refresh downloading requests until cancelled."""
        for request in await self._with_status(RESUMABLE):
            self._spawn(self._work(request.id), f"track request {request.id}")
        rows = await self._db.fetchall("SELECT id FROM track_requests WHERE notify_state = 'pending' "
                                       f"AND status IN ({', '.join('?' * len(FINAL))})", FINAL)
        for row in rows:
            self._spawn(self._deliver(row[0]), f"track request {row[0]} notification")
        self.resumed.set()
        while True:
            try:
                await self.refresh()
                await self.forget_old()
            except Exception:
                log.exception("track request refresh failed")
            await asyncio.sleep(REFRESH_SECONDS)

    async def settle(self) -> None:
        """Wait until every background task (requests, notifications) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel background work (it resumes at the next start) and close the session."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
