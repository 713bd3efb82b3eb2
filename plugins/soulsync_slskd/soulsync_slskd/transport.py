"""HTTP transport to slskd's ``/api/v0``: one session, the API key, timeouts, errors in words.

Settings are read on every request, so a new URL, key or timeout applies to the next call.
Every failure leaves this module as a :class:`ProviderError` (:class:`AuthFailed` for a refused
key, :class:`RateLimited` for a 429); no aiohttp exception escapes. The key travels only in the
``X-API-Key`` header and is never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from soulsync_core.hooks import (
    AuthFailed,
    NotConfigured,
    ProviderError,
    RateLimited,
    SettingsReader,
    retry_after_seconds,
)
from soulsync_core.http_body import read_bounded
from soulsync_slskd import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"SoulSync-slskd/{__version__}"
API = "/api/v0"
AUTH_MESSAGE = "slskd refused the API key (soulseek.api_key)"
# slskd answers 429 without Retry-After when another search or enqueue request is being
# started ("Only one concurrent operation is permitted"); that clears within seconds.
DEFAULT_RETRY_AFTER = 5.0
# The longest Retry-After obeyed (the provider cool-down cap): slskd's own 429s clear within
# seconds, and a proxy in front of it asking for hours must not stall downloads that long.
# soulseek.search_timeout bounds it further.
MAX_RETRY_AFTER = 120.0
MAX_DETAIL = 200


@dataclass
class Answer:
    """One answer of slskd: the status and the decoded JSON body (None when empty)."""

    status: int
    body: Any

    @property
    def detail(self) -> str:
        """slskd's error bodies are a bare message (a JSON string or text); return it short."""
        text = self.body if isinstance(self.body, str) else "" if self.body is None else str(self.body)
        return " ".join(text.split())[:MAX_DETAIL]


class SlskdTransport:
    """Sends requests to ``<soulseek.slskd_url>/api/v0<path>`` with the configured key."""

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        # The Date header of slskd's last answer (None before one), for the health list's
        # clock check: OAuth logins fail when this machine's clock is off.
        self.server_date: str | None = None

    async def start(self) -> None:
        """Open the HTTP session (no request is sent, so this cannot fail on a down slskd)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Close the HTTP session; :meth:`start` may open a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, str] | None = None,
                      allow: tuple[int, ...] = ()) -> Answer:
        """Send one request and return its answer when it is a 2xx or a status in ``allow``.

        Raises NotConfigured without URL or key, AuthFailed on 401, RateLimited on 429,
        ProviderError on any other status, a timeout, a refused or dropped connection, or a
        body that is not JSON.
        """
        if self._session is None:
            raise ProviderError("the slskd client is not started")
        base_url = self._settings.get("soulseek.slskd_url").rstrip("/")
        key = self._settings.get("soulseek.api_key")
        if not base_url or not key:
            raise NotConfigured("Soulseek is not configured: set soulseek.slskd_url and soulseek.api_key")
        timeout = self._settings.get("soulseek.timeout_seconds")
        try:
            async with self._session.request(
                    method, base_url + API + path, json=body, params=params,
                    headers={"X-API-Key": key},
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                raw = await read_bounded(response, "slskd")
                log.debug("%s %s -> HTTP %d", method, API + path, response.status)
                answer = Answer(response.status, _decode(raw, response.status))
                retry_after = response.headers.get("Retry-After")
                self.server_date = response.headers.get("Date") or self.server_date
        except TimeoutError:
            raise ProviderError(f"slskd did not answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"slskd could not be reached at {base_url}: {_describe(exc)}") from None
        if 200 <= answer.status < 300 or answer.status in allow:
            return answer
        raise _error(answer, retry_after, min(MAX_RETRY_AFTER,
                                              float(self._settings.get("soulseek.search_timeout"))))


def _decode(raw: bytes, status: int) -> Any:
    """Return the JSON body, None when empty, the text when an error body is plain text."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if 200 <= status < 300:
            raise ProviderError("slskd answered with a body that is not JSON") from None
        return raw.decode("utf-8", "replace")


def _error(answer: Answer, retry_after: str | None, longest_wait: float) -> ProviderError:
    """Return the error an unexpected status stands for (a 429's wait at most ``longest_wait``)."""
    status, detail = answer.status, answer.detail
    if status == 401:
        return AuthFailed(AUTH_MESSAGE)
    if status == 403:
        return ProviderError("slskd answered HTTP 403: the API key needs the ReadWrite role, "
                             "or slskd runs as a relay agent")
    if status == 429:
        asked = retry_after_seconds(retry_after, DEFAULT_RETRY_AFTER)
        seconds = min(asked, longest_wait)
        capped = f" (it asked for {asked:g} s)" if seconds < asked else ""
        return RateLimited(f"slskd is busy ({detail or 'HTTP 429'}); retry in {seconds:g} s{capped}",
                           seconds)
    return ProviderError(f"slskd answered HTTP {status}" + (f": {detail}" if detail else ""))


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused (is slskd running, and is soulseek.slskd_url right?)"
        return f"connection failed ({exc.os_error.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__
