"""Plugin loading: entry points, allow-list, failures isolated, each hook collected."""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from soulsync_core.config import REDACTED, Section, Setting
from soulsync_core.hooks import hookimpl
from soulsync_core.models import Candidate, Health, Playlist, Transfer
from soulsync_core.plugins import PluginHost, allow_list
from tests.test_search import StubProvider, plugin_of

THIRD_PARTY = '''
from soulsync_core.hooks import Section, Setting, hookimpl
from soulsync_core.models import Health, Track


class Echo:
    name = "echo"
    configured = True

    async def start(self): pass
    async def close(self): pass
    async def health(self): return Health(ok=True)
    async def search_tracks(self, query, limit): return [Track("e1", query, ["Echo"], "Echoes")]
    async def search_albums(self, query, limit): return []
    async def search_artists(self, query, limit): return []
    async def artist_albums(self, artist_id, limit): return []
    async def album_tracks(self, album_id): return []


@hookimpl
def settings_sections():
    return [Section("echo", (Setting("echo.token", str, "", "Token.", secret=True),))]


@hookimpl
def metadata_providers(settings):
    return [Echo()]
'''


def install_dist(site: Path, dist: str, module: str, source: str, entry_name: str) -> None:
    """Install a plugin the way pip would leave it: a module plus a *.dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    # pip names the folder with underscores; a "-" inside would end the name early.
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[soulsync.plugins]\n{entry_name} = {module}\n")
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    for name in ("thirdparty_echo", "thirdparty_broken"):
        sys.modules.pop(name, None)


async def test_metadata_providers_of_an_entry_point_plugin_answer_auto(site, tmp_path, aiohttp_client):
    from soulsync_core.api.app import all_endpoints, create_app
    from soulsync_core.api.openapi import build_openapi
    from soulsync_core.core import Core
    from soulsync_core.testing import ApiClient, OpenApiChecker

    install_dist(site, "soulsync-echo", "thirdparty_echo", THIRD_PARTY, "echo")
    core = await Core.open(tmp_path / "data", environ={"SOULSYNC_PLUGINS": "echo"})
    api = ApiClient(await aiohttp_client(create_app(core)), OpenApiChecker(build_openapi(all_endpoints())))
    await api.bootstrap()

    plugins = (await api.get("/api/v1/system/plugins")).data["plugins"]
    assert plugins == [{"name": "echo", "version": "1.2.3",
                        "hooks": ["metadata_providers", "settings_sections"],
                        "providers": ["echo"], "error": None}]
    # Only installed sources may be named (itunes is not installed here).
    await api.patch("/api/v1/settings", {"search.auto_order": ["echo"], "echo.token": "s3cret"})
    reply = await api.post("/api/v1/search/tracks", {"query": "hello"})
    assert reply.data["source"] == "echo"
    assert reply.data["tracks"][0]["name"] == "hello"
    settings = (await api.get("/api/v1/settings")).data["settings"]
    assert settings["echo"]["token"] == REDACTED


async def test_plugin_failing_at_import_is_reported_and_daemon_serves(site, soulsync_factory, tmp_path):
    install_dist(site, "soulsync-broken", "thirdparty_broken", "raise RuntimeError('no lib')\n", "broken")
    install_dist(site, "soulsync-echo", "thirdparty_echo", THIRD_PARTY, "echo")
    host = PluginHost.load(allow={"broken", "echo"})
    report = {info.name: info for info in host.report()}
    assert "failed to import" in report["broken"].error and "no lib" in report["broken"].error
    assert report["echo"].error is None

    from soulsync_core.core import Core

    core = await Core.open(tmp_path / "d2", environ={"SOULSYNC_PLUGINS": "broken,echo"})
    try:
        assert core.search.names() == ["echo"]
        assert core.plugins.infos["broken"].error
    finally:
        await core.close()


def test_allow_list_from_environment_beats_setting():
    assert allow_list({}, []) is None
    assert allow_list({}, ["itunes"]) == {"itunes"}
    assert allow_list({"SOULSYNC_PLUGINS": "spotify, hydrabase"}, ["itunes"]) == {"spotify", "hydrabase"}
    assert allow_list({"SOULSYNC_PLUGINS": ""}, ["itunes"]) is None


def test_misspelt_hook_is_refused_at_load():
    @hookimpl
    def metadata_provider(settings: Any) -> list[Any]:  # missing "s": no such hook
        return []

    host = PluginHost.load(entry_points=False,
                           extra=[("typo", types.SimpleNamespace(metadata_provider=metadata_provider))])
    assert "invalid plugin" in host.infos["typo"].error
    assert host.pm.get_plugin("typo") is None


async def test_settings_sections_of_plugins_join_the_schema(soulsync_factory):
    @hookimpl
    def settings_sections() -> list[Section]:
        return [Section("demo", (Setting("demo.url", str, "", "URL."),
                                 Setting("demo.password", str, "", "Password.", secret=True)))]

    plugin = types.SimpleNamespace(settings_sections=settings_sections)
    api = await soulsync_factory(plugins=[("demo", plugin)], environ={"SOULSYNC_DEMO__URL": "http://x"})
    view = (await api.get("/api/v1/settings")).data
    assert view["settings"]["demo"] == {"url": "http://x", "password": REDACTED}
    assert view["sources"]["demo.url"] == "env"
    reply = await api.patch("/api/v1/settings", {"demo.password": "pw"})
    assert reply.status == 200
    assert api.core.settings.get("demo.password") == "pw"


async def test_hook_that_raises_is_reported_and_others_still_load(soulsync_factory):
    @hookimpl
    def metadata_providers(settings: Any) -> list[Any]:
        raise ValueError("bad config")

    api = await soulsync_factory(plugins=[
        ("angry", types.SimpleNamespace(metadata_providers=metadata_providers)),
        ("fine", plugin_of(StubProvider("itunes"))),
    ])
    plugins = {p["name"]: p for p in (await api.get("/api/v1/system/plugins")).data["plugins"]}
    assert "metadata_providers raised ValueError('bad config')" in plugins["angry"]["error"]
    assert plugins["fine"]["providers"] == ["itunes"]
    assert (await api.post("/api/v1/search/tracks", {"query": "x"})).data["source"] == "itunes"


async def test_provider_missing_methods_or_duplicate_name_is_refused(soulsync_factory):
    @hookimpl
    def metadata_providers(settings: Any) -> list[Any]:
        return [object(), StubProvider("itunes")]

    api = await soulsync_factory(plugins=[
        ("first", plugin_of(StubProvider("itunes"))),
        ("second", types.SimpleNamespace(metadata_providers=metadata_providers)),
    ])
    error = api.core.plugins.infos["second"].error
    assert "lacks the MetadataProvider methods" in error
    assert "a provider named 'itunes' already exists" in error


class StubClient:
    """A download client and playlist source in one, as a plugin may offer."""

    def __init__(self, name: str):
        self.name = name
        self.started = False
        self.closed = False

    configured = True

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def health(self) -> Health:
        return Health(ok=True)

    async def search(self, query: str) -> list[Candidate]:
        return []

    async def enqueue(self, candidate: Candidate) -> Transfer:
        return Transfer("1", candidate.username, candidate.filename, "queued")

    async def transfers(self) -> list[Transfer]:
        return []

    async def cancel(self, transfer: Transfer) -> None:
        pass

    async def local_file(self, transfer: Transfer) -> Path | None:
        return None

    async def list_playlists(self) -> list[Playlist]:
        return []

    async def get_playlist(self, playlist_id: str) -> Playlist:
        return Playlist(playlist_id, "p")


async def test_download_clients_are_collected_started_and_reported_in_status(soulsync_factory):
    client = StubClient("soulseek")

    @hookimpl
    def download_clients(settings: Any) -> list[Any]:
        return [client]

    api = await soulsync_factory(plugins=[("slsk", types.SimpleNamespace(download_clients=download_clients))])
    assert api.core.download_clients == [client] and client.started
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["soulseek"] is True
    plugins = (await api.get("/api/v1/system/plugins")).data["plugins"]
    assert plugins[0]["hooks"] == ["download_clients"] and plugins[0]["providers"] == ["soulseek"]


async def test_playlist_sources_are_collected_and_closed_at_shutdown(soulsync_factory):
    source = StubClient("tidal")

    @hookimpl
    def playlist_sources(settings: Any) -> list[Any]:
        return [source]

    plugin = types.SimpleNamespace(playlist_sources=playlist_sources)
    api = await soulsync_factory(plugins=[("tidal", plugin)])
    assert api.core.playlist_sources == [source] and source.started
    await api.client.close()
    assert source.closed


def test_retry_after_header_parsing_for_rate_limited_providers():
    from soulsync_core.hooks import retry_after_seconds

    assert retry_after_seconds("30", 60) == 30
    assert retry_after_seconds("1.5", 60) == 1.5
    assert retry_after_seconds(None, 60) == 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 5) == 5
    assert retry_after_seconds("-3", 5) == 5


def test_shared_provider_gives_one_object_per_settings_and_accounts_pair():
    import gc

    from soulsync_core.hooks import shared_provider

    class Provider:
        def __init__(self, settings, accounts):
            self.settings = settings

    made = shared_provider(Provider)
    settings, accounts, other = object(), object(), object()
    first = made(settings, accounts)
    assert made(settings, accounts) is first  # both hooks of a plugin get this one
    assert made(settings, other) is not first  # another core (accounts) gets its own
    del first
    gc.collect()
    assert made(settings, accounts).settings is settings  # rebuilt once nobody holds it
