"""The notifier: listens to the event bus and delivers to each target through its own queue.

Each target has a bounded queue and one worker task, so a slow or failing target delays only
itself: never a download (the bus never waits for the notifier) and never another target.
A delivery is tried ``1 + notifications.retries`` times with doubling pauses from
``notifications.retry_backoff_seconds``; the outcome goes to the delivery log either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import aiohttp
import msgspec

from soulsync_core.db import Database
from soulsync_core.events import LOST, Event, EventBus, Subscription, matches
from soulsync_core.notifications.apprise_send import is_apprise_url, send_apprise
from soulsync_core.notifications.log import Delivery, DeliveryLog, TargetSummary
from soulsync_core.notifications.messages import describe
from soulsync_core.notifications.targets import Target, parse_targets
from soulsync_core.notifications.webhook import DeliveryFailed, post_signed
from soulsync_core.outbound import guarded_session
from soulsync_core.settings import Settings
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

# Notifications waiting for one target; beyond it the oldest are dropped (and logged).
TARGET_QUEUE = 100


class TargetStatus(msgspec.Struct):
    """A target as ``GET /notifications`` shows it: never its URL, only ``scheme://host/…``."""

    name: str
    kind: str
    url: str
    events: list[str]
    pending: int
    last_success_at: str | None
    last_failure_at: str | None
    last_error: str | None
    delivered: int
    failed: int


class UnknownTarget(LookupError):
    """No target has that name; ``str()`` lists the names there are."""


class _Worker:
    """One target's queue and the task that empties it."""

    def __init__(self, notifier: Notifier, target: Target):
        self.target = target
        self.queue: deque[Event] = deque(maxlen=TARGET_QUEUE)
        self.dropped = 0
        self._ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(notifier), name=f"notify:{target.name}")

    def offer(self, event: Event) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(event)
        self._ready.set()

    async def _run(self, notifier: Notifier) -> None:
        while True:
            while not self.queue:
                self._ready.clear()
                await self._ready.wait()
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                await notifier.log.record(self.target.name, 0, LOST, False, 0,
                                          f"{dropped} notification(s) dropped: the target was "
                                          f"too slow to keep up")
            event = self.queue.popleft()
            try:
                await notifier.deliver(self.target, event, notifier.retries())
            except Exception:
                log.exception("notification to %s failed unexpectedly", self.target.name)


class Notifier:
    """Delivers events to the targets of ``notifications.targets`` and ``notifications.webhooks``."""

    def __init__(self, db: Database, settings: Settings, bus: EventBus):
        self.log = DeliveryLog(db)
        self._settings = settings
        self._bus = bus
        self._workers: dict[str, _Worker] = {}
        self._subscription: Subscription | None = None
        self._router: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        settings.on_change("notifications.", lambda _changed: self._apply())

    def targets(self) -> list[Target]:
        """Return the configured targets (Apprise ones first), URLs included: never show them."""
        return parse_targets(self._settings.get("notifications.targets"),
                             self._settings.get("notifications.webhooks"))

    def retries(self) -> int:
        return self._settings.get("notifications.retries")

    def pending(self, name: str) -> int:
        """Return how many notifications wait for target ``name``."""
        worker = self._workers.get(name)
        return len(worker.queue) if worker else 0

    async def start(self) -> None:
        """Open the HTTP session, start a worker per target and follow the bus."""
        self._session = guarded_session(allow_private=True)  # see webhook.post_signed
        if any(t.kind == "apprise" for t in self.targets()):
            # Apprise takes most of a second to load its plugins: not in a first delivery's time.
            await asyncio.to_thread(is_apprise_url, "json://localhost")
        self._apply()
        self._subscription, _ = self._bus.subscribe()
        self._router = asyncio.create_task(self._route(self._subscription), name="notifications")

    def _apply(self) -> None:
        if self._session is None:
            return  # not started: start() reads the settings
        wanted = {t.name: t for t in self.targets()}
        for name, worker in list(self._workers.items()):
            if wanted.get(name) != worker.target:
                worker.task.cancel()
                del self._workers[name]
        for name, target in wanted.items():
            if name not in self._workers:
                self._workers[name] = _Worker(self, target)

    async def _route(self, subscription: Subscription) -> None:
        while (item := await subscription.next()) is not None:
            event = item.event
            if event.type == LOST:
                log.warning("notifications fell behind the event bus: %s event(s) skipped",
                            event.data["lost"])
                continue
            for worker in self._workers.values():
                if matches(worker.target.events, event.type):
                    worker.offer(event)

    async def stop(self) -> None:
        """Stop following the bus, cancel the workers and close the session."""
        if self._subscription is not None:
            self._subscription.close()
        tasks = [w.task for w in self._workers.values()]
        if self._router is not None:
            tasks.append(self._router)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_once(self, target: Target, event: Event) -> str:
        """Make one attempt to deliver ``event`` to ``target``; return its short answer.

        Raises DeliveryFailed with a reason that never holds the target's URL.
        """
        timeout = self._settings.get("notifications.timeout_seconds")
        if target.kind == "webhook":
            assert self._session is not None, "the notifier is not started"
            return await post_signed(self._session, target.url, target.secret, event.type,
                                     event.json(), timeout)
        title, body = describe(event)
        return await send_apprise(target.url, title, body, timeout)

    async def deliver(self, target: Target, event: Event, retries: int) -> Delivery:
        """Deliver with up to ``retries`` retries (doubling pauses); log and return the outcome."""
        backoff = self._settings.get("notifications.retry_backoff_seconds")
        error: str | None = None
        attempts = 0
        for attempt in range(retries + 1):
            attempts += 1
            try:
                await self.send_once(target, event)
            except DeliveryFailed as exc:
                error = str(exc)
            else:
                return await self.log.record(target.name, event.id, event.type, True, attempts, None)
            if attempt < retries:
                await asyncio.sleep(backoff * 2 ** attempt)
        log.warning("notification of %s to %s (%s) failed after %d attempt(s): %s", event.type,
                    target.name, target.shown_url, attempts, error)
        return await self.log.record(target.name, event.id, event.type, False, attempts, error)

    async def test(self, name: str | None) -> list[Delivery]:
        """Send a ``test`` event to target ``name`` (or all) at once, one attempt each.

        Returns each target's outcome (also in the delivery log). Raises UnknownTarget.
        """
        targets = self.targets()
        if name is not None:
            targets = [t for t in targets if t.name == name]
            if not targets:
                known = ", ".join(repr(t.name) for t in self.targets()) or "none configured"
                raise UnknownTarget(f"No notification target named {name!r} (targets: {known}).")
        event = Event(0, "test", utc_now_iso(), {"message": "A test notification from SoulSync."})
        return list(await asyncio.gather(*(self.deliver(t, event, 0) for t in targets)))

    async def overview(self) -> list[TargetStatus]:
        """Return each target with its shown URL, events, queue and delivery summary."""
        summaries = await self.log.summaries()
        return [TargetStatus(target.name, target.kind, target.shown_url, list(target.events),
                             self.pending(target.name),
                             **msgspec.structs.asdict(summaries.get(target.name, TargetSummary())))
                for target in self.targets()]


