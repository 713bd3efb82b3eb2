"""HTTP transport to the iTunes Search API: one session, an outbound limiter, errors in words.

Settings are read on every request, so a new base URL, country or rate applies to the next
call without a restart. Every failure leaves this module as a :class:`ProviderError`
(:class:`RateLimited` for throttling); no aiohttp exception escapes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter

from soulsync_core.hooks import ProviderError, RateLimited, SettingsReader, retry_after_seconds
from soulsync_core.http_body import read_bounded
from soulsync_itunes import __version__

log = logging.getLogger(__name__)

# Apple throttles without a Retry-After header; SoulSync waits a minute after a 403.
DEFAULT_RETRY_AFTER = 60.0
USER_AGENT = f"SoulSync-iTunes/{__version__}"

Row = dict[str, Any]


class ITunesClient:
    """GETs ``/search`` and ``/lookup`` and returns their ``results`` rows."""

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._limiter: AsyncLimiter | None = None

    async def start(self) -> None:
        """Open the HTTP session (no request is sent, so this cannot fail on a down service)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Close the HTTP session; :meth:`start` may open a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _limiter_now(self) -> AsyncLimiter:
        # Rebuilt when the setting changes; the new bucket starts empty, so at most one burst
        # of the new size follows a change.
        rate = self._settings.get("itunes.requests_per_minute")
        if self._limiter is None or self._limiter.max_rate != rate:
            self._limiter = AsyncLimiter(rate, 60)
        return self._limiter

    async def get(self, path: str, params: Mapping[str, str | int]) -> list[Row]:
        """Return the ``results`` rows of ``GET <base_url><path>?<params>&country=<country>``.

        Waits for the outbound limiter first (unbounded here; the core's search timeout bounds
        it). Raises RateLimited on 429/403, ProviderError on anything else that is not a 200
        with a JSON object holding a ``results`` list.
        """
        if self._session is None:
            raise ProviderError("the iTunes client is not started")
        base_url = self._settings.get("itunes.base_url").rstrip("/")
        timeout = self._settings.get("itunes.timeout_seconds")
        query = {**{k: str(v) for k, v in params.items()},
                 "country": self._settings.get("itunes.country")}
        await self._limiter_now().acquire()
        try:
            async with self._session.get(base_url + path, params=query,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                body = await read_bounded(response, "iTunes")
                log.debug("GET %s%s -> HTTP %d", base_url, path, response.status)
                return _results(response.status, response.headers, body)
        except TimeoutError:
            raise ProviderError(f"iTunes did not answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"iTunes could not be reached at {base_url}: {_describe(exc)}") from None


def _results(status: int, headers: Mapping[str, str], body: bytes) -> list[Row]:
    """Turn one answer into its rows or the error it stands for."""
    if status == 429 or status == 403:
        # Apple answers 403 (sometimes 429) when throttling, usually without Retry-After.
        retry_after = retry_after_seconds(headers.get("Retry-After"), DEFAULT_RETRY_AFTER)
        raise RateLimited(f"iTunes is throttling requests (HTTP {status}); "
                          f"retry in {retry_after:.0f} s", retry_after)
    decoded = _decode(body)
    if status == 400 and isinstance(decoded, dict) and decoded.get("errorMessage"):
        raise ProviderError(f"iTunes rejected the request: {decoded['errorMessage']}")
    if status != 200:
        raise ProviderError(f"iTunes answered HTTP {status}")
    # iTunes labels JSON as text/javascript, so the body is parsed whatever its content type.
    if decoded is None:
        raise ProviderError("iTunes answered with a body that is not JSON")
    results = decoded.get("results") if isinstance(decoded, dict) else None
    if not isinstance(results, list):
        raise ProviderError("iTunes answered JSON without a results list")
    return [row for row in results if isinstance(row, dict)]


def _decode(body: bytes) -> Any:
    """Return the parsed JSON body, or None when it is empty or not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__
