"""A fake Hydrabase node: the WebSocket API peer endpoint, answering from the wire samples.

Like the real node it upgrades any path, checks ``x-api-key`` (HTTP 500 "Invalid API Key"
when wrong, 400 when missing), sends ``runtime_config`` (nonce 0) and ``stats_peers`` on
connect, can send JSON ``ping`` frames on a timer, answers ``{"nonce", "request": {"type",
"query"}}`` with ``{"nonce": <same>, "response": [...]}`` (``[]`` when nothing matches) and stays
silent for request types it does not know. A ``tracks``/``artists``/``albums`` search whose
query is the native id of a sample result finds that result (the lookup the public SoulSync
server falls back on for an id it has no soul_id for). The fault middleware of :mod:`tests.fakes.base`
applies to the HTTP handshake.

Tests drive it through ``app[HYDRABASE]`` (a :class:`HydrabaseFake`); a person uses
``POST /_fake/hydrabase`` (switches as JSON) and ``POST /_fake/hydrabase/drop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.base import load_wire, run_standalone, with_faults

SERVICE = "hydrabase"
REQUEST_TYPES = ("tracks", "artists", "albums", "artist.albums", "artist.tracks", "album.tracks")
SAMPLES = ("tracks", "albums", "artists", "artist_albums", "album_tracks")
# Which samples a search by native id looks through, per search type.
ID_SEARCHES = {"tracks": ("tracks", "album.tracks"), "artists": ("artists",),
               "albums": ("albums", "artist.albums")}
SWITCHES = ("api_key", "answer_delay", "silent", "drop_after_frames", "ping_interval", "hold",
            "reply_text", "reply_response")

Frame = dict[str, Any]


def sample_catalogue() -> dict[tuple[str, str], list[Frame]]:
    """Return ``{(type, query): results}`` from the request_*/response_* sample pairs."""
    catalogue: dict[tuple[str, str], list[Frame]] = {}
    for name in SAMPLES:
        request = load_wire(SERVICE, f"request_{name}.client_to_server.json")["request"]
        response = load_wire(SERVICE, f"response_{name}.server_to_client.json")["response"]
        catalogue[(request["type"], request["query"].lower())] = response
    return catalogue


@dataclass
class Peer:
    """One open API-peer socket and its own frame counter (the node's nonces start at 0)."""

    ws: web.WebSocketResponse
    request: web.Request
    counter: int = 0
    frames: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def next_nonce(self) -> int:
        nonce = self.counter
        self.counter += 1
        return nonce


@dataclass
class HydrabaseFake:
    """Switches and records of one fake node."""

    api_key: str = "test-key"
    answer_delay: float = 0.0    # seconds before each answer
    silent: bool = False         # never answer requests (pings are still sent)
    drop_after_frames: int = 0   # drop a socket when it has sent this many frames (0 = never)
    ping_interval: float = 0.0   # send a JSON ping this often (0 = never; the node uses 60 s)
    hold: int = 0                # gather this many requests, then answer them last first
    reply_text: str = ""         # answer every request with this raw text frame (malformed, huge)
    reply_response: Any = None   # answer with this as "response" (a wrong shape) instead of results
    catalogue: dict[tuple[str, str], list[Frame]] = field(default_factory=sample_catalogue)
    peers_frame: Frame = field(
        default_factory=lambda: load_wire(SERVICE, "server_stats_peers.server_to_client.json"))
    handshakes: int = 0          # upgrade requests seen, refused ones included
    peers: list[Peer] = field(default_factory=list)
    requests: list[Frame] = field(default_factory=list)   # every request frame, in order
    pings: list[Frame] = field(default_factory=list)      # every ping frame sent
    pongs: list[Frame] = field(default_factory=list)      # every pong frame received
    received: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)  # requests, as they come
    pong_queue: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    connected: asyncio.Queue[Peer] = field(default_factory=asyncio.Queue)
    _held: list[tuple[Peer, Frame]] = field(default_factory=list)

    async def send_all(self, frame: Frame) -> None:
        """Send ``frame`` to every open socket (to inject pings, stats, stray replies)."""
        for peer in list(self.peers):
            await peer.ws.send_json(frame)

    async def ping_all(self) -> list[int]:
        """Send a ping (with each socket's next counter nonce) now; return the nonces used."""
        return [await self._ping(peer) for peer in list(self.peers)]

    def drop(self) -> None:
        """Cut every open socket without a close frame, as a crashing node would."""
        for peer in list(self.peers):
            _cut(peer)

    def answer(self, kind: str, query: str) -> list[Frame] | None:
        """Return the results for a request, ``[]`` when none, None for an unknown type."""
        if kind not in REQUEST_TYPES:
            return None
        query = query.strip().lower()
        found = self.catalogue.get((kind, query))
        if found is None:
            found = [row for (sample_kind, _), rows in self.catalogue.items()
                     if sample_kind in ID_SEARCHES.get(kind, ()) for row in rows
                     if str(row.get("id", "")).lower() == query]
        return copy.deepcopy(found)

    async def _ping(self, peer: Peer) -> int:
        ping = load_wire(SERVICE, "server_ping.server_to_client.json")
        ping["nonce"] = peer.next_nonce()
        ping["ping"]["time"] = int(time.time() * 1000)
        self.pings.append(ping)
        await peer.ws.send_json(ping)
        return ping["nonce"]


HYDRABASE = web.AppKey("hydrabase", HydrabaseFake)


def _cut(peer: Peer) -> None:
    transport = peer.request.transport
    if transport is not None:
        transport.abort()


def _offered_key(request: web.Request) -> str | None:
    """Return the key from ``x-api-key`` or a ``x-api-key-<KEY>`` subprotocol, None if absent."""
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if protocol.strip().startswith("x-api-key-"):
            return protocol.strip().removeprefix("x-api-key-")
    return None


async def _node(request: web.Request) -> web.StreamResponse:
    fake = request.app[HYDRABASE]
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.Response(text="Hydrabase (fake) web UI\n")
    fake.handshakes += 1
    key = _offered_key(request)
    if key is None:
        return web.Response(status=400, text="Missing API key")
    if key != fake.api_key:
        return web.Response(status=500, text="Invalid API Key")
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    peer = Peer(ws, request)
    fake.peers.append(peer)
    try:
        config = load_wire(SERVICE, "server_runtime_config_on_connect.server_to_client.json")
        config["nonce"] = peer.next_nonce()
        await ws.send_json(config)
        await ws.send_json({**fake.peers_frame, "nonce": peer.next_nonce()})
        if fake.ping_interval:
            _spawn(peer, _ping_forever(fake, peer))
        fake.connected.put_nowait(peer)
        await _serve(fake, peer)
    finally:
        fake.peers.remove(peer)
        for task in peer.tasks:
            task.cancel()
    return ws


async def _serve(fake: HydrabaseFake, peer: Peer) -> None:
    async for message in peer.ws:
        if message.type is not WSMsgType.TEXT:
            continue
        peer.frames += 1
        if fake.drop_after_frames and peer.frames >= fake.drop_after_frames:
            _cut(peer)
            return
        try:
            frame = message.json()
        except ValueError:
            continue
        if not isinstance(frame, dict):
            continue
        if "pong" in frame:
            fake.pongs.append(frame)
            fake.pong_queue.put_nowait(frame)
        elif isinstance(frame.get("request"), dict):
            fake.requests.append(frame)
            fake.received.put_nowait(frame)
            _take(fake, peer, frame)


def _take(fake: HydrabaseFake, peer: Peer, frame: Frame) -> None:
    """Answer ``frame`` in its own task (the node answers out of order), or hold it back."""
    if fake.silent:
        return
    if fake.hold:
        fake._held.append((peer, frame))
        if len(fake._held) >= fake.hold:
            held, fake._held = fake._held, []
            for held_peer, held_frame in reversed(held):
                _spawn(held_peer, _reply(fake, held_peer, held_frame))
        return
    _spawn(peer, _reply(fake, peer, frame))


async def _reply(fake: HydrabaseFake, peer: Peer, frame: Frame) -> None:
    request = frame["request"]
    results = fake.answer(str(request.get("type")), str(request.get("query", "")))
    if results is None:
        return  # the real node fails validation and never answers
    if fake.answer_delay:
        await asyncio.sleep(fake.answer_delay)
    with contextlib.suppress(ConnectionError, RuntimeError):
        if fake.reply_text:
            await peer.ws.send_str(fake.reply_text)
        elif fake.reply_response is not None:
            await peer.ws.send_json({"nonce": frame.get("nonce"), "response": fake.reply_response})
        else:
            await peer.ws.send_json({"nonce": frame.get("nonce"), "response": results})


async def _ping_forever(fake: HydrabaseFake, peer: Peer) -> None:
    while not peer.ws.closed:
        await asyncio.sleep(fake.ping_interval)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await fake._ping(peer)


def _spawn(peer: Peer, coro: Any) -> None:
    task = asyncio.create_task(coro)
    peer.tasks.add(task)
    task.add_done_callback(peer.tasks.discard)


async def _set_switches(request: web.Request) -> web.Response:
    fake = request.app[HYDRABASE]
    changes = await request.json()
    for key, value in changes.items():
        if key not in SWITCHES:
            return web.json_response({"error": f"unknown switch {key!r}; known: {list(SWITCHES)}"},
                                     status=400)
        setattr(fake, key, value)
    return web.json_response(_report(fake))


async def _drop(request: web.Request) -> web.Response:
    request.app[HYDRABASE].drop()
    return web.json_response(_report(request.app[HYDRABASE]))


async def _show(request: web.Request) -> web.Response:
    return web.json_response(_report(request.app[HYDRABASE]))


def _report(fake: HydrabaseFake) -> dict[str, Any]:
    return {**{key: getattr(fake, key) for key in SWITCHES}, "handshakes": fake.handshakes,
            "open_sockets": len(fake.peers), "requests": len(fake.requests),
            "pongs": len(fake.pongs)}


async def _close_sockets(app: web.Application) -> None:
    for peer in list(app[HYDRABASE].peers):
        await peer.ws.close()


def make_app(**switches: Any) -> web.Application:
    """Return the fake node; ``switches`` set :class:`HydrabaseFake` fields (e.g. ``silent=True``)."""
    app = with_faults(web.Application())
    app[HYDRABASE] = HydrabaseFake(**switches)
    app.router.add_post("/_fake/hydrabase", _set_switches)
    app.router.add_post("/_fake/hydrabase/drop", _drop)
    app.router.add_get("/_fake/hydrabase", _show)
    app.router.add_get("/{path:.*}", _node)
    app.on_shutdown.append(_close_sockets)
    return app


if __name__ == "__main__":
    run_standalone(make_app, "hydrabase", 4545)
