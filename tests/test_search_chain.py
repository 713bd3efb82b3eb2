"""The auto chain with the real plugins against their fakes: Hydrabase, then Spotify, then iTunes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from soulsync_core.testing import free_port
from soulsync_hydrabase import plugin as hydrabase_plugin
from soulsync_itunes import plugin as itunes_plugin
from soulsync_spotify import plugin as spotify_plugin
from tests.fakes import hydrabase, itunes, spotify
from tests.fakes.base import FAULTS

HYDRABASE_KEY = "hb-chain-key"
QUERY = "daft punk one more time"  # answered by every fake
PLUGINS = [("hydrabase", hydrabase_plugin), ("spotify", spotify_plugin), ("itunes", itunes_plugin)]


@pytest.fixture
async def fakes(aiohttp_server: Any) -> dict[str, Any]:
    apps = {"itunes": itunes.make_app(), "spotify": spotify.make_app(),
            "hydrabase": hydrabase.make_app(api_key=HYDRABASE_KEY)}
    servers = {name: await aiohttp_server(app) for name, app in apps.items()}
    return {"apps": apps, "servers": servers}


def environ(fakes: dict[str, Any], hydrabase_url: str | None = None) -> dict[str, str]:
    servers = fakes["servers"]
    spotify_url = str(servers["spotify"].make_url("")).rstrip("/")
    return {
        "SOULSYNC_HYDRABASE__URL": hydrabase_url or f"ws://127.0.0.1:{servers['hydrabase'].port}/",
        "SOULSYNC_HYDRABASE__API_KEY": HYDRABASE_KEY,
        "SOULSYNC_SPOTIFY__CLIENT_ID": spotify.CLIENT_ID,
        "SOULSYNC_SPOTIFY__CLIENT_SECRET": spotify.CLIENT_SECRET,
        "SOULSYNC_SPOTIFY__API_URL": spotify_url,
        "SOULSYNC_SPOTIFY__ACCOUNTS_URL": spotify_url,
        "SOULSYNC_ITUNES__BASE_URL": str(servers["itunes"].make_url("")).rstrip("/"),
        "SOULSYNC_SEARCH__TIMEOUT_SECONDS": "1",
    }


async def search(api: Any, kind: str = "tracks", query: str = QUERY) -> Any:
    reply = await api.post(f"/api/v1/search/{kind}", {"query": query, "limit": 5})
    assert reply.status == 200, reply.json
    return reply.data


async def test_hydrabase_answers_first(soulsync_factory, fakes):
    api = await soulsync_factory(plugins=PLUGINS, environ=environ(fakes))
    data = await search(api)
    assert data["source"] == "hydrabase" and data["tracks"]


async def test_hydrabase_down_then_spotify_answers(soulsync_factory, fakes):
    closed = f"ws://127.0.0.1:{free_port()}/"  # nothing listens there
    api = await soulsync_factory(plugins=PLUGINS, environ=environ(fakes, hydrabase_url=closed))
    data = await search(api, "albums", "discovery")
    assert data["source"] == "spotify" and data["albums"]


async def test_spotify_429_is_skipped_during_cool_down_and_itunes_answers(soulsync_factory, fakes):
    env = environ(fakes) | {"SOULSYNC_SEARCH__AUTO_ORDER": "spotify,itunes"}
    api = await soulsync_factory(plugins=PLUGINS, environ=env)
    faults = fakes["apps"]["spotify"][FAULTS]
    faults.retry_after, faults.rate_limit_count = 120, -1
    started = time.monotonic()
    first = await search(api, "artists", "daft punk")
    assert first["source"] == "itunes" and first["artists"]
    assert time.monotonic() - started < 5  # the 429 did not make anyone sleep 120 s
    seen = faults.requests
    faults.rate_limit_count = 0  # Spotify is fine again, but the cool-down holds
    second = await search(api, "artists", "daft punk")
    assert second["source"] == "itunes"
    assert faults.requests == seen  # Spotify was not asked during the cool-down
    assert api.core.search.cooldown_left("spotify") > 100


async def test_nothing_found_anywhere_is_empty_with_the_requested_source(soulsync_factory, fakes):
    api = await soulsync_factory(plugins=PLUGINS, environ=environ(fakes))
    data = await search(api, "tracks", "zzqx nothing matches this")
    assert data == {"tracks": [], "source": "auto"}


async def test_a_hanging_source_delays_the_answer_by_its_timeout_only(soulsync_factory, fakes):
    fakes["apps"]["hydrabase"][hydrabase.HYDRABASE].silent = True
    api = await soulsync_factory(plugins=PLUGINS, environ=environ(fakes))
    started = time.monotonic()
    data = await search(api, "tracks", "daft punk")
    elapsed = time.monotonic() - started
    assert data["source"] in ("spotify", "itunes") and data["tracks"]
    assert elapsed < 2.5  # search.timeout_seconds is 1


async def test_status_reports_each_source_from_background_checks(soulsync_factory, fakes):
    api = await soulsync_factory(plugins=PLUGINS, environ=environ(fakes))
    await api.core.health.check_all()
    services = (await api.get("/api/v1/system/status")).data["services"]
    assert services == {"hydrabase": True, "itunes": True, "spotify": True}


@pytest.mark.parametrize("name", ["spotify", "itunes"])
async def test_a_huge_retry_after_cools_a_source_down_for_the_cap_only(soulsync_factory, fakes, name):
    env = environ(fakes) | {"SOULSYNC_SEARCH__AUTO_ORDER": f"{name},hydrabase"}
    api = await soulsync_factory(plugins=PLUGINS, environ=env)
    faults = fakes["apps"][name][FAULTS]
    faults.retry_after, faults.rate_limit_count = 3600, 1
    data = await search(api, "tracks", QUERY)
    assert data["source"] == "hydrabase"
    assert 290 < api.core.search.cooldown_left(name) <= 300  # search.max_cooldown_seconds
    explicit = await api.post("/api/v1/search/tracks", {"query": QUERY, "source": name})
    assert explicit.status == 503 and "rate limited for" in explicit.error["message"]
