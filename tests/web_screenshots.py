"""Take the screenshots of docs/ui.md: every page of the web UI on a daemon with a small library,
a finished download (through the fake slskd), a wishlist and a watched artist.

Run from the repository: ``.venv/bin/python -m tests.web_screenshots docs/ui`` (needs
/usr/bin/chromium). Every page is taken on a desktop (1280 px) in light mode, with the search
showing results, one download's details and a playlist synced from the fake Spotify; the
dashboard, library and downloads also on a phone (390 px) and in dark mode.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

import soulsync_slskd.plugin
import soulsync_spotify.plugin
from soulsync_core.api.app import create_app
from soulsync_core.core import Core
from tests.download_fixtures import (
    TRACK,
    ManualClock,
    catalogue,
    environ,
    live_version_first,
    metadata_plugin,
)
from tests.fakes.slskd import SLSKD, make_app
from tests.fakes.spotify import CLIENT_ID, FRENCH_TOUCH
from tests.fakes.spotify import make_app as spotify_app
from tests.library_fixtures import record
from tests.web_browser import DESKTOP, PHONE, UiSession, open_browser

PAGES = ("dashboard", "library", "search", "downloads", "downloads-detail", "wishlist", "watchlist",
         "playlists", "playlists-sync", "settings", "keys", "plugins")
ROUTES = {"downloads-detail": "downloads/1", "playlists-sync": f"playlists/spotify/{FRENCH_TOUCH}"}
ALSO_PHONE_AND_DARK = ("dashboard", "library", "downloads")
ALBUMS = [("Air", "Moon Safari", 1998, ["La Femme d'Argent", "Sexy Boy", "All I Need"]),
          ("Boards of Canada", "Music Has the Right to Children", 1998,
           ["Wildlife Analysis", "An Eagle in Your Mind"]),
          ("Cassius", "1999", 1999, ["Cassius 1999", "Feeling for You"]),
          ("Justice", "Cross", 2007, ["Genesis", "Let There Be Light", "D.A.N.C.E."]),
          ("Stardust", "Music Sounds Better with You", 1998, ["Music Sounds Better with You"])]


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        music = root / "music"
        music.mkdir()
        slskd_downloads = root / "slskd"
        slskd = TestServer(make_app(slskd_downloads, peers=catalogue(), search_seconds=0.05))
        await slskd.start_server()
        fake = slskd.app[SLSKD]
        spotify = TestServer(spotify_app())
        await spotify.start_server()
        base = str(spotify.make_url("")).rstrip("/")
        env = environ(slskd, slskd_downloads, music) | {
            "SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__API_URL": base,
            "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base, "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"}
        plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first())),
                   ("spotify", soulsync_spotify.plugin)]
        core = await Core.open(root / "data", environ=env, entry_points=False, plugins=plugins)
        server = TestServer(create_app(core))
        await server.start_server()
        core.downloads.clock = ManualClock()
        try:
            key = (await core.keys.bootstrap("Web UI")).key
            await seed(server, key, core, fake, music)
            await shoot(str(server.make_url("/")), key, out, root / "failures")
        finally:
            await server.close()
            await slskd.close()
            await spotify.close()


async def seed(server: TestServer, key: str, core: Core, fake: object, music: Path) -> None:
    records = [record(artist, album, title, folder=str(music / artist / album), number=n + 1,
                      year=year, genres=["Electronic"])
               for artist, album, year, titles in ALBUMS for n, title in enumerate(titles)]
    await core.library.store.save(records)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(server.make_url("/api/v1/downloads"), json=TRACK) as answer:
            assert answer.status == 202, await answer.text()
        await core.downloads.settle()
        await fake.settle()  # type: ignore[attr-defined]
        await core.downloads.poll()
        await core.downloads.settle()
        for track_id, title, album in (("s1", "Around the World", "Homework"),
                                       ("s2", "Digital Love", "Discovery")):
            body = {"track_data": {"id": track_id, "name": title, "artists": ["Daft Punk"], "album": album},
                    "failure_reason": "No file met the quality profile"}
            async with http.post(server.make_url("/api/v1/wishlist"), json=body) as answer:
                assert answer.status == 201, await answer.text()
        body = {"artist_id": "5468295", "artist_name": "Daft Punk"}
        async with http.post(server.make_url("/api/v1/watchlist"), json=body) as answer:
            assert answer.status == 201, await answer.text()
        # Connect the fake Spotify account (approved at once) and sync one playlist.
        async with http.get(server.make_url("/api/v1/auth/spotify")) as answer:
            authorize = (await answer.json())["data"]["url"]
        async with aiohttp.ClientSession() as elsewhere, elsewhere.get(
                authorize, allow_redirects=False) as answer:
            redirect = answer.headers["Location"]
        async with http.post(server.make_url("/api/v1/auth/spotify"),
                             json={"redirect_url": redirect}) as answer:
            assert answer.status == 200, await answer.text()
        async with http.post(server.make_url(f"/api/v1/playlists/{FRENCH_TOUCH}/sync"),
                             json={"source": "spotify"}) as answer:
            assert answer.status == 202, await answer.text()
        await core.playlists.wait(FRENCH_TOUCH)


async def shoot(base_url: str, key: str, out: Path, failures: Path) -> None:
    async with open_browser() as browser:
        for viewport, size in (("desktop", DESKTOP), ("phone", PHONE)):
            for scheme in ("light", "dark"):
                session = await UiSession.open(browser, base_url, failures, viewport=size,
                                               color_scheme=scheme)
                async with session:
                    await session.goto()
                    await session.page.fill("#login-key", key)
                    await session.page.get_by_role("button", name="Log in").click()
                    await session.page.wait_for_selector("h1")
                    for page in PAGES:
                        if (viewport, scheme) != ("desktop", "light") and page not in ALSO_PHONE_AND_DARK:
                            continue
                        await session.goto(ROUTES.get(page, page))
                        await session.page.wait_for_selector(f".page[data-page='{page.split('-')[0]}']")
                        if page == "search":
                            await session.page.fill("#search-query", "Daft Punk - One More Time")
                            await session.page.get_by_role("button", name="Search", exact=True).click()
                            await session.page.wait_for_selector("#results table")
                        await session.page.wait_for_load_state("networkidle")
                        await session.page.screenshot(path=str(out / f"{page}-{viewport}-{scheme}.png"),
                                                      full_page=page != "settings")
                        print(out / f"{page}-{viewport}-{scheme}.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files (docs/ui)")
    folder = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(folder))
