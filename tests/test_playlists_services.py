"""Playlists with the real Spotify and TIDAL plugins against their fakes, end to end: the
copy-paste login over the API and on the command line (``soulsync auth spotify``), listing,
reading and syncing a playlist whose tracks the daemon fetches itself."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import soulsync_spotify.plugin
from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.playlists import m3u
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests.daemon_process import free_port
from tests.fakes.base import FAULTS
from tests.fakes.spotify import CLIENT_ID, FOLLOWED, FRENCH_TOUCH, GYM, USER_NAME, make_app
from tests.library_fixtures import record

ROOT = Path(__file__).resolve().parent.parent
P = "/api/v1/playlists"
A = "/api/v1/auth/spotify"


def spotify_environ(fake: Any, music: Path) -> dict[str, str]:
    """No client secret: the login is PKCE and every call uses the user's token."""
    base = str(fake.make_url("")).rstrip("/")
    return {"SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID, "SOULSYNC_SPOTIFY__API_URL": base,
            "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base, "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
            "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"}


def cli_environ(fake: Any, music: Path) -> dict[str, str]:
    """The environment of a ``soulsync auth spotify`` child: on a port nobody listens on, so a
    SoulSync already running on this machine (on 8008) draws no "other data directory"
    warning into the output the tests compare."""
    return {**os.environ, **spotify_environ(fake, music), "SOULSYNC_PLUGINS": "spotify",
            "SOULSYNC_SERVER__PORT": str(free_port())}


@pytest.fixture
async def fake(aiohttp_server):
    return await aiohttp_server(make_app())


@pytest.fixture
async def api(aiohttp_client, tmp_path, fake, music) -> ApiClient:
    core = await Core.open(tmp_path / "data", environ=spotify_environ(fake, music),
                           entry_points=False, plugins=[("spotify", soulsync_spotify.plugin)])
    client = await aiohttp_client(create_app(core))
    api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
    await api.bootstrap()
    return api


async def approve(url: str) -> str:
    """Be the browser: open the authorize address, return where Spotify sends it back."""
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as answer:
        assert answer.status == 302, await answer.text()
        return answer.headers["Location"]


async def test_login_list_read_and_sync_a_spotify_playlist(api, music):
    assert (await api.get(P)).status == 401  # source defaults to spotify; nobody logged in
    started = await api.get(A)
    assert started.status == 200, started.json
    assert "code_challenge_method=S256" in started.data["url"]  # no secret: PKCE
    connected = await api.post(A, {"redirect_url": await approve(started.data["url"])})
    assert connected.status == 200, connected.json
    assert connected.data["account"]["display_name"] == USER_NAME
    assert (await api.get("/api/v1/system/status")).data["services"]["spotify"] is True

    listed = await api.get(P)
    assert listed.status == 200, listed.json
    assert {p["id"] for p in listed.data["playlists"]} == {FRENCH_TOUCH, GYM, FOLLOWED}
    gym = await api.get(f"{P}/{GYM}", params={"source": "spotify"})
    assert gym.status == 200, gym.json
    ids = [t["id"] for t in gym.data["playlist"]["tracks"]]
    assert len(ids) == 116 and ids.count("") == 1  # a null item and an episode left out, a local file kept

    french = (await api.get(f"{P}/{FRENCH_TOUCH}")).data["playlist"]["tracks"]
    owned = [t for t in french if t["id"]][:3]
    await api.core.library.store.save([
        record(t["artists"][0], t["album"], t["name"], folder=str(music / t["artists"][0] / t["album"]),
               number=i + 1, duration=t["duration_ms"]) for i, t in enumerate(owned)])
    reply = await api.post(f"{P}/{FRENCH_TOUCH}/sync", {"source": "spotify"})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait(FRENCH_TOUCH)
    result = (await api.get(f"{P}/{FRENCH_TOUCH}/sync")).data
    assert result["state"] == "completed", result
    assert result["playlist_name"] == "French Touch" and result["source"] == "spotify"
    assert result["totals"]["matched"] == 3 and result["totals"]["total"] == len(french)
    entries = m3u.read_entries(music / "Playlists" / "French Touch.m3u8")
    assert [e.path.rsplit("/", 1)[1] for e in entries] == [
        f"{i + 1:02d} - {t['name']}.flac" for i, t in enumerate(owned)]
    wished = (await api.get("/api/v1/wishlist", params={"limit": 200})).data["tracks"]
    assert len(wished) == len(french) - 3
    assert {w["provider"] for w in wished if not w["track_id"].startswith("local-")} == {"spotify"}


async def test_soulsync_auth_on_the_command_line(fake, music, tmp_path):
    env = cli_environ(fake, music)
    command = [sys.executable, "-m", "soulsync_core", "auth", "spotify", "--data-dir",
               str(tmp_path / "data")]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
    assert process.stderr is not None and process.stdin is not None
    url = None
    async with asyncio.timeout(60):
        while url is None:
            line = (await process.stderr.readline()).decode()
            assert line, "the command ended before printing the address"
            if line.strip().startswith("http"):
                url = line.strip()
        process.stdin.write((await approve(url) + "\n").encode())
        await process.stdin.drain()
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == f"spotify: connected as {USER_NAME}"

    async def run(*extra: str) -> tuple[int, str]:
        child = await asyncio.create_subprocess_exec(
            *command, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env, cwd=ROOT)
        stdout, stderr = await child.communicate()
        return child.returncode or 0, (stdout + stderr).decode()

    # The daemon, opened on the same data directory, uses the tokens the command stored.
    core = await Core.open(tmp_path / "data", environ=spotify_environ(fake, music),
                           entry_points=False, plugins=[("spotify", soulsync_spotify.plugin)])
    try:
        playlists = await core.playlists.list_playlists("spotify")
        assert {p.id for p in playlists} == {FRENCH_TOUCH, GYM, FOLLOWED}
    finally:
        await core.stop()
        await core.close()
    assert await run("--status") == (0, f"spotify: connected as {USER_NAME}\n")
    assert await run("--logout") == (0, "spotify: not connected\n")
    code, text = await run("--response", "http://127.0.0.1:8008/auth/spotify/callback?code=x&state=y")
    assert code == 1 and "start" in text.lower()


async def test_tidal_login_and_sync_through_the_api(aiohttp_client, aiohttp_server, tmp_path, music):
    import soulsync_tidal.plugin
    from tests.fakes.tidal import CLIENT_ID as TIDAL_CLIENT
    from tests.fakes.tidal import FRENCH_TOUCH as TIDAL_FRENCH_TOUCH
    from tests.fakes.tidal import USERNAME
    from tests.fakes.tidal import make_app as make_tidal

    tidal = await aiohttp_server(make_tidal())
    base = str(tidal.make_url("")).rstrip("/")
    env = {"SOULSYNC_TIDAL__CLIENT_ID": TIDAL_CLIENT, "SOULSYNC_TIDAL__API_URL": f"{base}/v2",
           "SOULSYNC_TIDAL__AUTH_URL": f"{base}/v1/oauth2", "SOULSYNC_TIDAL__LOGIN_URL": base,
           "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
           "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"}
    core = await Core.open(tmp_path / "data", environ=env, entry_points=False,
                           plugins=[("tidal", soulsync_tidal.plugin)])
    client = await aiohttp_client(create_app(core))
    api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
    await api.bootstrap()

    refused = await api.get(P, params={"source": "tidal"})
    assert refused.status == 401 and refused.error["code"] == "NOT_AUTHENTICATED"
    started = await api.get("/api/v1/auth/tidal")
    assert started.status == 200 and "code_challenge" in started.data["url"]
    connected = await api.post("/api/v1/auth/tidal", {"redirect_url": await approve(started.data["url"])})
    assert connected.status == 200, connected.json
    assert connected.data["account"]["display_name"] == USERNAME

    listed = await api.get(P, params={"source": "tidal"})
    assert listed.status == 200 and TIDAL_FRENCH_TOUCH in {p["id"] for p in listed.data["playlists"]}
    playlist = (await api.get(f"{P}/{TIDAL_FRENCH_TOUCH}", params={"source": "tidal"})).data["playlist"]
    first = playlist["tracks"][0]
    await api.core.library.store.save([record(first["artists"][0], first["album"], first["name"],
                                              folder=str(music / "x"), duration=first["duration_ms"])])
    reply = await api.post(f"{P}/{TIDAL_FRENCH_TOUCH}/sync", {"source": "tidal"})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait(TIDAL_FRENCH_TOUCH)
    result = (await api.get(f"{P}/{TIDAL_FRENCH_TOUCH}/sync")).data
    assert result["state"] == "completed" and result["source"] == "tidal", result
    assert result["tracks"][0]["status"] == "matched"
    assert result["totals"]["total"] == len(playlist["tracks"])


@pytest.mark.parametrize("playlist_id", ["0000000000000000000000", "abc123", "spotify:playlist:xyz"])
async def test_an_unknown_spotify_playlist_is_404(api, playlist_id):
    started = await api.get(A)
    assert (await api.post(A, {"redirect_url": await approve(started.data["url"])})).status == 200
    reply = await api.get(f"{P}/{playlist_id}")
    assert reply.status == 404, reply.json
    assert reply.error == {"code": "NOT_FOUND", "message": "Playlist not found."}
    sync = await api.post(f"{P}/{playlist_id}/sync", {"source": "spotify"})
    assert sync.status == 202, sync.json
    await api.core.playlists.wait(playlist_id)
    status = (await api.get(f"{P}/{playlist_id}/sync")).data
    assert status["state"] == "failed"
    assert status["error"] == f"Playlist {playlist_id} not found at spotify."


async def test_an_unknown_tidal_playlist_is_404(aiohttp_client, aiohttp_server, tmp_path, music):
    import soulsync_tidal.plugin
    from tests.fakes.tidal import CLIENT_ID as TIDAL_CLIENT
    from tests.fakes.tidal import make_app as make_tidal

    tidal = await aiohttp_server(make_tidal())
    base = str(tidal.make_url("")).rstrip("/")
    env = {"SOULSYNC_TIDAL__CLIENT_ID": TIDAL_CLIENT, "SOULSYNC_TIDAL__API_URL": f"{base}/v2",
           "SOULSYNC_TIDAL__AUTH_URL": f"{base}/v1/oauth2", "SOULSYNC_TIDAL__LOGIN_URL": base,
           "SOULSYNC_LIBRARY__MUSIC_DIR": str(music)}
    core = await Core.open(tmp_path / "data", environ=env, entry_points=False,
                           plugins=[("tidal", soulsync_tidal.plugin)])
    api = ApiClient(await aiohttp_client(create_app(core)),
                    OpenApiChecker(build_openapi(all_endpoints())))
    await api.bootstrap()
    started = await api.get("/api/v1/auth/tidal")
    assert (await api.post("/api/v1/auth/tidal",
                           {"redirect_url": await approve(started.data["url"])})).status == 200
    for playlist_id in ("00000000-0000-4000-8000-999999999999", "not-a-uuid"):
        reply = await api.get(f"{P}/{playlist_id}", params={"source": "tidal"})
        assert reply.status == 404, reply.json
        assert reply.error == {"code": "NOT_FOUND", "message": "Playlist not found."}


async def test_a_spotify_429_passes_on_a_capped_retry_after(api, fake):
    started = await api.get(A)
    assert (await api.post(A, {"redirect_url": await approve(started.data["url"])})).status == 200
    faults = fake.app[FAULTS]
    faults.retry_after, faults.rate_limit_count = 3600, 1
    reply = await api.get(P)
    assert reply.status == 503 and reply.error["code"] == "SOURCE_UNAVAILABLE", reply.json
    assert reply.headers["Retry-After"] == "300"
    assert reply.error["message"] == "spotify is rate limiting SoulSync; retry after 300 s."
