"""The download pipeline: request -> search -> rank -> enqueue -> monitor -> import, persisted.

Statuses (stored in ``downloads.status``)::

    queued ──dispatch──> searching ──a file is enqueued──> downloading ──completed──> post_processing
                              ^                                 │                          │
                              └── candidates used up, ──────────┤ given up: next file       ├──> completed
                                  queries left                  │ (never the same user+file) │
                                                                v                          v
                                          failed (what was tried) / not_found      next file, or failed

    cancelled: asked for through the API, from queued, searching or downloading.

* **Concurrency**: at most ``downloads.max_concurrent`` downloads are searching, downloading
  or post-processing; the rest stay ``queued`` (oldest first).
* **Search**: the queries of :func:`soulsync_core.matching.search_queries` run one at a time
  (each within ``downloads.search_timeout_seconds``); after each, every result so far is
  ranked by :func:`soulsync_core.matching.rank_candidates` and the best accepted file not yet
  tried is enqueued. Later queries run only when the files found so far are used up, because
  Soulseek searches are few (slskd paces them for the whole daemon).
* **Monitor**: one loop (:meth:`DownloadService.run`) asks each client for its whole transfer
  list once per ``downloads.monitor_interval_seconds`` — one request per tick, however many
  downloads — and judges every transfer (:mod:`.transfers`): progress is saved in one
  transaction; a transfer that failed, was rejected, timed out, stayed queued or stalled too
  long, or vanished is removed from the client and the next candidate is enqueued, up to
  ``downloads.max_attempts`` files; a completed one is imported (:mod:`.importer`).
* **Restart**: a download that was ``searching`` goes back to ``queued``; ``downloading``
  ones are found again in the client's list by transfer id (or user and file, when SoulSync
  stopped between asking slskd and saving the id, in which case asking again returns slskd's
  existing transfer); ``post_processing`` ones are imported again (the importer never changes
  the client's file; the destination saved before the move and ``tagged`` saved right after
  the rename say where a finished move went; the hidden temporary file of a move killed
  before its rename is written over, or deleted when the import fails).
* Every piece of work on one download runs as its one task (:meth:`_spawn`); the monitor
  leaves a download alone while its task runs, and cancelling cancels that task first.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

from soulsync_core import faultpoints
from soulsync_core.activity import Activity
from soulsync_core.db import Database
from soulsync_core.downloads.importer import BadFile, Importer, ImportFailed, Placement
from soulsync_core.downloads.models import (
    ACTIVE,
    FINISHED,
    UNFINISHED,
    Attempt,
    CandidateInfo,
    Download,
    Status,
    Wanted,
    download_detail,
)
from soulsync_core.downloads.store import DownloadStore
from soulsync_core.downloads.transfers import Limits, Watch, judge
from soulsync_core.downloads.wanted import track_key
from soulsync_core.events import EventBus
from soulsync_core.health import ServiceHealth
from soulsync_core.hooks import DownloadClient, ProviderError, RateLimited
from soulsync_core.library import LibraryService
from soulsync_core.library.matcher import LibraryMatch, LibraryMatcher
from soulsync_core.matching import QualityProfile, parse_quality_profile, rank_candidates, search_queries
from soulsync_core.metrics import Metrics
from soulsync_core.models import Candidate, Transfer
from soulsync_core.settings import Settings
from soulsync_core.stats import SystemStats
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

# Search results kept on a download (accepted ones first); enough to show why files were refused.
MAX_STORED_CANDIDATES = 100
# slskd answers 429 when another search or enqueue is being started; retry that many times.
BUSY_RETRIES = 3
# How long stop() lets imports (a copy and a rename) finish before cancelling them.
STOP_IMPORT_WAIT_SECONDS = 10.0
# Imports in a row whose client copy could not be deleted before the client's health shows a
# note: one can be a file slskd still held open; several mean the folder is read-only for us.
UNDELETABLE_NOTE_AFTER = 3

# not_found is a failure to a listener; the data's status tells which.
FINISH_EVENTS = {"completed": "download.completed", "failed": "download.failed",
                 "not_found": "download.failed", "cancelled": "download.cancelled"}

CompletedListener = Callable[[Download], Awaitable[None] | None]
# Asked when a transfer is given up on, before the download moves on by itself: the file to
# take instead and its transfer (already enqueued), or None (see set_failover).
FailoverHandler = Callable[[Download, str], Awaitable[tuple[CandidateInfo, Transfer] | None]]


class NoDownloadClient(Exception):
    """No configured download client can take the request; ``str()`` says what to set up."""


class DownloadNotFound(Exception):
    """No download has that id."""


class DownloadConflict(Exception):
    """The download's state does not allow the request; ``str()`` says why."""


class UsernameMismatch(ValueError):
    """A cancel named a peer that is not the download's; ``str()`` names both."""


def _basename(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _tried_text(download: Download) -> str:
    return "; ".join(f"{a.username} {_basename(a.filename)!r}: {a.outcome}" for a in download.tried)


class DownloadService:
    """Requests, the workers, the monitor loop, cancellation and restart recovery of downloads.

    ``clock`` (monotonic seconds) times the transfer timeouts; tests may replace it.
    """

    def __init__(self, db: Database, settings: Settings, activity: Activity,
                 library: LibraryService, clients: Sequence[DownloadClient], *,
                 matcher: LibraryMatcher, health: ServiceHealth,
                 events: EventBus | None = None, metrics: Metrics | None = None):
        self._settings = settings
        self._events = events or EventBus()
        self._metrics = metrics or Metrics()
        self._activity = activity
        self._matcher = matcher
        self._health = health
        self.store = DownloadStore(db)
        self.importer = Importer(library)
        # Per client: imports in a row that could not delete the client's copy.
        self._undeletable: dict[str, int] = {}
        self._clients = {client.name: client for client in clients}
        self.clock: Callable[[], float] = time.monotonic
        self._active: dict[int, Download] = {}
        self._watches: dict[int, Watch] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._listeners: list[CompletedListener] = []
        self._wake = asyncio.Event()
        self._poll_lock = asyncio.Lock()
        self._dispatch_lock = asyncio.Lock()
        self._recover_lock = asyncio.Lock()
        self._recovered = False
        self._cancelling: set[int] = set()
        self._giving_up: set[int] = set()
        self._failover: FailoverHandler | None = None
        settings.on_change("downloads.", lambda _changed: self._wake.set())

    # ------------------------------------------------------------------------ requests

    def client(self) -> DownloadClient:
        """Return the client new downloads use: the first configured one.

        Raises NoDownloadClient saying what to install or configure.
        """
        for client in self._clients.values():
            if client.configured:
                return client
        if not self._clients:
            raise NoDownloadClient("No download client is installed: the soulsync-slskd plugin "
                                   "provides Soulseek through slskd.")
        names = ", ".join(self._clients)
        raise NoDownloadClient(f"Soulseek client not configured: set soulseek.slskd_url and "
                               f"soulseek.api_key (download clients: {names}).")

    def on_completed(self, listener: CompletedListener) -> None:
        """Call ``listener(download)`` (sync or async) after each download that completes.

        The download's track is in the library then (``final_path``, ``library_track_id``);
        a listener that raises is logged and does not affect the download or other listeners.
        """
        self._listeners.append(listener)

    def set_failover(self, handler: FailoverHandler) -> None:
        """Let ``handler(download, reason)`` decide first where a download whose transfer was
        given up on goes next (album downloads move a failed folder in one batch). Its answer,
        ``(candidate, transfer)``, becomes the download's next attempt; None leaves the
        download to its own next candidate. A handler that raises is logged and ignored."""
        self._failover = handler

    def giving_up(self, download_id: int) -> bool:
        """True while the download's current transfer is being given up on (this tick's)."""
        return download_id in self._giving_up

    def followed(self, download_id: int) -> Download | None:
        """Return the download the monitor follows (``downloading``), as it is in memory."""
        download = self._active.get(download_id)
        return download if download is not None and download.status == "downloading" else None

    async def move(self, download_id: int, info: CandidateInfo, transfer: Transfer,
                   reason: str) -> bool:
        """Move a followed download with no work in flight to ``info``'s file, whose
        ``transfer`` someone enqueued already: its current transfer is removed and recorded as
        tried with ``reason``. Return False (nothing done) when it is not in that state."""
        download = self.followed(download_id)
        if download is None or download_id in self._tasks or download_id in self._cancelling:
            return False
        self._spawn(download, self._moved(download, info, transfer, reason))
        return True

    async def _moved(self, download: Download, info: CandidateInfo, transfer: Transfer,
                     reason: str) -> None:
        await self._remove_transfer(self._clients.get(download.client), download, None)
        await self._record_attempt(download, reason)
        await self._adopt(download, info, transfer)

    async def _adopt(self, download: Download, info: CandidateInfo, transfer: Transfer) -> None:
        """Make ``transfer`` (of ``info``'s file, enqueued already) the download's attempt."""
        await self.store.update(
            download, status="downloading", attempts=download.attempts + 1,
            username=info.username, filename=info.filename, size=info.size, quality=info.quality,
            transfer_id=transfer.id, transfer_state=transfer.state, progress=0.0,
            bytes_transferred=0, speed=0.0, final_path=None, tagged=False)
        self._watches[download.id] = Watch(enqueued_at=self.clock())
        log.info("download %d: moved to %s %s", download.id, info.username, info.filename)

    async def request(self, wanted: Wanted) -> tuple[Download, bool]:
        """Queue a download of ``wanted``; return ``(download, created)``.

        While a download of the same track (:func:`track_key`) is unfinished, that one is
        returned with ``created`` False instead of fetching the track twice. Raises
        NoDownloadClient when no client is configured.
        """
        client = self.client()
        key = track_key(wanted)
        # The look-up and the insert are one statement, so no lock of ours is needed: a lock
        # held across a read and a write made POST /downloads one queue, seconds long under
        # load, behind the read connections every API read shares.
        download, created = await self.store.create_unless_unfinished(wanted, key, client.name)
        if not created:
            return download, False
        log.info("download %d queued: %s - %s", download.id, wanted.artist, wanted.title)
        self._events.publish("download.queued", download_detail(download))
        self._wake.set()
        return download, True

    async def add_planned(self, wanted: Wanted, candidates: list[CandidateInfo],
                          transfer: Transfer | None) -> Download:
        """Add a download whose files someone else chose (an album download's folders).

        With ``transfer`` (of ``candidates[0]``, enqueued already, e.g. in a batch) it starts
        ``downloading`` and the monitor follows it; without, it is ``queued``. Either way it
        tries ``candidates`` in order before searching on its own, as any download does. An
        unfinished download of the same track is returned instead (and nothing is added).
        """
        client = self.client()
        key = track_key(wanted)
        # The dispatch lock too: the row is "queued" until its candidates and transfer are
        # saved, and a dispatch in between would start a search of its own.
        async with self._dispatch_lock:
            download, created = await self.store.create_unless_unfinished(wanted, key, client.name)
            if not created:
                return download
            await self.store.update(download, candidates=candidates)
            if transfer is not None:
                first = candidates[0]
                await self.store.update(
                    download, status="downloading", attempts=1, username=first.username,
                    filename=first.filename, size=first.size, quality=first.quality,
                    transfer_id=transfer.id, transfer_state=transfer.state)
                self._active[download.id] = download
                self._watches[download.id] = Watch(enqueued_at=self.clock())
        self._wake.set()
        return download

    async def search(self, query: str) -> list[Candidate]:
        """Run one search on the download client (see :meth:`_search` for the bounds)."""
        return await self._search(self.client(), query)

    async def in_library(self, wanted: Wanted) -> LibraryMatch | None:
        """Return the library's track for ``wanted`` (the one library matcher), or None.

        ``POST /downloads`` asks this first, so a track the library has is not fetched again.
        """
        return await self._matcher.match(wanted)

    async def in_library_many(self, wanted: Sequence[Wanted]) -> list[LibraryMatch | None]:
        """Return the library's track for each of ``wanted`` (one batch), None where it has none."""
        return await self._matcher.match_many(wanted)

    async def get(self, download_id: int) -> Download | None:
        """Return one download as stored (the monitor saves progress every tick), or None."""
        return await self.store.get(download_id)

    async def statuses(self, download_ids: Iterable[int]) -> dict[int, str]:
        """Return the status of each existing download among ``download_ids`` (one read)."""
        return await self.store.statuses(download_ids)

    async def page(self, statuses: Sequence[str], offset: int, limit: int) -> tuple[list[Download], int]:
        """Return ``(downloads newest first, total)``, filtered by ``statuses`` when given."""
        return await self.store.page(statuses, offset, limit)

    async def contribute_stats(self, stats: SystemStats) -> None:
        """Fill ``downloads.active`` of ``/system/stats``: downloads not finished yet."""
        stats.downloads.active = await self.store.count(UNFINISHED)

    # ---------------------------------------------------------------------- cancelling

    async def cancel(self, download_id: int, username: str | None = None) -> Download:
        """Cancel a download that is queued, searching or downloading; return it.

        Its transfer is removed from the client. ``username``, when given, must be the peer
        of the current attempt (UsernameMismatch otherwise). Raises DownloadNotFound, and
        DownloadConflict for a finished download or one being moved into the library.
        """
        async with self._dispatch_lock:  # a queued download must not be dispatched meanwhile
            download = self._active.get(download_id) or await self.store.get(download_id)
            if download is None:
                raise DownloadNotFound(f"Download {download_id} not found.")
            if username is not None and username != download.username:
                peer = f"'{download.username}'" if download.username else "no peer yet"
                raise UsernameMismatch(f"username '{username}' is not the peer of download "
                                       f"{download_id} (it has {peer}).")
            if download.status in FINISHED:
                raise DownloadConflict(f"Download {download_id} is already {download.status}.")
            if download.status == "post_processing":
                raise DownloadConflict(f"Download {download_id} is being moved into the library "
                                       "and can no longer be cancelled.")
            # From here on the monitor must not start work on it (an import, a next file).
            self._cancelling.add(download_id)
            try:
                task = self._tasks.get(download_id)
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                await self._remove_transfer(self._clients.get(download.client), download, None)
                await self._finish(download, "cancelled", error=None)
            finally:
                self._cancelling.discard(download_id)
        return download

    async def cancel_all(self) -> int:
        """Cancel every queued, searching and downloading download; return how many.

        Downloads being moved into the library finish; transfers SoulSync did not start are
        left alone.
        """
        cancelled = 0
        for download in await self.store.with_status(("queued", "searching", "downloading")):
            with contextlib.suppress(DownloadNotFound, DownloadConflict):
                await self.cancel(download.id)
                cancelled += 1
        return cancelled

    # ------------------------------------------------------------- loop and lifecycle

    async def run(self) -> None:
        """Recover, then monitor and dispatch until cancelled (the core's background task)."""
        await self.recover()
        loop = asyncio.get_running_loop()
        last_poll = -math.inf
        while True:
            # Read every time: a new interval (or max_concurrent) applies at once.
            next_poll = last_poll + self._settings.get("downloads.monitor_interval_seconds")
            if loop.time() >= next_poll:
                last_poll = loop.time()
                try:
                    await self.poll()
                except Exception:
                    log.exception("download monitor tick failed")
                next_poll = last_poll + self._settings.get("downloads.monitor_interval_seconds")
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception:
                log.exception("starting queued downloads failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_poll - loop.time())):
                    await self._wake.wait()

    async def recover(self) -> None:
        """Pick up the downloads a previous run left unfinished (once; see the module docstring).

        :meth:`poll` and :meth:`settle` call it too, so that nothing looks before it is done.
        """
        async with self._recover_lock:
            if not self._recovered:
                await self._recover()
                self._recovered = True

    async def _recover(self) -> None:
        for download in await self.store.with_status(ACTIVE):
            if download.client not in self._clients:
                await self._finish(download, "failed", error=f"the download client "
                                   f"{download.client!r} is not loaded any more")
            elif download.status == "searching":
                await self.store.update(download, status="queued")
            else:
                self._active[download.id] = download
                if download.status == "post_processing":
                    self._spawn(download, self._import(download, self._transfer_of(download,
                                                                                   "completed")))
        if self._active:
            log.info("resuming %d download(s) interrupted by the last shutdown", len(self._active))

    async def stop(self) -> None:
        """Stop the work in flight, leaving each download in a state :meth:`recover` resumes.

        Imports get :data:`STOP_IMPORT_WAIT_SECONDS` to finish; searches and enqueues are
        cancelled at once.
        """
        imports = [task for download_id, task in self._tasks.items()
                   if self._active.get(download_id) is not None
                   and self._active[download_id].status == "post_processing"]
        for task in self._tasks.values():
            if task not in imports:
                task.cancel()
        if imports:
            await asyncio.wait(imports, timeout=STOP_IMPORT_WAIT_SECONDS)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def settle(self) -> None:
        """Start what may start and wait until no download has work in flight.

        Transfers still running at the client are not waited for (the monitor's next tick
        sees them); tests and benchmarks use this between driving the client and looking.
        """
        await self.recover()
        while True:
            await self._dispatch()
            pending = [task for task in self._tasks.values() if not task.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    # ---------------------------------------------------------------------- dispatch

    async def _dispatch(self) -> None:
        """Start queued downloads, oldest first, while fewer than max_concurrent are active."""
        async with self._dispatch_lock:
            free = self._settings.get("downloads.max_concurrent") - len(self._active)
            if free <= 0:
                return
            for download in await self.store.with_status(("queued",), limit=free):
                if not (download.attempts or download.next_query or download.candidates):
                    await self._activity.record(
                        "download.started", "Download Started",
                        f"{download.wanted.artist} - {download.wanted.title}: searching "
                        f"{download.client}")
                await self.store.update(download, status="searching")
                self._events.publish("download.searching", download_detail(download))
                self._active[download.id] = download
                self._spawn(download, self._pursue(download))

    def _spawn(self, download: Download, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as the one task of ``download`` (the monitor skips it meanwhile)."""
        assert download.id not in self._tasks, f"download {download.id} already has a task"
        task = asyncio.create_task(self._guard(download, work), name=f"download:{download.id}")
        self._tasks[download.id] = task

        def done(finished: asyncio.Task[None]) -> None:
            # A task cancelled before its first step never awaited ``work``; closing it keeps
            # that from being reported as a coroutine that was never awaited.
            work.close()
            if self._tasks.get(download.id) is finished:
                del self._tasks[download.id]
            self._wake.set()

        task.add_done_callback(done)

    async def _guard(self, download: Download, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:
            # A bug must not leave a download "downloading" forever.
            log.exception("download %d failed unexpectedly", download.id)
            with contextlib.suppress(Exception):
                await self._finish(download, "failed",
                                   error=f"unexpected error ({type(exc).__name__}); see the log")

    # ------------------------------------------------------------------ search, enqueue

    def _profile(self) -> QualityProfile:
        return parse_quality_profile(self._settings.get("downloads.quality_profile"),
                                     fallback=self._settings.get("downloads.quality_fallback"))

    def _rank(self, wanted: Wanted, found: Iterable[Candidate]) -> list[CandidateInfo]:
        """Rank ``found`` for ``wanted`` (blocking; called in a thread)."""
        scored = rank_candidates(
            wanted.track_info(), found, self._profile(),
            duration_tolerance_s=self._settings.get("downloads.duration_tolerance_seconds"),
            min_confidence=self._settings.get("downloads.min_confidence"))
        return [CandidateInfo.from_scored(s) for s in scored[:MAX_STORED_CANDIDATES]]

    async def _pursue(self, download: Download) -> None:
        """Get ``download`` a transfer: the next ranked candidate, else the next search.

        Ends with the download ``downloading`` or finished (failed / not_found).
        """
        client = self._clients.get(download.client)
        if client is None or not client.configured:
            await self._finish(download, "failed", error=f"the download client {download.client!r} "
                               "is not configured any more")
            return
        if await self._advance(download, client):
            return
        if not download.queries:
            wanted = download.wanted
            await self.store.update(download, queries=search_queries(wanted.title, wanted.artists,
                                                                     wanted.album or None))
        found = [c.candidate() for c in download.candidates]
        problems: list[str] = []
        while download.next_query < len(download.queries):
            if download.status != "searching":
                await self.store.update(download, status="searching")
            query = download.queries[download.next_query]
            try:
                found += await self._search(client, query)
                await faultpoints.areached("download.searched")
            except TimeoutError:
                problems.append(f"the search {query!r} took longer than "
                                f"{self._settings.get('downloads.search_timeout_seconds'):g} s")
            except ProviderError as exc:
                await self._finish(download, "failed", error=f"searching {query!r} failed: {exc}")
                return
            ranked = await asyncio.to_thread(self._rank, download.wanted, found)
            await self.store.update(download, next_query=download.next_query + 1, candidates=ranked)
            if await self._advance(download, client):
                return
        await self._exhausted(download, problems)

    async def _search(self, client: DownloadClient, query: str) -> list[Candidate]:
        """Run one search, retrying while the client is busy (429).

        The whole of it, waits for the client included, takes at most
        ``downloads.search_timeout_seconds``: TimeoutError after that, or the client's
        RateLimited when waiting as long as it asked would pass that bound. So a client asking
        for an absurd ``Retry-After`` never keeps a download (and its slot) searching longer.
        """
        timeout = self._settings.get("downloads.search_timeout_seconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with asyncio.timeout(timeout):
            for attempt in range(BUSY_RETRIES):
                try:
                    self._metrics.download_searches.labels(client.name).inc()
                    return await client.search(query)
                except RateLimited as exc:
                    if attempt == BUSY_RETRIES - 1 or loop.time() + exc.retry_after >= deadline:
                        raise
                    await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")

    async def _advance(self, download: Download, client: DownloadClient) -> bool:
        """Enqueue the best accepted candidate not tried yet; return False when there is none.

        Returns True when a transfer was enqueued, or when the download failed because
        ``downloads.max_attempts`` files were tried already.
        """
        for info in download.candidates:
            if not info.accepted or info.key in download.tried_keys():
                continue
            limit = self._settings.get("downloads.max_attempts")
            if download.attempts >= limit:
                await self._finish(download, "failed", error=f"gave up after {download.attempts} "
                                   f"file(s) (downloads.max_attempts): {_tried_text(download)}")
                return True
            if await self._enqueue(download, client, info):
                return True
        return False

    async def _enqueue(self, download: Download, client: DownloadClient, info: CandidateInfo) -> bool:
        """Ask the client for ``info``'s file; return False (attempt recorded) when it refuses.

        The attempt is saved before the client is asked, so that a restart in between finds
        the transfer again (or asks again, which returns slskd's existing transfer).
        """
        await self.store.update(
            download, status="downloading", attempts=download.attempts + 1,
            username=info.username, filename=info.filename, size=info.size, quality=info.quality,
            transfer_id=None, transfer_state="queued", progress=0.0, bytes_transferred=0,
            speed=0.0, final_path=None, tagged=False)
        return await self._request_transfer(download, client, info.candidate())

    async def _request_transfer(self, download: Download, client: DownloadClient,
                                candidate: Candidate) -> bool:
        # Waits for a busy client are bounded like a search's (see _search).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.get("downloads.search_timeout_seconds")
        for attempt in range(BUSY_RETRIES):
            try:
                transfer = await client.enqueue(candidate)
                break
            except RateLimited as exc:
                if attempt == BUSY_RETRIES - 1 or loop.time() + exc.retry_after >= deadline:
                    await self._record_attempt(download, str(exc))
                    return False
                await asyncio.sleep(exc.retry_after)
            except ProviderError as exc:
                await self._record_attempt(download, str(exc))
                return False
        await faultpoints.areached("download.enqueued")
        await self.store.update(download, transfer_id=transfer.id, transfer_state=transfer.state)
        self._watches[download.id] = Watch(enqueued_at=self.clock())
        log.info("download %d: asked %s for %s", download.id, candidate.username, candidate.filename)
        return True

    async def _resume_enqueue(self, download: Download) -> None:
        """Ask again for the file a previous run was enqueueing when it stopped (no new attempt)."""
        client = self._clients[download.client]
        assert download.username is not None and download.filename is not None
        candidate = next((c.candidate() for c in download.candidates
                          if c.key == (download.username, download.filename)),
                         Candidate(download.username, download.filename, download.size or 0))
        if not await self._request_transfer(download, client, candidate):
            await self._pursue(download)

    async def _record_attempt(self, download: Download, outcome: str) -> None:
        """Add the current file to the tried list with ``outcome``; clear the transfer fields."""
        assert download.username is not None and download.filename is not None
        log.info("download %d: %s %s: %s", download.id, download.username, download.filename, outcome)
        self._watches.pop(download.id, None)
        tried = [*download.tried, Attempt(download.username, download.filename, outcome, utc_now_iso())]
        await self.store.update(download, tried=tried, transfer_id=None, transfer_state=None, speed=0.0)

    async def _exhausted(self, download: Download, problems: list[str]) -> None:
        """Finish a download whose searches are all done and whose candidates are used up."""
        if download.tried:
            await self._finish(download, "failed", error=f"no other file to try after "
                               f"{len(download.tried)} attempt(s): {_tried_text(download)}")
            return
        searched = ", ".join(repr(q) for q in download.queries)
        reason = f"no file matched in {len(download.queries)} search(es) ({searched})"
        if download.candidates:
            closest = download.candidates[0]
            reason += (f": {len(download.candidates)} result(s) refused; the closest, "
                       f"{closest.username} {_basename(closest.filename)!r}, "
                       f"{'; '.join(closest.reasons)}")
        if problems:
            reason += "; " + "; ".join(problems)
        await self._finish(download, "not_found", error=reason)

    # ------------------------------------------------------------------------ monitor

    async def poll(self) -> None:
        """One monitor tick: one transfer list per client, every transfer judged.

        Progress figures are saved in one transaction; transfers to import or to give up on
        get their task. Downloads whose task is running are left alone.
        """
        await self.recover()
        async with self._poll_lock:
            by_client: dict[str, list[Download]] = {}
            for download in self._active.values():
                if (download.status == "downloading" and download.id not in self._tasks
                        and download.id not in self._cancelling):
                    by_client.setdefault(download.client, []).append(download)
            changed: list[Download] = []
            for name, downloads in by_client.items():
                changed += await self._poll_client(self._clients[name], downloads)
            await self.store.save_progress(changed)
            for download in changed:
                self._events.publish("download.progress", download_detail(download), key=download.id)

    async def _poll_client(self, client: DownloadClient, downloads: list[Download]) -> list[Download]:
        listed_at = self.clock()
        try:
            transfers = await client.transfers()
        except Exception as exc:
            # Nothing is judged on a list we do not have: no transfer counts as vanished.
            log.warning("download monitor: %s transfer list unavailable: %s", client.name, exc)
            return []
        by_id = {t.id: t for t in transfers}
        by_file = {(t.username, t.filename): t for t in transfers}
        now = self.clock()
        limits = Limits(self._settings.get("downloads.queued_timeout_seconds"),
                        self._settings.get("downloads.stalled_timeout_seconds"))
        changed: list[Download] = []
        for download in downloads:
            if (download.id in self._tasks or download.id in self._cancelling
                    or download.status != "downloading"):
                continue  # a cancel or a task started while the list was on its way
            transfer = by_id.get(download.transfer_id or "") or by_file.get(
                (download.username or "", download.filename or ""))
            watch = self._watches.get(download.id)
            if watch is None:
                if download.transfer_id is None and transfer is None:
                    self._spawn(download, self._resume_enqueue(download))
                    continue
                # First look after a restart: lists from before it prove nothing.
                watch = self._watches[download.id] = Watch(enqueued_at=-math.inf)
            verdict = judge(transfer, watch, now, listed_at, limits)
            if transfer is not None and self._take_figures(download, transfer):
                changed.append(download)
            if verdict.action == "import":
                assert transfer is not None
                self._spawn(download, self._import(download, transfer))
            elif verdict.action == "give_up":
                self._giving_up.add(download.id)
                self._spawn(download, self._give_up(download, transfer, verdict.reason or "given up"))
        return changed

    @staticmethod
    def _take_figures(download: Download, transfer: Transfer) -> bool:
        """Copy the transfer's figures onto the download; return True when any changed."""
        figures = (transfer.id, transfer.state, round(transfer.percent, 1), transfer.bytes_transferred,
                   round(transfer.average_speed, 1))
        if figures == (download.transfer_id, download.transfer_state, download.progress,
                       download.bytes_transferred, download.speed):
            return False
        (download.transfer_id, download.transfer_state, download.progress,
         download.bytes_transferred, download.speed) = figures
        return True

    def _transfer_of(self, download: Download, state: str) -> Transfer:
        """Return the download's current transfer as far as the row knows it."""
        return Transfer(download.transfer_id or "", download.username or "", download.filename or "",
                        state, size=download.size or 0)  # type: ignore[arg-type]

    async def _give_up(self, download: Download, transfer: Transfer | None, reason: str) -> None:
        """Drop the current transfer and move on: where the failover handler says, else to
        the next candidate (or finish)."""
        try:
            client = self._clients[download.client]
            if transfer is None and await self._arrived_anyway(client, download):
                # It completed and was cleared from slskd's list before a tick saw it completed.
                await self._import(download, self._transfer_of(download, "completed"))
                return
            await self._remove_transfer(client, download, transfer)
            await self._record_attempt(download, reason)
            plan = None
            if self._failover is not None:
                try:
                    plan = await self._failover(download, reason)
                except Exception:
                    log.exception("download %d: the failover handler failed", download.id)
            if plan is not None:
                await self._adopt(download, *plan)
                return
            await self._pursue(download)
        finally:
            self._giving_up.discard(download.id)

    async def _arrived_anyway(self, client: DownloadClient, download: Download) -> bool:
        """True when the vanished transfer's file is in the client's folder at its full size."""
        try:
            path = await client.local_file(self._transfer_of(download, "completed"))
            return path is not None and bool(download.size) and (
                await asyncio.to_thread(lambda: path.stat().st_size)) == download.size
        except Exception:
            return False

    async def _remove_transfer(self, client: DownloadClient | None, download: Download,
                               transfer: Transfer | None) -> None:
        """Cancel and remove the download's transfer from the client, if it has one.

        Without a known transfer id the client's list is searched for the user's file (an
        enqueue was interrupted). Failures are logged: a transfer left behind is clutter, not
        a reason to keep a download from moving on.
        """
        if client is None or download.username is None or download.filename is None:
            return
        try:
            if transfer is None and download.transfer_id:
                transfer = self._transfer_of(download, "queued")
            if transfer is None:
                transfer = next((t for t in await client.transfers()
                                 if (t.username, t.filename) == (download.username, download.filename)),
                                None)
            if transfer is not None:
                await client.cancel(transfer)
        except ProviderError as exc:
            log.warning("download %d: could not remove the transfer of %s from %s: %s",
                        download.id, download.filename, client.name, exc)

    # ------------------------------------------------------------------------- import

    async def _import(self, download: Download, transfer: Transfer) -> None:
        """Import a completed transfer's file; a bad file moves on to the next candidate.

        The client's copy is deleted afterwards when SoulSync may; when it may not, the
        download still completes, with a note saying where the copy was left.
        """
        client = self._clients[download.client]
        self._metrics.bytes_downloaded.inc(download.size or 0)
        await self.store.update(download, status="post_processing", transfer_state="completed",
                                progress=100.0, bytes_transferred=download.size or 0, speed=0.0)
        importer = self.importer
        source: Path | None = None
        placement: Placement | None = None
        try:
            finished = await self._finished_move(client, download, transfer)
            if finished is not None:
                placement, source = finished
            else:
                source = await importer.locate(client, transfer,
                                               self._settings.get("downloads.file_wait_seconds"))
                await importer.check(source, download.wanted,
                                     self._settings.get("downloads.duration_tolerance_seconds"))
                destination = importer.destination(download.wanted, source,
                                                   self._settings.get("library.path_template"))
                # Saved before the move: a restart after it finds the file there.
                await self.store.update(download, final_path=str(destination))
                placement = await importer.place(source, destination, download.id, download.wanted,
                                                 self._profile())
                await faultpoints.areached("import.renamed")
                if not placement.kept_existing:
                    # Saved at once: after a restart it says the rename happened, also when the
                    # client's copy (the other sign of it) could not be deleted.
                    await self.store.update(download, tagged=True)
            track_id = await importer.index(placement)
        except BadFile as exc:
            await self._drop_temporary(download)
            if source is not None:
                self._copy_left(download, client, await importer.discard(source))
            await self._remove_transfer(client, download, transfer)
            await self._record_attempt(download, str(exc))
            await self.store.update(download, final_path=None)
            await self._pursue(download)
            return
        except ImportFailed as exc:
            await self._drop_temporary(download)
            # final_path says where the track is: nowhere, unless the file was placed.
            await self._finish(download, "failed", error=str(exc),
                               final_path=str(placement.path) if placement is not None else None)
            return
        notes = []
        if placement.kept_existing:
            notes.append(f"the library already had this track at equal or better quality: "
                         f"kept {placement.path}")
        if source is not None:
            left = await importer.discard(source)
            self._copy_left(download, client, left)
            if left is not None:
                notes.append(left)
        await self._finish(download, "completed", error=None, note="; ".join(notes) or None,
                           final_path=str(placement.path), library_track_id=track_id,
                           tagged=not placement.kept_existing)
        await self._remove_transfer(client, download, transfer)

    async def _drop_temporary(self, download: Download) -> None:
        """Remove what an import a crash interrupted before its rename left in the library."""
        if download.final_path:
            await self.importer.drop_temporary(Path(download.final_path), download.id)

    def _copy_left(self, download: Download, client: DownloadClient, warning: str | None) -> None:
        """Log a client copy that could not be deleted (``warning``; None: it was deleted).

        After :data:`UNDELETABLE_NOTE_AFTER` such imports in a row the client's health carries
        a note (``/system/status``); the next copy deleted clears it.
        """
        if warning is None:
            if self._undeletable.pop(client.name, 0) >= UNDELETABLE_NOTE_AFTER:
                self._health.note(client.name, None)
            return
        log.warning("download %d: %s", download.id, warning)
        count = self._undeletable[client.name] = self._undeletable.get(client.name, 0) + 1
        if count >= UNDELETABLE_NOTE_AFTER:
            self._health.note(client.name, f"the last {count} downloaded files could not be "
                              f"deleted from the client's folder after their import; the "
                              f"latest: {warning}")

    async def _finished_move(self, client: DownloadClient, download: Download,
                             transfer: Transfer) -> tuple[Placement, Path | None] | None:
        """Return the placement a previous run finished moving and the client's copy if it is
        still there (None: gone); None when there is no finished move.

        That is: a destination was saved, the file is there, and either the rename was saved
        (``tagged``, written right after it) or the client's copy is gone — which it may never
        be, when SoulSync may not delete in the client's folder.
        """
        if not download.final_path:
            return None
        final = Path(download.final_path)
        if not await asyncio.to_thread(final.is_file):
            return None
        copy: Path | None = None
        with contextlib.suppress(Exception):
            copy = await client.local_file(transfer)
        if copy is not None and not download.tagged:
            return None
        return Placement(final, kept_existing=False), copy

    # ------------------------------------------------------------------------- finish

    async def _finish(self, download: Download, status: Status, **fields: Any) -> None:
        """Give ``download`` a final status, free its slot, tell the feed and the listeners."""
        await self.store.update(download, status=status, **fields)
        self._events.publish(FINISH_EVENTS[status], download_detail(download))
        self._active.pop(download.id, None)
        self._watches.pop(download.id, None)
        self._wake.set()
        name = f"{download.wanted.artist} - {download.wanted.title}"
        if status == "completed":
            await self._activity.record("download.completed", "Download Completed",
                                        f"{name} -> {download.final_path}"
                                        + ("" if download.tagged else " (kept the library's file)"))
            await self._notify(download)
        elif status in ("failed", "not_found"):
            await self._activity.record("download.failed", "Download Failed",
                                        f"{name}: {download.error}")
        else:
            log.info("download %d %s", download.id, status)

    async def _notify(self, download: Download) -> None:
        for listener in self._listeners:
            try:
                result = listener(download)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("download completion listener failed")
