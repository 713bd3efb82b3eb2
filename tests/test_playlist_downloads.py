"""Playlist sync end to end with the download pipeline: what the library lacks is fetched from
the fake slskd, filed into the library, and then appears in the playlist's M3U8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import soulsync_slskd.plugin
from soulsync_core.playlists import m3u
from tests.download_fixtures import (
    ARTIST,
    TITLE,
    TRACK,
    ManualClock,
    catalogue,
    environ,
    open_api,
    service,
)
from tests.fakes.slskd import SLSKD, SlskdFake, make_app
from tests.library_fixtures import record

P = "/api/v1/playlists"


@pytest.fixture
def slskd_downloads(tmp_path: Path) -> Path:
    return tmp_path / "slskd" / "downloads"


@pytest.fixture
def music(tmp_path: Path) -> Path:
    path = tmp_path / "music"
    path.mkdir()
    return path


@pytest.fixture
async def server(aiohttp_server: Any, slskd_downloads: Path) -> Any:
    return await aiohttp_server(make_app(slskd_downloads, peers=catalogue(), search_seconds=0.05))


@pytest.fixture
def fake(server: Any) -> SlskdFake:
    return server.app[SLSKD]


@pytest.fixture
async def api(aiohttp_client, tmp_path, server, slskd_downloads, music):
    api = await open_api(aiohttp_client, tmp_path / "data", environ(server, slskd_downloads, music),
                         [("slskd", soulsync_slskd.plugin)], ManualClock())
    await api.core.library.store.save([record("Daft Punk", "Homework", "Around the World",
                                              folder=str(music / "Daft Punk" / "Homework"),
                                              duration=429_000)])
    return api


async def test_missing_tracks_are_downloaded_and_then_written_into_the_m3u8(api, fake, music):
    tracks = [{"id": "1", "name": "Around the World", "artists": ["Daft Punk"], "album": "Homework",
               "duration_ms": 428_000}, TRACK]
    reply = await api.post(f"{P}/daft/sync", {"playlist_name": "Daft", "tracks": tracks})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait("daft")
    status = (await api.get(f"{P}/daft/sync")).data
    assert status["totals"]["matched"] == 1 and status["totals"]["downloading"] == 1
    missing = status["tracks"][1]
    assert (missing["status"], missing["action"]) == ("missing", "downloading")
    playlist = music / "Playlists" / "Daft.m3u8"
    assert [e.path for e in m3u.read_entries(playlist)] == [
        "../Daft Punk/Homework/01 - Around the World.flac"]
    wished = (await api.get("/api/v1/wishlist")).data["tracks"]
    assert [(w["track_name"], w["source_type"]) for w in wished] == [(TITLE, "playlist")]

    await service(api).settle()  # search and enqueue
    await fake.settle()  # the transfer completes at the fake
    await service(api).poll()  # the monitor sees it; the import follows
    await service(api).settle()

    done = (await api.get(f"{P}/daft/sync")).data
    arrived = done["tracks"][1]
    assert (arrived["status"], arrived["action"], arrived["method"]) == ("matched", "downloaded", "download")
    assert arrived["download_status"] is None and done["totals"]["matched"] == 2
    assert done["totals"]["in_m3u8"] == 2
    assert [e.path for e in m3u.read_entries(playlist)] == [
        "../Daft Punk/Homework/01 - Around the World.flac",
        f"../{ARTIST}/Discovery/01 - {TITLE}.flac"]
    assert (music / ARTIST / "Discovery" / f"01 - {TITLE}.flac").is_file()
    assert (await api.get("/api/v1/wishlist")).data["tracks"] == []  # the wishlist let it go

    again = await api.post(f"{P}/daft/sync", {"playlist_name": "Daft", "tracks": tracks})
    assert again.status == 202
    await api.core.playlists.wait("daft")
    final = (await api.get(f"{P}/daft/sync")).data
    assert final["totals"]["matched"] == 2 and final["totals"]["reused"] == 2
    assert final["totals"]["downloading"] == 0
