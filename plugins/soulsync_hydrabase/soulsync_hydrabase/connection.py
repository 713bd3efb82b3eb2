"""One persistent WebSocket to a Hydrabase node, shared by every request.

A manager task owns the socket: it connects, serves it until it drops (or the URL or key
changes), then reconnects with exponential back-off. While connected, a reader task answers
the node's JSON pings, counts its peers and hands each reply to the request waiting for that
nonce. Requests never touch the socket's lifecycle; they send a frame and wait on a future.

Every failure leaves this module as a :class:`ProviderError` (:class:`AuthFailed` when the node
refuses the key, :class:`NotConfigured` without a URL); no aiohttp exception escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter

from soulsync_core.hooks import AuthFailed, NotConfigured, ProviderError, SettingsReader
from soulsync_hydrabase import __version__
from soulsync_hydrabase.settings import API_KEY, CONNECTION_KEYS, TIMEOUT, URL

log = logging.getLogger(__name__)

USER_AGENT = f"SoulSync-Hydrabase/{__version__}"

# The node's own frames carry a per-connection counter from 0 as nonce; our nonces are drawn
# from [2**32, 2**53) so they can never meet that counter (and stay exact in JavaScript).
NONCE_LOW, NONCE_HIGH = 2**32, 2**53
# No published rate limit exists. Each query fans out to every peer of the node and takes
# seconds, so a handful in flight at once and a modest send rate are plenty and polite.
MAX_IN_FLIGHT = 4
REQUESTS_PER_SECOND = 10
# aiohttp's WebSocket-level ping notices a half-open TCP connection; it is unrelated to
# Hydrabase's JSON ping, which the node sends every 60 s and which we answer below.
HEARTBEAT_SECONDS = 30.0
CLOSE_TIMEOUT = 2.0
# Health waits this long (at most) for a connection attempt that is under way.
HEALTH_WAIT = 5.0

Row = dict[str, Any]


class State(enum.Enum):
    IDLE = "idle"              # no URL: nothing to connect to
    CONNECTING = "connecting"  # a handshake is under way
    CONNECTED = "connected"
    WAITING = "waiting"        # the last attempt failed or the socket dropped; a retry is due
    CLOSED = "closed"          # not started, or close() was called


@dataclass(frozen=True)
class Status:
    """A snapshot for health reports. ``error`` says why the node is not connected."""

    state: State
    url: str
    peers: int
    node: str | None
    error: ProviderError | None
    retry_in: float | None


class HydrabaseConnection:
    """The socket, its manager and reader tasks, and the requests waiting for replies.

    ``backoff_initial``/``backoff_max`` bound the wait between connection attempts (it doubles
    after each failure and resets after a successful connect; a refused key waits the maximum,
    since only a settings change fixes it, and a settings change cuts any wait short).
    """

    def __init__(self, settings: SettingsReader, *, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0, connect_timeout: float = 10.0):
        self._settings = settings
        self.last_failure: str | None = None
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = backoff_initial
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._manager: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[int, tuple[asyncio.Future[list[Row]], aiohttp.ClientWebSocketResponse]] = {}
        self._state = State.CLOSED
        self._settled = asyncio.Event()      # set whenever no handshake is under way
        self._settled.set()
        self._wake = asyncio.Event()         # the URL or key changed: reconnect now
        self._generation = 0                 # bumped by each such change
        self._error: ProviderError | None = None
        self._retry_at: float | None = None
        self._peers = 0
        self._node: str | None = None
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._limiter = AsyncLimiter(REQUESTS_PER_SECOND, 1)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the manager task and return at once; connecting happens in the background."""
        if self._manager is not None:
            return
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            # The handshake is bounded by connect_timeout below; a total timeout would also
            # cut the long-lived socket.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout))
        self._enter(State.CONNECTING if self._url() else State.IDLE)
        self._manager = asyncio.create_task(self._run(), name="hydrabase connection manager")

    async def close(self) -> None:
        """Stop the manager, close the socket, fail waiting requests, close the session."""
        manager, self._manager = self._manager, None
        # Forgetting the socket first keeps the manager's clean-up from reporting a lost
        # connection; it still closes the socket and fails what was sent on it.
        self._ws = None
        self._enter(State.CLOSED)
        if manager is not None:
            manager.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await manager
        self._fail_pending(None, "the Hydrabase client was closed")
        if self._session is not None:
            await self._session.close()
            self._session = None

    def settings_changed(self, changed: dict[str, Any]) -> None:
        """Settings listener: a new URL or key drops the socket and reconnects at once.

        Requests made after this returns wait for the new connection instead of using the old
        socket, which the manager closes.
        """
        if not CONNECTION_KEYS & changed.keys():
            return
        self._generation += 1
        self._backoff = self._backoff_initial
        self._error = None
        self._ws = None
        if self._manager is not None:
            self._enter(State.CONNECTING if self._url() else State.IDLE)
        self._wake.set()

    def status(self) -> Status:
        """Return the connection's current state (no I/O)."""
        retry_in = None
        if self._state is State.WAITING and self._retry_at is not None:
            retry_in = max(0.0, self._retry_at - time.monotonic())
        return Status(self._state, self._url(), self._peers, self._node, self._error, retry_in)

    async def settle(self) -> None:
        """Wait (at most a few seconds) until no connection attempt is under way."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(HEALTH_WAIT, self._connect_timeout)):
                await self._settled.wait()

    # --- requests ----------------------------------------------------------------------------

    async def request(self, kind: str, query: str) -> list[Row]:
        """Send ``{"nonce", "request": {"type": kind, "query": query}}``; return the reply's rows.

        Waits for a free slot and the send-rate limiter first (the core's timeout bounds that),
        then up to ``hydrabase.timeout_seconds`` for a connection under way and the answer.
        Raises NotConfigured, AuthFailed, or ProviderError (not connected, socket lost, no
        answer in time: the node never answers a request type it does not know). Why the
        last request failed stays in ``last_failure`` (None after one that was answered).
        """
        try:
            rows = await self._request(kind, query)
        except ProviderError as exc:
            self.last_failure = str(exc)
            raise
        self.last_failure = None
        return rows

    async def _request(self, kind: str, query: str) -> list[Row]:
        timeout = self._settings.get(TIMEOUT)
        async with self._in_flight:
            await self._limiter.acquire()
            try:
                async with asyncio.timeout(timeout):
                    ws = await self._ready_socket()
                    return await self._exchange(ws, kind, query)
            except TimeoutError:
                if self._state is State.CONNECTING:
                    raise ProviderError(
                        f"Hydrabase at {self._url()} did not accept the connection within "
                        f"{timeout:g} s") from None
                raise ProviderError(f"Hydrabase did not answer within {timeout:g} s") from None

    async def _ready_socket(self) -> aiohttp.ClientWebSocketResponse:
        """Return the open socket, waiting for an attempt under way; raise why there is none."""
        if not self._url():
            raise NotConfigured("Hydrabase is not configured: set hydrabase.url")
        if self._state is State.CONNECTING:
            await self._settled.wait()
        if self._state is State.CONNECTED and self._ws is not None:
            return self._ws
        if self._state is State.CLOSED:
            raise ProviderError("the Hydrabase client is not started")
        if isinstance(self._error, AuthFailed):
            raise AuthFailed(str(self._error))
        raise ProviderError(self._not_connected_message())

    def _not_connected_message(self) -> str:
        status = self.status()
        text = f"Hydrabase is not connected ({status.error or 'no connection yet'})"
        if status.retry_in is not None:
            text += f"; next attempt in {status.retry_in:.0f} s"
        return text

    async def _exchange(self, ws: aiohttp.ClientWebSocketResponse, kind: str, query: str) -> list[Row]:
        nonce = secrets.randbelow(NONCE_HIGH - NONCE_LOW) + NONCE_LOW
        while nonce in self._pending:
            nonce = secrets.randbelow(NONCE_HIGH - NONCE_LOW) + NONCE_LOW
        future: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        # Registered before the send, so a reply (or a drop) cannot slip past the future.
        self._pending[nonce] = (future, ws)
        try:
            try:
                await ws.send_str(json.dumps({"nonce": nonce, "request": {"type": kind, "query": query}}))
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                raise ProviderError("the connection to Hydrabase was lost before the request "
                                    "could be sent") from None
            return await future
        finally:
            self._pending.pop(nonce, None)

    def _fail_pending(self, ws: aiohttp.ClientWebSocketResponse | None, reason: str) -> None:
        """Fail the requests sent on ``ws`` (every request when None) with ``reason``."""
        for future, sent_on in list(self._pending.values()):
            if (ws is None or sent_on is ws) and not future.done():
                future.set_exception(ProviderError(reason))

    # --- the manager -------------------------------------------------------------------------

    def _url(self) -> str:
        return (self._settings.get(URL) or "").strip()

    def _enter(self, state: State) -> None:
        self._state = state
        if state is State.CONNECTING:
            self._settled.clear()
        else:
            self._settled.set()

    async def _run(self) -> None:
        """Connect, serve, and reconnect with back-off until cancelled."""
        while True:
            self._wake.clear()
            generation = self._generation
            url = self._url()
            if not url:
                self._enter(State.IDLE)
                await self._wake.wait()
                continue
            self._enter(State.CONNECTING)
            try:
                ws = await self._connect(url)
            except ProviderError as exc:
                self._failed(url, exc)
            else:
                if generation != self._generation:
                    # The URL or key changed during the handshake: this socket is stale.
                    await _close_quietly(ws)
                    continue
                self._backoff = self._backoff_initial
                await self._serve(ws, url)
            if self._wake.is_set():
                continue
            await self._wait_before_retry()

    async def _wait_before_retry(self) -> None:
        refused = isinstance(self._error, AuthFailed)
        delay = self._backoff_max if refused else self._backoff
        self._retry_at = time.monotonic() + delay
        self._enter(State.WAITING)
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            self._backoff = min(self._backoff * 2, self._backoff_max)
        finally:
            self._retry_at = None

    def _failed(self, url: str, exc: ProviderError) -> None:
        if str(exc) != str(self._error):
            # Logged once per distinct failure, not on every retry.
            log.warning("Hydrabase at %s: %s", url, exc)
        self._error = exc

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        """Open the socket; raise AuthFailed or ProviderError saying why it did not open."""
        assert self._session is not None
        key = self._settings.get(API_KEY)
        headers = {"x-api-key": key} if key else {}
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._session.ws_connect(
                    url, headers=headers, heartbeat=HEARTBEAT_SECONDS,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CLOSE_TIMEOUT))
        except aiohttp.WSServerHandshakeError as exc:
            raise _handshake_error(exc.status, bool(key)) from None
        except TimeoutError:
            raise ProviderError(f"Hydrabase at {url} did not accept the connection within "
                                f"{self._connect_timeout:g} s") from None
        except (aiohttp.InvalidURL, ValueError):
            raise ProviderError(f"hydrabase.url {url!r} is not a valid WebSocket URL") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"Hydrabase could not be reached at {url}: {_describe(exc)}") from None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        """Run the reader until the socket is gone or a settings change asks to reconnect."""
        self._ws = ws
        self._peers = 0
        self._node = None
        self._error = None
        self._enter(State.CONNECTED)
        log.info("connected to Hydrabase at %s", url)
        reader = asyncio.create_task(self._read(ws), name="hydrabase reader")
        woken = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait({reader, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            await _close_quietly(ws)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self._socket_gone(ws, "the connection to Hydrabase was lost before it answered")

    def _socket_gone(self, ws: aiohttp.ClientWebSocketResponse, reason: str) -> None:
        """Forget ``ws`` (when still current) and fail the requests sent on it."""
        if self._ws is ws:
            self._ws = None
            self._peers = 0
            self._error = ProviderError("the connection was lost")
            if self._state is State.CONNECTED:
                self._enter(State.WAITING)
            log.warning("the connection to Hydrabase was lost; reconnecting")
        self._fail_pending(ws, reason)

    # --- the reader --------------------------------------------------------------------------

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Handle frames until the socket closes; drop state as soon as it does."""
        try:
            while True:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self._handle(ws, message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await self._handle(ws, message.data.decode("utf-8", "replace"))
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                      aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return
        finally:
            # Synchronously, before any other task can pick the dead socket for a request.
            self._socket_gone(ws, "the connection to Hydrabase was lost before it answered")

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            log.debug("ignoring a Hydrabase frame that is not JSON")
            return
        if not isinstance(frame, dict):
            return
        nonce = frame.get("nonce")
        if "response" in frame:
            # Only a frame with a response key is a reply; the node's own frames (pings,
            # stats) carry its small counter as nonce and must never resolve a request.
            entry = self._pending.get(nonce) if isinstance(nonce, int) else None
            if entry is not None and not entry[0].done():
                try:
                    entry[0].set_result(_rows(frame["response"]))
                except ProviderError as exc:
                    entry[0].set_exception(exc)
            return
        if isinstance(frame.get("ping"), dict):
            await self._pong(ws, nonce)
        elif isinstance(frame.get("stats_peers"), list):
            self._peers = len(frame["stats_peers"])
        elif isinstance(frame.get("stats"), dict) and "connectedPeers" in frame["stats"]:
            peers = frame["stats"]["connectedPeers"]
            if isinstance(peers, int) and not isinstance(peers, bool):
                self._peers = peers
        elif isinstance(frame.get("runtime_config"), dict):
            self._node = _node_name(frame["runtime_config"])

    async def _pong(self, ws: aiohttp.ClientWebSocketResponse, nonce: Any) -> None:
        # The node counts a pong missing for 90 s as a strike and drops us after two.
        with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            await ws.send_str(json.dumps({"nonce": nonce, "pong": {"time": int(time.time() * 1000)}}))


def _rows(response: Any) -> list[Row]:
    """Return a reply's result objects: a list, or a single object wrapped in one.

    Raises ProviderError for anything else (a number, a string): that is no answer at all.
    """
    if isinstance(response, dict):
        return [response]
    if isinstance(response, list):
        return [row for row in response if isinstance(row, dict)]
    raise ProviderError(f"Hydrabase answered with a {type(response).__name__} where a list of "
                        "results belongs")


def _node_name(config: Row) -> str | None:
    node = (config.get("active") or {}).get("node") if isinstance(config.get("active"), dict) else None
    if isinstance(node, dict):
        name = node.get("username") or node.get("hostname")
        return name if isinstance(name, str) and name else None
    return None


def _handshake_error(status: int, has_key: bool) -> ProviderError:
    # Hydrabase answers the upgrade with 500 "Invalid API Key" for a wrong key and 400 when
    # the key header is missing; aiohttp does not hand us the body, so the status decides.
    if status in (401, 403, 500):
        return AuthFailed(f"Hydrabase refused the API key (HTTP {status} on the WebSocket "
                          "handshake); check hydrabase.api_key")
    if status == 400 and not has_key:
        return AuthFailed("Hydrabase wants an API key (HTTP 400 on the WebSocket handshake); "
                          "set hydrabase.api_key")
    return ProviderError(f"Hydrabase refused the WebSocket handshake with HTTP {status}")


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed during the handshake"
    return str(exc) or type(exc).__name__


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await ws.close()
