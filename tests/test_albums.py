"""Album requests end to end: one search, folder choice, one batch enqueue, import as one release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from mutagen.flac import FLAC
from mutagen.id3 import ID3

import soulsync_slskd.plugin
from soulsync_core.models import Album, Track
from soulsync_core.watchlist import JOB_KIND as WATCH_JOB
from soulsync_core.wishlist import JOB_KIND as WISH_JOB
from tests.download_fixtures import ManualClock, StubMetadata, environ, metadata_plugin, open_api
from tests.fakes.slskd import SLSKD, TINY_JPEG, SlskdFake, album_peer, make_app

D = "/api/v1/downloads"
ARTIST = "Daft Punk"
ALBUM = "Discovery"
TITLES = ["One More Time", "Aerodynamic", "Digital Love", "Harder Better Faster Stronger"]
ALBUM_ID = "697194953"
SEARCH = ("POST", "/api/v0/searches")
BATCH = ("POST", "/api/v0/transfers/downloads/batches")
LEGACY = ("POST", "/api/v0/transfers/downloads/{username}")
ALBUM_OBJECT: dict[str, Any] = {"id": ALBUM_ID, "name": ALBUM, "artists": [ARTIST],
                                "release_date": "2001-03-12", "total_tracks": 4,
                                "album_type": "album", "image_url": None}


class AlbumMetadata(StubMetadata):
    """An ``itunes`` source that knows the album Discovery and its four tracks."""

    def __init__(self) -> None:
        super().__init__([Track(str(700 + i), t, [ARTIST], ALBUM, 3000, album_id=ALBUM_ID,
                                track_number=i + 1, disc_number=1, release_date="2001-03-12")
                          for i, t in enumerate(TITLES)])

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        return [Album(ALBUM_ID, ALBUM, [ARTIST], "2001-03-12", 4)] if "discovery" in query.lower() else []

    async def album_tracks(self, album_id: str) -> list[Track]:
        return self.tracks if album_id == ALBUM_ID else []

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        # Out today: a new release for the watchlist (four tracks: an EP).
        today = datetime.now(UTC).date().isoformat()
        return [Album(ALBUM_ID, ALBUM, [ARTIST], today, 4)] if artist_id == "100" else []


def peers() -> list:
    """A slow peer's complete FLAC folder with a cover, a fast peer's mixed-bitrate MP3 folder,
    a fast peer's FLAC folder lacking a track, and a live edition."""
    return [
        album_peer("fast_mixed", f"{ARTIST}\\2001 - {ALBUM}", TITLES, extension="mp3",
                   bit_rates=[320, 320, 192, 192], upload_speed=9_000_000, cover=False),
        album_peer("flac_slow", f"{ARTIST}\\{ALBUM} (2001) [FLAC]", TITLES, upload_speed=200_000),
        album_peer("incomplete", f"{ARTIST}\\{ALBUM}", TITLES[:3], upload_speed=9_000_000),
        album_peer("live_user", f"{ARTIST}\\{ALBUM} (Live)", TITLES, upload_speed=9_000_000),
    ]


@pytest.fixture
def catalogue() -> list:
    return peers()


@pytest.fixture
def version() -> str:
    return "0.26.1"


@pytest.fixture
async def server(aiohttp_server: Any, slskd_downloads: Path, catalogue: list, version: str) -> Any:
    app = make_app(slskd_downloads, peers=catalogue, search_seconds=0.05)
    app[SLSKD].version = version
    return await aiohttp_server(app)


@pytest.fixture
async def api(aiohttp_client, tmp_path, server, slskd_downloads, music):
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(AlbumMetadata()))]
    env = environ(server, slskd_downloads, music) | {
        "SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0", "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0"}
    return await open_api(aiohttp_client, tmp_path / "data", env, plugins, ManualClock())


async def run_to_end(api, fake: SlskdFake) -> None:
    """Searches, the enqueue, the transfers, the monitor and the imports, until all rest."""
    core = api.core
    for _ in range(6):
        await core.albums.settle()
        await core.downloads.settle()
        await fake.settle()
        await core.downloads.poll()
        await core.downloads.settle()


async def album_detail(api, album_download_id: int) -> dict[str, Any]:
    reply = await api.get(f"{D}/{album_download_id}", params={"kind": "album"})
    assert reply.status == 200, reply.json
    return reply.data["download"]


async def request_album(api, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(D, body)
    assert reply.status == 202, reply.json
    assert reply.data["download"]["kind"] == "album"
    return reply.data["download"]


async def test_album_from_one_search_takes_the_complete_flac_folder(api, fake, music,
                                                                   slskd_downloads):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    tried = [(await api.get(f"{D}/{t['download']['id']}")).data["download"]["tried"]
             for t in album["tracks"]]
    assert fake.count(*SEARCH) == 1, ([b["searchText"] for b in fake.search_bodies], tried)
    assert fake.count(*BATCH) == 1 and fake.count(*LEGACY) == 0
    assert album["status"] == "completed", album
    assert album["username"] == "flac_slow"
    assert album["chosen_reason"].startswith("best of 1 accepted folder(s) of 4 found: 4 of 4 tracks")
    verdicts = {f["username"]: f for f in album["folders"]}
    assert verdicts["fast_mixed"]["reasons"][0].startswith("mixes formats or bitrates")
    assert verdicts["incomplete"]["reasons"] == [
        "covers 3 of 4 tracks (downloads.album_min_coverage is 1)"]
    assert "different edition (live)" in verdicts["live_user"]["reasons"][0]
    assert [t["download"]["status"] for t in album["tracks"]] == ["completed"] * 4
    assert all(t["from_folder"] for t in album["tracks"])
    folder = music / ARTIST / ALBUM
    assert sorted(p.name for p in folder.iterdir()) == [
        "01 - One More Time.flac", "02 - Aerodynamic.flac", "03 - Digital Love.flac",
        "04 - Harder Better Faster Stronger.flac", "cover.jpg"]
    assert (folder / "cover.jpg").read_bytes() == TINY_JPEG
    # slskd keeps nothing: the tracks' and the cover's transfers and copies are gone.
    assert fake.transfers == {}
    assert [p for p in slskd_downloads.rglob("*") if p.is_file()] == []
    for number, path in enumerate(sorted(folder.glob("*.flac")), start=1):
        tags = FLAC(path)
        assert tags["tracknumber"] == [f"{number}/4"] or tags["tracknumber"] == [str(number)]
        assert tags["album"] == [ALBUM] and tags["albumartist"] == [ARTIST]
        assert [p.data for p in tags.pictures] == [TINY_JPEG]
    albums = await api.get("/api/v1/library/albums")
    assert [a["title"] for a in albums.data["albums"]] == [ALBUM]
    listed = await api.get(D, params={"kind": "album"})
    assert [(d["id"], d["kind"], d["completed_tracks"]) for d in listed.data["downloads"]] == [
        (queued["id"], "album", 4)]


@pytest.fixture
def catalogue_one_missing() -> list:
    return peers()


@pytest.mark.parametrize("version", ["0.24.5"])
async def test_older_slskd_gets_the_legacy_enqueue_of_the_whole_folder(api, fake):
    queued = await request_album(api, {"album_id": ALBUM_ID, "source": "itunes"})
    await run_to_end(api, fake)
    assert fake.count(*BATCH) == 0
    assert fake.count(*LEGACY) == 1   # the whole folder in one request
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed" and album["username"] == "flac_slow"
    assert {t["download"]["username"] for t in album["tracks"]} == {"flac_slow"}


@pytest.mark.parametrize("catalogue", [[
    album_peer("offline_flac", f"{ARTIST}\\{ALBUM}", TITLES, upload_speed=9_000_000, fault="offline"),
    album_peer("second", f"{ARTIST}\\2001 - {ALBUM}", TITLES, upload_speed=100_000),
]])
async def test_a_folder_whose_peer_is_offline_moves_to_the_next_folder(api, fake):
    queued = await request_album(api, {"query": f"{ARTIST} - {ALBUM}", "type": "album"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed"
    assert album["username"] == "second"
    assert [(t["username"], t["outcome"]) for t in album["tried_folders"]] == [
        ("offline_flac", "slskd could not enqueue 5 file(s) from offline_flac: "
                         "User offline_flac appears to be offline")]


@pytest.mark.parametrize("catalogue", [[
    album_peer("three", f"{ARTIST}\\{ALBUM}", TITLES[:3], upload_speed=9_000_000),
    album_peer("two", f"{ARTIST}\\2001 - {ALBUM}", TITLES[:2], upload_speed=9_000_000),
    album_peer("single_owner", "Singles", ["Daft Punk - Harder Better Faster Stronger"]),
]])
async def test_no_complete_folder_takes_the_best_and_fetches_the_rest_on_its_own(api, fake, music):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["username"] == "three"
    assert album["chosen_reason"].startswith("no folder holds the whole album")
    assert [t["from_folder"] for t in album["tracks"]] == [True, True, True, False]
    last = album["tracks"][3]["download"]
    assert last["status"] == "completed" and last["username"] == "single_owner", last["error"]
    assert album["status"] == "completed"
    assert len(list((music / ARTIST / ALBUM).glob("*.flac"))) == 4


async def test_bad_album_requests_say_what_to_fix(api):
    reply = await api.post(D, {"album_id": "999"})
    assert reply.status == 404
    assert "lists no tracks for album '999'" in reply.json["error"]["message"]
    reply = await api.post(D, {"album": {"name": "Discovery"}})
    assert reply.status == 400 and "needs the album's id" in reply.json["error"]["message"]
    reply = await api.post(D, {"album_id": "abc"})
    assert reply.status == 400 and "source is required" in reply.json["error"]["message"]
    reply = await api.post(D, {"query": "Nobody - Nothing", "type": "album"})
    assert reply.status == 404


async def test_album_downloads_survive_a_restart(api, fake, aiohttp_client, tmp_path, server,
                                                 slskd_downloads, music):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    await api.core.stop()
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(AlbumMetadata()))]
    again = await open_api(aiohttp_client, tmp_path / "data", environ(server, slskd_downloads, music),
                           plugins, ManualClock(), key=api.key)
    album = await album_detail(again, queued["id"])
    assert album["status"] == "completed" and album["username"] == "flac_slow"
    assert len(album["folders"]) == 4


def wishlist_track(index: int) -> dict[str, Any]:
    return {"id": str(700 + index), "name": TITLES[index], "artists": [{"name": ARTIST}],
            "duration_ms": 3000, "track_number": index + 1, "provider": "itunes",
            "album": {"id": ALBUM_ID, "name": ALBUM, "album_type": "album",
                      "artists": [{"name": ARTIST}], "release_date": "2001-03-12"}}


async def test_three_wishlist_tracks_of_one_album_become_one_album_download(api, fake):
    for index in range(3):
        reply = await api.post("/api/v1/wishlist", {"track_data": wishlist_track(index)})
        assert reply.status == 201, reply.json
    assert (await api.post("/api/v1/wishlist/process")).status == 202
    await api.core.jobs.wait(WISH_JOB)
    status = (await api.get("/api/v1/wishlist/process")).data
    assert status["albums_requested"] == 1
    await run_to_end(api, fake)
    listed = (await api.get(D, params={"kind": "album"})).data["downloads"]
    assert [(d["album_name"], d["status"], d["completed_tracks"]) for d in listed] == [
        (ALBUM, "completed", 4)]
    assert fake.count(*SEARCH) == 1          # one album search, not three track searches
    assert (await api.get("/api/v1/wishlist")).data["tracks"] == []


async def test_below_the_album_threshold_wishlist_tracks_are_fetched_one_by_one(api, fake):
    reply = await api.patch("/api/v1/settings", {"downloads.album_threshold": 0})
    assert reply.status == 200, reply.json
    for index in range(3):
        await api.post("/api/v1/wishlist", {"track_data": wishlist_track(index)})
    assert (await api.post("/api/v1/wishlist/process")).status == 202
    while api.core.jobs.running(WISH_JOB) is not None:
        await run_to_end(api, fake)
    assert (await api.get(D, params={"kind": "album"})).data["downloads"] == []
    assert (await api.get(D)).json["pagination"]["total"] == 3


async def test_watchlist_new_release_is_requested_as_an_album(api, fake):
    reply = await api.post("/api/v1/watchlist", {"artist_id": "100", "artist_name": ARTIST,
                                                 "source": "itunes"})
    assert reply.status == 201, reply.json
    assert (await api.post("/api/v1/watchlist/scan")).status == 202
    await api.core.jobs.wait(WATCH_JOB)
    await run_to_end(api, fake)
    listed = (await api.get(D, params={"kind": "album"})).data["downloads"]
    assert [(d["album_name"], d["status"], d["total_tracks"]) for d in listed] == [
        (ALBUM, "completed", 4)]


@pytest.mark.parametrize("catalogue", [[
    album_peer("first", f"{ARTIST}\\{ALBUM}", TITLES, upload_speed=9_000_000),
    album_peer("second", f"{ARTIST}\\2001 - {ALBUM}", TITLES, upload_speed=100_000),
]])
async def test_a_track_the_chosen_peer_rejects_comes_from_the_next_folder(api, fake):
    rejected = next(f for f in fake.peer("first").files if "Digital Love" in f.filename)
    rejected.fault = "Rejected"
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed" and album["username"] == "first"
    assert [t["download"]["username"] for t in album["tracks"]] == [
        "first", "first", "second", "first"]
    assert fake.count(*SEARCH) == 1   # the next folder's copy, not a search of its own


async def test_an_album_interrupted_while_searching_searches_again_after_a_restart(api, fake):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await asyncio.wait_for(fake.search_started.wait(), 5)
    await api.core.albums.stop()           # the shutdown cancels the search in flight
    row = await api.core.albums.store.get(queued["id"])
    assert row is not None and row.status == "searching" and row.tracks == [None] * 4
    await api.core.albums.recover()        # what the next start does
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed" and album["username"] == "flac_slow"


@pytest.mark.parametrize("catalogue", [[
    album_peer("loose", f"{ARTIST}\\Singles", TITLES, upload_speed=9_000_000),
]])
async def test_no_folder_at_all_fetches_every_track_on_its_own(api, fake):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["folders"] == [] and album["username"] is None
    assert album["status"] == "completed"
    assert [t["from_folder"] for t in album["tracks"]] == [False] * 4
    assert fake.count(*SEARCH) == 1 + 4 and fake.count(*BATCH) == 0


@pytest.fixture
async def cover_server(aiohttp_server: Any) -> Any:
    """The metadata source's image host: serves the cover and counts the requests."""
    hits: list[str] = []

    async def image(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=TINY_JPEG, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/covers/discovery.jpg", image)
    server = await aiohttp_server(app)
    server.hits = hits
    return server


@pytest.mark.parametrize("catalogue", [[
    album_peer("mp3_only", f"{ARTIST}\\{ALBUM} [320]", TITLES, extension="mp3",
               bit_rates=[320] * 4, cover=False),
]])
async def test_without_a_folder_cover_the_source_image_is_fetched_once_and_embedded(
        api, fake, music, cover_server):
    body = {"album": dict(ALBUM_OBJECT, image_url=str(cover_server.make_url("/covers/discovery.jpg"))),
            "source": "itunes"}
    queued = await request_album(api, body)
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed" and album["username"] == "mp3_only"
    assert cover_server.hits == ["/covers/discovery.jpg"]
    folder = music / ARTIST / ALBUM
    assert (folder / "cover.jpg").read_bytes() == TINY_JPEG
    files = sorted(folder.glob("*.mp3"))
    assert len(files) == 4
    for path in files:
        pictures = ID3(path).getall("APIC")
        assert [(p.type, p.mime, p.data) for p in pictures] == [(3, "image/jpeg", TINY_JPEG)]


def two_disc_peer() -> list:
    """A deluxe folder: the album on CD1, two bonus tracks on CD2 the tracklist lacks."""
    disc1 = album_peer("deluxe", f"{ARTIST}\\{ALBUM}", TITLES, disc="CD1")
    disc2 = album_peer("deluxe", f"{ARTIST}\\{ALBUM}", ["Bonus One", "Bonus Two"], disc="CD2",
                       cover=False)
    disc1.files += disc2.files
    return [disc1]


@pytest.mark.parametrize("catalogue", [two_disc_peer()])
async def test_an_extra_disc_is_allowed_and_not_downloaded(api, fake, music):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed" and album["username"] == "deluxe"
    (folder,) = album["folders"]
    assert folder["accepted"] and folder["coverage"] == 1.0
    assert [name.rsplit("\\", 2)[-2:] for name in folder["extra"]] == [
        ["CD2", "01 - Bonus One.flac"], ["CD2", "02 - Bonus Two.flac"]]
    assert len(list((music / ARTIST / ALBUM).glob("*.flac"))) == 4
    assert not any("Bonus" in (t["download"]["filename"] or "") for t in album["tracks"])


async def test_tracks_finishing_at_once_finish_the_album_once(api, fake):
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    albums = api.core.albums
    row = await albums.store.get(queued["id"])
    assert row is not None and row.status == "completed"
    finished: list[int] = []
    albums.on_finished(finished.append)
    # As when two track imports end in one tick: both find every track done.
    await albums.store.update(row, status="downloading")
    first, second = await albums.store.get(row.id), await albums.store.get(row.id)
    await asyncio.gather(albums._refresh(first), albums._refresh(second))
    assert finished == [row.id]
    assert first.status == second.status == "completed"
    items, _ = await api.core.activity.page(0, 50)
    assert sum(i.title == "Album Download Completed" for i in items) == 2  # the first end, and this
