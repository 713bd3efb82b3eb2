"""POSTs to addresses users give us (a track request's ``notify_url``, later webhooks).

A user-given URL must not turn the daemon into a way to reach what only it can reach (the
NAS's own admin pages, the router, cloud metadata at 169.254.169.254). So:

* :func:`check_url` refuses anything but ``http``/``https`` with a host, and a host that is a
  literal address outside the public internet, unless private addresses are allowed;
* :func:`check_destination` also resolves the host name and refuses it when any of its
  addresses is not public (a bad URL is refused when it is given, with a message);
* :func:`guarded_session` builds the session posts go through: its resolver refuses such
  addresses again at connection time, so a name that resolves differently later (DNS
  rebinding) still cannot reach them;
* :func:`post_json` posts a JSON body with a timeout, retrying what may succeed later (no
  connection, a timeout, 5xx, 429) with exponential back-off, and never raises: the outcome
  is a :class:`DeliveryResult`. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from soulsync_core import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"SoulSync/{__version__}"
SCHEMES = ("http", "https")
# A Retry-After longer than this is not waited for (the retry uses the back-off instead).
MAX_RETRY_AFTER_SECONDS = 60.0
# How long checking a URL may wait for its host name to resolve.
RESOLVE_TIMEOUT_SECONDS = 5.0
# What of the receiver's answer is kept for the result (and the log).
ANSWER_PREVIEW_CHARS = 200

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AllowPrivate = bool | Callable[[], bool]
Sleep = Callable[[float], Awaitable[Any]]


class UrlRefused(ValueError):
    """The URL may not be posted to; ``str()`` says why and what would be accepted."""


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of :func:`post_json`.

    ``delivered`` is True when the receiver answered 2xx; ``status`` is the last HTTP status
    (None when no answer came); ``attempts`` counts the tries (0 when :func:`check_url`
    refused the URL); ``error`` says why it was not delivered (None when it was).
    """

    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def address_problem(address: IPAddress) -> str | None:
    """Return what kind of non-public address ``address`` is, None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
                       ("reserved", address.is_reserved), ("private", address.is_private)):
        if flag:
            return kind
    if not address.is_global:
        return "not publicly routable"
    return None


def _allowed(allow_private: AllowPrivate) -> bool:
    return allow_private() if callable(allow_private) else allow_private


def _refusal(host: str, address: str, kind: str) -> UrlRefused:
    shown = host if host == address else f"{host} ({address})"
    return UrlRefused(f"{shown} is a {kind} address; only public addresses are allowed "
                      "(the request.notify_allow_private setting allows local ones).")


def _host(url: str) -> str:
    """Return the URL's host after the scheme checks; raise UrlRefused."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UrlRefused(f"{url!r} is not a valid URL ({exc}).") from None
    if parts.scheme.lower() not in SCHEMES:
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise UrlRefused(f"The URL must start with http:// or https://, not {scheme}.")
    if not host:
        raise UrlRefused(f"{url!r} names no host; give e.g. https://bot.example.com/hook.")
    return host


def check_url(url: str, *, allow_private: bool) -> None:
    """Return None when ``url`` may be posted to as far as can be told without DNS.

    Raises UrlRefused for a scheme other than http/https, a missing host, and (unless
    ``allow_private``) a host that is a literal non-public address or ``localhost``.
    """
    host = _host(url)
    if allow_private:
        return
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise _refusal(host, host, "loopback")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    kind = address_problem(address)
    if kind:
        raise _refusal(host, host, kind)


async def check_destination(url: str, *, allow_private: bool,
                            resolver: AbstractResolver | None = None) -> None:
    """Return None when ``url`` passes :func:`check_url` and every address of its host is public.

    Raises UrlRefused naming the address, or when the host name does not resolve (within
    :data:`RESOLVE_TIMEOUT_SECONDS`). ``resolver`` (aiohttp's default when None) looks it up.
    """
    check_url(url, allow_private=allow_private)
    host = _host(url)
    if allow_private or _is_address(host):
        return  # a literal address: check_url judged it
    own = resolver is None
    resolver = resolver or DefaultResolver()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            results = await resolver.resolve(host, 0, socket.AF_UNSPEC)
    except TimeoutError:
        raise UrlRefused(f"The host {host} did not resolve within "
                         f"{RESOLVE_TIMEOUT_SECONDS:g} s.") from None
    except OSError as exc:
        raise UrlRefused(f"The host {host} could not be resolved ({exc.strerror or exc}).") from None
    finally:
        if own:
            await resolver.close()
    _check_results(host, results)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_results(host: str, results: list[ResolveResult]) -> None:
    for result in results:
        kind = address_problem(ipaddress.ip_address(result["host"].split("%", 1)[0]))
        if kind:
            raise _refusal(host, result["host"], kind)


class AddressRefused(OSError):
    """Raised by :class:`GuardedResolver` (aiohttp wraps it in a connection error)."""


class GuardedResolver(AbstractResolver):
    """A resolver that refuses host names with a non-public address (unless allowed)."""

    def __init__(self, allow_private: AllowPrivate, resolver: AbstractResolver | None = None):
        self._allow_private = allow_private
        self._resolver = resolver or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if not _allowed(self._allow_private):
            try:
                _check_results(host, results)
            except UrlRefused as exc:
                raise AddressRefused(str(exc)) from None
        return results

    async def close(self) -> None:
        await self._resolver.close()


def guarded_session(*, allow_private: AllowPrivate,
                    resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """Return a session for user-given URLs; ``allow_private`` (or a callable read on each
    connection, to follow a setting) lets it reach non-public addresses; ``resolver`` looks
    names up (aiohttp's default when None). Close it when done."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private, resolver))
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return value if 0 <= value <= MAX_RETRY_AFTER_SECONDS else None


async def post_json(session: aiohttp.ClientSession, url: str, body: Any, *,
                    allow_private: bool, headers: dict[str, str] | None = None,
                    timeout_seconds: float = 10.0, retries: int = 3, backoff: float = 1.0,
                    sleep: Sleep = asyncio.sleep) -> DeliveryResult:
    """POST ``body`` as JSON to ``url``; return how it went (never raises for the receiver's faults).

    ``body`` is encoded as JSON, unless it is ``bytes`` already holding the JSON (sent as they
    are, when a header signs those exact bytes).

    ``url`` is checked with :func:`check_url` first (use a :func:`guarded_session` so names
    are checked at connection time too). Each POST may take ``timeout_seconds``; one that got
    no answer, a 5xx or a 429 is tried again up to ``retries`` times, waiting ``backoff``
    seconds, then twice as long each time (a 429's Retry-After up to a minute instead). Other
    answers are final: 2xx delivered, 3xx and 4xx not.
    """
    try:
        check_url(url, allow_private=allow_private)
    except UrlRefused as exc:
        return DeliveryResult(False, 0, None, _redact(str(exc), url))
    payload: dict[str, Any] = {"json": body}
    if isinstance(body, bytes):
        payload = {"data": body}
        headers = {"Content-Type": "application/json", **(headers or {})}
    attempts = 0
    status: int | None = None
    error = ""
    wait = backoff
    while True:
        attempts += 1
        retry_after: float | None = None
        try:
            async with session.post(url, **payload, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as response:
                status = response.status
                text = (await response.text(errors="replace"))[:ANSWER_PREVIEW_CHARS]
                if 200 <= status < 300:
                    return DeliveryResult(True, attempts, status, None)
                error = f"the receiver answered HTTP {status}" + (f": {text}" if text else "")
                if status != 429 and status < 500:
                    return DeliveryResult(False, attempts, status, error)
                if status == 429:
                    retry_after = _retry_after(response)
        except TimeoutError:
            status, error = None, f"no answer within {timeout_seconds:g} s"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return DeliveryResult(False, attempts, None, _redact(str(exc.os_error), url))
            status, error = None, f"could not be reached ({exc.os_error.strerror or exc.os_error})"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a host name the IDNA codec refuses (a UnicodeError) escapes aiohttp.
            status, error = None, f"could not be reached ({exc or type(exc).__name__})"
        # Exception texts (aiohttp's InvalidURL is just the URL) and refusals may quote the
        # URL, whose path or query can hold the receiver's token: the result reaches the
        # delivery log, so only the origin stays.
        error = _redact(error, url)
        if attempts > retries:
            return DeliveryResult(False, attempts, status, error)
        log.info("POST to %s failed (%s); trying again", _origin(url), error)
        await sleep(retry_after if retry_after is not None else wait)
        wait *= 2


def _origin(url: str) -> str:
    """Return ``scheme://host[:port]`` of ``url``: logs leave out paths and queries, which may
    carry a receiver's token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _redact(text: str, url: str) -> str:
    """Return ``text`` with ``url`` (and its user info, path and query) cut to its origin."""
    try:
        parts = urlsplit(url)
        origin = _origin(url)
    except ValueError:  # not even splittable: nothing of it is shown
        return text.replace(url, "the URL")
    text = text.replace(url, origin + "/…")
    for piece in (parts.path + (f"?{parts.query}" if parts.query else ""), parts.query,
                  parts.username or "", parts.password or ""):
        if len(piece) > 1:
            text = text.replace(piece, "…")
    return text
