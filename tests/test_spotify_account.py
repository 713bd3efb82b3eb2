"""The Spotify user login and playlist source: real spotipy against the fake Spotify.

The provider comes from the plugin's hooks with a settings stand-in and the core's real
AccountStore over a temp database; the browser is an aiohttp request to the fake's
``/authorize`` whose 302 is the address a user would paste.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

import soulsync_spotify.plugin
from soulsync_core.accounts import Accounts
from soulsync_core.db import Database
from soulsync_core.health_checks import clock_skew
from soulsync_core.hooks import AccountLogin, LoginFailed, NotAuthenticated, PlaylistSource, RateLimited
from soulsync_core.models import Account, LoginStart
from soulsync_spotify import mapping
from soulsync_spotify.account import LOGIN_KEY, SCOPES, TOKENS_KEY
from soulsync_spotify.provider import SpotifyProvider
from soulsync_spotify.settings import SECTION
from tests.fakes.base import FAULTS
from tests.fakes.spotify import (
    CLIENT_ID,
    CLIENT_SECRET,
    DISCOVERY,
    FOLLOWED,
    FRENCH_TOUCH,
    GYM,
    SPOTIFY,
    USER_ID,
    USER_NAME,
    make_app,
    track_entry,
)

CALLBACK = "http://127.0.0.1:9/auth/spotify/callback"  # never visited: the user copies it


class SettingsStandIn:
    """The plugin's settings with their defaults, overridable per test; no change events."""

    def __init__(self, **values: Any):
        self.values = {setting.key: setting.default for setting in SECTION.settings}
        self.values.update({f"spotify.{key}": value for key, value in values.items()})

    def get(self, key: str) -> Any:
        return self.values[key]

    def on_change(self, prefix: str, listener: Any) -> None:
        pass


def base_url(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def fake(aiohttp_server):
    return await aiohttp_server(make_app())


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "data")
    yield database
    await database.close()


@pytest.fixture
async def make_provider(fake, db) -> AsyncIterator[Any]:
    """``make(secret=True, database=db, **settings)``: a provider from the plugin's hooks."""
    made: list[SpotifyProvider] = []

    def make(secret: bool = True, database: Database | None = None, **settings: Any) -> SpotifyProvider:
        values = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET if secret else "",
                  "api_url": base_url(fake), "accounts_url": base_url(fake), **settings}
        provider = soulsync_spotify.plugin.metadata_providers(
            SettingsStandIn(**values), Accounts(database or db))[0]
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


@pytest.fixture
def provider(make_provider) -> SpotifyProvider:
    return make_provider()


async def approve(url: str) -> str:
    """Open the authorize address like a browser; return where the fake sends it back."""
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as answer:
        assert answer.status == 302, await answer.text()
        return answer.headers["Location"]


async def log_in(provider: SpotifyProvider) -> Account:
    start = await provider.begin_login(CALLBACK)
    return await provider.finish_login(await approve(start.url))


def store(provider: SpotifyProvider) -> Any:
    return provider._accounts.store("spotify")


async def expire_stored_token(provider: SpotifyProvider) -> dict[str, Any]:
    tokens = await store(provider).get(TOKENS_KEY)
    tokens["expires_at"] = int(time.time()) - 1
    await store(provider).put(TOKENS_KEY, tokens)
    return tokens


CONNECTED = Account(connected=True, user_id=USER_ID, display_name=USER_NAME, scopes=SCOPES.split())


# --- login ---------------------------------------------------------------------------------------


async def test_login_with_the_whole_redirect_address(provider, fake):
    assert isinstance(provider, AccountLogin) and isinstance(provider, PlaylistSource)
    start = await provider.begin_login(CALLBACK)
    assert isinstance(start, LoginStart)
    assert (start.redirect_uri, start.expires_in) == (CALLBACK, 600)
    url = urlsplit(start.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{base_url(fake)}/authorize"
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query == {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": CALLBACK,
                     "scope": SCOPES, "state": start.state}
    assert (await store(provider).get(LOGIN_KEY))["state"] == start.state

    account = await provider.finish_login(await approve(start.url))
    assert account == CONNECTED
    assert await provider.account() == CONNECTED
    request = fake.app[SPOTIFY].token_requests[-1]
    assert request["grant_type"] == "authorization_code"
    assert request["basic_auth"] and not request["code_verifier"]
    assert request["redirect_uri"] == CALLBACK
    assert await store(provider).get(LOGIN_KEY) is None
    tokens = await store(provider).get(TOKENS_KEY)
    assert tokens["access_token"] in fake.app[SPOTIFY].user_tokens
    assert tokens["refresh_token"] in fake.app[SPOTIFY].refresh_tokens
    assert tokens["expires_at"] > time.time() + 3000
    assert (tokens["user_id"], tokens["display_name"], tokens["scope"]) == (USER_ID, USER_NAME, SCOPES)


async def test_login_with_a_bare_code(provider):
    start = await provider.begin_login(CALLBACK)
    code = parse_qs(urlsplit(await approve(start.url)).query)["code"][0]
    assert await provider.finish_login(f"  {code}\n") == CONNECTED


async def test_redirect_uri_setting_wins_over_the_daemons_callback(make_provider, fake):
    mine = "https://soulsync.example.net/auth/spotify/callback"
    provider = make_provider(redirect_uri=mine)
    start = await provider.begin_login(CALLBACK)
    assert start.redirect_uri == mine
    location = await approve(start.url)
    assert location.startswith(f"{mine}?code=")
    assert await provider.finish_login(location) == CONNECTED
    assert fake.app[SPOTIFY].token_requests[-1]["redirect_uri"] == mine


async def test_pkce_login_without_a_client_secret(make_provider, fake):
    provider = make_provider(secret=False)
    assert provider.configured is False  # no secret and nobody connected yet
    start = await provider.begin_login(CALLBACK)
    query = parse_qs(urlsplit(start.url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert len((await store(provider).get(LOGIN_KEY))["code_verifier"]) >= 43

    assert await provider.finish_login(await approve(start.url)) == CONNECTED
    exchange = fake.app[SPOTIFY].token_requests[-1]
    # The fake checked S256(code_verifier) against the challenge before answering.
    assert exchange["code_verifier"] and not exchange["basic_auth"]
    assert exchange["client_id"] == CLIENT_ID
    assert provider.configured is True

    # Refreshing a PKCE login sends the client id and no secret.
    await expire_stored_token(provider)
    assert len(await provider.list_playlists()) == 3
    refresh = fake.app[SPOTIFY].token_requests[-1]
    assert refresh["grant_type"] == "refresh_token" and not refresh["basic_auth"]


async def test_pkce_verifier_is_checked_by_the_fake(make_provider, fake):
    provider = make_provider(secret=False)
    start = await provider.begin_login(CALLBACK)
    login = await store(provider).get(LOGIN_KEY)
    login["code_verifier"] = "x" * 64  # not the one the challenge was made from
    await store(provider).put(LOGIN_KEY, login)
    with pytest.raises(LoginFailed, match="already used or expired"):
        await provider.finish_login(await approve(start.url))
    assert await provider.account() == Account(connected=False)


async def test_state_from_another_attempt_is_refused(provider):
    first = await approve((await provider.begin_login(CALLBACK)).url)
    await provider.begin_login(CALLBACK)  # a new login replaces the first
    with pytest.raises(LoginFailed, match=r"another Spotify login attempt.*start the login again"):
        await provider.finish_login(first)
    assert (await provider.account()).connected is False


async def test_no_login_in_progress(provider):
    with pytest.raises(LoginFailed, match="No Spotify login is in progress: start the login again"):
        await provider.finish_login("AQsomecode")


async def test_expired_login(provider):
    start = await provider.begin_login(CALLBACK)
    login = await store(provider).get(LOGIN_KEY)
    login["created_at"] -= 601
    await store(provider).put(LOGIN_KEY, login)
    with pytest.raises(LoginFailed, match="expired after 10 minutes"):
        await provider.finish_login(await approve(start.url))
    assert await store(provider).get(LOGIN_KEY) is None


async def test_declined_login(provider, fake):
    fake.app[SPOTIFY].deny_login = True
    start = await provider.begin_login(CALLBACK)
    location = await approve(start.url)
    assert "error=access_denied" in location
    with pytest.raises(LoginFailed, match="You declined the access in Spotify"):
        await provider.finish_login(location)


async def test_reused_code(provider, fake):
    start = await provider.begin_login(CALLBACK)
    location = await approve(start.url)
    await provider.finish_login(location)
    code = parse_qs(urlsplit(location).query)["code"][0]
    await provider.begin_login(CALLBACK)
    with pytest.raises(LoginFailed, match="the code was already used or expired; start the login again"):
        await provider.finish_login(code)
    assert fake.app[SPOTIFY].token_requests[-1]["grant_type"] == "authorization_code"


async def test_begin_login_needs_a_client_id(make_provider):
    from soulsync_core.hooks import NotConfigured

    with pytest.raises(NotConfigured, match=r"spotify\.client_id"):
        await make_provider(client_id="").begin_login(CALLBACK)


async def test_logout_forgets_tokens_and_login(provider):
    await log_in(provider)
    await provider.begin_login(CALLBACK)
    await provider.logout()
    assert await store(provider).get(TOKENS_KEY) is None
    assert await store(provider).get(LOGIN_KEY) is None
    assert await provider.account() == Account(connected=False)
    with pytest.raises(NotAuthenticated):
        await provider.list_playlists()


# --- tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rotate", [False, True])
async def test_expired_token_is_refreshed_before_use(provider, fake, rotate):
    await log_in(provider)
    state = fake.app[SPOTIFY]
    state.rotate_refresh_token = rotate
    old = await expire_stored_token(provider)
    assert len(await provider.list_playlists()) == 3
    assert state.grants("refresh_token") == 1
    new = await store(provider).get(TOKENS_KEY)
    assert new["access_token"] != old["access_token"]
    assert new["expires_at"] > time.time() + 3000
    assert (new["refresh_token"] != old["refresh_token"]) is rotate  # kept when not sent
    assert new["refresh_token"] in state.refresh_tokens
    assert (new["user_id"], new["display_name"]) == (USER_ID, USER_NAME)
    await provider.list_playlists()
    assert state.grants("refresh_token") == 1  # the renewed token is used as it is


async def test_a_401_renews_the_token_and_repeats_the_call(provider, fake):
    await log_in(provider)
    state = fake.app[SPOTIFY]
    old = (await store(provider).get(TOKENS_KEY))["access_token"]
    state.expire_next = 1  # revokes the token it answers 401 to
    assert len(await provider.list_playlists()) == 3
    assert state.revoked == [old] and state.grants("refresh_token") == 1
    assert (await store(provider).get(TOKENS_KEY))["access_token"] != old


async def test_refused_refresh_disconnects_the_account(provider, fake):
    await log_in(provider)
    fake.app[SPOTIFY].refresh_tokens.clear()  # the user removed the app's access
    await expire_stored_token(provider)
    with pytest.raises(NotAuthenticated, match="soulsync auth spotify"):
        await provider.list_playlists()
    assert await store(provider).get(TOKENS_KEY) is None
    assert await provider.account() == Account(connected=False)


async def test_tokens_written_by_another_process_are_used(make_provider, fake, tmp_path):
    daemon = make_provider(secret=False)
    await daemon.start()
    with pytest.raises(NotAuthenticated):
        await daemon.list_playlists()
    # `soulsync auth spotify`: another connection to the same database file.
    other_db = await Database.open(tmp_path / "data")
    try:
        cli = make_provider(secret=False, database=other_db)
        await log_in(cli)
    finally:
        await other_db.close()
    # Without a secret, configured depends on the account: it answers from memory (no I/O)
    # and schedules a read of the store, which notices the login.
    assert daemon.configured is False
    await asyncio.gather(*daemon._background)
    assert daemon.configured is True
    assert len(await daemon.list_playlists()) == 3
    assert await daemon.account() == CONNECTED


# --- playlists -----------------------------------------------------------------------------------


async def test_list_playlists_follows_every_page(provider, fake):
    library = fake.app[SPOTIFY].library
    extra = [library.add_playlist(f"Mix {n}", [], owner=USER_ID) for n in range(60)]
    await log_in(provider)
    playlists = await provider.list_playlists()
    assert [p.id for p in playlists] == [FRENCH_TOUCH, GYM, FOLLOWED, *extra]
    french, gym, followed = playlists[:3]
    assert (french.name, french.owner, french.total_tracks, french.tracks) == (
        "French Touch", USER_NAME, 12, [])
    assert french.image_url.startswith("https://image-cdn-ak.spotifycdn.com/image/")
    assert french.snapshot_id == library.snapshot_id(FRENCH_TOUCH)
    assert gym.total_tracks == 118
    assert (followed.name, followed.owner) == ("Friday Night", "djfriend")  # no display name
    calls = [c for c in fake.app[SPOTIFY].api_calls if c.startswith("/v1/me/playlists")]
    assert calls == ["/v1/me/playlists?limit=50&offset=0", "/v1/me/playlists?offset=50&limit=50"]


def test_playlist_owner_falls_back_to_unknown():
    assert mapping.playlist({"id": "x", "name": "n", "owner": {}}).owner == "Unknown Owner"
    assert mapping.playlist({"id": "x", "name": "n", "owner": None, "tracks": {"total": 4}}
                            ).total_tracks == 4


async def test_get_playlist_across_pages_without_null_items_or_episodes(provider, fake):
    await log_in(provider)
    library = fake.app[SPOTIFY].library
    playlist = await provider.get_playlist(GYM)
    assert (playlist.id, playlist.name, playlist.owner) == (GYM, "Gym", USER_NAME)
    assert playlist.snapshot_id == library.snapshot_id(GYM)
    assert playlist.total_tracks == 118
    assert len(playlist.tracks) == 116  # 118 items less a null item and an episode
    local = playlist.tracks[49]
    assert (local.id, local.name, local.artists, local.album, local.duration_ms) == (
        "", "Da Funk (local rip)", ["Daft Punk"], "Homework", 423000)
    assert (local.album_id, local.image_url, local.track_number, local.isrc) == (None, None, None, None)
    expected = [e["item"]["id"] for e in library.playlists[GYM]["entries"]
                if e["item"] and e["item"]["type"] == "track" and not e["is_local"]]
    assert [t.id for t in playlist.tracks if t.id] == expected
    pages = [c.split("?")[1] for c in fake.app[SPOTIFY].api_calls if c.startswith(f"/v1/playlists/{GYM}/")]
    assert [p.split("&")[:2] for p in pages] == [
        ["limit=50", "offset=0"], ["offset=50", "limit=50"], ["offset=100", "limit=50"]]


async def test_get_playlist_maps_tracks(provider, fake):
    await log_in(provider)
    playlist = await provider.get_playlist(FRENCH_TOUCH)
    assert playlist.total_tracks == 12 and len(playlist.tracks) == 10
    first = playlist.tracks[0]
    assert (first.id, first.name, first.artists, first.album, first.album_id) == (
        "0DiWol3AO6WpXZgp0goxAV", "One More Time", ["Daft Punk"], "Discovery", DISCOVERY)
    assert (first.duration_ms, first.isrc, first.track_number, first.disc_number, first.release_date) == (
        320357, "GBDUW0000053", 1, 1, "2001-03-12")
    assert first.image_url == "https://i.scdn.co/image/ab67616d0000b273b33d46dfa2635a47eebf63b2"


@pytest.mark.parametrize("form", [
    f"spotify:playlist:{FRENCH_TOUCH}",
    f"https://open.spotify.com/playlist/{FRENCH_TOUCH}?si=abc123",
    f"open.spotify.com/playlist/{FRENCH_TOUCH}",
])
async def test_playlist_uris_and_addresses(provider, form):
    await log_in(provider)
    assert (await provider.get_playlist(form)).id == FRENCH_TOUCH


async def test_snapshot_id_changes_with_the_contents(provider, fake):
    await log_in(provider)
    library = fake.app[SPOTIFY].library
    before = (await provider.get_playlist(FRENCH_TOUCH)).snapshot_id
    entries = library.playlists[FRENCH_TOUCH]["entries"]
    entries.append(track_entry(entries[0]["item"], None, "2026-03-01T00:00:00Z"))
    library.changed(FRENCH_TOUCH)
    after = await provider.get_playlist(FRENCH_TOUCH)
    assert after.snapshot_id != before and len(after.tracks) == 11


@pytest.mark.parametrize("liked", ["liked-songs", "spotify:liked-songs"])
async def test_liked_songs(provider, fake, liked):
    await log_in(provider)
    playlist = await provider.get_playlist(liked)
    saved = fake.app[SPOTIFY].library.saved[USER_ID]
    assert (playlist.id, playlist.name, playlist.owner, playlist.total_tracks) == (
        "liked-songs", "Liked Songs", USER_NAME, 60)
    assert [t.id for t in playlist.tracks] == [s["track"]["id"] for s in saved]
    calls = [c for c in fake.app[SPOTIFY].api_calls if c.startswith("/v1/me/tracks")]
    assert calls == ["/v1/me/tracks?limit=50&offset=0", "/v1/me/tracks?offset=50&limit=50"]


async def test_not_connected(provider, fake):
    for call in (provider.list_playlists(), provider.get_playlist(FRENCH_TOUCH),
                 provider.get_playlist("liked-songs")):
        with pytest.raises(NotAuthenticated, match=r"Spotify account not connected: run "
                                                   r"`soulsync auth spotify` or use /api/v1/auth/spotify"):
            await call
    assert fake.app[FAULTS].requests == 0


@pytest.mark.parametrize("playlist_id", ["0000000000000000000000", "not a playlist!",
                                         "https://example.com/playlist/abc"])
async def test_unknown_playlist(provider, playlist_id):
    await log_in(provider)
    with pytest.raises(LookupError, match="not found"):
        await provider.get_playlist(playlist_id)


async def test_429_is_rate_limited_at_once(provider, fake):
    await log_in(provider)
    faults = fake.app[FAULTS]
    faults.retry_after, faults.rate_limit_count = 3600, 1
    # A bound, not a speed measurement: spotipy/urllib3 would sleep the hour here.
    async with asyncio.timeout(10):
        with pytest.raises(RateLimited) as raised:
            await provider.list_playlists()
    assert raised.value.retry_after == 3600
    assert len(await provider.list_playlists()) == 3


async def test_server_error_is_a_provider_error(provider, fake):
    from soulsync_core.hooks import ProviderError

    await log_in(provider)
    fake.app[FAULTS].status, fake.app[FAULTS].status_count = 503, 1
    with pytest.raises(ProviderError, match=f"Spotify \\({base_url(fake)}\\) answered HTTP 503"):
        await provider.get_playlist(GYM)


# --- metadata and health -----------------------------------------------------------------------------


async def test_search_with_the_users_token_when_there_is_no_secret(make_provider, fake):
    provider = make_provider(secret=False)
    assert provider.configured is False
    await log_in(provider)
    assert provider.configured is True
    tracks = await provider.search_tracks("daft punk", 3)
    assert tracks[0].name == "One More Time"
    assert fake.app[SPOTIFY].tokens == []  # no app token was asked for
    assert fake.app[SPOTIFY].grants("client_credentials") == 0


async def test_health_reports_the_account(provider, make_provider, fake):
    health = await provider.health()
    assert health.ok and "no Spotify account is connected" in health.message
    # server_date: the Date header of Spotify's last answer, for the health list's clock check.
    assert health.details.pop("server_date").endswith(" GMT")
    assert health.details == {"account_connected": False, "account": None}
    await log_in(provider)
    health = await provider.health()
    assert health.ok and "Music Fan" in health.message
    health.details.pop("server_date")
    assert health.details == {"account_connected": True, "account": USER_NAME}

    pkce = make_provider(secret=False)
    await log_in(pkce)
    calls = len(fake.app[SPOTIFY].api_calls)
    health = await pkce.health()
    assert health.ok and health.details["account_connected"] is True
    assert fake.app[SPOTIFY].api_calls[calls:] == ["/v1/me/"]  # checked the user's token


async def test_health_without_secret_or_account(make_provider):
    health = await make_provider(secret=False).health()
    assert health.ok is False and "soulsync auth spotify" in health.message
    assert health.details == {"account_connected": False, "account": None}


# --- secrets ------------------------------------------------------------------------------------------


async def test_no_token_or_secret_in_the_logs(make_provider, fake, caplog):
    caplog.set_level(logging.DEBUG)
    # As the daemon's logging set-up does: aiosqlite's DEBUG lines carry every SQL parameter.
    caplog.set_level(logging.INFO, logger="aiosqlite")
    secrets: list[str] = [CLIENT_SECRET, base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()]
    for secret in (True, False):
        provider = make_provider(secret=secret)
        start = await provider.begin_login(CALLBACK)
        secrets.append((await store(provider).get(LOGIN_KEY)).get("code_verifier") or CLIENT_SECRET)
        location = await approve(start.url)
        secrets.append(parse_qs(urlsplit(location).query)["code"][0])
        await provider.finish_login(location)
        fake.app[SPOTIFY].expire_next = 1
        await provider.list_playlists()  # a 401, then a refresh
        await expire_stored_token(provider)
        await provider.get_playlist("liked-songs")  # a refresh before use
    state = fake.app[SPOTIFY]
    secrets += [*state.user_tokens, *state.refresh_tokens]
    assert len(state.user_tokens) == 6
    for secret in secrets:
        assert secret not in caplog.text
    assert "Spotify account Music Fan connected" in caplog.text  # the log was captured at all
    assert "renewing it" in caplog.text


# --- the plugin in the daemon ----------------------------------------------------------------------


async def test_one_object_is_metadata_provider_and_playlist_source(soulsync_factory, fake):
    api = await soulsync_factory(plugins=[("spotify", soulsync_spotify.plugin)], environ={
        "SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__CLIENT_SECRET": CLIENT_SECRET,
        "SOULSYNC_SPOTIFY__API_URL": base_url(fake), "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base_url(fake)})
    source = api.core.search.provider("spotify")
    assert api.core.playlist_sources == [source]
    assert isinstance(source, AccountLogin)
    bad = await api.patch("/api/v1/settings", {"spotify.redirect_uri": "ftp://nas.local/cb"})
    assert bad.status == 400, bad.json
    good = await api.patch("/api/v1/settings", {"spotify.redirect_uri": "https://nas.example/cb"})
    assert good.status == 200, good.json
    assert (await source.begin_login(CALLBACK)).redirect_uri == "https://nas.example/cb"


async def test_health_carries_spotifys_date_so_a_skewed_clock_is_seen(provider, fake):
    fake.app[FAULTS].clock_skew = -300.0  # Spotify's clock 5 minutes behind ours
    health = await provider.health()
    date = parsedate_to_datetime(health.details["server_date"])
    assert 290 <= time.time() - date.timestamp() <= 310
    check = clock_skew({"spotify": (health.details["server_date"], time.time())})
    assert check.level == "warning" and "spotify" in check.message
