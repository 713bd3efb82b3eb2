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
    ok: bool = False
    checked_at: float | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ServiceHealth:
    """Registry of health checks and their last results."""

    def __init__(self, timeout: float = CHECK_TIMEOUT, events: EventBus | None = None):
        self._events = events or EventBus()
        self._checks: dict[str, HealthCheck] = {}
        self._states: dict[str, HealthState] = {name: HealthState() for name in ALWAYS_LISTED}
        self._timeout = timeout

    def register(self, name: str, check: HealthCheck) -> None:
        """Add (or replace) the check of service ``name``; it is false until the check passes."""
        self._checks[name] = check
        self._states.setdefault(name, HealthState())

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

    def _store(self, name: str, state: HealthState) -> None:
        previous = self._states.get(name)
        if previous is None or previous.checked_at is None or previous.ok != state.ok:
            condition = ("up" if state.ok else f"down ({state.error})" if state.error
                         else "off (not configured)")
            log.info("service %s is %s", name, condition)
            # Changes only: the first look tells of a service that is down, not of one that is up.
            if (previous is not None and previous.checked_at is not None) or state.error is not None:
                self._events.publish("service.up" if state.ok else "service.down",
                                     {"service": name, "ok": state.ok, "reason": state.error})
        self._states[name] = state

    async def _run(self, name: str) -> HealthState:
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._checks[name]()
            if isinstance(result, Health):
                error = (result.message or "unhealthy") if not result.ok else None
                return HealthState(result.ok, time.time(), error, dict(result.details))
            return HealthState(bool(result), time.time(), None)
        except TimeoutError:
            return HealthState(False, time.time(), f"no answer within {self._timeout:g} s")
        except Exception as exc:
            return HealthState(False, time.time(), str(exc) or type(exc).__name__)

    async def run_forever(self, interval: float = CHECK_INTERVAL,
                          retry_interval: float = RETRY_INTERVAL) -> None:
        """Check all services now, then every ``interval`` seconds (``retry_interval`` while any
        checked service is down) until cancelled."""
        while True:
            await self.check_all()
            # A failed check carries an error; an unconfigured service is just false.
            down = any(self._states[name].error is not None for name in self._checks)
            await asyncio.sleep(retry_interval if down else interval)
