"""The Spotify plugin: real spotipy against the fake Spotify, through the daemon's API."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from importlib.metadata import entry_points
from typing import Any

import pytest

import soulsync_spotify.plugin
from soulsync_core.search import SourceUnavailable
from soulsync_core.testing import free_port
from tests.fakes.base import FAULTS
from tests.fakes.spotify import CLIENT_ID, CLIENT_SECRET, DAFT_PUNK, DISCOVERY, SPOTIFY, make_app

PLUGINS = [("spotify", soulsync_spotify.plugin)]


def base_url(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


def spotify_env(server: Any, **extra: str) -> dict[str, str]:
    base = base_url(server)
    return {"SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__CLIENT_SECRET": CLIENT_SECRET,
            "SOULSYNC_SPOTIFY__API_URL": base, "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base, **extra}


async def start(soulsync_factory, environ: dict[str, str], fake: Any = None):
    """Start the daemon with the plugin; with ``fake``, wait for the start-up health check.

    That check asks for a token as the app starts; waiting for it keeps it from taking a fault
    a test sets, or from being counted as the test's own request.
    """
    api = await soulsync_factory(plugins=PLUGINS, environ=environ)
    if fake is not None:
        async with asyncio.timeout(5):
            await fake.app[SPOTIFY].token_requested.wait()
    return api


@pytest.fixture
async def fake(aiohttp_server):
    return await aiohttp_server(make_app())


@pytest.fixture
async def api(soulsync_factory, fake):
    return await start(soulsync_factory, spotify_env(fake), fake)


async def search(api, kind: str, query: str, **body: Any):
    return await api.post(f"/api/v1/search/{kind}", {"query": query, "source": "spotify", **body})


def assert_unavailable(reply, *fragments: str) -> None:
    assert reply.status == 503, reply.json
    assert reply.error["code"] == "SOURCE_UNAVAILABLE"
    for fragment in fragments:
        assert fragment in reply.error["message"], reply.error["message"]


# --- search ------------------------------------------------------------------------------------


async def test_search_tracks_maps_the_track_object(api, fake):
    reply = await search(api, "tracks", "daft punk", limit=2)
    assert reply.status == 200, reply.json
    assert reply.data["source"] == "spotify"
    assert reply.data["tracks"][0] == {
        "id": "0DiWol3AO6WpXZgp0goxAV", "name": "One More Time", "artists": ["Daft Punk"],
        "album": "Discovery", "duration_ms": 320357, "popularity": 0, "preview_url": None,
        "image_url": "https://i.scdn.co/image/ab67616d0000b273b33d46dfa2635a47eebf63b2",
        "release_date": "2001-03-12", "album_id": DISCOVERY, "track_number": 1, "disc_number": 1,
        "isrc": "GBDUW0000053", "explicit": False, "external_urls": {}}
    assert [t["name"] for t in reply.data["tracks"]][1].startswith("Get Lucky")
    assert fake.app[SPOTIFY].api_calls == ["/v1/search?q=daft+punk&limit=2&offset=0&type=track"]


async def test_search_pages_through_the_development_mode_cap_of_ten(api, fake):
    reply = await search(api, "tracks", "daft punk", limit=12)
    assert reply.status == 200, reply.json
    assert len(reply.data["tracks"]) == 12
    assert len({t["id"] for t in reply.data["tracks"]}) == 12
    calls = fake.app[SPOTIFY].api_calls
    assert len(calls) == 2 and "limit=10" in calls[0] and "offset=10" in calls[1]


async def test_search_albums_and_their_types(api):
    reply = await search(api, "albums", "discovery")
    assert reply.status == 200, reply.json
    assert reply.data["albums"][0] == {
        "id": DISCOVERY, "name": "Discovery", "artists": ["Daft Punk"], "release_date": "2001-03-12",
        "total_tracks": 14, "album_type": "album",
        "image_url": "https://i.scdn.co/image/ab67616d0000b273b33d46dfa2635a47eebf63b2"}
    singles = await search(api, "albums", "da funk")
    assert [(a["name"], a["album_type"], a["release_date"]) for a in singles.data["albums"]] == [
        ("Da Funk", "single", "1995")]


async def test_search_artists_and_short_queries_use_the_artist_filter(api, fake):
    reply = await search(api, "artists", "daft punk")
    assert reply.status == 200, reply.json
    assert reply.data["artists"] == [{
        "id": DAFT_PUNK, "name": "Daft Punk", "popularity": 0,
        "genres": ["french house", "electronic"], "followers": 0,
        "image_url": "https://i.scdn.co/image/ab6761610000e5eba7bfd7835b5c1eee0c95fa6e",
        "external_urls": {}}]
    short = await search(api, "artists", "daft")
    assert short.data["artists"][0]["id"] == DAFT_PUNK
    assert "q=artist%3Adaft&" in fake.app[SPOTIFY].api_calls[-1]


async def test_no_match_is_an_empty_answer(api):
    reply = await search(api, "tracks", "zzyzx nothing")
    assert reply.status == 200
    assert reply.data == {"tracks": [], "source": "spotify"}


# --- discographies and album tracks ---------------------------------------------------------


async def test_artist_albums_are_the_newest_of_every_group_across_pages(api, fake):
    albums = await api.core.search.call("spotify", "artist_albums", DAFT_PUNK, 25)
    catalogue = fake.app[SPOTIFY].catalogue.albums.values()
    newest = sorted(catalogue, key=lambda a: a["release_date"], reverse=True)[:25]
    assert [a.id for a in albums] == [a["id"] for a in newest]
    assert {a.album_type for a in albums} == {"album", "single", "compilation"}
    calls = fake.app[SPOTIFY].api_calls
    assert any("include_groups=single" in c and "offset=10" in c for c in calls)  # followed next
    assert all("limit=10" in c for c in calls)


async def test_album_tracks_follow_every_page_in_disc_order(api, fake):
    big = fake.app[SPOTIFY].catalogue.add_album("Alive 2007 (Everything)", "2007-11-19",
                                                track_count=120, discs=2)
    tracks = await api.core.search.call("spotify", "album_tracks", big)
    assert len(tracks) == 120
    assert [(t.disc_number, t.track_number) for t in tracks] == sorted(
        (t.disc_number, t.track_number) for t in tracks)
    assert tracks[-1].disc_number == 2 and tracks[0].album == "Alive 2007 (Everything)"
    assert [c.split("?")[1] for c in fake.app[SPOTIFY].api_calls[1:]] == [
        "offset=50&limit=50", "offset=100&limit=50"]

    discovery = await api.core.search.call("spotify", "album_tracks", DISCOVERY)
    assert [t.name for t in discovery][:3] == ["One More Time", "Aerodynamic", "Digital Love"]
    assert {(t.album, t.album_id, t.release_date) for t in discovery} == {
        ("Discovery", DISCOVERY, "2001-03-12")}


@pytest.mark.parametrize(("album_id", "message"), [
    ("0000000000000000000000", "Spotify answered HTTP 404: Resource not found"),
    ("not-an-id", "'not-an-id' is not a Spotify album id"),
])
async def test_unknown_album_is_a_clear_error(api, album_id, message):
    with pytest.raises(SourceUnavailable, match=message):
        await api.core.search.call("spotify", "album_tracks", album_id)


# --- rate limits, tokens, credentials --------------------------------------------------------


async def test_429_answers_at_once_and_the_cool_down_spares_spotify(api, fake):
    faults = fake.app[FAULTS]
    faults.retry_after, faults.rate_limit_count = 30, 1
    started = time.monotonic()
    reply = await search(api, "tracks", "daft punk")
    assert time.monotonic() - started < 2  # spotipy/urllib3 would sleep 30 s here
    assert_unavailable(reply, "rate limited for 30 seconds")
    seen = faults.requests
    again = await search(api, "tracks", "daft punk")
    assert_unavailable(again, "rate limited")
    assert faults.requests == seen
    assert api.core.search.cooldown_left("spotify") > 25


async def test_429_from_the_token_endpoint(api, fake):
    faults = fake.app[FAULTS]
    faults.retry_after, faults.rate_limit_count = 30, 1
    started = time.monotonic()
    health = await api.core.search.provider("spotify").health()
    assert time.monotonic() - started < 2
    assert (health.ok, health.message) == (False, "Spotify asked to slow down for 30 s")


async def test_expired_token_is_replaced_and_the_call_repeated(api, fake):
    assert (await search(api, "tracks", "daft punk")).status == 200
    state = fake.app[SPOTIFY]
    issued = len(state.tokens)
    state.expire_next = 1  # also revokes the token, so repeating with it would fail again
    reply = await search(api, "tracks", "daft punk")
    assert reply.status == 200, reply.json
    assert len(state.tokens) == issued + 1 and len(state.revoked) == 1


async def test_outbound_rate_limit_is_awaited_before_the_request(soulsync_factory, fake):
    api = await start(soulsync_factory, spotify_env(
        fake, SOULSYNC_SPOTIFY__REQUESTS_PER_MINUTE="1", SOULSYNC_SEARCH__TIMEOUT_SECONDS="0.3"), fake)
    first = await search(api, "tracks", "daft punk", limit=5)  # one page, one request
    assert first.status == 200, first.json
    assert_unavailable(await search(api, "tracks", "daft punk", limit=5),
                       "did not answer within 0.3 s")
    assert len(fake.app[SPOTIFY].api_calls) == 1


async def test_wrong_secret_is_auth_failed_and_unhealthy(soulsync_factory, fake):
    api = await start(soulsync_factory, spotify_env(
        fake, SOULSYNC_SPOTIFY__CLIENT_SECRET="wrong"), fake)
    assert_unavailable(await search(api, "tracks", "daft punk"),
                       "Spotify refused the client id/secret")
    health = await api.core.search.provider("spotify").health()
    assert (health.ok, health.message) == (False, "Spotify refused the client id/secret")
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["spotify"] is False


async def test_health_obtains_a_new_token(api, fake):
    issued = len(fake.app[SPOTIFY].tokens)
    health = await api.core.search.provider("spotify").health()
    assert health.ok
    assert len(fake.app[SPOTIFY].tokens) == issued + 1
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["spotify"] is True


async def test_not_configured_without_a_client_id(soulsync_factory, fake):
    env = spotify_env(fake)
    del env["SOULSYNC_SPOTIFY__CLIENT_ID"]
    api = await start(soulsync_factory, env)
    assert api.core.search.provider("spotify").configured is False
    assert_unavailable(await search(api, "tracks", "daft punk"), "not configured")
    assert fake.app[FAULTS].requests == 0


async def test_settings_changes_apply_without_restart(soulsync_factory, aiohttp_server, fake):
    api = await soulsync_factory(plugins=PLUGINS,
                                 environ={"SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID})
    patch = {"spotify.client_secret": "wrong", "spotify.api_url": base_url(fake),
             "spotify.accounts_url": base_url(fake)}
    assert (await api.patch("/api/v1/settings", patch)).status == 200
    assert_unavailable(await search(api, "tracks", "daft punk"), "refused the client id/secret")
    assert (await api.patch("/api/v1/settings", {"spotify.client_secret": CLIENT_SECRET})).status == 200
    assert (await search(api, "tracks", "daft punk", limit=5)).status == 200

    other = await aiohttp_server(make_app())
    moved = {"spotify.api_url": base_url(other), "spotify.accounts_url": base_url(other)}
    assert (await api.patch("/api/v1/settings", moved)).status == 200
    assert (await search(api, "tracks", "daft punk", limit=5)).status == 200
    assert len(other.app[SPOTIFY].api_calls) == 1 and len(fake.app[SPOTIFY].api_calls) == 1


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("faults", "message"), [
    ({"status": 502, "status_count": 1}, "answered HTTP 502"),
    ({"drop_count": 1}, "could not be reached or closed the connection"),
])
async def test_server_errors_and_dropped_connections(api, fake, faults, message):
    assert (await search(api, "tracks", "daft punk")).status == 200
    for name, value in faults.items():
        setattr(fake.app[FAULTS], name, value)
    assert_unavailable(await search(api, "tracks", "daft punk"), f"Spotify ({base_url(fake)})",
                       message)
    assert (await search(api, "tracks", "daft punk")).status == 200


async def test_connection_refused(soulsync_factory):
    closed = f"http://127.0.0.1:{free_port()}"
    api = await start(soulsync_factory, {
        "SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__CLIENT_SECRET": CLIENT_SECRET,
        "SOULSYNC_SPOTIFY__ACCOUNTS_URL": closed, "SOULSYNC_SPOTIFY__API_URL": closed})
    assert_unavailable(await search(api, "tracks", "daft punk"),
                       "Spotify's accounts service", "could not be reached")


async def test_a_limit_spotify_refuses_is_reported(api, fake):
    fake.app[SPOTIFY].search_max_limit = 5  # stricter than the provider's page size
    assert_unavailable(await search(api, "tracks", "daft punk", limit=8),
                       "Spotify answered HTTP 400: Invalid limit")


@pytest.mark.parametrize(("search_timeout", "spotify_timeout", "who"), [
    ("0.3", "5", "it"),          # the core's limit per source
    ("5", "0.3", "fake"),        # spotify.timeout_seconds, per HTTP request
])
async def test_slow_spotify(soulsync_factory, fake, search_timeout, spotify_timeout, who):
    api = await start(soulsync_factory, spotify_env(
        fake, SOULSYNC_SEARCH__TIMEOUT_SECONDS=search_timeout,
        SOULSYNC_SPOTIFY__TIMEOUT_SECONDS=spotify_timeout), fake)
    fake.app[FAULTS].latency = 0.8
    started = time.monotonic()
    reply = await search(api, "tracks", "daft punk")
    assert time.monotonic() - started < 0.7
    who = f"({base_url(fake)})" if who == "fake" else who
    assert_unavailable(reply, f"{who} did not answer within 0.3 s")


# --- secrets --------------------------------------------------------------------------------------


async def test_secret_is_redacted_and_never_logged(api, fake, caplog):
    caplog.set_level(logging.DEBUG)
    state = fake.app[SPOTIFY]
    replies = [await search(api, "tracks", "daft punk")]
    state.expire_next = 1
    replies.append(await search(api, "albums", "discovery"))
    state.expire_next, state.client_secret = 1, "rotated"
    replies.append(await search(api, "tracks", "daft punk"))  # the new token is refused
    assert_unavailable(replies[-1], "refused the client id/secret")
    settings = await api.get("/api/v1/settings")
    replies.append(settings)
    assert settings.data["settings"]["spotify"]["client_secret"] == "***REDACTED***"
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    secrets = [CLIENT_SECRET, basic, *fake.app[SPOTIFY].tokens]
    answers = json.dumps([r.json for r in replies])
    for secret in secrets:
        assert secret not in answers
        assert secret not in caplog.text
    assert "fetching a new one" in caplog.text  # the log was captured at all


def test_installed_under_the_plugin_entry_point():
    found = {ep.name: ep.value for ep in entry_points(group="soulsync.plugins")}
    assert found.get("spotify") == "soulsync_spotify.plugin"
