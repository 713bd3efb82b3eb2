"""The iTunes plugin against the fake iTunes Search API: mapping, lookups, errors, limits, settings."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import soulsync_itunes.plugin
from soulsync_core.config import SettingError, core_schema
from soulsync_core.hooks import ProviderError, RateLimited
from soulsync_core.testing import ApiClient, free_port
from soulsync_itunes import mapping
from soulsync_itunes.client import ITunesClient
from soulsync_itunes.provider import ITunesProvider
from tests.fakes.base import FAULTS, Faults, load_wire
from tests.fakes.itunes import ITUNES, ITunesState, make_app

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "soulsync_itunes"
ART = "https://is1-ssl.mzstatic.com/image/thumb/Music124/v4/a1/b2/c3/a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90/dj.abcdefgh.jpg/"
DAFT_PUNK = "5468295"
DISCOVERY = "697194953"


def url_of(server: TestServer) -> str:
    return str(server.make_url("/"))


def faults(server: TestServer) -> Faults:
    return server.app[FAULTS]


def state(server: TestServer) -> ITunesState:
    return server.app[ITUNES]


class DictSettings(dict):
    """A settings stand-in: the plugin only ever calls ``get`` and ``on_change``."""

    def on_change(self, prefix: str, listener: Any) -> None:
        pass


@pytest.fixture
async def fake(aiohttp_server: Any) -> TestServer:
    return await aiohttp_server(make_app())


@pytest.fixture
def make_api(soulsync_factory: Any, fake: TestServer) -> Any:
    """Start the daemon with the plugin; with the fake as base URL, wait for its health check.

    The core checks health once at start-up; waiting for that request to reach the fake keeps
    it from eating a fault or a limiter slot that a test sets up afterwards.
    """

    async def make(**environ: str) -> ApiClient:
        environ.setdefault("SOULSYNC_ITUNES__BASE_URL", url_of(fake))
        api = await soulsync_factory(plugins=[("itunes", soulsync_itunes.plugin)], environ=environ)
        if environ["SOULSYNC_ITUNES__BASE_URL"] == url_of(fake):
            await asyncio.wait_for(state(fake).queried.wait(), 5)
        return api

    return make


@pytest.fixture
async def api(make_api: Any) -> ApiClient:
    return await make_api()


@pytest.fixture
def itunes(api: ApiClient) -> Any:
    """The started provider, as the core holds it."""
    return api.core.search.provider("itunes")


# --- search through the API ------------------------------------------------------------------


async def test_search_tracks_maps_every_field(api, fake):
    reply = await api.post("/api/v1/search/tracks", {"query": "Daft Punk", "source": "itunes",
                                                     "limit": 5})
    assert reply.status == 200
    assert reply.data["source"] == "itunes"
    assert [t["name"] for t in reply.data["tracks"]] == [
        "One More Time", "Get Lucky (feat. Pharrell Williams & Nile Rodgers)", "Aerodynamic",
        "Digital Love"]
    assert reply.data["tracks"][0] == {
        "id": "697195462", "name": "One More Time", "artists": ["Daft Punk"], "album": "Discovery",
        "duration_ms": 320357, "popularity": 0,
        "preview_url": "https://audio-ssl.itunes.apple.com/itunes-assets/AudioPreview115/v4/0a/1b/2c/"
                       "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9/mzaf_1234567890123456789.plus.aac.p.m4a",
        "image_url": ART + "600x600bb.jpg", "release_date": "2001-03-07", "album_id": DISCOVERY,
        "track_number": 1, "disc_number": 1, "isrc": None, "explicit": False,
            "external_urls": {}}
    assert state(fake).queries[-1] == {"term": "Daft Punk", "media": "music", "entity": "song",
                                       "limit": "5", "country": "US"}


async def test_search_honours_limit(api, fake):
    reply = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes", "limit": 2})
    assert len(reply.data["tracks"]) == 2
    assert state(fake).queries[-1]["limit"] == "2"


async def test_search_albums_maps_types_and_strips_suffix(api, fake):
    reply = await api.post("/api/v1/search/albums", {"query": "daft punk", "source": "itunes"})
    assert reply.status == 200
    albums = {a["id"]: a for a in reply.data["albums"]}
    assert albums[DISCOVERY] == {
        "id": DISCOVERY, "name": "Discovery", "artists": ["Daft Punk"], "release_date": "2001-03-07",
        "total_tracks": 14, "album_type": "album", "image_url": ART + "600x600bb.jpg"}
    single = albums["1676940474"]
    assert single["name"] == "Infinity Repeating (2013 Demo) [feat. Julian Casablancas+The Voidz]"
    assert single["album_type"] == "single"
    assert state(fake).queries[-1]["entity"] == "album"


async def test_search_artists_maps_fields(api, fake):
    reply = await api.post("/api/v1/search/artists", {"query": "daft", "source": "itunes"})
    assert reply.data == {"artists": [{"id": DAFT_PUNK, "name": "Daft Punk", "popularity": 0,
                                       "genres": ["Electronic"], "followers": 0, "image_url": None,
                                       "external_urls": {}}],
                          "source": "itunes"}
    assert state(fake).queries[-1]["entity"] == "musicArtist"


async def test_no_match_answers_empty(api):
    reply = await api.post("/api/v1/search/tracks", {"query": "zzzz", "source": "itunes"})
    assert reply.status == 200
    assert reply.data == {"tracks": [], "source": "itunes"}


async def test_body_labelled_text_javascript_is_parsed(itunes, fake):
    async with aiohttp.ClientSession() as session, session.get(
            url_of(fake) + "search", params={"term": "daft", "entity": "musicArtist"}) as response:
        assert response.content_type == "text/javascript"
    assert [a.name for a in await itunes.search_artists("daft", 5)] == ["Daft Punk"]


# --- lookups (called on the provider) ------------------------------------------------------------


async def test_artist_albums_are_newest_first_without_the_artist_row(itunes, fake):
    albums = await itunes.artist_albums(DAFT_PUNK, 10)
    assert [(a.id, a.release_date) for a in albums] == [
        ("1691207371", "2023-05-12"), ("1676940474", "2023-04-13"), (DISCOVERY, "2001-03-07")]
    assert state(fake).queries[-1] == {"id": DAFT_PUNK, "entity": "album", "limit": "200",
                                       "country": "US"}
    assert [a.id for a in await itunes.artist_albums(DAFT_PUNK, 1)] == ["1691207371"]


async def test_album_tracks_in_disc_and_track_order(itunes, fake):
    tracks = await itunes.album_tracks(DISCOVERY)
    assert [(t.track_number, t.name, t.album_id) for t in tracks] == [
        (1, "One More Time", DISCOVERY), (2, "Aerodynamic", DISCOVERY), (3, "Digital Love", DISCOVERY)]
    assert state(fake).queries[-1] == {"id": DISCOVERY, "entity": "song", "limit": "200",
                                       "country": "US"}


async def test_album_tracks_are_sorted_whatever_order_itunes_sends(itunes, fake):
    body = load_wire("itunes", "lookup_album_songs.GET_lookup_id_entity_song.json")
    collection, *songs = body["results"]
    second_disc = {**songs[0], "trackId": 1, "trackName": "Bonus", "discNumber": 2, "trackNumber": 1}
    body["results"] = [collection, second_disc, *reversed(songs)]
    state(fake).raw_body = json.dumps(body)
    tracks = await itunes.album_tracks(DISCOVERY)
    assert [(t.disc_number, t.track_number) for t in tracks] == [(1, 1), (1, 2), (1, 3), (2, 1)]


async def test_unknown_ids_give_empty_lists_and_foreign_ids_an_error(itunes):
    assert await itunes.album_tracks("1") == []
    assert await itunes.artist_albums("1", 10) == []
    with pytest.raises(ProviderError, match="not an iTunes id"):
        await itunes.album_tracks("4tZwfgrHOc3mvqYlEYSvVi")


# --- errors ---------------------------------------------------------------------------------------


async def test_429_raises_rate_limited_with_retry_after(itunes, fake):
    faults(fake).retry_after, faults(fake).rate_limit_count = 7, 1
    with pytest.raises(RateLimited) as caught:
        await itunes.search_tracks("daft", 5)
    assert caught.value.retry_after == 7


async def test_403_throttling_without_retry_after_cools_down_a_minute(itunes, fake):
    faults(fake).status, faults(fake).status_count = 403, 1
    with pytest.raises(RateLimited) as caught:
        await itunes.search_albums("daft", 5)
    assert caught.value.retry_after == 60


async def test_429_puts_the_source_in_cool_down_without_asking_again(api, fake):
    before = faults(fake).requests
    faults(fake).retry_after, faults(fake).rate_limit_count = 30, 1
    first = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert first.status == 503
    assert first.error["code"] == "SOURCE_UNAVAILABLE"
    assert "rate limited for 30 seconds" in first.error["message"]
    second = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert second.status == 503
    assert "rate limited" in second.error["message"]
    assert faults(fake).requests == before + 1


async def test_400_error_message_is_quoted(api, fake):
    client = ITunesClient(api.core.settings)
    await client.start()
    try:
        with pytest.raises(ProviderError, match=r"Invalid value\(s\) for key\(s\): \[resultEntity\]"):
            await client.get("/search", {"term": "daft", "entity": "songz"})
    finally:
        await client.close()


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_a_provider_error_and_a_503(api, itunes, fake, status):
    faults(fake).status, faults(fake).status_count = status, 2
    with pytest.raises(ProviderError, match=f"iTunes answered HTTP {status}"):
        await itunes.search_tracks("daft", 5)
    reply = await api.post("/api/v1/search/artists", {"query": "daft", "source": "itunes"})
    assert reply.status == 503
    assert f"iTunes answered HTTP {status}" in reply.error["message"]


async def test_dropped_connection_is_a_provider_error(itunes, fake):
    # Every time: aiohttp itself retries once when a pooled keep-alive connection was dropped.
    faults(fake).drop_count = -1
    with pytest.raises(ProviderError, match="connection was closed"):
        await itunes.search_tracks("daft", 5)


async def test_refused_connection_is_a_provider_error(make_api):
    api = await make_api(SOULSYNC_ITUNES__BASE_URL=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProviderError, match="could not be reached"):
        await api.core.search.provider("itunes").search_tracks("daft", 5)


@pytest.mark.parametrize("body", ["<html><body>Service Unavailable</body></html>", ""])
async def test_body_that_is_not_json_is_a_provider_error(itunes, fake, body):
    state(fake).raw_body = body
    with pytest.raises(ProviderError, match="not JSON"):
        await itunes.search_tracks("daft", 5)


async def test_slow_itunes_answers_503_within_the_search_timeout(make_api, fake):
    api = await make_api(SOULSYNC_SEARCH__TIMEOUT_SECONDS="0.3")
    faults(fake).latency = 1.0
    started = time.monotonic()
    reply = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert time.monotonic() - started < 0.9
    assert reply.status == 503
    assert "did not answer within 0.3 s" in reply.error["message"]


async def test_own_request_timeout_is_a_provider_error(api, itunes, fake):
    await api.patch("/api/v1/settings", {"itunes.timeout_seconds": 0.2})
    faults(fake).latency = 0.5
    with pytest.raises(ProviderError, match=r"iTunes did not answer within 0\.2 s"):
        await itunes.search_tracks("daft", 5)


# --- outbound limit, health, settings -----------------------------------------------------------


async def test_outbound_limiter_holds_back_the_next_call_until_raised(api, itunes, fake):
    assert (await api.patch("/api/v1/settings", {"itunes.requests_per_minute": 3})).status == 200
    await api.core.health.wait_rechecks()  # a settings change re-checks iTunes: one request
    before = faults(fake).requests
    await itunes.search_tracks("daft", 1)
    await itunes.search_tracks("daft", 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(itunes.search_tracks("daft", 1), 0.2)
    assert faults(fake).requests == before + 2
    await api.patch("/api/v1/settings", {"itunes.requests_per_minute": 100})
    await api.core.health.wait_rechecks()
    await asyncio.wait_for(itunes.search_tracks("daft", 1), 1)
    assert faults(fake).requests == before + 4  # the re-check, then the search


async def test_health_ok_and_not_ok(api, itunes, fake):
    health = await itunes.health()
    assert health.ok and health.details == {"country": "US"}
    assert state(fake).queries[-1]["limit"] == "1"
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["itunes"] is True
    faults(fake).status, faults(fake).status_count = 500, 1
    health = await itunes.health()
    assert not health.ok
    assert health.message == "iTunes answered HTTP 500"


async def test_health_not_ok_when_unreachable(make_api):
    api = await make_api(SOULSYNC_ITUNES__BASE_URL=f"http://127.0.0.1:{free_port()}")
    health = await api.core.search.provider("itunes").health()
    assert not health.ok and "could not be reached" in health.message


async def test_settings_changes_apply_to_the_next_request(api, fake, aiohttp_server):
    reply = await api.patch("/api/v1/settings", {"itunes.country": "GB"})
    assert reply.status == 200 and reply.data["restart_required"] == []
    await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert state(fake).queries[-1]["country"] == "GB"


async def test_base_url_and_country_are_read_per_request(fake, aiohttp_server):
    # Changing base_url through PATCH would first send the default (the real Apple) a health
    # check, so this uses a settings stand-in instead of the daemon.
    other = await aiohttp_server(make_app())
    settings = DictSettings({"itunes.base_url": url_of(fake), "itunes.country": "US",
                             "itunes.requests_per_minute": 20, "itunes.timeout_seconds": 5.0})
    provider = ITunesProvider(settings)
    await provider.start()
    try:
        await provider.search_albums("discovery", 5)
        settings.update({"itunes.base_url": url_of(other), "itunes.country": "fr"})
        assert [a.name for a in await provider.search_albums("discovery", 5)] == ["Discovery"]
    finally:
        await provider.close()
    assert [q["country"] for q in state(fake).queries] == ["US"]
    assert [q["country"] for q in state(other).queries] == ["fr"]


def test_configured_whenever_a_base_url_is_set():
    assert ITunesProvider(DictSettings({"itunes.base_url": "http://127.0.0.1:1"})).configured
    assert not ITunesProvider(DictSettings({"itunes.base_url": ""})).configured


@pytest.mark.parametrize(("patch", "needle"), [
    ({"itunes.country": "USA"}, "two-letter ISO country code"),
    ({"itunes.requests_per_minute": 0}, "between 1 and 1000"),
    ({"itunes.timeout_seconds": "10"}, "must be a number"),
])
async def test_bad_settings_are_refused_with_the_fix(api, patch, needle):
    reply = await api.patch("/api/v1/settings", patch)
    assert reply.status == 400
    assert needle in reply.error["message"]


def test_base_url_must_be_http():
    schema = core_schema(soulsync_itunes.plugin.settings_sections())
    assert schema.coerce("itunes.base_url", "") == ""
    with pytest.raises(SettingError, match="must start with http:// or https://"):
        schema.coerce("itunes.base_url", "itunes.apple.com")


async def test_settings_show_the_itunes_section(api, fake):
    reply = await api.get("/api/v1/settings")
    assert reply.data["settings"]["itunes"] == {
        "base_url": url_of(fake), "country": "US", "requests_per_minute": 20, "timeout_seconds": 10.0}
    assert reply.data["sources"]["itunes.base_url"] == "env"
    assert reply.data["sources"]["itunes.country"] == "default"


async def test_system_plugins_lists_the_plugin_and_its_provider(api):
    reply = await api.get("/api/v1/system/plugins")
    assert {"name": "itunes", "version": None, "hooks": ["metadata_providers", "settings_sections"],
            "providers": ["itunes"], "error": None} in reply.data["plugins"]


def test_entry_point_names_the_plugin_module():
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["soulsync.plugins"]["itunes"]
    assert importlib.import_module(target) is soulsync_itunes.plugin


# --- mapping rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(("row", "expected"), [
    ({"collectionName": "Homework", "trackCount": 16}, "album"),
    ({"collectionName": "One More Time - Single", "trackCount": 4}, "single"),
    ({"collectionName": "Alive - EP", "trackCount": 5}, "ep"),
    ({"collectionName": "Edits", "trackCount": 2}, "single"),
    ({"collectionName": "Hits", "collectionType": "Compilation", "trackCount": 30}, "compilation"),
    ({"collectionName": "Summer - EP", "artistName": "Various Artists", "trackCount": 5}, "compilation"),
])
def test_album_type_rule(row, expected):
    assert mapping.album_type(row) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2001-03-07T08:00:00Z", "2001-03-07"), ("1997", "1997"), ("", None), (None, None)])
def test_release_date_keeps_the_date_part(value, expected):
    assert mapping.release_date(value) == expected


def test_rows_without_artwork_or_optional_fields_still_map():
    track = mapping.to_track({"wrapperType": "track", "kind": "song", "trackId": 5,
                              "trackName": "X", "trackExplicitness": "explicit"})
    assert (track.image_url, track.duration_ms, track.album_id, track.explicit) == (None, 0, None, True)
