"""Live events: the bus (ids, buffer, slow subscribers, throttling), the SSE stream over a real
HTTP connection with the daemon and the fake slskd, and what the services publish."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import types
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import soulsync_slskd.plugin
from soulsync_core.api.events import EVENT_STREAMS
from soulsync_core.core import Core
from soulsync_core.daemon import SHUTDOWN_GRACE
from soulsync_core.events import EVENT_TYPES, ID_BLOCK, LOST, EventBus
from soulsync_core.health import ServiceHealth
from soulsync_core.hooks import hookimpl
from soulsync_core.models import Health
from tests.daemon_process import DaemonProcess
from tests.download_fixtures import (
    TRACK,
    ManualClock,
    catalogue,
    environ,
    live_version_first,
    metadata_plugin,
    open_api,
)
from tests.fakes.slskd import SLSKD, SlskdFake, make_app
from tests.sse import SseReader, wait_until

E = "/api/v1/events"


# ------------------------------------------------------------------------------ the bus


def test_ids_increase_and_events_carry_type_time_and_plain_data():
    bus = EventBus()
    first = bus.publish("wishlist.removed", {"track_id": "a"})
    second = bus.publish("wishlist.removed", {"track_id": "b"})
    assert first is not None and second is not None
    assert second.id == first.id + 1
    assert first.type == "wishlist.removed" and first.at.endswith("+00:00")
    assert json.loads(first.json()) == {"id": first.id, "type": "wishlist.removed", "at": first.at,
                                        "data": {"track_id": "a"}}


async def test_slow_subscriber_loses_its_oldest_events_with_a_lost_marker():
    bus = EventBus()
    subscription, _ = bus.subscribe(queue_size=10)
    published = [bus.publish("wishlist.removed", {"n": n}) for n in range(25)]
    marker = await subscription.next()
    assert marker is not None and marker.event.type == LOST and marker.event.data == {"lost": 15}
    rest = [await subscription.next() for _ in range(10)]
    assert [item.event.id for item in rest if item] == [e.id for e in published[15:] if e]
    assert subscription.pending() == 0


def test_progress_is_published_at_most_once_a_second_per_download():
    now = [100.0]
    bus = EventBus(clock=lambda: now[0])
    sent = []
    for at, key in ((0.0, 1), (0.5, 1), (0.5, 2), (1.2, 1), (1.5, 1)):
        now[0] = 100.0 + at
        sent.append(bus.publish("download.progress", {"id": key}, key=key) is not None)
    assert sent == [True, False, True, True, False]


def test_publishing_something_that_cannot_be_encoded_returns_none_and_does_not_raise():
    bus = EventBus()
    assert bus.publish("wishlist.added", object()) is None
    assert bus.publish("wishlist.added", {"ok": True}) is not None


async def test_ids_never_repeat_across_restarts_even_after_a_crash(data_dir: Path):
    first = await Core.open(data_dir, environ={}, entry_points=False)
    last = None
    for n in range(ID_BLOCK + 10):  # past the first reserved block
        last = first.events.publish("wishlist.removed", {"n": n})
        await asyncio.sleep(0)
    assert last is not None
    await first.events.close()  # waits for the reservation running in the background
    # A crash: the first daemon never closes; a second one opens the same database.
    second = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        again = second.events.publish("wishlist.removed", {"n": "after"})
        assert again is not None and again.id > last.id
    finally:
        await second.close()
        await first.close()


async def test_service_down_and_up_are_published_on_changes_only_with_the_reason():
    bus = EventBus()
    subscription, _ = bus.subscribe(("service.*",))
    health = ServiceHealth(events=bus)
    answers = [Health(ok=True), Health(ok=True), Health(ok=False, message="slskd refused: 401"),
               Health(ok=True)]

    async def check() -> Health:
        return answers.pop(0)

    health.register("soulseek", check)
    for _ in range(4):
        await health.check("soulseek")
    down, up = await subscription.next(), await subscription.next()
    assert down is not None and up is not None
    assert (down.event.type, down.event.data) == (
        "service.down", {"service": "soulseek", "ok": False, "reason": "slskd refused: 401"})
    assert (up.event.type, up.event.data["ok"]) == ("service.up", True)
    assert subscription.pending() == 0


# ---------------------------------------------------------------- SSE: the plain stream


async def open_stream(api: Any, *, key: str | None = None, headers: dict[str, str] | None = None,
                      **params: Any) -> aiohttp.ClientResponse:
    all_headers = {"Authorization": f"Bearer {key or api.key}", **(headers or {})}
    response = await api.client.get(E, headers=all_headers, params=params)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


async def test_stream_needs_a_key_and_refuses_a_wrong_one(api, key):
    missing = await api.get(E, auth=False)
    assert (missing.status, missing.error["code"]) == (401, "AUTH_REQUIRED")
    wrong = await api.get(E, key="sk_" + "x" * 43)
    assert (wrong.status, wrong.error["code"]) == (403, "INVALID_KEY")
    # EventSource in a browser cannot set headers: ?api_key= works too.
    response = await api.client.get(E, params={"api_key": key})
    assert response.status == 200
    response.close()


async def test_resume_with_last_event_id_gets_exactly_the_missed_events(api, key):
    bus = api.core.events
    seen = [bus.publish("wishlist.removed", {"n": n}) for n in range(3)]
    missed = [bus.publish("wishlist.removed", {"n": n}) for n in range(3, 6)]
    assert all(seen) and all(missed)
    response = await open_stream(api, headers={"Last-Event-ID": str(seen[-1].id)},
                                 types="wishlist.*")
    reader = SseReader(response)
    replayed = [await reader.event() for _ in missed]
    assert [(m.id, m.event, m.json["data"]) for m in replayed] == [
        (str(e.id), "wishlist.removed", e.data) for e in missed]
    live = bus.publish("wishlist.removed", {"n": "live"})
    assert live is not None
    assert (await reader.event()).id == str(live.id)
    response.close()
    # ?since= is the same for clients that keep the id themselves.
    response = await open_stream(api, since=str(missed[0].id), types="wishlist.*")
    reader = SseReader(response)
    assert [(await reader.event()).id for _ in range(3)] == [str(missed[1].id), str(missed[2].id),
                                                             str(live.id)]
    response.close()


async def test_a_gap_older_than_the_buffer_gets_a_reset_event(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_EVENTS__BUFFER_SIZE": "10"})
    bus = api.core.events
    first = bus.publish("wishlist.removed", {"n": 0})
    for n in range(1, 30):
        bus.publish("wishlist.removed", {"n": n})
    assert first is not None
    response = await open_stream(api, headers={"Last-Event-ID": str(first.id)}, types="wishlist.*")
    reader = SseReader(response)
    reset = await reader.event()
    assert reset.event == "reset" and reset.id is None
    assert reset.json["data"]["last_id"] == bus.last_id
    after = bus.publish("wishlist.removed", {"n": "after"})
    assert after is not None
    assert (await reader.event()).id == str(after.id)  # nothing of the gap is replayed
    response.close()
    # An id this run never issued (a client from another server) is a gap too.
    response = await open_stream(api, since=str(bus.last_id + 50))
    assert (await SseReader(response).event()).event == "reset"
    response.close()


async def test_types_filter_with_globs(api, key):
    response = await open_stream(api, types="download.*,service.down")
    reader = SseReader(response)
    bus = api.core.events
    for event_type in ("service.up", "download.queued", "settings.changed", "service.down",
                       "download.cancelled"):
        bus.publish(event_type, {"t": event_type})
    got = [(await reader.event()).event for _ in range(3)]
    assert got == ["download.queued", "service.down", "download.cancelled"]
    response.close()
    bad = await api.get(E, params={"types": "download.*,<script>"})
    assert bad.status == 400 and "'<script>' is not an event type" in bad.error["message"]
    typo = await api.get(E, params={"types": "downlaod.*"})
    assert typo.status == 400 and "'downlaod.*' matches no event type" in typo.error["message"]
    assert "download.*" in typo.error["message"]


async def test_idle_stream_gets_a_heartbeat_comment(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_EVENTS__HEARTBEAT_SECONDS": "0.05"})
    response = await open_stream(api)
    message = await SseReader(response).message()
    assert message is not None and message.event is None and message.comments == ["ping"]
    response.close()


async def test_streams_per_key_are_capped_with_a_429(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_EVENTS__MAX_STREAMS_PER_KEY": "2",
                                          "SOULSYNC_EVENTS__HEARTBEAT_SECONDS": "0.05"})
    first, second = await open_stream(api), await open_stream(api)
    refused = await api.get(E)
    assert (refused.status, refused.error["code"]) == (429, "TOO_MANY_STREAMS")
    assert "events.max_streams_per_key" in refused.error["message"]
    other = (await api.post("/api/v1/api-keys", {"label": "other"})).data["key"]
    third = await open_stream(api, key=other)  # the cap is per key
    first.close()
    streams = api.client.app[EVENT_STREAMS]
    # The server notices at its next heartbeat.
    await wait_until(lambda: len(streams.open_streams()) == 2, "the closed stream is gone")
    again = await open_stream(api)
    for response in (second, third, again):
        response.close()


async def test_one_connection_counts_once_against_the_system_rate_limit(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_API__RATE_LIMITS__SYSTEM": "2"})
    response = await open_stream(api)
    reader = SseReader(response)
    for n in range(50):
        api.core.events.publish("wishlist.removed", {"n": n})
    for _ in range(50):
        await reader.event()
    second = await open_stream(api)
    limited = await api.get(E)
    assert (limited.status, limited.error["code"]) == (429, "RATE_LIMITED")
    assert "Retry-After" in limited.headers
    for stream in (response, second):
        stream.close()


async def test_revoking_a_key_ends_its_streams(api, key):
    other = (await api.post("/api/v1/api-keys", {"label": "bot"})).data
    response = await open_stream(api, key=other["key"])
    reader = SseReader(response)
    reply = await api.delete(f"/api/v1/api-keys/{other['id']}")
    assert reply.status == 200
    while (message := await reader.message()) is not None:
        assert message.event != "wishlist.removed"
    assert await response.content.read() == b""


async def test_api_key_and_settings_events_carry_no_secrets(api, key):
    response = await open_stream(api, types="api_key.*,settings.changed")
    reader = SseReader(response)
    created = (await api.post("/api/v1/api-keys", {"label": "bot"})).data
    event = await reader.event()
    assert event.event == "api_key.created"
    assert event.json["data"]["key_prefix"] == created["key_prefix"]
    assert created["key"] not in event.data and "key" not in event.json["data"]
    secret = "hook-secret-0123456789"
    patch = {"notifications.webhooks": [{"url": "https://hooks.example/in", "secret": secret}],
             "logging.level": "DEBUG"}
    assert (await api.patch("/api/v1/settings", patch)).status == 200
    event = await reader.event()
    assert event.event == "settings.changed"
    assert event.json["data"] == {"keys": ["logging.level", "notifications.webhooks"]}
    assert secret not in event.data and "hooks.example" not in event.data
    response.close()


# ------------------------------------------------------ SSE with the daemon and fake slskd


@pytest.fixture
async def slskd(aiohttp_server: Any, tmp_path: Path) -> Any:
    return await aiohttp_server(make_app(tmp_path / "slskd", peers=catalogue(), search_seconds=0.05))


@pytest.fixture
def fake(slskd: Any) -> SlskdFake:
    return slskd.app[SLSKD]


@pytest.fixture
async def daemon(aiohttp_client: Any, tmp_path: Path, slskd: Any, music: Path) -> Any:
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
    env = environ(slskd, tmp_path / "slskd", music)
    env["SOULSYNC_EVENTS__QUEUE_SIZE"] = "50"  # a stuck reader fills its queue soon
    return await open_api(aiohttp_client, tmp_path / "data", env, plugins, ManualClock())


async def download_track(api: Any, fake: SlskdFake) -> int:
    """Request TRACK and drive the pipeline to the end: search, 1/4 of the bytes, the rest."""
    reply = await api.post("/api/v1/downloads", TRACK)
    assert reply.status == 202, reply.json
    downloads = api.core.downloads
    await downloads.settle()
    await fake.tick(4)
    await downloads.poll()
    await fake.settle()
    await downloads.poll()
    await downloads.settle()
    return reply.data["download"]["id"]


async def test_download_events_arrive_in_order_with_the_shapes_of_get_download(daemon, fake):
    response = await open_stream(daemon, types="download.*")
    library = await open_stream(daemon, types="library.changed")
    reader = SseReader(response)
    download_id = await download_track(daemon, fake)
    messages = await reader.events_until("download.completed")
    types_seen = [m.event for m in messages]
    assert types_seen[:2] == ["download.queued", "download.searching"]
    assert types_seen[-1] == "download.completed"
    assert set(types_seen[2:-1]) == {"download.progress"} and types_seen[2:-1]
    ids = [int(m.id or 0) for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    bodies = [m.json for m in messages]
    assert all(b["data"]["id"] == download_id and b["type"] == m.event
               for b, m in zip(bodies, messages, strict=True))
    assert bodies[2]["data"]["progress"] == 25 and bodies[2]["data"]["status"] == "downloading"
    detail = (await daemon.get(f"/api/v1/downloads/{download_id}")).data["download"]
    assert bodies[-1]["data"] == detail  # exactly what GET /downloads/<id> answers
    assert set(bodies[0]["data"]) == set(detail)
    changed = (await SseReader(library).event()).json["data"]
    assert changed == {"source": "import", "track_id": detail["library_track_id"]}
    response.close()
    library.close()


async def stuck_reader(port: int, key: str) -> tuple[socket.socket, asyncio.StreamWriter]:
    """Open an event stream over a socket with a tiny receive buffer that is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    _reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {E} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
    await writer.drain()
    return sock, writer


async def test_a_stuck_reader_does_not_delay_a_download(daemon, fake):
    started = time.monotonic()
    await download_track(daemon, fake)
    baseline = time.monotonic() - started

    port = daemon.client.server.port
    _sock, writer = await stuck_reader(port, daemon.key)
    streams = daemon.client.app[EVENT_STREAMS]
    await wait_until(lambda: bool(streams.open_streams()), "the stuck stream is open")
    # Fill the reader's queue and every socket buffer on the way with big events.
    for n in range(3000):
        daemon.core.events.publish("library.changed", {"n": n, "pad": "x" * 4000})
    await asyncio.sleep(0)

    started = time.monotonic()
    await daemon.post("/api/v1/downloads/cancel-all")  # nothing runs; the same track again:
    # force: the first download put this track in the library already.
    reply = await daemon.post("/api/v1/downloads", {**TRACK, "id": "other-id", "force": True})
    assert reply.status == 202
    downloads = daemon.core.downloads
    await downloads.settle()
    await fake.tick(4)
    await downloads.poll()
    await fake.settle()
    await downloads.poll()
    await downloads.settle()
    with_stuck_reader = time.monotonic() - started
    done = (await daemon.get(f"/api/v1/downloads/{reply.data['download']['id']}")).data["download"]
    assert done["status"] == "completed"
    stuck = streams.open_streams()
    assert stuck and stuck[0].dropped > 0  # the reader really is stuck: it lost events
    # Generous: scheduling noise on a loaded machine, never the reader's 60 s send timeout.
    assert with_stuck_reader < 5 * baseline + 2.0, (baseline, with_stuck_reader)
    writer.close()


async def test_stopping_the_daemon_with_open_idle_streams_is_fast(tmp_path: Path):
    daemon = DaemonProcess(tmp_path / "data", tmp_path / "daemon.log", tmp_path / "home")
    try:
        await daemon.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            async with session.post(f"{daemon.base_url}/api/v1/api-keys/bootstrap",
                                    json={"label": "t"}) as reply:
                key = (await reply.json())["data"]["key"]
            streams = [await session.get(f"{daemon.base_url}{E}", params={"api_key": key})
                       for _ in range(3)]
            assert all(s.status == 200 for s in streams)
            daemon.terminate()
            code = await daemon.wait(SHUTDOWN_GRACE + 3)
            assert daemon.sigterm_at is not None
            elapsed = time.monotonic() - daemon.sigterm_at
            assert code == 0, daemon.log_text()
            # Without closing the streams the daemon waits the whole grace period for them.
            assert elapsed < SHUTDOWN_GRACE - 2, (elapsed, daemon.log_text())
            for stream in streams:
                assert await stream.content.read() == b""  # ended by the server
                stream.close()
        assert "sk_" + key[3:] not in daemon.log_text()  # the access log hides ?api_key=
    finally:
        daemon.kill()


# ----------------------------------------------------------------------- plugin listeners


async def test_event_listeners_of_a_plugin_get_every_event_and_one_that_raises_does_not_matter(
        soulsync_factory):
    sync_got: list[str] = []
    async_got: list[str] = []
    arrived = asyncio.Event()

    def broken(event: Any) -> None:
        raise RuntimeError("listener bug")

    def sync_listener(event: Any) -> None:
        sync_got.append(event.type)

    async def async_listener(event: Any) -> None:
        async_got.append(event.type)
        if event.type == "api_key.created" and len(async_got) >= 2:
            arrived.set()

    @hookimpl
    def event_listeners(settings: Any) -> list[Any]:
        assert settings.get("events.buffer_size") == 5000
        return [broken, sync_listener, async_listener]

    plugin = types.SimpleNamespace(event_listeners=event_listeners)
    api = await soulsync_factory(plugins=[("listener", plugin)])  # bootstrap: api_key.created
    await api.post("/api/v1/api-keys", {"label": "second"})
    async with asyncio.timeout(10):
        await arrived.wait()
    assert sync_got.count("api_key.created") == 2 and async_got.count("api_key.created") == 2
    info = (await api.get("/api/v1/system/plugins")).data
    listed = next(p for p in info["plugins"] if p["name"] == "listener")
    assert listed["hooks"] == ["event_listeners"] and listed["error"] is None


async def test_the_stream_and_the_notification_endpoints_are_in_the_openapi_document(api, key):
    reply = await api.client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {key}"})
    paths = (await reply.json())["paths"]
    stream = paths[E]["get"]
    assert list(stream["responses"]["200"]["content"]) == ["text/event-stream"]
    assert {p["name"] for p in stream["parameters"]} == {"types", "since"}
    assert {"401", "403", "429"} <= set(stream["responses"])
    assert "get" in paths["/api/v1/notifications"] and "post" in paths["/api/v1/notifications/test"]


def test_every_event_type_is_documented_with_an_example():
    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    for event_type in EVENT_TYPES:
        assert f"`{event_type}`" in text, event_type
        assert f'"type": "{event_type}"' in text, f"no example of {event_type}"


async def test_a_stream_that_falls_behind_gets_a_lost_event_then_the_newest(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_EVENTS__QUEUE_SIZE": "10"})
    response = await open_stream(api, types="wishlist.*")
    streams = api.client.app[EVENT_STREAMS]
    await wait_until(lambda: bool(streams.open_streams()), "the stream is open")
    # Published without a pause: the stream's handler cannot run in between.
    published = [api.core.events.publish("wishlist.removed", {"n": n}) for n in range(50)]
    reader = SseReader(response)
    lost = await reader.event()
    assert (lost.event, lost.id, lost.json["data"]) == ("lost", None, {"lost": 40})
    assert [(await reader.event()).id for _ in range(10)] == [str(e.id) for e in published[40:] if e]
    response.close()
