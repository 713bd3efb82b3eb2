"""Metadata search across providers: explicit sources, the ``auto`` chain, cool-downs.

``auto`` walks ``search.auto_order`` and answers with the first provider that is configured,
not known to be unhealthy, not cooling down after a 429, answers within
``search.timeout_seconds`` and returns at least one result. A provider that fails is skipped
with a log line, never a 500. When sources answered but found nothing the answer is empty;
when no source could be asked at all (none installed, all down, cooling down or unconfigured)
it raises :class:`NoSourceAvailable` with the reason of each. An explicit source answers even
with no results, or raises :class:`SourceUnavailable` naming what is wrong.

"Known to be unhealthy" means its last health check failed *and* began after the provider's
settings last changed: a provider just configured is asked at once, not after the next check.
A 429's ``Retry-After`` starts a cool-down of at most ``search.max_cooldown_seconds``, so one
huge value cannot take a source away for hours after it recovered.
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


class NoSourceAvailable(SourceUnavailable):
    """``auto`` could ask no source; ``reasons`` maps each source in the order to why."""

    def __init__(self, reasons: dict[str, str]):
        detail = "; ".join(f"{name}: {why}" for name, why in reasons.items()) or (
            "search.auto_order names no metadata source")
        super().__init__(AUTO, f"no metadata source could be asked ({detail})")
        self.reasons = reasons


def capped_cooldown(retry_after: float, settings: SettingsReader) -> float:
    """Return how long to leave a source out after a 429 asking for ``retry_after`` seconds:
    at least 1 s, at most ``search.max_cooldown_seconds``."""
    return min(max(1.0, retry_after), settings.get("search.max_cooldown_seconds"))


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

    def _known_unhealthy(self, name: str) -> str | None:
        """Return why ``name`` is down by a check made since its settings last changed, or None."""
        try:
            state = self._health.state(name)
        except KeyError:
            return None
        if state.ok or not self._health.is_current(name):
            return None
        return f"it is down ({state.error})" if state.error else "its last health check failed"

    def check_order(self, order: list[str]) -> str | None:
        """Return what is wrong with a ``search.auto_order`` value (names no installed provider),
        or None; an empty one is refused by the setting's own check."""
        for name in order:
            if name not in self._providers:
                installed = ", ".join(self.names()) or "none"
                return (f"{name!r} is not an installed metadata source "
                        f"(installed: {installed}).")
        return None

    async def call(self, name: str, method: str, *args: Any) -> Any:
        """Call ``method`` of provider ``name`` within the timeout; 429s start a cool-down.

        Raises UnknownSource when no provider is called ``name`` (its plugin is not installed),
        SourceUnavailable when the provider is blocked, fails, or is too slow.
        """
        self.provider(name)
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
            wait = capped_cooldown(exc.retry_after, self._settings)
            self._cooldown_until[name] = self._clock() + wait
            log.warning("%s is rate limited (Retry-After %.0f s); skipping it for %.0f s", name,
                        exc.retry_after, wait)
            raise SourceUnavailable(name, f"it is rate limited for {wait:.0f} seconds") from exc
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

        For ``auto`` with sources that answered but found nothing the name is ``auto``. Raises
        UnknownSource; for an explicit source SourceUnavailable; for ``auto`` when no source
        answered at all NoSourceAvailable.
        """
        method = f"search_{kind}"
        if source != AUTO:
            return (await self.call(source, method, query, limit))[:limit], source
        reasons: dict[str, str] = {}
        answered = False
        for name in self._settings.get("search.auto_order"):
            if name not in self._providers:
                reasons[name] = "it is not installed"
                continue
            reason = self._blocked(name) or self._known_unhealthy(name)
            if reason:
                log.debug("auto search skips %s: %s", name, reason)
                reasons[name] = reason
                continue
            try:
                results = await self.call(name, method, query, limit)
            except SourceUnavailable as exc:
                log.info("auto search skips %s: %s", name, exc.reason)
                reasons[name] = exc.reason
                continue
            answered = True
            if results:
                return results[:limit], name
        if not answered:
            raise NoSourceAvailable(reasons)
        return [], AUTO
