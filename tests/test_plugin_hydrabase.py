"""The hydrabase plugin against fake Hydrabase nodes: searches, look-ups and the socket's life."""

from __future__ import annotations

import asyncio
import logging
import time
import types
from dataclasses import dataclass
from typing import Any

import pytest

from soulsync_core.downloads.wanted import resolve_query
from soulsync_core.hooks import AuthFailed, ProviderError, hookimpl
from soulsync_core.library.matcher import LibraryMatcher
from soulsync_core.testing import ApiClient, free_port
from soulsync_core.wishlist import normalize_track, wanted_of
from soulsync_hydrabase import plugin
from soulsync_hydrabase.connection import NONCE_HIGH, NONCE_LOW
from soulsync_hydrabase.provider import HydrabaseProvider
from tests.fakes.base import load_wire
from tests.fakes.hydrabase import HYDRABASE, HydrabaseFake, make_app
from tests.library_fixtures import record

KEY = "hb-key-7f3a9c1e5d"
TRACKS_QUERY = "daft punk one more time"
ARTIST_SOUL_ID = "soul_9182736450918273645"
ALBUM_SOUL_ID = "soul_5566778899001122334"
# Small back-off so reconnection tests take milliseconds; the plugin's defaults are 1 s → 30 s.
FAST = {"backoff_initial": 0.02, "backoff_max": 0.2}


@dataclass
class Node:
    fake: HydrabaseFake
    url: str


@pytest.fixture
def node(aiohttp_server: Any) -> Any:
    """``await node(**switches)`` starts a fake node expecting ``KEY`` and returns it."""

    async def start(**switches: Any) -> Node:
        app = make_app(api_key=KEY, **switches)
        server = await aiohttp_server(app)
        return Node(app[HYDRABASE], f"ws://127.0.0.1:{server.port}/")

    return start


def tuned_plugin(**tuning: float) -> types.SimpleNamespace:
    """The hydrabase plugin with a provider built with ``tuning`` (same hooks, same section)."""

    @hookimpl
    def metadata_providers(settings: Any) -> list[HydrabaseProvider]:
        return [HydrabaseProvider(settings, **tuning)]

    return types.SimpleNamespace(settings_sections=plugin.settings_sections,
                                 metadata_providers=metadata_providers)


@pytest.fixture
def hydrabase_app(soulsync_factory: Any) -> Any:
    """``await hydrabase_app(url, key=KEY, answer_within=2, tuning=None)`` → an API client.

    ``answer_within`` is ``hydrabase.timeout_seconds``; ``tuning`` goes to the provider.

    ``url``/``key`` None leaves that setting out of the environment (so PATCH may change it).
    """

    async def make(url: str | None, *, key: str | None = KEY, answer_within: float = 2.0,
                   tuning: dict[str, float] | None = None) -> ApiClient:
        environ = {"SOULSYNC_HYDRABASE__TIMEOUT_SECONDS": str(answer_within)}
        if url is not None:
            environ["SOULSYNC_HYDRABASE__URL"] = url
        if key is not None:
            environ["SOULSYNC_HYDRABASE__API_KEY"] = key
        module = plugin if tuning is None else tuned_plugin(**tuning)
        return await soulsync_factory(plugins=[("hydrabase", module)], environ=environ)

    return make


def provider_of(api: ApiClient) -> HydrabaseProvider:
    return api.core.search.provider("hydrabase")  # type: ignore[return-value]


async def next_item(queue: asyncio.Queue) -> Any:
    async with asyncio.timeout(2):
        return await queue.get()


async def barrier(fake: HydrabaseFake) -> None:
    """Return once the client has handled every frame sent so far (it answers pings in order)."""
    nonces = await fake.ping_all()
    while True:
        pong = await next_item(fake.pong_queue)
        if pong["nonce"] == nonces[-1]:
            return


def search(kind: str, query: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/search/{kind}", {"query": query, "source": "hydrabase", **extra}


# --- settings --------------------------------------------------------------------------------


async def test_settings_section_has_three_keys_and_redacts_the_key(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    reply = await api.get("/api/v1/settings")
    assert reply.data["settings"]["hydrabase"] == {
        "url": hub.url, "api_key": "***REDACTED***", "timeout_seconds": 2.0}
    assert KEY not in str(reply.json)


async def test_without_url_the_source_is_not_configured(hydrabase_app):
    api = await hydrabase_app(None)
    assert provider_of(api).configured is False
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 503
    assert "not configured" in reply.error["message"]


# --- searches and look-ups ---------------------------------------------------------------------


async def test_search_tracks_use_native_ids_and_keep_the_soul_id(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 200, reply.json
    assert reply.data["source"] == "hydrabase"
    first, second = reply.data["tracks"]
    assert first == {
        "id": "697195462", "name": "One More Time", "artists": ["Daft Punk"],
        "album": "Discovery", "duration_ms": 320357, "popularity": 0,
        "preview_url": load_wire("hydrabase", "response_tracks.server_to_client.json")
        ["response"][0]["preview_url"],
        "image_url": "https://is1-ssl.mzstatic.com/image/thumb/Music124/v4/a1/b2/c3/"
                     "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90/dj.abcdefgh.jpg/600x600bb.jpg",
        "release_date": None, "album_id": None, "track_number": None, "disc_number": None,
        "isrc": None, "explicit": False,
        "external_urls": {
            "itunes": "https://music.apple.com/us/album/one-more-time/697194953?i=697195462&uo=4",
            "hydrabase_soul_id": "soul_12639084710249571243", "hydrabase_plugin": "itunes"}}
    assert second["id"] == "0DiWol3AO6WpXZgp0goxAV"
    assert second["external_urls"] == {
        "spotify": "https://open.spotify.com/track/0DiWol3AO6WpXZgp0goxAV",
        "hydrabase_soul_id": "soul_4410982731156402917", "hydrabase_plugin": "spotify"}
    assert second["preview_url"] is None  # Hydrabase sends "" for no preview
    request = hub.fake.requests[0]
    assert set(request) == {"nonce", "request"}
    assert request["request"] == {"type": "tracks", "query": TRACKS_QUERY}


async def test_search_albums_trims_the_release_date(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    reply = await api.post(*search("albums", "discovery daft punk"))
    assert reply.status == 200, reply.json
    assert reply.data["albums"] == [{
        "id": "697194953", "name": "Discovery", "artists": ["Daft Punk"],
        "release_date": "2001-03-07", "total_tracks": 14, "album_type": "album",
        "image_url": "https://is1-ssl.mzstatic.com/image/thumb/Music124/v4/a1/b2/c3/"
                     "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90/dj.abcdefgh.jpg/600x600bb.jpg"}]


async def test_an_album_without_native_id_keeps_its_soul_id(node, hydrabase_app):
    hub = await node()
    [sample] = load_wire("hydrabase", "response_albums.server_to_client.json")["response"]
    hub.fake.catalogue[("albums", "no native id")] = [
        {k: v for k, v in sample.items() if k != "id"}]
    api = await hydrabase_app(hub.url)
    reply = await api.post(*search("albums", "no native id"))
    assert [a["id"] for a in reply.data["albums"]] == [ALBUM_SOUL_ID]
    tracks = await provider_of(api).album_tracks(ALBUM_SOUL_ID)
    assert [t.id for t in tracks] == ["697195462", "697195475"]


async def test_search_artists_and_nothing_found(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    reply = await api.post(*search("artists", "daft punk"))
    assert reply.data["artists"] == [{
        "id": "5468295", "name": "Daft Punk", "popularity": 0, "genres": ["Electronic"],
        "followers": 0, "image_url": None,
        "external_urls": {"itunes": "https://music.apple.com/us/artist/daft-punk/5468295?uo=4",
                          "hydrabase_soul_id": ARTIST_SOUL_ID, "hydrabase_plugin": "itunes"}}]
    empty = await api.post(*search("artists", "no such artist"))
    assert empty.status == 200
    assert empty.data == {"artists": [], "source": "hydrabase"}


async def test_search_ids_lead_to_artist_albums_and_album_tracks(node, hydrabase_app):
    hub = await node()
    provider = provider_of(await hydrabase_app(hub.url))
    [artist] = await provider.search_artists("daft punk", 5)
    albums = await provider.artist_albums(artist.id, 10)
    assert [(a.id, a.name, a.release_date, a.album_type) for a in albums] == [
        ("7x2Pq1Zk9LmN3bV5cR8tYw", "Random Access Memories (10th Anniversary Edition)",
         "2023-05-12", "album"),
        ("1p12OAWwudgMqfMzjMvl2a", "Infinity Repeating (2013 Demo)", "2023-04-13", "single")]
    assert [a.id for a in await provider.artist_albums(artist.id, 1)] == ["7x2Pq1Zk9LmN3bV5cR8tYw"]
    [album] = await provider.search_albums("discovery daft punk", 5)
    tracks = await provider.album_tracks(album.id)
    assert [(t.id, t.name, t.duration_ms) for t in tracks] == [
        ("697195462", "One More Time", 320357), ("697195475", "Aerodynamic", 212546)]
    sent = [frame["request"] for frame in hub.fake.requests]
    assert sent.count({"type": "artist.albums", "query": ARTIST_SOUL_ID}) == 2
    assert {"type": "album.tracks", "query": ALBUM_SOUL_ID} in sent
    assert not any(r["type"] in ("artists", "albums") and r["query"] in ("5468295", "697194953")
                   for r in sent)  # remembered: no look-up search


async def test_an_id_never_seen_is_looked_up_on_the_node_first(node, hydrabase_app):
    hub = await node()
    provider = provider_of(await hydrabase_app(hub.url))  # a fresh start: nothing remembered
    albums = await provider.artist_albums("5468295", 10)
    assert len(albums) == 2
    tracks = await provider.album_tracks("697194953")
    assert [t.name for t in tracks] == ["One More Time", "Aerodynamic"]
    sent = [frame["request"] for frame in hub.fake.requests]
    assert sent == [{"type": "artists", "query": "5468295"},
                    {"type": "artist.albums", "query": ARTIST_SOUL_ID},
                    {"type": "albums", "query": "697194953"},
                    {"type": "album.tracks", "query": ALBUM_SOUL_ID}]
    # A soul_id is passed through as it is.
    assert len(await provider.album_tracks(ALBUM_SOUL_ID)) == 2
    assert hub.fake.requests[-1]["request"] == {"type": "album.tracks", "query": ALBUM_SOUL_ID}


async def test_an_unknown_id_is_a_provider_error_naming_it(node, hydrabase_app):
    hub = await node()
    provider = provider_of(await hydrabase_app(hub.url))
    with pytest.raises(ProviderError, match="no artist with the id '999'"):
        await provider.artist_albums("999", 10)
    with pytest.raises(ProviderError, match="no album with the id 'nope'"):
        await provider.album_tracks("nope")
    assert not any(f["request"]["type"] in ("artist.albums", "album.tracks")
                   for f in hub.fake.requests)


async def test_a_result_is_found_in_the_library_by_its_source_id(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    # Titles the name matching would never pair: only the ids can find these files.
    await api.core.library.store.save([
        record("Daft Punk", "Discovery", "Track 01", number=1, spotify_track_id="0DiWol3AO6WpXZgp0goxAV"),
        record("Daft Punk", "Discovery", "Track 02", number=2, itunes_track_id="697195462")])
    matcher = LibraryMatcher(api.core.db, api.core.settings)
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    spotify = reply.data["tracks"][1]
    added = await api.post("/api/v1/wishlist", {"track_data": spotify})
    assert added.status == 201, added.json
    wanted = wanted_of(normalize_track(spotify))  # what the wishlist asks the library and the downloads for
    assert (wanted.source, wanted.track_id) == ("spotify", "0DiWol3AO6WpXZgp0goxAV")
    found = await matcher.match(wanted)
    assert found is not None and found.method == "id"
    # A query resolved through Hydrabase names the node plugin as the track's source.
    resolved = await resolve_query(api.core.search, "Daft Punk - One More Time")
    assert resolved is not None
    assert (resolved.source, resolved.track_id) == ("itunes", "697195462")
    by_itunes = await matcher.match(resolved)
    assert by_itunes is not None and by_itunes.method == "id" and by_itunes.track_id != found.track_id


async def test_a_bot_request_resolved_by_hydrabase_finds_the_library_file_by_its_id(
        node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    await api.core.library.store.save([
        record("Daft Punk", "Discovery", "Track 01", number=1, itunes_track_id="697195462")])
    reply = await api.post("/api/v1/request", {"query": "Daft Punk - One More Time"})
    assert reply.status == 202, reply.json
    await api.core.track_requests.settle()
    done = (await api.get(f"/api/v1/request/{reply.data['request_id']}")).data
    assert (done["status"], done["already_in_library"]) == ("completed", True)
    assert (done["match"]["source"], done["match"]["id"]) == ("itunes", "697195462")
    assert done["library_track"]["title"] == "Track 01"


async def test_results_are_deduplicated_on_plugin_and_native_id(node, hydrabase_app):
    hub = await node()
    itunes, spotify = load_wire("hydrabase", "response_tracks.server_to_client.json")["response"]
    relayed_copy = {**itunes, "address": "0x7d3f", "confidence": 0.5, "name": "Stale copy"}
    same_id_other_plugin = {**itunes, "plugin_id": "Spotify", "soul_id": "soul_777",
                            "confidence": 0.9}
    hub.fake.catalogue[("tracks", "dupes")] = [relayed_copy, spotify, itunes,
                                               same_id_other_plugin, dict(spotify)]
    api = await hydrabase_app(hub.url)
    reply = await api.post(*search("tracks", "dupes"))
    assert [(t["id"], t["name"], t["external_urls"]["hydrabase_soul_id"])
            for t in reply.data["tracks"]] == [
        ("697195462", "One More Time", "soul_12639084710249571243"),  # confidence 1 beats 0.5
        ("0DiWol3AO6WpXZgp0goxAV", "One More Time", "soul_4410982731156402917"),    # 0.93
        ("697195462", "One More Time", "soul_777")]            # same id, other plugin: kept
    limited = await api.post(*search("tracks", "dupes", limit=2))
    assert len(limited.data["tracks"]) == 2


# --- the protocol ------------------------------------------------------------------------------


async def test_server_pings_are_answered_with_pongs_carrying_their_nonce(node, hydrabase_app):
    hub = await node(ping_interval=0.02)
    await hydrabase_app(hub.url)
    pong = await next_item(hub.fake.pong_queue)
    assert set(pong) == set(load_wire("hydrabase", "client_pong.client_to_server.json"))
    assert pong["nonce"] == hub.fake.pings[0]["nonce"] >= 2  # 0 and 1 went to config and stats
    assert abs(pong["pong"]["time"] - time.time() * 1000) < 10_000


async def test_server_frames_never_resolve_a_request(node, hydrabase_app):
    hub = await node(silent=True)
    provider = provider_of(await hydrabase_app(hub.url, answer_within=5))
    task = asyncio.create_task(provider.search_tracks(TRACKS_QUERY, 10))
    nonce = (await next_item(hub.fake.received))["nonce"]
    assert NONCE_LOW <= nonce < NONCE_HIGH
    decoy = [{**load_wire("hydrabase", "response_artists.server_to_client.json")["response"][0]}]
    for small in range(4):  # the node's own counter values
        await hub.fake.send_all({"nonce": small, "response": decoy})
    await hub.fake.send_all({"nonce": nonce, "stats_peers": []})  # our nonce, but no response key
    await hub.fake.send_all({"nonce": nonce, "ping": {"peers": [], "time": 1}})
    await barrier(hub.fake)
    assert not task.done()
    track = load_wire("hydrabase", "response_tracks.server_to_client.json")["response"][1]
    await hub.fake.send_all({"nonce": nonce, "response": [track]})
    assert [t.id for t in await task] == [track["id"]]


async def test_concurrent_requests_are_routed_to_their_callers(node, hydrabase_app):
    hub = await node(hold=3)  # the node answers all three at once, last request first
    api = await hydrabase_app(hub.url)
    tracks, albums, nothing = await asyncio.gather(
        api.post(*search("tracks", TRACKS_QUERY)),
        api.post(*search("albums", "discovery daft punk")),
        api.post(*search("tracks", "nothing at all")))
    assert [t["name"] for t in tracks.data["tracks"]] == ["One More Time", "One More Time"]
    assert [a["id"] for a in albums.data["albums"]] == ["697194953"]
    assert nothing.data["tracks"] == []
    assert len({frame["nonce"] for frame in hub.fake.requests}) == 3


async def test_a_silent_node_times_out_as_source_unavailable(node, hydrabase_app):
    hub = await node(silent=True)
    api = await hydrabase_app(hub.url, answer_within=0.3)
    started = time.monotonic()
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 503
    assert reply.error["code"] == "SOURCE_UNAVAILABLE"
    assert "Hydrabase did not answer within 0.3 s" in reply.error["message"]
    assert time.monotonic() - started < 2  # far below the core's 8 s search timeout


async def test_an_unknown_request_type_gets_no_answer(node, hydrabase_app):
    hub = await node()
    provider = provider_of(await hydrabase_app(hub.url, answer_within=0.3))
    frame = load_wire("hydrabase", "invalid_request_type_no_reply.client_to_server.json")
    with pytest.raises(ProviderError, match=r"did not answer within 0\.3 s"):
        await provider.connection.request(frame["request"]["type"], frame["request"]["query"])
    assert hub.fake.requests[-1]["request"] == frame["request"]


# --- the socket's life ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["on demand", "after a frame"])
async def test_a_dropped_socket_fails_the_request_fast_and_reconnects(node, hydrabase_app, how):
    hub = await node(silent=True)
    api = await hydrabase_app(hub.url, answer_within=5, tuning=FAST)
    await next_item(hub.fake.connected)
    if how == "after a frame":
        hub.fake.drop_after_frames = 1
    task = asyncio.create_task(provider_of(api).search_tracks(TRACKS_QUERY, 10))
    if how == "on demand":
        await next_item(hub.fake.received)
        hub.fake.drop()
    started = time.monotonic()
    with pytest.raises(ProviderError, match="connection to Hydrabase was lost"):
        await task
    assert time.monotonic() - started < 1  # not the 5 s request timeout
    hub.fake.silent, hub.fake.drop_after_frames = False, 0
    await next_item(hub.fake.connected)  # the client came back by itself
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 200
    assert len(reply.data["tracks"]) == 2


async def test_a_refused_key_is_reported_without_a_hot_reconnect_loop(node, hydrabase_app, caplog):
    caplog.set_level(logging.DEBUG)
    hub = await node()
    hub.fake.api_key = "the-node-wants-another-key"
    api = await hydrabase_app(hub.url, tuning={"backoff_initial": 0.01})
    provider = provider_of(api)
    health = await provider.health()
    assert health.ok is False
    assert "Hydrabase refused the API key" in health.message
    assert health.details == {"peers": 0}
    with pytest.raises(AuthFailed, match="refused the API key"):
        await provider.search_tracks(TRACKS_QUERY, 10)
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 503
    assert "refused the API key" in reply.error["message"]
    # A 0.01 s back-off would mean dozens of handshakes here; a refused key waits the maximum.
    await asyncio.sleep(0.3)
    assert hub.fake.handshakes == 1
    assert KEY not in caplog.text


async def test_setting_the_key_reconnects_without_a_restart(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url, key=None)
    health = await provider_of(api).health()
    assert "wants an API key" in health.message  # the node answers 400 without the header
    reply = await api.patch("/api/v1/settings", {"hydrabase.api_key": KEY})
    assert reply.data["restart_required"] == []
    found = await api.post(*search("tracks", TRACKS_QUERY))  # no 30 s wait for the next retry
    assert found.status == 200
    assert len(found.data["tracks"]) == 2
    assert (await provider_of(api).health()).ok


async def test_health_reports_the_peer_count(node, hydrabase_app):
    hub = await node()
    api = await hydrabase_app(hub.url)
    provider = provider_of(api)
    health = await provider.health()
    assert health.ok is True
    assert health.details == {"peers": 1}  # one peer in the stats_peers sample
    assert "node42" in health.message  # from runtime_config
    await hub.fake.send_all(load_wire("hydrabase", "legacy_stats_connectedPeers.server_to_client.json"))
    await barrier(hub.fake)
    assert (await provider.health()).details == {"peers": 12}
    await hub.fake.send_all({"nonce": 9, "stats_peers": [{"address": f"0x{i}"} for i in range(3)]})
    await barrier(hub.fake)
    assert (await provider.health()).details == {"peers": 3}
    await api.core.health.check_all()
    status = await api.get("/api/v1/system/status")
    assert status.data["services"]["hydrabase"] is True


async def test_changing_the_url_reconnects_to_the_new_node(node, hydrabase_app):
    first, second = await node(), await node()
    second.fake.catalogue[("tracks", TRACKS_QUERY)] = [
        {**first.fake.catalogue[("tracks", TRACKS_QUERY)][0], "name": "One More Time (node two)"}]
    api = await hydrabase_app(None)
    await api.patch("/api/v1/settings", {"hydrabase.url": first.url})
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert [t["name"] for t in reply.data["tracks"]] == ["One More Time", "One More Time"]
    patched = await api.patch("/api/v1/settings", {"hydrabase.url": second.url})
    assert patched.status == 200
    assert patched.data["restart_required"] == []
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert [t["name"] for t in reply.data["tracks"]] == ["One More Time (node two)"]
    assert (len(first.fake.requests), len(second.fake.requests)) == (1, 1)
    await api.patch("/api/v1/settings", {"hydrabase.url": None})  # back to "": off
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 503
    assert "not configured" in reply.error["message"]


async def test_start_returns_at_once_and_a_down_node_fails_fast(hydrabase_app):
    url = f"ws://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    api = await hydrabase_app(url, answer_within=5, tuning=FAST)
    provider = provider_of(api)
    health = await provider.health()
    assert health.ok is False
    assert "could not be reached" in health.message
    reply = await api.post(*search("tracks", TRACKS_QUERY))
    assert reply.status == 503
    assert "not connected" in reply.error["message"]
    assert time.monotonic() - started < 2
