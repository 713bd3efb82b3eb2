"""``POST /api/v1/request`` end to end: the daemon, the fake slskd, a stub metadata source and
a local receiver for ``notify_url``. Nothing waits on wall-clock time: background work is
awaited with ``settle()``, the fake's transfers move when the test ticks them."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from aiohttp import web

import soulsync_slskd.plugin
from soulsync_core.db import DB_FILENAME
from tests.download_fixtures import (
    ARTIST,
    TITLE,
    ManualClock,
    environ,
    files_under,
    live_version_first,
    metadata_plugin,
    open_api,
    service,
)
from tests.fakes.slskd import SlskdFake
from tests.library_fixtures import record

R = "/api/v1/request"
QUERY = f"{ARTIST} - {TITLE}"
SEARCHES = ("POST", "/api/v0/searches")


@pytest.fixture
def make_api(aiohttp_client, tmp_path, server, slskd_downloads, music):
    """Start a daemon on the fake (same data dir each time: a second call is a restart)."""

    async def make(key: str | None = None, allow_private: bool = False):
        plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
        env = environ(server, slskd_downloads, music)
        env["SOULSYNC_REQUEST__NOTIFY_ALLOW_PRIVATE"] = "true" if allow_private else "false"
        env["SOULSYNC_REQUEST__NOTIFY_RETRIES"] = "0"
        return await open_api(aiohttp_client, tmp_path / "data", env, plugins, ManualClock(), key)

    return make


@pytest.fixture
async def api(make_api):
    return await make_api()


class Receiver:
    """A bot's webhook: records each POSTed body and its headers."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, str]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/riff/hook", hook.handle)
    server = await aiohttp_server(app)
    return hook, f"http://127.0.0.1:{server.port}/riff/hook"


async def follow(api, fake: SlskdFake) -> None:
    """Let the request's work, its download and the fake's transfer run to their ends."""
    requests = api.core.track_requests
    await requests.settle()
    await service(api).settle()
    await fake.settle()
    await service(api).poll()
    await service(api).settle()
    await requests.settle()


async def ask(api, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(R, body)
    assert reply.status == 202, reply.json
    return reply.data


async def status(api, request_id: str) -> dict[str, Any]:
    reply = await api.get(f"{R}/{request_id}")
    assert reply.status == 200, reply.json
    return reply.data


# ---------------------------------------------------------------------------------- flows


async def test_a_requested_track_is_found_downloaded_and_reported_with_the_library_track(
        api, fake, music, make_api):
    queued = await ask(api, {"query": QUERY, "metadata": {"discord_user": "riff#1"}})
    assert (queued["status"], queued["query"], queued["metadata"]) == (
        "queued", QUERY, {"discord_user": "riff#1"})
    assert queued["notify"] == {"state": "none", "attempts": 0, "error": None}
    await api.core.track_requests.settle()
    downloading = await status(api, queued["request_id"])
    assert downloading["status"] == "downloading"
    # The studio version, although the source lists a live one first.
    assert downloading["match"] == {
        "title": TITLE, "artists": [ARTIST], "album": "Discovery", "duration_ms": 3000,
        "id": "697195462", "source": "itunes", "isrc": "GBDUW0000053"}
    download = (await api.get(f"/api/v1/downloads/{downloading['download_id']}")).data["download"]
    assert download["track_name"] == TITLE

    await follow(api, fake)
    done = await status(api, queued["request_id"])
    final = music / ARTIST / "Discovery" / "01 - One More Time.flac"
    assert files_under(music) == [final]
    assert (done["status"], done["already_in_library"], done["error"]) == ("completed", False, None)
    assert done["library_track"]["file_path"] == str(final)
    assert done["library_track"]["id"] == done["library_track_id"]
    assert done["completed_at"] is not None

    # Kept in SQLite: a restarted daemon still knows the request.
    key = api.key
    await api.client.close()
    again = await make_api(key=key)
    assert await status(again, queued["request_id"]) == done


async def test_structured_request_with_duration(api, fake):
    queued = await ask(api, {"title": TITLE, "artist": ARTIST, "duration_ms": 3000})
    assert queued["query"] == QUERY
    await follow(api, fake)
    done = await status(api, queued["request_id"])
    assert done["status"] == "completed" and done["match"]["id"] == "697195462"


async def test_the_duration_given_picks_among_results_of_the_same_title(soulsync_factory):
    from soulsync_core.models import Track
    from tests.download_fixtures import StubMetadata

    long_edit = Track("697195111", TITLE, [ARTIST], "Discovery (Extended)", 600_000)
    studio = Track("697195462", TITLE, [ARTIST], "Discovery", 320_000)
    api = await soulsync_factory(plugins=[("meta", metadata_plugin(StubMetadata([long_edit, studio])))],
                                 environ={"SOULSYNC_SEARCH__AUTO_ORDER": "itunes"})
    timed = await ask(api, {"title": TITLE, "artist": ARTIST, "duration_ms": 320_500})
    untimed = await ask(api, {"title": TITLE, "artist": ARTIST})
    await api.core.track_requests.settle()
    assert (await status(api, timed["request_id"]))["match"]["id"] == "697195462"
    assert (await status(api, untimed["request_id"]))["match"]["id"] == "697195111"


async def test_a_track_no_source_knows_is_not_found_without_a_download(api, fake):
    queued = await ask(api, {"query": "Nobody - Never Recorded This"})
    await api.core.track_requests.settle()
    done = await status(api, queued["request_id"])
    assert (done["status"], done["match"], done["download_id"]) == ("not_found", None, None)
    assert done["error"] == "No metadata source found a track for 'Nobody - Never Recorded This'."
    assert fake.count(*SEARCHES) == 0
    assert (await api.get("/api/v1/downloads")).data["downloads"] == []


async def test_a_track_already_in_the_library_is_completed_at_once(api, fake):
    await api.core.library.store.save([record(ARTIST, "Discovery", TITLE, duration=3000,
                                              itunes_track_id="697195462")])
    [track] = (await api.get("/api/v1/library/tracks", params={"title": TITLE})).data["tracks"]
    queued = await ask(api, {"query": QUERY})
    await api.core.track_requests.settle()
    done = await status(api, queued["request_id"])
    assert (done["status"], done["already_in_library"], done["download_id"]) == (
        "completed", True, None)
    assert done["library_track_id"] == track["id"]
    assert done["library_track"]["title"] == TITLE
    assert fake.count(*SEARCHES) == 0  # nothing was searched for on Soulseek
    assert (await api.get("/api/v1/downloads")).data["downloads"] == []

    forced = await ask(api, {"query": QUERY, "force": True})
    await api.core.track_requests.settle()
    assert (await status(api, forced["request_id"]))["status"] == "downloading"


async def test_a_cancelled_download_fails_the_request_with_the_reason(api, fake):
    queued = await ask(api, {"query": QUERY})
    await api.core.track_requests.settle()
    download_id = (await status(api, queued["request_id"]))["download_id"]
    cancelled = await api.post(f"/api/v1/downloads/{download_id}/cancel", {})
    assert cancelled.status == 200, cancelled.json
    done = await status(api, queued["request_id"])
    assert (done["status"], done["error"]) == ("failed", "the download was cancelled")


async def test_two_requests_for_one_track_share_the_download(api, fake):
    first = await ask(api, {"query": QUERY})
    second = await ask(api, {"title": TITLE, "artist": ARTIST})
    await api.core.track_requests.settle()
    a, b = await status(api, first["request_id"]), await status(api, second["request_id"])
    assert a["download_id"] == b["download_id"] is not None
    await follow(api, fake)
    assert {(await status(api, r["request_id"]))["status"] for r in (first, second)} == {"completed"}


# --------------------------------------------------------------------------- notify_url


async def test_notify_url_gets_the_final_status_once(make_api, fake, receiver):
    api = await make_api(allow_private=True)
    hook, url = receiver
    queued = await ask(api, {"query": QUERY, "notify_url": url, "metadata": {"channel": 42}})
    assert queued["notify"]["state"] == "pending"
    await follow(api, fake)
    await api.core.track_requests.settle()
    done = await status(api, queued["request_id"])
    assert done["status"] == "completed"
    assert done["notify"] == {"state": "delivered", "attempts": 1, "error": None}
    [body] = hook.bodies
    assert body["request_id"] == queued["request_id"] and body["status"] == "completed"
    assert body["metadata"] == {"channel": 42}
    assert body["library_track"] == done["library_track"]
    assert hook.headers[0]["X-SoulSync-Request-Id"] == queued["request_id"]
    assert url not in str(done)  # the URL (which may hold a token) is never shown


async def test_notify_url_is_told_of_not_found_too(make_api, receiver):
    api = await make_api(allow_private=True)
    hook, url = receiver
    queued = await ask(api, {"query": "Nobody - Never Recorded This", "notify_url": url})
    await api.core.track_requests.settle()
    assert [b["status"] for b in hook.bodies] == ["not_found"]
    assert (await status(api, queued["request_id"]))["notify"]["state"] == "delivered"


async def test_an_unreachable_notify_url_is_recorded_and_the_request_still_completes(make_api):
    api = await make_api(allow_private=True)
    from soulsync_core.testing import free_port

    queued = await ask(api, {"query": "Nobody - Never Recorded This",
                             "notify_url": f"http://127.0.0.1:{free_port()}/gone"})
    await api.core.track_requests.settle()
    done = await status(api, queued["request_id"])
    assert done["status"] == "not_found"
    assert done["notify"]["state"] == "failed" and done["notify"]["attempts"] == 1
    assert done["notify"]["error"].startswith("could not be reached")


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
    ("http://192.168.1.10/hook", "192.168.1.10 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "is a link-local address"),
    ("http://localhost:8080/", "localhost is a loopback address"),
    ("file:///etc/passwd", "must start with http:// or https://, not file:"),
    ("javascript:alert(1)", "not javascript:"),
])
async def test_notify_url_is_refused_for_private_addresses_and_other_schemes(api, fake, url, why):
    reply = await api.post(R, {"query": QUERY, "notify_url": url})
    assert reply.status == 400
    assert reply.error["code"] == "BAD_REQUEST"
    assert reply.error["message"].startswith("notify_url is refused: ")
    assert why in reply.error["message"]
    await api.core.track_requests.settle()
    assert (await api.get("/api/v1/downloads")).data["downloads"] == []  # nothing was started


async def test_a_file_url_is_refused_even_when_private_addresses_are_allowed(make_api):
    api = await make_api(allow_private=True)
    reply = await api.post(R, {"query": QUERY, "notify_url": "file:///etc/passwd"})
    assert reply.status == 400 and "not file:" in reply.error["message"]


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("body, message", [
    ({}, 'Send {"query": "Artist - Title"} or {"title": …, "artist": …}.'),
    ({"query": "  "}, 'Send {"query": "Artist - Title"} or {"title": …, "artist": …}.'),
    ({"query": ""}, "query must be a string of length >= 1."),
    ({"title": TITLE}, "artist is required with title."),
    ({"artist": ARTIST}, "title is required with artist."),
    ({"query": QUERY, "title": TITLE}, "Send either query or title and artist, not both."),
    ({"query": 5}, "query must be a string, not an integer."),
    ({"query": QUERY, "metadata": [1]}, "metadata must be an object or null, not a list."),
    ({"query": QUERY, "duration_ms": -1}, "duration_ms must be an integer >= 0."),
    ({"query": "a\nb"}, "query must not contain control characters (such as newlines)."),
    ({"query": "x" * 501}, "query must be a string of length <= 500."),
    ({"query": QUERY, "notify_url": "https://bot.example.com/" + "x" * 2048},
     "notify_url must be a string of length <= 2048."),
    ({"query": QUERY, "force": "yes"}, "force must be true or false, not a string."),
])
async def test_bad_bodies_are_400_saying_what_to_send(api, body, message):
    reply = await api.post(R, body)
    assert reply.status == 400
    assert reply.error == {"code": "BAD_REQUEST", "message": message}


async def test_an_unknown_request_is_404(api):
    reply = await api.get(f"{R}/no-such-request")
    assert reply.status == 404
    assert reply.error == {"code": "NOT_FOUND", "message": "Request no-such-request not found."}


async def test_a_key_is_required(api):
    reply = await api.post(R, {"query": QUERY}, auth=False)
    assert reply.status == 401


async def test_without_a_download_client_the_request_fails_saying_what_to_install(
        soulsync_factory):
    api = await soulsync_factory(plugins=[("meta", metadata_plugin(live_version_first()))],
                                 environ={"SOULSYNC_SEARCH__AUTO_ORDER": "itunes"})
    queued = await ask(api, {"query": QUERY})
    await api.core.track_requests.settle()
    done = await status(api, queued["request_id"])
    assert done["status"] == "failed"
    assert "No download client is installed" in done["error"]


async def test_interrupted_requests_resume_after_a_restart(make_api, fake, tmp_path):
    api = await make_api()
    queued = await ask(api, {"query": QUERY})
    await api.core.track_requests.settle()
    key = api.key
    await api.client.close()
    # As if the daemon had stopped between resolving the track and starting its download.
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        db.execute("UPDATE track_requests SET status = 'found', download_id = NULL")
    again = await make_api(key=key)
    await again.core.track_requests.resumed.wait()
    await follow(again, fake)
    done = await status(again, queued["request_id"])
    assert done["status"] == "completed"
    assert len((await again.get("/api/v1/downloads")).data["downloads"]) == 1  # shared, not twice


async def test_finished_requests_are_forgotten_after_keep_days(api):
    old = await ask(api, {"query": "Nobody - Never Recorded This"})
    recent = await ask(api, {"query": "Nobody - Never Recorded That"})
    await api.core.track_requests.settle()
    await api.core.db.execute("UPDATE track_requests SET completed_at = ? WHERE id = ?",
                              ("2020-01-01T00:00:00+00:00", old["request_id"]))
    assert await api.core.track_requests.forget_old() == 1
    assert (await api.get(f"{R}/{old['request_id']}")).status == 404
    assert (await status(api, recent["request_id"]))["status"] == "not_found"


async def test_a_notification_owed_at_shutdown_is_delivered_after_the_restart(
        make_api, receiver, tmp_path):
    hook, url = receiver
    api = await make_api(allow_private=True)
    queued = await ask(api, {"query": "Nobody - Never Recorded This", "notify_url": url})
    await api.core.track_requests.settle()
    assert len(hook.bodies) == 1
    key = api.key
    await api.client.close()
    # As if the daemon had stopped after the request ended but before the POST went out.
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        db.execute("UPDATE track_requests SET notify_state = 'pending', notify_attempts = 0")
    again = await make_api(key=key, allow_private=True)
    await again.core.track_requests.resumed.wait()
    await again.core.track_requests.settle()
    assert [b["request_id"] for b in hook.bodies] == [queued["request_id"]] * 2
    assert (await status(again, queued["request_id"]))["notify"]["state"] == "delivered"
