"""The event bus: every service tells what it did here; SSE streams, notifications and plugins listen.

An event is ``{id, type, at, data}``: ``id`` increases monotonically and never repeats, across
restarts too (see :class:`EventBus`); ``type`` is dotted (``download.completed``); ``at`` is
ISO-8601 UTC; ``data`` has the shape the REST endpoints return for the same object, so a client
can update its view without fetching it again.

Publishing never waits and never raises: the event is encoded once, put in the ring buffer
(for resume) and appended to each subscriber's own bounded queue. A subscriber that does not
keep up loses its oldest events; the next thing it reads is a ``lost`` marker saying how many.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from soulsync_core.db import Database
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

EVENT_TYPES: tuple[str, ...] = (
    "download.queued", "download.searching", "download.progress", "download.completed",
    "download.failed", "download.cancelled",
    "library.scan.started", "library.scan.progress", "library.scan.finished", "library.changed",
    "wishlist.added", "wishlist.removed", "wishlist.processed",
    "watchlist.release_found", "watchlist.scan.finished",
    "playlist.sync.progress", "playlist.sync.finished",
    "upgrade.run.started", "upgrade.started", "upgrade.completed", "upgrade.failed",
    "upgrade.run.finished",
    "service.up", "service.down",
    "settings.changed",
    "api_key.created", "api_key.revoked",
)
# Sent only to one stream, never published: the gap since Last-Event-ID is gone, and events
# were dropped because the reader was too slow.
RESET = "reset"
LOST = "lost"

# Types published at most once per second per key (a download, a scan).
THROTTLED_SECONDS = {"download.progress": 1.0, "library.scan.progress": 1.0}
# Ids are reserved in blocks: one database write per this many events, and a crash loses at
# most the rest of a block (a gap in the ids, never a repeat).
ID_BLOCK = 1000
DEFAULT_BUFFER = 5000
# Whatever events.buffer_size says, the buffer holds at most this many bytes of frames.
MAX_BUFFER_BYTES = 16 * 1024 * 1024
DEFAULT_QUEUE = 1000

_encoder = msgspec.json.Encoder()


class Event(msgspec.Struct, frozen=True):
    """One published event. ``data`` is plain JSON values (dicts, lists, str, numbers)."""

    id: int
    type: str
    at: str
    data: Any

    def json(self) -> bytes:
        """Return the event as the JSON object an SSE ``data:`` line and a webhook carry."""
        return _encoder.encode(self)


class Published(msgspec.Struct, frozen=True):
    """An event with its Server-Sent Events frame, encoded once and shared by every stream
    that sends it (the JSON holds no line break: msgspec writes it compact).

    The ring buffer and the streams keep the frame only (``event.data`` is None there): a
    download's data as Python objects is many times the size of its JSON.
    """

    event: Event
    frame: bytes

    @classmethod
    def of(cls, event: Event) -> Published:
        head = f"id: {event.id}\r\n" if event.id else ""
        body = event.json().decode()
        return cls(event, f"{head}event: {event.type}\r\ndata: {body}\r\n\r\n".encode())

    def light(self) -> Published:
        """Return this with the frame only (the event's data dropped)."""
        event = self.event
        return Published(Event(event.id, event.type, event.at, None), self.frame)


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """True when ``event_type`` matches one of the globs (``download.*``); no patterns match all."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


class Subscription:
    """One listener's queue of events: bounded, oldest dropped first when full.

    Read with :meth:`next`, which returns a ``lost`` marker (``Event`` with id 0) before the
    remaining events when some were dropped. :meth:`close` ends the reading: ``next`` then
    returns None.
    """

    def __init__(self, bus: EventBus, patterns: Sequence[str], size: int, frames_only: bool):
        self._bus = bus
        self.patterns = tuple(patterns)
        self.frames_only = frames_only
        self._queue: deque[Published] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self.lost = 0
        self.dropped = 0  # all lost so far, for figures
        self.closed = False

    def offer(self, item: Published) -> None:
        """Queue ``item`` if it matches; drop the oldest when full (never waits)."""
        if self.closed or not matches(self.patterns, item.event.type):
            return
        if len(self._queue) == self._queue.maxlen:
            self.lost += 1
            self.dropped += 1
        self._queue.append(item)
        self._ready.set()

    def pending(self) -> int:
        return len(self._queue)

    async def next(self) -> Published | None:
        """Return the next event (or a ``lost`` marker); None once the subscription is closed."""
        while not self._queue and not self.lost and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        if self.lost:
            marker = Event(0, LOST, utc_now_iso(), {"lost": self.lost})
            self.lost = 0
            return Published.of(marker)
        return self._queue.popleft()

    async def batch(self, limit: int = 256) -> list[Published] | None:
        """Return the next event and those already queued behind it (at most ``limit``), so a
        burst is written to a stream at once; None once closed."""
        first = await self.next()
        if first is None:
            return None
        items = [first]
        while self._queue and not self.lost and len(items) < limit:
            items.append(self._queue.popleft())
        return items

    def close(self) -> None:
        """Stop the subscription: pending events are dropped and :meth:`next` returns None."""
        self.closed = True
        self._queue.clear()
        self._ready.set()
        self._bus.unsubscribe(self)


class EventBus:
    """Publishes events to the ring buffer and to every subscription.

    Usable at once with ids from 1 (a service built on its own in a test); :meth:`open` makes
    the ids persistent: it continues after the block the previous run reserved in the
    database, so ids only grow, however the previous run ended.
    """

    def __init__(self, buffer_size: int = DEFAULT_BUFFER, clock: Callable[[], float] = time.monotonic):
        self._buffer: deque[Published] = deque(maxlen=buffer_size)
        self._buffer_bytes = 0
        self._subscriptions: list[Subscription] = []
        self._next_id = 1
        self._reserved_through: int | None = None
        self._db: Database | None = None
        self._reserving: asyncio.Task[None] | None = None
        self._clock = clock
        self._last_sent: dict[tuple[str, object], float] = {}

    async def open(self, db: Database) -> None:
        """Continue the persisted id counter of ``db`` and reserve the next block of ids."""
        self._db = db
        stored = await db.fetchval("SELECT reserved_through FROM event_counter WHERE id = 1")
        self._next_id = max(self._next_id, int(stored or 0) + 1)
        await self._reserve()

    async def _reserve(self) -> None:
        assert self._db is not None
        through = self._next_id + ID_BLOCK
        await self._db.execute(
            "INSERT INTO event_counter (id, reserved_through) VALUES (1, ?) ON CONFLICT (id) "
            "DO UPDATE SET reserved_through = MAX(reserved_through, excluded.reserved_through)",
            (through,))
        self._reserved_through = through

    def resize(self, buffer_size: int) -> None:
        """Change how many recent events are kept for resume (``events.buffer_size``)."""
        self._buffer = deque(self._buffer, maxlen=buffer_size)
        self._buffer_bytes = sum(len(item.frame) for item in self._buffer)

    @property
    def last_id(self) -> int:
        """The id of the newest event published (or the counter's start minus one)."""
        return self._next_id - 1

    def publish(self, type: str, data: Any, *, key: object = None) -> Event | None:
        """Publish an event of ``type`` carrying ``data`` (a msgspec Struct, dict or list).

        ``key`` names the object of a throttled type (a download id): such an event is
        dropped when the last one for the same key is less than a second old. Returns the
        event, or None when it was throttled or could not be encoded (logged); never raises
        and never waits.
        """
        try:
            if type in THROTTLED_SECONDS and not self._due(type, key):
                return None
            event = Event(self._next_id, type, utc_now_iso(), msgspec.to_builtins(data))
            item = Published.of(event)
        except Exception:
            log.exception("event %s could not be published", type)
            return None
        self._next_id += 1
        light = item.light()
        self._remember(light)
        for subscription in list(self._subscriptions):
            subscription.offer(light if subscription.frames_only else item)
        self._keep_reserved()
        return event

    def _remember(self, item: Published) -> None:
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self._buffer_bytes -= len(buffer[0].frame)
        buffer.append(item)
        self._buffer_bytes += len(item.frame)
        while self._buffer_bytes > MAX_BUFFER_BYTES and len(buffer) > 1:
            self._buffer_bytes -= len(buffer.popleft().frame)

    def _due(self, type: str, key: object) -> bool:
        now = self._clock()
        last = self._last_sent.get((type, key))
        if last is not None and now - last < THROTTLED_SECONDS[type]:
            return False
        if len(self._last_sent) > 10_000:  # keys of finished downloads: forget the old ones
            self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < 60}
        self._last_sent[(type, key)] = now
        return True

    def _keep_reserved(self) -> None:
        # Reserve the next block while half of this one is left, off the publisher's path.
        if (self._db is None or self._reserved_through is None or self._reserving is not None
                or self._next_id + ID_BLOCK // 2 < self._reserved_through):
            return
        try:
            self._reserving = asyncio.get_running_loop().create_task(self._reserve_next())
        except RuntimeError:
            self._reserving = None

    async def _reserve_next(self) -> None:
        try:
            await self._reserve()
        except Exception:
            log.exception("could not reserve event ids")
        finally:
            self._reserving = None

    def subscribe(self, patterns: Sequence[str] = (), *, queue_size: int = DEFAULT_QUEUE,
                  since: int | None = None, frames_only: bool = False) -> tuple[Subscription, bool]:
        """Return ``(subscription, complete)`` for events matching ``patterns`` (globs).

        ``frames_only`` (a stream) gets the SSE frames without the events' data; so does one
        with ``since`` (the last id a client saw), which first gets the buffered events after
        it. ``complete`` is False when the buffer no longer reaches back that far (or the id
        is not one of this run's), so the client has to refetch: nothing is replayed then.
        """
        subscription = Subscription(self, patterns, queue_size, frames_only or since is not None)
        complete = True
        if since is not None:
            replay = self.replay(since)
            if replay is None:
                complete = False
            else:
                for item in replay:
                    subscription.offer(item)
        self._subscriptions.append(subscription)
        return subscription, complete

    def replay(self, since: int) -> list[Published] | None:
        """Return the buffered events with an id above ``since``; None if some are gone."""
        oldest = self._buffer[0].event.id if self._buffer else self._next_id
        if not oldest - 1 <= since < self._next_id:
            return None
        return [item for item in self._buffer if item.event.id > since]

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def subscriptions(self) -> int:
        return len(self._subscriptions)

    async def close(self) -> None:
        """Close every subscription and wait for a pending id reservation."""
        for subscription in list(self._subscriptions):
            subscription.close()
        if self._reserving is not None:
            await asyncio.gather(self._reserving, return_exceptions=True)


Listener = Callable[[Event], Any]


async def feed(subscription: Subscription, listener: Listener, name: str) -> None:
    """Call ``listener(event)`` (sync or async) for each event of ``subscription`` until closed.

    A listener that raises is logged and goes on receiving events; ``lost`` markers are passed
    on like events, so a listener knows when it fell behind.
    """
    while (item := await subscription.next()) is not None:
        try:
            result = listener(item.event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("event listener %s failed on %s", name, item.event.type)
