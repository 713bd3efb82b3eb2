"""Cached health of outside services, checked in the background, never per request.

``GET /system/status`` reads :meth:`ServiceHealth.snapshot`. A service is ``true`` only when it
has a check (a plugin that provides it is loaded and configured) and that check passed last
time it ran. The core always lists ``spotify``, ``soulseek`` and ``hydrabase`` so clients
written against the public server find the keys they expect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from soulsync_core.events import EventBus
from soulsync_core.models import Health

log = logging.getLogger(__name__)

ALWAYS_LISTED = ("spotify", "soulseek", "hydrabase")
CHECK_TIMEOUT = 10.0
CHECK_INTERVAL = 60.0
# A service that is down is checked again sooner, so that auto search (which skips services
# known to be down) takes it back soon after it recovers.
RETRY_INTERVAL = 15.0

# A check answers a bool, or a Health whose message says why it is down and whose details
# carry figures worth showing (a peer count).
HealthCheck = Callable[[], Awaitable[bool | Health]]


@dataclass
class HealthState:
    """One check's result; ``checked_at`` is when it answered, ``started_at`` when it began
    (what :meth:`ServiceHealth.is_current` compares with a settings change). Epoch seconds."""

    ok: bool = False
    checked_at: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None


class ServiceHealth:
    """Registry of health checks and their last results."""

    def __init__(self, timeout: float = CHECK_TIMEOUT, events: EventBus | None = None):
        self._events = events or EventBus()
        self._checks: dict[str, HealthCheck] = {}
        self._states: dict[str, HealthState] = {name: HealthState() for name in ALWAYS_LISTED}
        self._notes: dict[str, str] = {}
        self._timeout = timeout
        # When each service's settings last changed: a check begun before that says nothing
        # about the service as it is configured now.
        self._changed_at: dict[str, float] = {}
        self._rechecks: set[asyncio.Task[None]] = set()

    def register(self, name: str, check: HealthCheck) -> None:
        """Add (or replace) the check of service ``name``; it is false until the check passes."""
        self._checks[name] = check
        self._states.setdefault(name, HealthState())

    def note(self, name: str, text: str | None) -> None:
        """Attach ``text`` to service ``name`` as ``details.note`` (None removes it).

        For a problem SoulSync meets while using a service that its health check cannot see
        (slskd's folder is read-only for SoulSync); it stays through later checks and does not
        change whether the service counts as up.
        """
        state = self._states.setdefault(name, HealthState())
        if text is None:
            self._notes.pop(name, None)
            state.details.pop("note", None)
        else:
            self._notes[name] = text
            state.details["note"] = text

    def registered(self) -> set[str]:
        """Return the names of the services that have a check (a loaded plugin provides them)."""
        return set(self._checks)

    def snapshot(self) -> dict[str, bool]:
        """Return ``{service: healthy}`` from the cache, names sorted."""
        return {name: self._states[name].ok for name in sorted(self._states)}

    def states(self) -> dict[str, HealthState]:
        """Return the last result of every service, names sorted."""
        return {name: self._states[name] for name in sorted(self._states)}

    def state(self, name: str) -> HealthState:
        """Return the last result of one service (KeyError for an unknown name)."""
        return self._states[name]

    async def check_all(self) -> None:
        """Run every check concurrently, each bounded by the timeout, and cache the results."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        for name, state in zip(names, results, strict=True):
            self._store(name, state)

    async def check(self, name: str) -> None:
        """Run one service's check now and cache it (after its account logged in or out)."""
        if name in self._checks:
            self._store(name, await self._run(name))

    def recheck(self, name: str) -> None:
        """Note that the settings of ``name`` changed (URL, key, login) and check it again now,
        in the background: until that check ends, :meth:`is_current` is false for it."""
        self._changed_at[name] = time.time()
        if name in self._checks:
            task = asyncio.get_running_loop().create_task(self.check(name),
                                                          name=f"health recheck {name}")
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    def is_current(self, name: str) -> bool:
        """Return whether the last check of ``name`` began after its last settings change
        (false when it was never checked)."""
        state = self._states.get(name)
        if state is None or state.started_at is None:
            return False
        return state.started_at >= self._changed_at.get(name, 0.0)

    async def wait_rechecks(self) -> None:
        """Wait until the re-checks started by :meth:`recheck` have ended."""
        await asyncio.gather(*self._rechecks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the re-checks still running (at shutdown)."""
        for task in self._rechecks:
            task.cancel()
        await self.wait_rechecks()

    def _store(self, name: str, state: HealthState) -> None:
        previous = self._states.get(name)
        if previous is not None and (previous.started_at or 0.0) > (state.started_at or 0.0):
            return  # a newer check (after a settings change) already answered
        if previous is None or previous.checked_at is None or previous.ok != state.ok:
            condition = ("up" if state.ok else f"down ({state.error})" if state.error
                         else "off (not configured)")
            log.info("service %s is %s", name, condition)
            # Changes only: the first look tells of a service that is down, not of one that is up.
            if (previous is not None and previous.checked_at is not None) or state.error is not None:
                self._events.publish("service.up" if state.ok else "service.down",
                                     {"service": name, "ok": state.ok, "reason": state.error})
        if name in self._notes:
            state.details["note"] = self._notes[name]
        self._states[name] = state

    async def _run(self, name: str) -> HealthState:
        started = time.time()
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._checks[name]()
            if isinstance(result, Health):
                error = (result.message or "unhealthy") if not result.ok else None
                return HealthState(result.ok, time.time(), error, dict(result.details), started)
            return HealthState(bool(result), time.time(), None, started_at=started)
        except TimeoutError:
            return HealthState(False, time.time(), f"no answer within {self._timeout:g} s",
                               started_at=started)
        except Exception as exc:
            return HealthState(False, time.time(), str(exc) or type(exc).__name__,
                               started_at=started)

    async def run_forever(self, interval: Callable[[], float] = lambda: CHECK_INTERVAL,
                          retry_interval: Callable[[], float] = lambda: RETRY_INTERVAL) -> None:
        """Check all services now, then every ``interval()`` seconds (``retry_interval()`` while
        any checked service is down) until cancelled. Both are read before each pause, so a
        settings change applies from the next one."""
        while True:
            await self.check_all()
            # A failed check carries an error; an unconfigured service is just false.
            down = any(self._states[name].error is not None for name in self._checks)
            await asyncio.sleep(retry_interval() if down else interval())
