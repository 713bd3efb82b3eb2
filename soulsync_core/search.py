"""Metadata search across providers: explicit sources, the ``auto`` chain, cool-downs.

``auto`` walks ``search.auto_order`` and answers with the first provider that is configured,
not known to be unhealthy, not cooling down after a 429, answers within
``search.timeout_seconds`` and returns at least one result. A provider that fails is skipped
with a log line, never a 500. An explicit source answers even with no results, or raises
:class:`SourceUnavailable` naming what is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from soulsync_core.health import ServiceHealth
from soulsync_core.hooks import MetadataProvider, ProviderError, RateLimited, SettingsReader
from soulsync_core.metrics import Metrics

log = logging.getLogger(__name__)

Kind = Literal["tracks", "albums", "artists"]
AUTO = "auto"


class UnknownSource(ValueError):
    """``source`` names no registered provider; the message lists the valid ones."""


class SourceUnavailable(Exception):
    """An explicitly requested source cannot answer now; the message says why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} is unavailable: {reason}")
        self.name = name
        self.reason = reason


class MetadataSearch:
    """Routes searches to metadata providers."""

    def __init__(self, providers: Sequence[MetadataProvider], settings: SettingsReader,
                 health: ServiceHealth, clock: Callable[[], float] = time.monotonic,
                 metrics: Metrics | None = None):
        self._providers = {p.name: p for p in providers}
        self._metrics = metrics or Metrics()
        for name in self._providers:
            self._metrics.provider_known(name)
        self._settings = settings
        self._health = health
        self._clock = clock
        self._cooldown_until: dict[str, float] = {}

    def names(self) -> list[str]:
        """Return the registered provider names, sorted."""
        return sorted(self._providers)

    def providers(self) -> list[MetadataProvider]:
        """Return the registered providers, in registration order."""
        return list(self._providers.values())

    def provider(self, name: str) -> MetadataProvider:
        """Return the provider called ``name``; raise UnknownSource otherwise."""
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownSource(self._unknown_message(name)) from None

    def _unknown_message(self, name: str) -> str:
        valid = ", ".join([AUTO, *self.names()])
        return f"source must be one of {valid}; {name!r} is not a registered source."

    def cooldown_left(self, name: str) -> float:
        """Return the seconds ``name`` still cools down after a 429 (0 when it does not)."""
        return max(0.0, self._cooldown_until.get(name, 0.0) - self._clock())

    def _blocked(self, name: str) -> str | None:
        """Return why ``name`` must not be asked now, or None."""
        provider = self._providers[name]
        if not provider.configured:
            return "it is not configured (see its settings section)"
        left = self.cooldown_left(name)
        if left > 0:
            return f"it is rate limited for {left:.0f} more seconds"
        return None

    def _known_unhealthy(self, name: str) -> bool:
        try:
            state = self._health.state(name)
        except KeyError:
            return False
        return state.checked_at is not None and not state.ok

    async def call(self, name: str, method: str, *args: Any) -> Any:
        """Call ``method`` of provider ``name`` within the timeout; 429s start a cool-down.

        Raises SourceUnavailable when the provider is blocked, fails, or is too slow.
        """
        reason = self._blocked(name)
        if reason:
            raise SourceUnavailable(name, reason)
        timeout = self._settings.get("search.timeout_seconds")
        self._metrics.provider_calls.labels(name).inc()
        try:
            async with asyncio.timeout(timeout):
                return await getattr(self._providers[name], method)(*args)
        except RateLimited as exc:
            self._metrics.provider_failed(name, rate_limited=True)
            self._cooldown_until[name] = self._clock() + max(1.0, exc.retry_after)
            log.warning("%s is rate limited; skipping it for %.0f s", name, exc.retry_after)
            raise SourceUnavailable(name, f"it is rate limited for {exc.retry_after:.0f} seconds") from exc
        except TimeoutError:
            self._metrics.provider_failed(name)
            raise SourceUnavailable(name, f"it did not answer within {timeout:g} s") from None
        except ProviderError as exc:
            self._metrics.provider_failed(name)
            raise SourceUnavailable(name, str(exc)) from exc
        except Exception as exc:
            self._metrics.provider_failed(name)
            log.exception("%s.%s failed unexpectedly", name, method)
            raise SourceUnavailable(name, f"it failed unexpectedly ({type(exc).__name__})") from exc

    async def search(self, kind: Kind, query: str, limit: int, source: str = AUTO) -> tuple[list[Any], str]:
        """Return ``(results, name of the source that answered)``.

        For ``auto`` with nothing found anywhere the name is ``auto``. Raises UnknownSource or,
        for an explicit source, SourceUnavailable.
        """
        method = f"search_{kind}"
        if source != AUTO:
            self.provider(source)
            return (await self.call(source, method, query, limit))[:limit], source
        for name in self._settings.get("search.auto_order"):
            if name not in self._providers:
                continue
            if self._blocked(name) or self._known_unhealthy(name):
                log.debug("auto search skips %s: %s", name, self._blocked(name) or "unhealthy")
                continue
            try:
                results = await self.call(name, method, query, limit)
            except SourceUnavailable as exc:
                log.info("auto search skips %s: %s", name, exc.reason)
                continue
            if results:
                return results[:limit], name
        return [], AUTO
