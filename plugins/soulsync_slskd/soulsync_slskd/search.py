"""One slskd search at a time, paced, run to completion as slskd really behaves.

slskd keeps a search's responses in memory and publishes them only when the search completes
(``GET /searches/{id}/responses`` is ``[]`` until then), so a search is: start it, poll its
state until ``isComplete``, read the responses once, delete it. slskd ends a search by itself
``searchTimeout`` after the last answer or when ``responseLimit`` peers answered; since every
answer restarts that timeout, a search still running ``stop_grace`` seconds past
``soulseek.search_timeout`` is stopped with ``PUT /searches/{id}`` (slskd keeps what it
collected) and read like any other.

Pacing: the Soulseek server bans accounts that search too often, so every search of the
daemon goes through one :class:`SearchRunner` (the daemon has one client): a lock keeps
searches one at a time, and an ``AsyncLimiter`` lets at most ``soulseek.searches_per_window``
start per ``soulseek.search_window_seconds`` (a leaky bucket: that many at once, then one each
window/count seconds).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiolimiter import AsyncLimiter

from soulsync_core.hooks import AuthFailed, ProviderError, RateLimited, SettingsReader
from soulsync_slskd.transport import SlskdTransport

log = logging.getLogger(__name__)

# How long past soulseek.search_timeout a search may run before it is stopped, and how long
# slskd may then take to mark it complete.
STOP_GRACE_SECONDS = 10.0
STOP_WAIT_SECONDS = 10.0
# slskd ignores peers whose queue is at least maximumPeerQueueLength; "no limit" is its own
# default of a million.
NO_QUEUE_LIMIT = 1_000_000
NOT_CONNECTED = "slskd is not connected to the Soulseek network"
CLEANUP_WAIT_SECONDS = 10.0


class SearchRunner:
    """Starts, follows, reads and deletes slskd searches, one at a time and paced."""

    def __init__(self, transport: SlskdTransport, settings: SettingsReader):
        self._transport = transport
        self._settings = settings
        self._lock = asyncio.Lock()
        self._limiter: AsyncLimiter | None = None
        self._cleanups: set[asyncio.Task[None]] = set()
        self.stop_grace = STOP_GRACE_SECONDS
        self.stop_wait = STOP_WAIT_SECONDS

    def _pacer(self) -> AsyncLimiter:
        # Rebuilt when a pacing setting changes; the new bucket starts empty.
        rate = self._settings.get("soulseek.searches_per_window")
        window = self._settings.get("soulseek.search_window_seconds")
        if self._limiter is None or (self._limiter.max_rate, self._limiter.time_period) != (rate, window):
            self._limiter = AsyncLimiter(rate, window)
        return self._limiter

    async def run(self, query: str) -> list[Any]:
        """Run one search to completion and return slskd's responses (a list of peer objects).

        Waits for earlier searches and for the pacing budget first. Raises ProviderError
        (NOT_CONNECTED on slskd's 409, RateLimited on 429, AuthFailed on 401) when slskd
        cannot search; the search is deleted from slskd however this ends.
        """
        async with self._lock:
            if self._cleanups:
                await asyncio.wait(self._cleanups, timeout=CLEANUP_WAIT_SECONDS)
            await self._pacer().acquire()
            search_id = str(uuid.uuid4())
            try:
                await self._start(search_id, query)
            except (AuthFailed, RateLimited):
                raise  # slskd refused before creating anything
            except ProviderError:
                # slskd may hold a record anyway (it records a refused search as errored; a
                # timed-out POST may have started one): leave nothing behind.
                await self._discard(search_id, complete=False)
                raise
            complete = False
            try:
                await self._wait(search_id)
                complete = True
                answer = await self._transport.request("GET", f"/searches/{search_id}/responses")
            finally:
                await self._discard(search_id, complete)
        return answer.body if isinstance(answer.body, list) else []

    async def _start(self, search_id: str, query: str) -> None:
        max_queue = self._settings.get("soulseek.max_peer_queue")
        body = {
            "id": search_id,
            "searchText": query,
            "searchTimeout": self._settings.get("soulseek.search_timeout") * 1000,
            "responseLimit": self._settings.get("soulseek.response_limit"),
            "filterResponses": True,
            "minimumResponseFileCount": 1,
            "minimumPeerUploadSpeed": self._settings.get("soulseek.min_peer_upload_speed"),
            # +1: slskd drops a queue of exactly the limit; soulseek.max_peer_queue keeps it.
            "maximumPeerQueueLength": max_queue + 1 if max_queue > 0 else NO_QUEUE_LIMIT,
        }
        answer = await self._transport.request("POST", "/searches", body=body, allow=(400, 409))
        if answer.status == 409:
            raise ProviderError(NOT_CONNECTED + (f" ({answer.detail})" if answer.detail else ""))
        if answer.status == 400:
            raise ProviderError(f"slskd refused the search {query!r}: {answer.detail or 'HTTP 400'}")
        log.debug("slskd search %s started", search_id)

    async def _wait(self, search_id: str) -> None:
        """Poll the search's state until slskd marks it complete, stopping it when overdue."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.get("soulseek.search_timeout") + self.stop_grace
        stopped = False
        while True:
            answer = await self._transport.request("GET", f"/searches/{search_id}", allow=(404,))
            if answer.status == 404:
                raise ProviderError(f"slskd lost search {search_id} before it completed")
            if _is_complete(answer.body):
                return
            if loop.time() >= deadline:
                if stopped:
                    raise ProviderError(f"slskd did not end search {search_id} within "
                                        f"{self.stop_wait:g} s of being asked to stop")
                # slskd keeps the responses gathered so far and completes as "Cancelled".
                await self._transport.request("PUT", f"/searches/{search_id}", allow=(304, 404))
                stopped = True
                deadline = loop.time() + self.stop_wait
            await asyncio.sleep(self._settings.get("soulseek.poll_interval_seconds"))

    async def _discard(self, search_id: str, complete: bool) -> None:
        """Stop (if still running) and delete the search, even when the caller is cancelled."""
        task = asyncio.create_task(self._delete(search_id, complete))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        await asyncio.shield(task)

    async def _delete(self, search_id: str, complete: bool) -> None:
        try:
            if not complete:
                await self._transport.request("PUT", f"/searches/{search_id}", allow=(304, 404))
            await self._transport.request("DELETE", f"/searches/{search_id}", allow=(404,))
        except ProviderError as exc:
            # Searches persist in slskd's database; one left behind is clutter, not a failure.
            log.warning("could not delete slskd search %s: %s", search_id, exc)

    async def close(self) -> None:
        """Wait (briefly) for searches still being deleted."""
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=CLEANUP_WAIT_SECONDS)


def _is_complete(record: Any) -> bool:
    """True when slskd marks the search complete (``isComplete``, or a ``Completed`` state)."""
    if not isinstance(record, dict):
        return False
    flags = [flag.strip() for flag in str(record.get("state", "")).split(",")]
    return bool(record.get("isComplete")) or "Completed" in flags
