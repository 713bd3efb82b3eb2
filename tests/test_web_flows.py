"""The web UI's flows in a real Chromium against the daemon and the fakes of the outside
services: search -> download -> progress -> library; wishlist; watchlist (iTunes fake);
playlists (Spotify fake). The page is never told anything by the test: it finds each change
through the API: the event stream while it is up, polling while it is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from playwright.async_api import Browser, Request, expect

import soulsync_slskd.plugin
import soulsync_spotify.plugin
from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.events import EVENT_STREAMS
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.testing import ApiClient, OpenApiChecker
from soulsync_itunes import plugin as itunes_plugin
from tests.download_fixtures import (
    FLAC_FAST,
    TRACK,
    ManualClock,
    catalogue,
    environ,
    live_version_first,
    metadata_plugin,
    open_api,
    service,
)
from tests.fakes import itunes
from tests.fakes.slskd import SLSKD, SlskdFake, make_app
from tests.fakes.spotify import CLIENT_ID, FRENCH_TOUCH, USER_NAME
from tests.fakes.spotify import make_app as spotify_app
from tests.library_fixtures import record
from tests.web_browser import UiSession, needs_chromium, open_browser

pytestmark = needs_chromium
QUIET = {"SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0", "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0"}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with open_browser() as chromium:
        yield chromium


async def start(aiohttp_client: Any, tmp_path: Path, environ: dict[str, str],
                plugins: list[tuple[str, object]]) -> ApiClient:
    core = await Core.open(tmp_path / "data", environ=environ, entry_points=False, plugins=plugins)
    api = ApiClient(await aiohttp_client(create_app(core)), OpenApiChecker(build_openapi(all_endpoints())))
    await api.bootstrap()
    return api


async def logged_in(browser: Browser, api: ApiClient, tmp_path: Path, route: str) -> UiSession:
    session = await UiSession.open(browser, str(api.client.make_url("/")), tmp_path / "screenshots")
    await session.goto()
    await session.page.fill("#login-key", api.key or "")
    await session.page.get_by_role("button", name="Log in").click()
    await expect(session.page.locator("h1")).to_have_text("Dashboard")
    await session.page.click(f"nav a[href='#/{route}']")
    return session


def list_requests(session: UiSession) -> list[str]:
    """The requests the page made for the list of downloads (GET /api/v1/downloads)."""
    return [url for url in session.requests if urlsplit(url).path == "/api/v1/downloads"]


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (a condition, never a timing assertion); at most 10 s."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true in 10 s")


async def on_fake_slskd(aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path,
                        music: Path) -> tuple[ApiClient, SlskdFake]:
    """The daemon on the fake slskd (its monitor ticks when the test polls) and a stub iTunes."""
    slskd_downloads = tmp_path / "slskd" / "downloads"
    server = await aiohttp_server(make_app(slskd_downloads, peers=catalogue(), search_seconds=0.05))
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
    api = await open_api(aiohttp_client, tmp_path / "data", environ(server, slskd_downloads, music),
                         plugins, ManualClock())
    return api, server.app[SLSKD]


async def test_search_download_progress_and_the_track_in_the_library(
        browser, aiohttp_client, aiohttp_server, tmp_path, music):
    api, fake = await on_fake_slskd(aiohttp_client, aiohttp_server, tmp_path, music)
    async with await logged_in(browser, api, tmp_path, "search") as session:
        page = session.page
        await page.fill("#search-query", "Daft Punk - One More Time")
        await page.get_by_role("button", name="Search", exact=True).click()
        await expect(page.locator("form + .status")).to_have_text("Answered by itunes.")
        studio = page.locator("#results tr", has_text="Discovery")
        await expect(page.locator("#results tbody tr")).to_have_count(2)  # the live version too
        await studio.get_by_role("button", name="Download").click()
        await expect(studio.locator(".status")).to_have_text("Download queued.")

        await page.click("nav a[href='#/downloads']")
        row = page.locator("#downloads tbody tr", has_text="One More Time")
        await expect(row).to_be_visible()
        listed = len(list_requests(session))
        await service(api).settle()
        await fake.tick(4)  # a quarter of the bytes
        await service(api).poll()
        await expect(row).to_contain_text("25 %")
        await expect(row).to_contain_text("downloading")
        await expect(row).to_contain_text("flac_fast")
        await expect(row.locator("progress")).to_have_attribute("value", "25")
        # All of it came through the event stream: the list was not fetched again.
        assert len(list_requests(session)) == listed, list_requests(session)

        # The stream is cut and refused (the daemon is stopping): the page polls instead ...
        resumed: list[str | None] = []

        async def resumes_after(request: Request) -> None:
            # The browser's own retry sends Last-Event-ID; the page's new stream ?since=.
            if urlsplit(request.url).path == "/api/v1/events":
                since = parse_qs(urlsplit(request.url).query).get("since", [None])[0]
                resumed.append((await request.all_headers()).get("last-event-id") or since)

        page.on("request", resumes_after)
        streams = api.client.server.app[EVENT_STREAMS]
        streams.closing = True
        for subscription in streams.open_streams():
            subscription.close()
        await fake.settle()
        await service(api).poll()
        await service(api).settle()
        await expect(row).to_contain_text("completed")
        await expect(row).to_contain_text("100 %")
        assert len(list_requests(session)) > listed
        # ... and opens a new stream that resumes after the last event it saw.
        seen = api.core.events.last_id
        streams.closing = False
        await until(lambda: len(streams.open_streams()) == 1)
        assert resumed and all(0 < int(since or 0) <= seen for since in resumed), resumed
        await api.post("/api/v1/downloads", {"name": "Digital Love", "artists": ["Daft Punk"]})
        queued = page.locator("#downloads tbody tr", has_text="Digital Love")
        await expect(queued).to_contain_text("not_found")

        await row.get_by_role("link").click()
        refused = page.locator("tr", has_text="live_user")
        await expect(refused).to_contain_text("is a live version; the wanted track is not")
        await expect(page.locator("tr", has_text="flac_fast")).to_contain_text("chosen")

        await page.click("nav a[href='#/library']")
        await page.get_by_role("link", name="Daft Punk").click()
        await page.get_by_role("link", name="Discovery").click()
        await expect(page.locator("h1")).to_have_text("Discovery")
        await expect(page.locator("td", has_text="One More Time")).to_be_visible()
        await expect(page.locator("td", has_text="FLAC")).to_be_visible()
        assert (music / "Daft Punk" / "Discovery" / "01 - One More Time.flac").is_file()


async def test_cancel_one_download_and_cancel_all(browser, aiohttp_client, aiohttp_server, tmp_path, music):
    api, fake = await on_fake_slskd(aiohttp_client, aiohttp_server, tmp_path, music)
    first = (await api.post("/api/v1/downloads", TRACK)).data["download"]
    second = (await api.post("/api/v1/downloads", {"name": "Digital Love", "artists": ["Daft Punk"],
                                                   "album": "Discovery"})).data["download"]
    await service(api).settle()
    async with await logged_in(browser, api, tmp_path, "downloads") as session:
        page = session.page
        one = page.locator("#downloads tbody tr", has_text="One More Time")
        await expect(one).to_contain_text("downloading")
        await one.get_by_role("button", name="Cancel").click()
        await expect(one).to_contain_text("cancelled")
        assert (await api.get(f"/api/v1/downloads/{first['id']}")).data["download"]["status"] == "cancelled"
        assert all(t.filename != FLAC_FAST for t in fake.transfers.values())

        await page.get_by_role("button", name="Cancel all").click()
        await expect(page.locator(".card.row + .status")).to_have_text("All downloads cancelled and cleared.")
        detail = (await api.get(f"/api/v1/downloads/{second['id']}")).data["download"]
        assert detail["status"] in ("cancelled", "not_found"), detail
        await page.select_option("#download-status", "cancelled")
        await expect(page.locator("#downloads tbody tr").first).to_contain_text("cancelled")


async def test_wishlist_remove(browser, aiohttp_client, tmp_path):
    # A music folder of its own: the default (~/Music) need not exist on the machine.
    music = tmp_path / "music"
    music.mkdir()
    api = await start(aiohttp_client, tmp_path, {**QUIET, "SOULSYNC_LIBRARY__MUSIC_DIR": str(music)}, [])
    for track_id, title in (("t1", "Digital Love"), ("t2", "Aerodynamic")):
        reply = await api.post("/api/v1/wishlist", {"track_data": {"id": track_id, "name": title,
                                                                   "artists": ["Daft Punk"]},
                                                    "failure_reason": "No sources found"})
        assert reply.status == 201, reply.json
    async with await logged_in(browser, api, tmp_path, "wishlist") as session:
        page = session.page
        rows = page.locator("#wishlist tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.first).to_contain_text("No sources found")
        await rows.filter(has_text="Digital Love").get_by_role("button", name="Remove").click()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Aerodynamic")
        # "Process now": the run starts, and how it ended (no download client here) is shown.
        await page.get_by_role("button", name="Process now").click()
        await expect(page.locator(".card.row + .status")).to_have_text("Wishlist processing started.")
        await expect(page.locator(".run-info")).to_contain_text("failed")
        await expect(page.locator(".run-info")).to_contain_text("No download client is installed")
    listed = (await api.get("/api/v1/wishlist")).data["tracks"]
    assert [t["track_id"] for t in listed] == ["t2"]
    last = (await api.get("/api/v1/wishlist/process")).data
    assert (last["state"], last["total"]) == ("failed", 1), last


async def test_add_to_wishlist_from_search(browser, aiohttp_client, aiohttp_server, tmp_path):
    server = await aiohttp_server(itunes.make_app())
    env = QUIET | {"SOULSYNC_ITUNES__BASE_URL": str(server.make_url("")).rstrip("/"),
                   "SOULSYNC_SEARCH__AUTO_ORDER": "itunes"}
    api = await start(aiohttp_client, tmp_path, env, [("itunes", itunes_plugin)])
    async with await logged_in(browser, api, tmp_path, "search") as session:
        page = session.page
        await page.fill("#search-query", "Daft Punk - One More Time")
        await page.get_by_role("button", name="Search", exact=True).click()
        found = page.locator("#results tbody tr").first
        title = (await found.locator("td").first.inner_text()).strip()
        await found.get_by_role("button", name="Add to wishlist").click()
        await expect(found.locator(".status")).to_have_class("status ok")
        await page.click("nav a[href='#/wishlist']")
        await expect(page.locator("#wishlist tbody tr", has_text=title)).to_be_visible()
    [wished] = (await api.get("/api/v1/wishlist")).data["tracks"]
    assert (wished["track_name"], wished["source_type"]) == (title, "web")


async def test_watchlist_add_from_search_filter_and_scan(browser, aiohttp_client, aiohttp_server, tmp_path):
    server = await aiohttp_server(itunes.make_app())
    env = QUIET | {"SOULSYNC_ITUNES__BASE_URL": str(server.make_url("")).rstrip("/"),
                   "SOULSYNC_SEARCH__AUTO_ORDER": "itunes", "SOULSYNC_WATCHLIST__LOOKBACK_DAYS": "36500"}
    api = await start(aiohttp_client, tmp_path, env, [("itunes", itunes_plugin)])
    async with await logged_in(browser, api, tmp_path, "search") as session:
        page = session.page
        await page.fill("#search-query", "Daft Punk")
        await page.select_option("#search-kind", "artists")
        await page.get_by_role("button", name="Search", exact=True).click()
        artist = page.locator("#results tbody tr", has_text="Daft Punk").first
        await artist.get_by_role("button", name="Watch").click()
        await expect(artist.locator(".status")).to_contain_text("watchlist")

        await page.click("nav a[href='#/watchlist']")
        row = page.locator("#watchlist tbody tr", has_text="Daft Punk")
        await expect(row).to_contain_text("itunes")
        [watched] = (await api.get("/api/v1/watchlist")).data["artists"]
        remixes = row.locator(f"#f-{watched['artist_id']}-remixes")
        await expect(remixes).not_to_be_checked()
        await remixes.check()
        await expect(page.locator(".card .status")).to_contain_text("updated")
        [watched] = (await api.get("/api/v1/watchlist")).data["artists"]
        assert watched["include_remixes"] is True and watched["include_singles"] is True

        await page.get_by_role("button", name="Scan now").click()
        scan = page.locator("#scan-info")
        await expect(scan).to_contain_text("completed")
        await expect(scan.locator("tr", has_text="Discovery")).to_be_visible()
    wished = (await api.get("/api/v1/wishlist", params={"limit": "200"})).data["tracks"]
    assert "One More Time" in {t["track_name"] for t in wished}


async def test_playlist_connect_sync_and_pin(browser, aiohttp_client, aiohttp_server, tmp_path, music):
    fake = await aiohttp_server(spotify_app())
    base = str(fake.make_url("")).rstrip("/")
    env = QUIET | {"SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__API_URL": base,
                   "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base, "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
                   "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"}
    api = await start(aiohttp_client, tmp_path, env, [("spotify", soulsync_spotify.plugin)])
    async with await logged_in(browser, api, tmp_path, "playlists") as session:
        page = session.page
        await expect(page.locator("#account")).to_contain_text("not connected")
        authorize = await page.locator("#authorize").get_attribute("href")
        assert authorize is not None and authorize.startswith(base)
        # The person approves on another device and pastes the address the browser ended on.
        async with aiohttp.ClientSession() as browser_elsewhere, browser_elsewhere.get(
                authorize, allow_redirects=False) as answer:
            assert answer.status == 302
            redirect = answer.headers["Location"]
        await page.fill("#redirect-url", redirect)
        await page.get_by_role("button", name="Connect").click()
        await expect(page.locator("#account")).to_contain_text(f"as {USER_NAME}")

        french = (await api.get(f"/api/v1/playlists/{FRENCH_TOUCH}")).data["playlist"]["tracks"]
        first = next(t for t in french if t["id"])
        await api.core.library.store.save([record(first["artists"][0], first["album"], first["name"],
                                                  folder=str(music / "x"), duration=first["duration_ms"])])
        row = page.locator("#playlists tbody tr", has_text="French Touch")
        await row.get_by_role("button", name="Sync").click()
        state = page.locator("#sync-state")
        await expect(state).to_contain_text("completed")
        await expect(state).to_contain_text(f"1 of {len(french)} in the library")

        position = next(i for i, t in enumerate(french) if t["id"] and t["name"] != first["name"])
        entry = page.locator("tbody tr").nth(position)
        await expect(entry).to_contain_text("missing")
        await entry.get_by_role("button", name="Pin…").click()
        await entry.get_by_role("searchbox").fill(first["name"])
        await entry.get_by_role("button", name="Find").click()
        await entry.locator(".choice").first.click()
        await expect(entry).to_contain_text("pinned")
        await expect(entry).to_contain_text("matched")
        status = (await api.get(f"/api/v1/playlists/{FRENCH_TOUCH}/sync")).data
        pinned = status["tracks"][position]
        assert (pinned["pinned"], pinned["status"]) == (True, "matched")
        assert pinned["library_track_id"] is not None

        # "Not in library" pins the entry to nothing; "Unpin" gives it back to the matcher.
        await entry.get_by_role("button", name="Change pin").click()
        await entry.get_by_role("button", name="Not in library").click()
        await expect(entry).to_contain_text("missing pinned")
        nothing = (await api.get(f"/api/v1/playlists/{FRENCH_TOUCH}/sync")).data["tracks"][position]
        assert (nothing["pinned"], nothing["library_track_id"]) == (True, None)
        await entry.get_by_role("button", name="Unpin").click()
        await expect(entry.get_by_role("button", name="Pin…")).to_be_visible()
        await expect(entry.get_by_role("button", name="Unpin")).to_have_count(0)
    status = (await api.get(f"/api/v1/playlists/{FRENCH_TOUCH}/sync")).data
    assert status["tracks"][position]["pinned"] is False
