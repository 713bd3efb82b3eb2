"""``GET /events``: the live event stream as Server-Sent Events (``text/event-stream``).

Each event is sent as ``id:``, ``event:`` (its type) and ``data:`` (the event as JSON). A
client that reconnects sends ``Last-Event-ID`` (or ``?since=``) and gets what it missed from
the ring buffer, or a ``reset`` event when that is gone. An idle stream gets a comment line
every ``events.heartbeat_seconds``. One API key may hold ``events.max_streams_per_key``
streams; a revoked key's streams end at once, and so do all streams when the daemon stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import re
from typing import Annotated

import msgspec
from aiohttp import web
from aiohttp_sse import EventSourceResponse
from msgspec import UNSET, UnsetType

from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, bad_request
from soulsync_core.api.middlewares import API_KEY_ID
from soulsync_core.events import EVENT_TYPES, RESET, EventBus, Subscription
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

routes = Routes("events")

_PATTERN = re.compile(r"[a-z0-9_.*?\[\]-]+")
# A reader that takes no data for this long has its connection aborted (aiohttp-sse).
SEND_TIMEOUT_SECONDS = 60.0
# At shutdown, how long a stream blocked on a reader that does not read may take to end.
STUCK_CLOSE_SECONDS = 1.0


_ITEM = "|".join(re.escape(name) for name in (
    *EVENT_TYPES, *sorted({t.split(".")[0] + ".*" for t in EVENT_TYPES}), "*"))
# What the document states ?types= takes: event types, family globs, "*". parse_types accepts
# any glob that matches a type, which a pattern cannot say; it alone enforces (its messages).
TYPES_LIST = Annotated[str, msgspec.Meta(extra_json_schema={
    "pattern": rf"^ *(?:(?:{_ITEM}) *)?(?:, *(?:(?:{_ITEM}) *)?)*$",
    "description": "Comma-separated event types or globs matching one, e.g. download.*"})]


class EventsQuery(msgspec.Struct):
    """``types``: comma-separated event types or globs (``download.*,service.*``); ``since``:
    the last event id seen (the ``Last-Event-ID`` header does the same and wins)."""

    types: TYPES_LIST | None = None
    since: int | None = None


class EventStreams:
    """The open streams, by API key: the per-key cap, revocation and shutdown."""

    def __init__(self, bus: EventBus):
        self._bus = bus
        self._by_key: dict[str, set[Subscription]] = {}
        self._requests: dict[Subscription, web.Request] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._none_open = asyncio.Event()
        self._none_open.set()
        self.closing = False

    def count(self, key_id: str) -> int:
        return len(self._by_key.get(key_id, ()))

    def open_streams(self) -> list[Subscription]:
        """Return the subscription of every open stream."""
        return [s for streams in self._by_key.values() for s in streams]

    def add(self, key_id: str, subscription: Subscription, request: web.Request) -> None:
        self._by_key.setdefault(key_id, set()).add(subscription)
        self._requests[subscription] = request
        self._none_open.clear()
        if self._watcher is None:
            revoked, _ = self._bus.subscribe(("api_key.revoked",))
            self._watcher = asyncio.create_task(self._watch(revoked), name="event stream keys")

    def remove(self, key_id: str, subscription: Subscription) -> None:
        streams = self._by_key.get(key_id)
        self._requests.pop(subscription, None)
        if streams is not None:
            streams.discard(subscription)
            if not streams:
                del self._by_key[key_id]
        if not self._by_key:
            self._none_open.set()

    async def _watch(self, revoked: Subscription) -> None:
        while (item := await revoked.next()) is not None:
            data = item.event.data
            key_id = data.get("id") if isinstance(data, dict) else None
            for subscription in list(self._by_key.get(str(key_id), ())):
                subscription.close()

    async def close_all(self) -> None:
        """End every stream (shutdown): idle ones at once, with a proper end of the response;
        the connections of readers stuck for longer than ``STUCK_CLOSE_SECONDS`` are aborted."""
        self.closing = True
        for subscription in self.open_streams():
            subscription.close()
        if self._watcher is not None:
            self._watcher.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STUCK_CLOSE_SECONDS):
                await self._none_open.wait()
        for request in list(self._requests.values()):
            if request.transport is not None:
                request.transport.abort()


EVENT_STREAMS = web.AppKey("event_streams", EventStreams)


class EventFrame(msgspec.Struct):
    """One Server-Sent Event as a client reads it: ``event`` is its type, ``data`` the event
    as JSON (``{id, type, at, data}``), ``id`` what to send as Last-Event-ID (absent on a
    ``reset``), ``retry`` the reconnection delay in ms, when the server sets one."""

    data: str
    event: str
    id: str | UnsetType = UNSET
    retry: int | UnsetType = UNSET


async def close_event_streams(app: web.Application) -> None:
    """``on_shutdown``: end the open streams so the server need not wait for them."""
    await app[EVENT_STREAMS].close_all()


def parse_types(raw: str | None) -> list[str]:
    """Return the globs of ``?types=``; a 400 names one that is not a type pattern."""
    patterns = [p.strip() for p in (raw or "").split(",") if p.strip()]
    for pattern in patterns:
        if not _PATTERN.fullmatch(pattern):
            raise bad_request(f"types: {pattern!r} is not an event type or glob; use e.g. "
                              "types=download.*,service.down (see docs/events.md).")
        if not any(fnmatch.fnmatchcase(t, pattern) for t in EVENT_TYPES):
            families = ", ".join(sorted({t.split(".")[0] + ".*" for t in EVENT_TYPES}))
            raise bad_request(f"types: {pattern!r} matches no event type; the types are "
                              f"{families} (see docs/events.md).")
    return patterns


def last_seen(request: web.Request, since: int | None) -> int | None:
    """Return the id to resume after: ``Last-Event-ID`` (what EventSource sends), else ``since``."""
    header = request.headers.get("Last-Event-ID")
    if header is None or not header.strip():
        return since
    try:
        return int(header.strip())
    except ValueError:
        raise bad_request("Last-Event-ID must be an event id (an integer).") from None


@routes.get("/events", "Live events as Server-Sent Events (text/event-stream); resumable with "
            "Last-Event-ID or ?since=, filtered with ?types=.", query=EventsQuery, response=EventFrame,
            enveloped=False, errors=(429, 503), content_type="text/event-stream")
async def event_stream(request: web.Request, query: EventsQuery) -> web.StreamResponse:
    core = core_of(request)
    patterns = parse_types(query.types)
    since = last_seen(request, query.since)
    streams = request.app[EVENT_STREAMS]
    if streams.closing:
        raise ApiError(503, "SHUTTING_DOWN", "SoulSync is stopping; reconnect in a moment.")
    key_id = request[API_KEY_ID]
    limit = core.settings.get("events.max_streams_per_key")
    if streams.count(key_id) >= limit:
        raise ApiError(429, "TOO_MANY_STREAMS",
                       f"This API key already has {limit} event streams open "
                       "(events.max_streams_per_key); close one or raise the setting.")
    subscription, complete = core.events.subscribe(
        patterns, queue_size=core.settings.get("events.queue_size"), since=since, frames_only=True)
    streams.add(key_id, subscription, request)
    response = EventSourceResponse(ping_interval=core.settings.get("events.heartbeat_seconds"),
                                   send_timeout=SEND_TIMEOUT_SECONDS)
    try:
        await response.prepare(request)
        # The ping task ends when the connection is gone: stop waiting for events then.
        watcher = asyncio.ensure_future(response.wait())
        watcher.add_done_callback(lambda _done: subscription.close())
        if not complete:
            await response.send(msgspec.json.encode(
                {"type": RESET, "at": utc_now_iso(), "data": {"last_id": core.events.last_id}}
            ).decode(), event=RESET)
        while (items := await subscription.batch()) is not None:
            # Frames are encoded once per event for every stream (not per stream as
            # EventSourceResponse.send would), and a burst goes out in one write.
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await response.write(b"".join(item.frame for item in items))
    except TimeoutError:
        # A reader that takes nothing for that long is gone or stuck: drop the connection.
        log.info("event stream of key %s: the reader took no data for %g s; disconnected",
                 key_id, SEND_TIMEOUT_SECONDS)
        if request.transport is not None:
            request.transport.abort()
    except (ConnectionResetError, RuntimeError) as exc:
        log.debug("event stream ended: %r", exc)
    finally:
        subscription.close()
        streams.remove(key_id, subscription)
        if response.prepared:
            with contextlib.suppress(RuntimeError):
                response.stop_streaming()
    return response
