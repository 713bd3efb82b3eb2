"""``GET /metrics``: what the exposition counts, who may read it, and what it never shows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

import soulsync_itunes.plugin
import soulsync_slskd.plugin
import soulsync_spotify.plugin
from soulsync_core.accounts import AccountStore
from soulsync_core.db import Database
from soulsync_core.metrics import DatabaseFigures
from soulsync_core.testing import ApiClient
from tests import audio
from tests.download_fixtures import (
    TRACK,
    ManualClock,
    catalogue,
    environ,
    live_version_first,
    metadata_plugin,
    open_api,
    service,
)
from tests.fakes.base import FAULTS
from tests.fakes.itunes import ITUNES
from tests.fakes.itunes import make_app as make_itunes
from tests.fakes.slskd import SLSKD
from tests.fakes.slskd import make_app as make_slskd
from tests.test_watchlist import Discography
from tests.test_watchlist import plugin as discography_plugin

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(api: ApiClient, *, key: str | None = None, use_key: bool = True,
                 params: dict[str, str] | None = None) -> tuple[int, str]:
    """GET /metrics (with the client's key as a Bearer header unless told otherwise)."""
    headers = {}
    chosen = key if key is not None else api.key
    if use_key and chosen:
        headers["Authorization"] = f"Bearer {chosen}"
    async with api.client.get("/metrics", headers=headers, params=params) as response:
        return response.status, await response.text()


def parse(text: str) -> Samples:
    """Return every sample of the exposition by (name, sorted labels); fails if it does not parse."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def metrics_of(api: ApiClient) -> Samples:
    status, text = await scrape(api)
    assert status == 200, text
    return parse(text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# --------------------------------------------------------------------------- who may read it


async def test_without_a_key_401_with_a_wrong_one_403_with_a_good_one_200(api, key):
    status, text = await scrape(api, use_key=False)
    assert status == 401 and "API key is required" in text
    assert (await scrape(api, key="sk_" + "x" * 43))[0] == 403
    status, text = await scrape(api)
    assert status == 200
    assert (await scrape(api, use_key=False, params={"api_key": key}))[0] == 200


async def test_it_takes_a_key_exactly_as_the_api_does_so_no_x_api_key(api, key):
    # The API reads a key from Authorization: Bearer and ?api_key= only (api/middlewares.py,
    # presented_key); /metrics uses the same check, so an X-API-Key header is no key there
    # either: both answer 401 with the message naming the two ways.
    async with api.client.get("/metrics", headers={"X-API-Key": key}) as response:
        assert response.status == 401
        assert "Authorization: Bearer" in await response.text()
    async with api.client.get("/api/v1/system/status", headers={"X-API-Key": key}) as response:
        assert response.status == 401


async def test_the_answer_is_prometheus_text_that_parses(api, key):
    async with api.client.get("/metrics", headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        samples = parse(await response.text())
    assert value(samples, "soulsync_event_stream_clients") == 0
    assert value(samples, "soulsync_notification_deliveries_total", outcome="delivered") == 0
    assert value(samples, "soulsync_downloads", state="completed") == 0
    assert value(samples, "soulsync_library_items", kind="tracks") == 0


async def test_metrics_public_opens_it_without_a_key(api, key):
    reply = await api.patch("/api/v1/settings", {"metrics.public": True})
    assert reply.status == 200, reply.json
    assert (await scrape(api, use_key=False))[0] == 200
    # Only /metrics: the API still wants a key.
    assert (await api.get("/api/v1/system/status", auth=False)).status == 401


async def test_it_counts_against_the_system_rate_limit(soulsync_factory):
    api = await soulsync_factory(environ={"SOULSYNC_API__RATE_LIMITS__SYSTEM": "2"})
    assert (await api.get("/api/v1/system/status")).status == 200
    assert (await scrape(api))[0] == 200
    async with api.client.get("/metrics", headers={"Authorization": f"Bearer {api.key}"}) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "30"
        assert (await response.json())["error"]["code"] == "RATE_LIMITED"
    assert (await api.get("/api/v1/system/status")).status == 429


async def test_the_openapi_document_lists_it_as_text_with_its_errors(api, key):
    document = (await api.get("/api/v1/openapi.json")).json
    operation = document["paths"]["/metrics"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain"]
    assert {"401", "403", "429"} <= set(operation["responses"])
    assert "security" not in operation  # the document's default: a key


# --------------------------------------------------------------------------- HTTP requests


async def test_requests_are_counted_by_route_template_never_the_raw_path(api, key):
    for artist_id in ("123", "456", "abc"):
        await api.get(f"/api/v1/library/artists/{artist_id}")
    await api.get("/api/v1/no/such/route")
    samples = await metrics_of(api)
    route = "/api/v1/library/artists/{artist_id}"
    assert value(samples, "soulsync_http_requests_total", method="GET", route=route, status="404") == 2
    assert value(samples, "soulsync_http_requests_total", method="GET", route=route, status="400") == 1
    assert value(samples, "soulsync_http_requests_total", method="GET", route="(unmatched)",
                 status="404") == 1
    assert value(samples, "soulsync_http_request_duration_seconds_count", method="GET",
                 route=route) == 3
    routes = {dict(labels).get("route") for (_name, labels) in samples}
    assert not any(r and ("123" in r or "abc" in r or "no/such" in r) for r in routes)


async def test_an_odd_method_is_counted_as_other(api, key):
    async with api.client.request("PROPFIND", "/api/v1/system/status") as response:
        assert response.status == 405
    samples = await metrics_of(api)
    # A wrong method on a known path is answered by that path's own catch-all route (so the
    # 405 lists only its methods), and counted under its template.
    assert value(samples, "soulsync_http_requests_total", method="other",
                 route="/api/v1/system/status", status="405") == 1


# --------------------------------------------------------------------------- secrets


async def test_no_secret_ever_appears_in_the_scrape(soulsync_factory):
    slskd_key = "slskd-secret-key-7f3a9c"
    client_secret = "spotify-client-secret-91bd"
    oauth_token = "BQD-oauth-access-token-5e2f"
    api = await soulsync_factory(
        plugins=[("slskd", soulsync_slskd.plugin), ("spotify", soulsync_spotify.plugin)],
        environ={"SOULSYNC_SOULSEEK__API_KEY": slskd_key,
                 "SOULSYNC_SOULSEEK__SLSKD_URL": "http://127.0.0.1:9",
                 "SOULSYNC_SPOTIFY__CLIENT_SECRET": client_secret})
    await AccountStore(api.core.db, "spotify").put(
        "token", {"access_token": oauth_token, "refresh_token": oauth_token + "-refresh"})
    # The key travels in the query string too, where a raw-path label would have caught it.
    await api.get("/api/v1/system/status", auth=False, params={"api_key": api.key})
    await api.get(f"/api/v1/library/artists/{api.key}")
    status, text = await scrape(api, use_key=False, params={"api_key": api.key})
    assert status == 200
    parse(text)
    for secret in (api.key, slskd_key, client_secret, oauth_token):
        assert secret not in text


# --------------------------------------------------------------------------- downloads


@pytest.fixture
async def slskd(aiohttp_server: Any, tmp_path: Path) -> TestServer:
    return await aiohttp_server(make_slskd(tmp_path / "slskd" / "downloads", peers=catalogue(),
                                           search_seconds=0.05))


async def test_a_real_download_is_counted_with_its_bytes(aiohttp_client, tmp_path, slskd, music):
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
    api = await open_api(aiohttp_client, tmp_path / "data",
                         environ(slskd, tmp_path / "slskd" / "downloads", music), plugins,
                         ManualClock())
    reply = await api.post("/api/v1/downloads", TRACK)
    assert reply.status == 202, reply.json
    await service(api).settle()
    await slskd.app[SLSKD].settle()
    await service(api).poll()
    await service(api).settle()
    done = (await api.get(f"/api/v1/downloads/{reply.data['download']['id']}")).data["download"]
    assert done["status"] == "completed"

    samples = await metrics_of(api)
    assert value(samples, "soulsync_downloads", state="completed") == 1
    assert value(samples, "soulsync_downloads", state="failed") == 0
    assert value(samples, "soulsync_downloaded_bytes_total") == done["size"] > 0
    assert value(samples, "soulsync_soulseek_searches_total", client="soulseek") >= 1
    assert value(samples, "soulsync_active_transfers") == 0
    assert value(samples, "soulsync_library_items", kind="tracks") == 1


# --------------------------------------------------------------------------- providers


async def test_a_provider_429_is_counted_against_the_fake_itunes(soulsync_factory, aiohttp_server):
    fake = await aiohttp_server(make_itunes())
    api = await soulsync_factory(plugins=[("itunes", soulsync_itunes.plugin)],
                                 environ={"SOULSYNC_ITUNES__BASE_URL": str(fake.make_url("/"))})
    await asyncio.wait_for(fake.app[ITUNES].queried.wait(), 5)  # the start-up health check
    before = await metrics_of(api)
    assert value(before, "soulsync_provider_rate_limited_total", provider="itunes") == 0

    ok = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert ok.status == 200
    fake.app[FAULTS].retry_after, fake.app[FAULTS].rate_limit_count = 30, 1
    limited = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert limited.status == 503
    cooling = await api.post("/api/v1/search/tracks", {"query": "daft", "source": "itunes"})
    assert cooling.status == 503  # refused without asking: not a call

    samples = await metrics_of(api)
    assert value(samples, "soulsync_provider_calls_total", provider="itunes") == 2
    assert value(samples, "soulsync_provider_errors_total", provider="itunes") == 1
    assert value(samples, "soulsync_provider_rate_limited_total", provider="itunes") == 1


# --------------------------------------------------------------------------- library and lists


async def test_a_scan_is_counted_and_the_lists_sizes_shown(soulsync_factory, music):
    (music / "Artist" / "Album").mkdir(parents=True)
    for number in (1, 2, 3):
        audio.write_flac(music / "Artist" / "Album" / f"0{number} - Song {number}.flac")
    # An artist is watched only through an installed source: "123" means itunes.
    api = await soulsync_factory(plugins=[("itunes", discography_plugin(Discography()))],
                                 environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(music)})
    assert (await api.post("/api/v1/library/scan")).status == 202
    await api.core.jobs.wait("library_scan")
    track = {"id": "t1", "name": "Wanted", "artists": ["Someone"]}
    assert (await api.post("/api/v1/wishlist", {"track_data": track})).status == 201
    watched = await api.post("/api/v1/watchlist", {"artist_id": "123", "artist_name": "Someone"})
    assert watched.status == 201

    samples = await metrics_of(api)
    assert value(samples, "soulsync_library_scan_files_total") == 3
    assert value(samples, "soulsync_library_scan_files_per_second") > 0
    assert value(samples, "soulsync_library_items", kind="tracks") == 3
    assert value(samples, "soulsync_library_items", kind="artists") == 1
    assert value(samples, "soulsync_wishlist_tracks") == 1
    assert value(samples, "soulsync_watchlist_artists") == 1


async def test_database_figures_are_read_once_per_ttl_however_many_scrape(tmp_path):
    db = await Database.open(tmp_path / "data")
    clock = ManualClock()
    figures = DatabaseFigures(db, ttl=5.0, clock=clock)
    try:
        await asyncio.gather(*(figures.refresh() for _ in range(20)))
        assert figures.reads == 1
        await db.execute("INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, "
                         "date_added, updated_at) VALUES ('itunes', '1', 'A', 'a', '', '')")
        clock.advance(4.9)
        await figures.refresh()
        assert figures.reads == 1
        assert _watchlist(figures) == 0
        clock.advance(0.2)
        await figures.refresh()
        assert figures.reads == 2
        assert _watchlist(figures) == 1
    finally:
        await db.close()


def _watchlist(figures: DatabaseFigures) -> float:
    [family] = [f for f in figures.collect() if f.name == "soulsync_watchlist_artists"]
    return family.samples[0].value
