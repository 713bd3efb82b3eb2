"""HTTP transport to TIDAL: one session, an outbound limiter, JSON:API errors in words.

Settings are read on every request, so a new address, country or rate applies to the next
call without a restart. Every failure leaves this module as a :class:`ProviderError`
(:class:`RateLimited` for a 429, never slept through); no aiohttp exception escapes.
Tokens are sent, never logged.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter
from yarl import URL

from soulsync_core.hooks import ProviderError, RateLimited, SettingsReader, retry_after_seconds
from soulsync_core.http_body import read_bounded
from soulsync_tidal import __version__

log = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
USER_AGENT = f"SoulSync-TIDAL/{__version__}"
# TIDAL documents no Retry-After; SoulSync backs off 10 s when the header is missing.
DEFAULT_RETRY_AFTER = 10.0

Json = dict[str, Any]


class TidalNotFound(ProviderError, LookupError):
    """TIDAL has no such object (HTTP 404): a LookupError for playlists, a ProviderError else."""


class Unauthorized(ProviderError):
    """TIDAL refused the access token (HTTP 401); the caller renews it and asks once more."""


class TokenRefused(ProviderError):
    """The token endpoint refused a grant (HTTP 400/401); ``error`` is the OAuth error code."""

    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class TidalHttp:
    """GETs JSON:API documents from the API and POSTs grants to the token endpoint."""

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        # The Date header of TIDAL's last answer (None before one), for the health list's clock
        # check: TIDAL refuses tokens when this machine's clock is off.
        self.server_date: str | None = None
        self._limiter: AsyncLimiter | None = None

    async def start(self) -> None:
        """Open the shared HTTP session (no request is sent)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Close the shared session; :meth:`start` may open a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def _session_for_call(self) -> AsyncIterator[aiohttp.ClientSession]:
        # Logins work without start() (the CLI runs them): such a call gets its own session.
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session:
            yield session

    def _limiter_now(self) -> AsyncLimiter:
        # Rebuilt when the setting changes; the new bucket starts empty.
        rate = self._settings.get("tidal.requests_per_second")
        if self._limiter is None or self._limiter.max_rate != rate:
            self._limiter = AsyncLimiter(rate, 1)
        return self._limiter

    def api_url(self, path: str, params: Mapping[str, str] | None = None) -> URL:
        """Return ``<api_url><path>`` with ``params`` and ``countryCode`` added.

        ``path`` is a path under the API (already percent-encoded, as ``links.next`` are) or an
        absolute address; a ``countryCode`` it already carries is kept.
        """
        if path.startswith(("http://", "https://")):
            url = URL(path, encoded=True)
        else:
            url = URL(self._settings.get("tidal.api_url").rstrip("/") + path, encoded=True)
        if params:
            url = url.update_query(dict(params))
        if "countryCode" not in url.query:
            url = url.update_query(countryCode=self._settings.get("tidal.country_code"))
        return url

    async def get(self, url: URL, token: str) -> Json:
        """Return the JSON:API document at ``url`` (see :meth:`api_url`), fetched with ``token``.

        Waits for the outbound limiter first. Raises Unauthorized (401), TidalNotFound (404),
        RateLimited (429), ProviderError for anything else that is not a JSON object.
        """
        timeout = self._settings.get("tidal.timeout_seconds")
        headers = {"Accept": JSON_API, "Authorization": f"Bearer {token}"}
        await self._limiter_now().acquire()
        try:
            async with self._session_for_call() as session, session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                body = await read_bounded(response, "TIDAL")
                self.server_date = response.headers.get("Date") or self.server_date
                log.debug("GET %s -> HTTP %d", url.path, response.status)
                return _document(response.status, response.headers, body)
        except TimeoutError:
            raise ProviderError(f"TIDAL did not answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"TIDAL could not be reached at {url.origin()}: {_describe(exc)}") from None

    async def post_token(self, form: Mapping[str, str],
                         basic_auth: tuple[str, str] | None = None) -> Json:
        """POST ``form`` to ``<auth_url>/token`` and return the token answer.

        ``basic_auth`` is ``(client id, client secret)``, sent as HTTP Basic authentication.

        Raises TokenRefused for a 400/401 (the OAuth ``error`` and ``error_description``),
        RateLimited for a 429, ProviderError for anything else that is not a JSON object with an
        ``access_token``.
        """
        url = self._settings.get("tidal.auth_url").rstrip("/") + "/token"
        timeout = self._settings.get("tidal.timeout_seconds")
        headers = {}
        if basic_auth is not None:
            pair = base64.b64encode(":".join(basic_auth).encode()).decode("ascii")
            headers["Authorization"] = f"Basic {pair}"
        try:
            async with self._session_for_call() as session, session.post(
                    url, data=dict(form), headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                body = await read_bounded(response, "TIDAL's login service")
                self.server_date = response.headers.get("Date") or self.server_date
                log.debug("POST token (%s) -> HTTP %d", form.get("grant_type"), response.status)
                status, headers = response.status, response.headers
        except TimeoutError:
            raise ProviderError(f"TIDAL's login service did not answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"TIDAL's login service could not be reached at "
                                f"{URL(url).origin()}: {_describe(exc)}") from None
        decoded = _decode(body)
        if status == 429:
            raise _rate_limited(headers)
        if status in (400, 401):
            answer = decoded if isinstance(decoded, dict) else {}
            raise TokenRefused(str(answer.get("error") or f"HTTP {status}"),
                               str(answer.get("error_description") or ""))
        if status != 200:
            raise ProviderError(f"TIDAL's login service answered HTTP {status}")
        if not isinstance(decoded, dict) or not isinstance(decoded.get("access_token"), str):
            raise ProviderError("TIDAL's login service answered without an access token")
        return decoded


def _document(status: int, headers: Mapping[str, str], body: bytes) -> Json:
    """Turn one API answer into its JSON:API document or the error it stands for."""
    if status == 429:
        raise _rate_limited(headers)
    decoded = _decode(body)
    detail = _error_detail(decoded)
    if status == 401:
        raise Unauthorized(f"TIDAL refused the access token ({detail or 'HTTP 401'})")
    if status == 404:
        raise TidalNotFound(f"TIDAL does not know it ({detail or 'HTTP 404'})")
    if status >= 400 or status < 200:
        raise ProviderError(f"TIDAL answered HTTP {status}" + (f": {detail}" if detail else ""))
    if not isinstance(decoded, dict):
        raise ProviderError("TIDAL answered with a body that is not a JSON object")
    return decoded


def _rate_limited(headers: Mapping[str, str]) -> RateLimited:
    retry_after = retry_after_seconds(headers.get("Retry-After"), DEFAULT_RETRY_AFTER)
    return RateLimited(f"TIDAL is throttling requests (HTTP 429); retry in {retry_after:.0f} s",
                       retry_after)


def _error_detail(decoded: Any) -> str:
    """Return ``errors[0].detail`` of a JSON:API error document ("" when there is none)."""
    if isinstance(decoded, dict) and isinstance(decoded.get("errors"), list) and decoded["errors"]:
        first = decoded["errors"][0]
        if isinstance(first, dict):
            return str(first.get("detail") or first.get("code") or "")
    return ""


def _decode(body: bytes) -> Any:
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
