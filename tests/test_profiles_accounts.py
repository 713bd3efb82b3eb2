"""Profiles with the real Spotify plugin against its fake: each profile logs in its own Spotify
user (copy-paste and the daemon's callback), lists that user's playlists, and syncs onto its
own wishlist."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

import soulsync_spotify.plugin
from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests.fakes.spotify import FOLLOWED, FRENCH_TOUCH, FRIEND_ID, GYM, SPOTIFY, USER_ID, USER_NAME, make_app
from tests.test_playlists_services import ROOT, A, P, approve, cli_environ, spotify_environ

KID = {"X-Profile-Id": "2"}


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
    created = await api.post("/api/v1/profiles", {"name": "Kid"})
    assert created.status == 201 and created.data["profile"]["id"] == 2
    return api


async def auth_cli(fake: Any, music: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    env = cli_environ(fake, music)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "soulsync_core", "auth", "spotify", "--data-dir",
        str(tmp_path / "data"), *extra, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
    stdout, stderr = await child.communicate()
    return child.returncode or 0, (stdout + stderr).decode()


async def test_two_profiles_have_separate_spotify_logins(api, fake, music, tmp_path):
    spotify = fake.app[SPOTIFY]
    # The admin pastes the address back; the kid's browser reaches the daemon's callback.
    started = await api.get(A)
    assert (await api.post(A, {"redirect_url": await approve(started.data["url"])})).status == 200

    assert (await api.get(P, headers=KID)).status == 401  # the kid has not logged in yet
    spotify.login_user = FRIEND_ID
    spotify.library.followed[FRIEND_ID].append(GYM)
    kid_start = await api.get(A, headers=KID)
    assert kid_start.status == 200 and kid_start.data["account"]["connected"] is False
    assert "/api/v1/auth/spotify with X-Profile-Id: 2 as redirect_url" in kid_start.data["message"]
    back = await approve(kid_start.data["url"])
    page = await api.client.get(back.removeprefix("http://127.0.0.1:8008"))  # no key, no header
    assert page.status == 200, await page.text()
    assert f"connected to Spotify as {FRIEND_ID}" in await page.text()

    admin = (await api.get(A)).data["account"]
    kid = (await api.get(A, headers=KID)).data["account"]
    assert (admin["user_id"], admin["display_name"]) == (USER_ID, USER_NAME)
    assert (kid["user_id"], kid["connected"]) == (FRIEND_ID, True)
    assert {p["id"] for p in (await api.get(P)).data["playlists"]} == {FRENCH_TOUCH, GYM, FOLLOWED}
    assert {p["id"] for p in (await api.get(P, headers=KID)).data["playlists"]} == {GYM}
    stored = await api.core.db.fetchall(
        "SELECT DISTINCT account, profile_id FROM account_data WHERE account LIKE 'spotify%'")
    assert {(r[0], r[1]) for r in stored} == {("spotify", 1), ("spotify@2", 2)}

    # A sync as the kid reads the playlist as the kid and wants the missing tracks for the kid.
    reply = await api.post(f"{P}/{GYM}/sync", {"source": "spotify"}, headers=KID)
    assert reply.status == 202, reply.json
    await api.core.playlists.wait(GYM)
    status = await api.get(f"{P}/{GYM}/sync", headers=KID)
    assert status.data["state"] == "completed", status.json
    assert (await api.get(f"{P}/{GYM}/sync")).status == 404  # the admin never synced it
    pin = {"position": 0, "track_id": None}
    assert (await api.post(f"{P}/{GYM}/sync/matches", pin)).status == 404
    assert (await api.post(f"{P}/{GYM}/sync/matches", pin, headers=KID)).status == 200
    kid_wishlist = await api.get("/api/v1/wishlist", headers=KID)
    assert kid_wishlist.json["pagination"]["total"] == status.data["totals"]["wishlisted"] > 0
    assert (await api.get("/api/v1/wishlist")).json["pagination"]["total"] == 0

    # `soulsync auth --profile N` on the box reads the same per-profile logins.
    assert await auth_cli(fake, music, tmp_path, "--status", "--profile", "2") == (
        0, f"spotify: connected as {FRIEND_ID}\n")
    assert await auth_cli(fake, music, tmp_path, "--status") == (
        0, f"spotify: connected as {USER_NAME}\n")
    code, text = await auth_cli(fake, music, tmp_path, "--status", "--profile", "9")
    assert code == 1 and "there is no profile 9" in text

    # Logging the kid out leaves the admin's login alone.
    assert (await api.delete(A, headers=KID)).data["account"]["connected"] is False
    assert (await api.get(A)).data["account"]["connected"] is True
    assert (await api.get(P, headers=KID)).status == 401
    assert (await api.get(P)).status == 200

    # Deleting the profile forgets its login and sync state; the admin's login and the M3U8
    # in the shared library stay.
    late = (await api.get(A, headers=KID)).data["url"]  # a login begun before the delete
    gone = await api.delete("/api/v1/profiles/2")
    assert gone.status == 200
    page = await api.client.get((await approve(late)).removeprefix("http://127.0.0.1:8008"))
    assert page.status == 400 and "(profile 2) was deleted" in await page.text()
    assert gone.data["removed"]["playlists"] == 1
    assert gone.data["removed"]["wishlist_tracks"] == status.data["totals"]["wishlisted"]
    assert await api.core.db.fetchval("SELECT count(*) FROM playlist_entries") == 0
    assert await api.core.db.fetchval("SELECT count(*) FROM playlist_pins") == 0
    assert await asyncio.to_thread(Path(status.data["m3u8_path"]).is_file)
    rows = await api.core.db.fetchall("SELECT DISTINCT account FROM account_data")
    assert "spotify@2" not in {r[0] for r in rows} and "spotify" in {r[0] for r in rows}
