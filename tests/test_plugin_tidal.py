"""The TIDAL plugin against the fake TIDAL: login with PKCE, tokens, playlists, search, errors."""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib
import logging
import time
import tomllib
from email.utils import parsedate_to_datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import soulsync_tidal.plugin
from soulsync_core.accounts import Accounts
from soulsync_core.config import SettingError, core_schema
from soulsync_core.hooks import (
    AccountLogin,
    LoginFailed,
    MetadataProvider,
    NotAuthenticated,
    NotConfigured,
    PlaylistSource,
    ProviderError,
    RateLimited,
)
from soulsync_core.models import Track
from soulsync_core.testing import ApiClient
from soulsync_tidal import mapping
from soulsync_tidal.provider import TidalProvider
from tests.fakes.base import FAULTS, Faults
from tests.fakes.tidal import (
    CLIENT_ID,
    CLIENT_SECRET,
    DAFT_PUNK,
    DISCOVERY,
    FRENCH_TOUCH,
    GET_LUCKY,
    JSON_API,
    OTHERS_PLAYLIST,
    RAM,
    TIDAL,
    USER_ID,
    USERNAME,
    TidalState,
    make_app,
)

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "soulsync_tidal"
CALLBACK = "http://127.0.0.1:8000/auth/tidal/callback"
SCOPES = "user.read playlists.read collection.read search.read"


class DictSettings(dict):
    """A settings stand-in: the plugin only ever calls ``get`` and ``on_change``."""

    def on_change(self, prefix: str, listener: Any) -> None:
        pass


class MemoryStore:
    """An AccountStore in memory; values are copied in and out as the SQLite one does."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.values.get(key))

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self.values[key] = copy.deepcopy(value)

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


def state(server: TestServer) -> TidalState:
    return server.app[TIDAL]


def faults(server: TestServer) -> Faults:
    return server.app[FAULTS]


def base_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def settings_for(server: TestServer, **changes: Any) -> DictSettings:
    base = base_of(server)
    return DictSettings({
        "tidal.client_id": CLIENT_ID, "tidal.client_secret": "", "tidal.api_url": f"{base}/v2",
        "tidal.auth_url": f"{base}/v1/oauth2", "tidal.login_url": base, "tidal.redirect_uri": "",
        "tidal.country_code": "US", "tidal.requests_per_second": 100, "tidal.timeout_seconds": 5.0,
        **changes})


def api_calls(server: TestServer, path: str) -> list[dict[str, Any]]:
    return [r for r in state(server).api_requests if r["path"] == path]


async def follow(url: str) -> str:
    """Open the authorize address as a browser would; return where TIDAL sends it back."""
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def log_in(provider: TidalProvider) -> Any:
    start = await provider.begin_login(CALLBACK)
    return await provider.finish_login(await follow(start.url))


@pytest.fixture
async def fake(aiohttp_server: Any) -> TestServer:
    return await aiohttp_server(make_app())


@pytest.fixture
def settings(fake: TestServer) -> DictSettings:
    return settings_for(fake)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def provider(settings: DictSettings, store: MemoryStore) -> Any:
    provider = TidalProvider(settings, store)
    await provider.start()
    yield provider
    await provider.close()


@pytest.fixture
async def connected(provider: TidalProvider) -> TidalProvider:
    await log_in(provider)
    return provider


# --- plugin discovery -----------------------------------------------------------------------------


def test_entry_point_names_the_plugin_module():
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["soulsync.plugins"]["tidal"]
    assert target == "soulsync_tidal.plugin"
    installed = {ep.name: ep for ep in entry_points(group="soulsync.plugins")}
    assert installed["tidal"].load() is importlib.import_module(target) is soulsync_tidal.plugin


async def test_daemon_gets_one_provider_for_search_and_playlists(soulsync_factory, fake):
    base = base_of(fake)
    api: ApiClient = await soulsync_factory(plugins=[("tidal", soulsync_tidal.plugin)], environ={
        "SOULSYNC_TIDAL__CLIENT_ID": CLIENT_ID, "SOULSYNC_TIDAL__CLIENT_SECRET": CLIENT_SECRET,
        "SOULSYNC_TIDAL__API_URL": f"{base}/v2", "SOULSYNC_TIDAL__AUTH_URL": f"{base}/v1/oauth2",
        "SOULSYNC_TIDAL__LOGIN_URL": base})
    source = next(s for s in api.core.playlist_sources if s.name == "tidal")
    assert source is api.core.search.provider("tidal")
    assert isinstance(source, AccountLogin | PlaylistSource | MetadataProvider)
    assert isinstance(source, AccountLogin) and isinstance(source, MetadataProvider)
    plugins = (await api.get("/api/v1/system/plugins")).data["plugins"]
    info = next(p for p in plugins if p["name"] == "tidal")
    assert info["error"] is None
    assert info["hooks"] == ["metadata_providers", "playlist_sources", "settings_sections"]
    shown = (await api.get("/api/v1/settings")).data["settings"]["tidal"]
    assert shown["client_secret"] == "***REDACTED***" and shown["country_code"] == "US"
    reply = await api.post("/api/v1/search/albums", {"query": "discovery", "source": "tidal"})
    assert reply.status == 200
    assert [a["name"] for a in reply.data["albums"]] == ["Discovery"]
    assert "client_credentials" in state(fake).token_grants
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["tidal"] is True


async def test_a_login_in_the_sqlite_store_is_seen_by_another_provider(soulsync_factory, fake):
    # The daemon and `soulsync auth` are two processes sharing the store: each provider reads it.
    api: ApiClient = await soulsync_factory(plugins=[("tidal", soulsync_tidal.plugin)])
    settings = settings_for(fake)
    cli = TidalProvider(settings, Accounts(api.core.db).store("tidal"))
    daemon = TidalProvider(settings, Accounts(api.core.db).store("tidal"))
    await daemon.start()
    try:
        assert not daemon.configured
        await log_in(cli)
        playlists = await daemon.list_playlists()
        assert playlists[0].name == "French Touch"
        assert daemon.configured
        await cli.logout()
        with pytest.raises(NotAuthenticated):
            await daemon.list_playlists()
    finally:
        await daemon.close()


# --- login ------------------------------------------------------------------------------------------


async def test_begin_login_stores_state_and_asks_for_pkce(provider, store, fake):
    start = await provider.begin_login(CALLBACK)
    parts = urlsplit(start.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{base_of(fake)}/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    login = store.values["login"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(login["verifier"].encode()).digest())
    assert query == {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": CALLBACK,
                     "scope": SCOPES, "code_challenge_method": "S256",
                     "code_challenge": challenge.rstrip(b"=").decode(), "state": start.state}
    assert (start.redirect_uri, start.expires_in) == (CALLBACK, 600)
    assert login["state"] == start.state and login["redirect_uri"] == CALLBACK
    assert 43 <= len(login["verifier"]) <= 128


async def test_redirect_uri_setting_replaces_the_daemons_callback(provider, settings, fake):
    settings["tidal.redirect_uri"] = "https://nas.example/auth/tidal/callback"
    start = await provider.begin_login(CALLBACK)
    assert start.redirect_uri == "https://nas.example/auth/tidal/callback"
    assert parse_qs(urlsplit(start.url).query)["redirect_uri"] == [start.redirect_uri]


async def test_login_with_the_full_redirect_address(provider, store, fake):
    assert not provider.configured
    account = await log_in(provider)
    assert (account.connected, account.user_id, account.display_name) == (True, USER_ID, USERNAME)
    assert account.scopes == SCOPES.split()
    assert "login" not in store.values
    tokens = store.values["tokens"]
    assert tokens["access_token"] in state(fake).access_tokens
    assert tokens["refresh_token"] in state(fake).refresh_tokens
    assert tokens["expires_at"] > time.time() + 3600
    assert state(fake).token_grants == ["authorization_code"]
    assert provider.configured  # a connected account is enough without a client secret
    assert await provider.account() == account


async def test_login_with_a_bare_code(provider, store):
    start = await provider.begin_login(CALLBACK)
    code = parse_qs(urlsplit(await follow(start.url)).query)["code"][0]
    account = await provider.finish_login(f"  {code}\n")
    assert account.connected and account.user_id == USER_ID
    assert store.values["tokens"]["user_id"] == USER_ID


async def test_the_pkce_verifier_is_checked(provider, store, fake):
    start = await provider.begin_login(CALLBACK)
    store.values["login"]["verifier"] = "x" * 64  # not the one the challenge was made from
    with pytest.raises(LoginFailed, match=r"refused the code \(invalid_grant: code_verifier does not match"):
        await provider.finish_login(await follow(start.url))
    assert "tokens" not in store.values


async def test_state_of_another_attempt_is_refused_before_any_token_request(provider, fake):
    first = await provider.begin_login(CALLBACK)
    address = await follow(first.url)
    await provider.begin_login(CALLBACK)  # a new login replaces the first one
    with pytest.raises(LoginFailed, match="another login attempt"):
        await provider.finish_login(address)
    assert state(fake).token_grants == []


async def test_a_code_works_once(provider, fake):
    start = await provider.begin_login(CALLBACK)
    address = await follow(start.url)
    await provider.finish_login(address)
    with pytest.raises(LoginFailed, match="No TIDAL login is in progress"):
        await provider.finish_login(address)
    await provider.begin_login(CALLBACK)
    code = parse_qs(urlsplit(address).query)["code"][0]
    with pytest.raises(LoginFailed, match="invalid or was used"):
        await provider.finish_login(code)


async def test_declined_login(provider, store, fake):
    state(fake).deny = True
    start = await provider.begin_login(CALLBACK)
    with pytest.raises(LoginFailed, match=r"did not authorize SoulSync \(The user denied access"):
        await provider.finish_login(await follow(start.url))
    assert "tokens" not in store.values


async def test_expired_or_missing_login(provider, store):
    with pytest.raises(LoginFailed, match="No TIDAL login is in progress"):
        await provider.finish_login("somecode")
    await provider.begin_login(CALLBACK)
    store.values["login"]["created_at"] -= 601
    with pytest.raises(LoginFailed, match="expired"):
        await provider.finish_login("somecode")
    assert "login" not in store.values


async def test_login_needs_a_client_id(provider, settings):
    settings["tidal.client_id"] = " "
    with pytest.raises(NotConfigured, match=r"tidal\.client_id"):
        await provider.begin_login(CALLBACK)


async def test_logout_forgets_everything(connected, store):
    await connected.begin_login(CALLBACK)
    await connected.logout()
    assert store.values == {}
    assert (await connected.account()).connected is False
    assert not connected.configured
    with pytest.raises(NotAuthenticated, match="No TIDAL account is connected"):
        await connected.list_playlists()


# --- tokens -----------------------------------------------------------------------------------------


async def test_token_near_expiry_is_renewed_before_use(provider, store, fake):
    state(fake).token_lifetime = 30  # less than the renewal margin
    await log_in(provider)
    first = store.values["tokens"]["access_token"]
    state(fake).token_lifetime = 86400
    await provider.list_playlists()
    await provider.list_playlists()
    assert state(fake).token_grants == ["authorization_code", "refresh_token"]
    tokens = store.values["tokens"]
    assert tokens["access_token"] != first
    assert tokens["refresh_token"]  # kept: TIDAL sends no new refresh token
    assert all(r["user"] == USER_ID for r in state(fake).api_requests)


async def test_token_refused_with_401_is_renewed_once(connected, store, fake):
    first = store.values["tokens"]["access_token"]
    state(fake).expire_access_tokens()
    playlists = await connected.list_playlists()
    assert len(playlists) == 22
    assert state(fake).token_grants.count("refresh_token") == 1
    assert store.values["tokens"]["access_token"] not in (first, None)


async def test_refused_renewal_disconnects_the_account(connected, store, fake):
    state(fake).expire_access_tokens()
    state(fake).refuse_refresh = True
    with pytest.raises(NotAuthenticated, match=r"refused to renew the login \(invalid_grant: .*log in again"):
        await connected.get_playlist(FRENCH_TOUCH)
    assert "tokens" not in store.values
    assert not connected.configured
    assert (await connected.account()).connected is False


async def test_not_connected_is_not_authenticated(provider):
    with pytest.raises(NotAuthenticated):
        await provider.list_playlists()
    with pytest.raises(NotAuthenticated):
        await provider.get_playlist(FRENCH_TOUCH)


# --- playlists ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor_only", [False, True])
async def test_list_playlists_reads_every_page(connected, fake, cursor_only):
    state(fake).cursor_only = cursor_only
    playlists = await connected.list_playlists()
    assert [p.name for p in playlists] == ["French Touch", *[f"Mix {n}" for n in range(2, 23)]]
    first = playlists[0]
    assert (first.id, first.owner, first.total_tracks, first.description, first.snapshot_id) == (
        FRENCH_TOUCH, USERNAME, 29, "Filter house and friends", "2026-11-20T18:02:11Z")
    assert first.image_url == "https://resources.tidal.com/images/ft/1080x1080.jpg"
    assert first.tracks == []
    pages = api_calls(fake, "/v2/playlists")
    assert len(pages) == 2
    assert pages[0]["query"]["filter[owners.id]"] == USER_ID
    assert all(r["accept"] == JSON_API and r["query"]["countryCode"] == "US"
               for r in state(fake).api_requests)


async def test_get_playlist_hydrates_in_batches_of_20_and_skips_videos(connected, fake):
    playlist = await connected.get_playlist(FRENCH_TOUCH)
    assert (playlist.name, playlist.owner, playlist.total_tracks) == ("French Touch", USERNAME, 29)
    assert playlist.snapshot_id == "2026-11-20T18:02:11Z"
    names = [t.name for t in playlist.tracks]
    assert len(names) == 27  # 29 items less the video and the track the country does not have
    assert names[:8] == ["Superheroes", "Nightvision", "Crescendolls", "Harder, Better, Faster, Stronger",
                         "Digital Love", "Aerodynamic", "One More Time", "Give Life Back to Music"]
    assert names[-1] == "Too Long"
    assert state(fake).track_batches == [20, 8]
    assert len(api_calls(fake, f"/v2/playlists/{FRENCH_TOUCH}/relationships/items")) == 2
    one_more_time = playlist.tracks[6]
    assert one_more_time == Track(
        id="3066227", name="One More Time", artists=["Daft Punk"], album="Discovery",
        duration_ms=320000, popularity=82, release_date="2001-03-07", album_id=DISCOVERY,
        isrc="GBDUW3066227", explicit=False)
    touch = next(t for t in playlist.tracks if t.name == "Touch")
    assert (touch.explicit, touch.duration_ms, touch.album) == (True, 498000, "Random Access Memories")


async def test_playlist_of_another_user_has_no_owner_name(connected):
    playlist = await connected.get_playlist(OTHERS_PLAYLIST)
    assert (playlist.owner, len(playlist.tracks)) == ("", 2)


async def test_unknown_playlist_is_a_lookup_error(connected):
    with pytest.raises(LookupError, match="TIDAL has no playlist 'nope'"):
        await connected.get_playlist("nope")


# --- metadata -------------------------------------------------------------------------------------------


async def test_search_tracks_with_the_users_token(connected, fake):
    tracks = await connected.search_tracks("get lucky", 10)
    assert [(t.name, t.album) for t in tracks] == [
        ("Get Lucky", "Random Access Memories"), ("Get Lucky (Radio Edit)", "Get Lucky"),
        ("Get Lucky", "Get Lucky")]
    assert tracks[1].artists == ["Daft Punk", "Pharrell Williams", "Nile Rodgers"]
    assert tracks[1].duration_ms == 248000
    search = api_calls(fake, "/v2/searchResults/get lucky")
    assert search[0]["query"]["include"] == "tracks" and search[0]["user"] == USER_ID
    assert len(await connected.search_tracks("get lucky", 2)) == 2


async def test_search_query_reaches_tidal_whole(connected, fake):
    query = "AC/DC & a?b #1 100% beyoncé"
    assert await connected.search_tracks(query, 5) == []
    assert state(fake).api_requests[-1]["path"] == f"/v2/searchResults/{query}"


async def test_search_follows_the_result_cursor_up_to_the_limit(connected, fake):
    state(fake).page_size = 5
    tracks = await connected.search_tracks("daft punk", 12)
    assert len(tracks) == 12
    assert len(api_calls(fake, "/v2/searchResults/daft punk/relationships/tracks")) == 2


async def test_search_uses_client_credentials_without_an_account(provider, settings, fake):
    settings["tidal.client_secret"] = CLIENT_SECRET
    assert provider.configured
    assert [a.name for a in await provider.search_artists("daft", 5)] == ["Daft Punk"]
    assert [a.name for a in await provider.search_artists("nile", 5)] == ["Nile Rodgers"]
    assert state(fake).token_grants == ["client_credentials"]  # fetched once, then reused
    assert {r["user"] for r in state(fake).api_requests} == {None}


async def test_search_without_account_or_secret_is_not_configured(provider):
    assert not provider.configured
    with pytest.raises(NotConfigured, match=r"tidal\.client_secret"):
        await provider.search_tracks("daft", 5)


async def test_refused_client_secret(provider, settings):
    settings["tidal.client_secret"] = "wrong"
    with pytest.raises(ProviderError, match="refused the client id/secret"):
        await provider.search_albums("daft", 5)
    health = await provider.health()
    assert not health.ok and "refused the client id/secret" in health.message


async def test_search_albums_and_artists(connected):
    albums = {a.name: a for a in await connected.search_albums("daft punk", 10)}
    assert set(albums) == {"Discovery", "Random Access Memories", "Get Lucky"}
    discovery = albums["Discovery"]
    assert (discovery.id, discovery.artists, discovery.release_date, discovery.total_tracks,
            discovery.album_type) == (DISCOVERY, ["Daft Punk"], "2001-03-07", 14, "album")
    assert discovery.image_url == "https://resources.tidal.com/images/discovery/1280x1280.jpg"
    assert albums["Get Lucky"].album_type == "single"
    assert albums["Get Lucky"].artists == ["Daft Punk", "Pharrell Williams", "Nile Rodgers"]
    artists = await connected.search_artists("daft punk", 10)
    assert [(a.id, a.name, a.popularity) for a in artists] == [(DAFT_PUNK, "Daft Punk", 84)]
    assert await connected.search_artists("zzzz", 10) == []


async def test_artist_albums_newest_first_across_pages(connected, fake):
    state(fake).page_size = 2
    albums = await connected.artist_albums(DAFT_PUNK, 10)
    assert [(a.id, a.release_date) for a in albums] == [
        (RAM, "2013-05-17"), (GET_LUCKY, "2013-04-19"), (DISCOVERY, "2001-03-07")]
    assert albums[0].artists == ["Daft Punk"]
    assert [a.id for a in await connected.artist_albums(DAFT_PUNK, 1)] == [RAM]


async def test_album_tracks_in_volume_and_track_order(connected, fake):
    state(fake).page_size = 5
    state(fake).album_items_reversed = True
    tracks = await connected.album_tracks(DISCOVERY)
    assert [(t.disc_number, t.track_number) for t in tracks] == [(1, n) for n in range(1, 15)]
    assert tracks[0].name == "One More Time" and tracks[-1].name == "Too Long"
    assert len(api_calls(fake, f"/v2/albums/{DISCOVERY}/relationships/items")) == 3


async def test_unknown_artist_or_album_is_a_provider_error(connected):
    with pytest.raises(ProviderError, match="TIDAL has no artist '1'"):
        await connected.artist_albums("1", 5)
    with pytest.raises(ProviderError, match="TIDAL has no album '1'"):
        await connected.album_tracks("1")


# --- errors, settings, health, logs -------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [(7, 7.0), (None, 10.0)])
async def test_429_raises_rate_limited_at_once(connected, fake, header, expected):
    before = faults(fake).requests
    faults(fake).retry_after, faults(fake).rate_limit_count = header, 1
    with pytest.raises(RateLimited) as caught:
        await connected.list_playlists()
    assert caught.value.retry_after == expected
    assert faults(fake).requests == before + 1  # no retry inside the call


async def test_errors_quote_the_json_api_detail(connected, fake):
    faults(fake).status, faults(fake).status_count = 503, 1
    with pytest.raises(ProviderError, match="TIDAL answered HTTP 503"):
        await connected.search_tracks("daft", 5)
    http = connected._http
    ids = ",".join(str(3066227 + n) for n in range(21))
    token = next(iter(state(fake).access_tokens))
    with pytest.raises(ProviderError, match=r"HTTP 400: filter\[id\] takes at most 20 values"):
        await http.get(http.api_url("/tracks", {"filter[id]": ids}), token)


async def test_country_code_is_read_per_request(connected, settings, fake):
    settings["tidal.country_code"] = "NO"
    await connected.search_artists("daft", 1)
    assert state(fake).api_requests[-1]["query"]["countryCode"] == "NO"


async def test_health_with_and_without_an_account(provider, settings, fake):
    settings["tidal.client_secret"] = CLIENT_SECRET
    health = await provider.health()
    # server_date: the token endpoint's Date header, for the health list's clock check.
    date = health.details.pop("server_date")
    assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 5
    assert health.ok and health.details == {"account_connected": False, "account": None}
    await log_in(provider)
    health = await provider.health()
    assert "server_date" in health.details
    del health.details["server_date"]
    assert health.ok and health.details == {"account_connected": True, "account": USERNAME}
    assert api_calls(fake, "/v2/users/me")


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("tidal.api_url", "openapi.tidal.com/v2", "http:// or https://"),
    ("tidal.redirect_uri", "nas/callback", "http:// or https://"),
    ("tidal.country_code", "USA", "two-letter"),
    ("tidal.requests_per_second", 0, "between 1 and 100"),
])
def test_bad_settings_are_refused(key, value, needle):
    schema = core_schema(soulsync_tidal.plugin.settings_sections())
    with pytest.raises(SettingError, match=needle):
        schema.coerce(key, value)
    assert schema.coerce("tidal.redirect_uri", "") == ""
    assert schema.is_secret("tidal.client_secret")


async def test_no_token_or_secret_reaches_the_logs(provider, settings, store, fake, caplog):
    caplog.set_level(logging.DEBUG)
    settings["tidal.client_secret"] = CLIENT_SECRET
    await provider.search_tracks("daft", 3)
    start = await provider.begin_login(CALLBACK)
    verifier = store.values["login"]["verifier"]
    await provider.finish_login(await follow(start.url))
    state(fake).expire_access_tokens()
    await provider.get_playlist(FRENCH_TOUCH)
    secrets = [*state(fake).access_tokens, *state(fake).refresh_tokens, *state(fake).codes,
               CLIENT_SECRET, verifier]
    assert len(secrets) >= 6
    assert "renewed" in caplog.text
    leaked = [s for s in secrets if s in caplog.text]
    assert leaked == []


# --- mapping --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("PT5M20S", 320000), ("PT1H2M3.5S", 3723500), ("PT4M", 240000), ("PT59.999S", 59999),
    ("P1DT1S", 86401000), ("PT", 0), ("P", 0), ("", 0), (None, 0), ("5:20", 0), (320, 0)])
def test_iso_8601_durations(value, expected):
    assert mapping.duration_ms(value) == expected


def test_album_types_and_missing_fields():
    assert mapping.album({"id": "1", "type": "albums", "attributes": {"type": "EP"}}, {}).album_type == "ep"
    assert mapping.album({"id": "1", "type": "albums", "attributes": {}}, {}).album_type == "album"
    track = mapping.track({"id": 5, "type": "tracks", "attributes": {"title": "X"}}, {})
    assert (track.id, track.artists, track.album, track.album_id, track.duration_ms) == ("5", [], "", None, 0)
