"""Crash safety of the long jobs: SIGKILL a real ``soulsync serve`` during a library scan of
a few thousand files, during a wishlist run and during a playlist sync (the real Spotify plugin
against tests/fakes/spotify.py), restart it, and check nothing is lost or doubled.

See tests/crash_harness.py for the set-up and what :func:`check` requires.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from soulsync_core.library.service import JOB_KIND as SCAN_JOB
from soulsync_core.wishlist import JOB_KIND as WISHLIST_JOB
from tests import audio
from tests.crash_harness import CrashSite, check
from tests.download_fixtures import TRACK
from tests.fakes.spotify import CLIENT_ID, FRENCH_TOUCH
from tests.fakes.spotify import make_app as spotify_app

SCAN_FILES = 2000    # four chunks of the scanner's 500


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[CrashSite]:
    opened = await CrashSite.open(tmp_path / "site")
    yield opened
    await opened.close()


def fill_music(music: Path, count: int) -> None:
    """Write ``count`` small tagged MP3 files, 20 per album folder (copies of one, for speed)."""
    template = audio.make(music.parent / "template.mp3", "mp3", seconds=0.1, title="Song",
                          artist="Crash Artist", album="Crash Album")
    for index in range(count):
        folder = music / f"Artist {index // 200}" / f"Album {index // 20}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, folder / f"{index % 20 + 1:02d} - Song {index}.mp3")


def job_running(site: CrashSite, kind: str) -> bool:
    return bool(site.rows("SELECT id FROM jobs WHERE kind = ? AND state = 'running'", (kind,)))


async def test_sigkill_during_a_library_scan_then_a_rescan_equals_a_fresh_scan(
        site: CrashSite) -> None:
    fill_music(site.music, SCAN_FILES)
    daemon = await site.start(pause_at="scan.chunk_written")
    status, body = await site.call(daemon, "POST", "/api/v1/library/scan")
    assert status == 202, body
    await site.kill_at(daemon, "scan.chunk_written")
    before = {"SELECT id FROM tracks": {row[0] for row in site.rows("SELECT id FROM tracks")}}
    assert 0 < len(before["SELECT id FROM tracks"]) < SCAN_FILES

    daemon = await site.start()
    [(state,)] = site.rows("SELECT state FROM jobs WHERE kind = ?", (SCAN_JOB,))
    assert state == "interrupted"
    status, body = await site.call(daemon, "POST", "/api/v1/library/scan")
    assert status == 202, body
    await site.wait_until("the rescan to end", lambda: not job_running(site, SCAN_JOB), daemon,
                          tick=False)
    assert await daemon.stop() == 0, daemon.log_text()
    assert await check(site, before, downloads=0, library_files=SCAN_FILES) == []


async def test_sigkill_during_a_wishlist_run_downloads_the_track_once(site: CrashSite) -> None:
    daemon = await site.start(pause_at="wishlist.requested")
    wanted = {key: TRACK[key] for key in ("id", "name", "artists", "album", "duration_ms")}
    status, body = await site.call(daemon, "POST", "/api/v1/wishlist",
                                   {"spotify_track_data": wanted, "failure_reason": "crash test"})
    assert status in (200, 201), body
    status, body = await site.call(daemon, "POST", "/api/v1/wishlist/process")
    assert status == 202, body
    await site.kill_at(daemon, "wishlist.requested")
    before = {"SELECT id FROM downloads": {row[0] for row in site.rows("SELECT id FROM downloads")}}
    assert len(before["SELECT id FROM downloads"]) == 1

    # The download the dead run asked for goes on by itself; a new run must not ask again.
    daemon = await site.start()
    status, body = await site.call(daemon, "POST", "/api/v1/wishlist/process")
    assert status == 202, body
    await site.finish_downloads(daemon)
    await site.wait_until("the wishlist run to end", lambda: not job_running(site, WISHLIST_JOB),
                          daemon)
    assert site.rows("SELECT id FROM wishlist_tracks") == []
    status, body = await site.call(daemon, "POST", "/api/v1/wishlist/process")
    assert status == 202, body
    await site.wait_until("the last wishlist run to end",
                          lambda: not job_running(site, WISHLIST_JOB), daemon)
    assert await daemon.stop() == 0, daemon.log_text()
    assert await check(site, before, downloads=1) == []


async def test_sigkill_during_a_playlist_sync_then_a_sync_wants_each_track_once(
        site: CrashSite) -> None:
    spotify = TestServer(spotify_app())
    await spotify.start_server()
    try:
        base = str(spotify.make_url("")).rstrip("/")
        site.extra_env.update({"SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID,
                               "SOULSYNC_SPOTIFY__API_URL": base,
                               "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base,
                               "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"})
        daemon = await site.start(pause_at="playlist.wanted")
        status, body = await site.call(daemon, "GET", "/api/v1/auth/spotify")
        assert status == 200, body
        async with aiohttp.ClientSession() as browser, browser.get(
                body["data"]["url"], allow_redirects=False) as approved:
            assert approved.status == 302, await approved.text()
            redirect = approved.headers["Location"]
        status, body = await site.call(daemon, "POST", "/api/v1/auth/spotify",
                                       {"redirect_url": redirect})
        assert status == 200, body
        sync = f"/api/v1/playlists/{FRENCH_TOUCH}/sync"
        status, body = await site.call(daemon, "POST", sync, {"source": "spotify"})
        assert status == 202, body
        await site.kill_at(daemon, "playlist.wanted")
        wished = {row[0] for row in site.rows("SELECT id FROM wishlist_tracks")}
        assert len(wished) == 1
        before = {"SELECT id FROM wishlist_tracks": wished, "SELECT account FROM account_data": {
            row[0] for row in site.rows("SELECT account FROM account_data")}}

        daemon = await site.start()
        status, body = await site.call(daemon, "POST", sync, {"source": "spotify"})
        assert status == 202, body
        await site.wait_until("the sync to end", lambda: not job_running(
            site, f"playlist_sync:{FRENCH_TOUCH}"), daemon, tick=False)
        status, body = await site.call(daemon, "GET", sync)
        assert status == 200 and body["data"]["state"] == "completed", body
        assert await daemon.stop() == 0, daemon.log_text()
    finally:
        await spotify.close()

    entries = site.rows("SELECT wanted_key FROM playlist_entries WHERE playlist_id = ?",
                        (FRENCH_TOUCH,))
    wishlist = site.rows("SELECT track_id FROM wishlist_tracks")
    assert entries and len(wishlist) == len({key for (key,) in entries}), (entries, wishlist)
    assert len(set(wishlist)) == len(wishlist)
    assert (site.music / "Playlists" / "French Touch.m3u8").is_file()
    assert not list((site.music / "Playlists").glob(".*"))
    assert await check(site, before, downloads=0, library_files=0) == []
