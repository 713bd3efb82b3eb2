"""Album requests, the rest of issue 14: total discs, failover as one batch, tracks the library
has, cancelling an album, and whole albums on the wishlist."""

# The fixtures of test_albums are imported by name, and tests take them as arguments.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3

import soulsync_slskd.plugin
from soulsync_core.models import Album, Track
from soulsync_core.wishlist import JOB_KIND as WISH_JOB
from tests.download_fixtures import ManualClock, StubMetadata, environ, metadata_plugin, open_api
from tests.fakes.slskd import Peer, album_peer
from tests.test_albums import (  # noqa: F401  (fixtures)
    ALBUM,
    ALBUM_ID,
    ALBUM_OBJECT,
    ARTIST,
    BATCH,
    LEGACY,
    SEARCH,
    TITLES,
    D,
    album_detail,
    api,
    catalogue,
    request_album,
    run_to_end,
    server,
    version,
)

DISC1 = TITLES[:2]
DISC2 = TITLES[2:]


class TwoDiscMetadata(StubMetadata):
    """The album as two discs of two tracks each."""

    def __init__(self) -> None:
        super().__init__([Track(str(700 + i), t, [ARTIST], ALBUM, 3000, album_id=ALBUM_ID,
                                track_number=i % 2 + 1, disc_number=i // 2 + 1,
                                release_date="2001-03-12")
                          for i, t in enumerate(TITLES)])

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        return [Album(ALBUM_ID, ALBUM, [ARTIST], "2001-03-12", 4)]

    async def album_tracks(self, album_id: str) -> list[Track]:
        return self.tracks if album_id == ALBUM_ID else []


@pytest.fixture
async def two_disc_api(aiohttp_client, tmp_path, server, slskd_downloads, music):
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(TwoDiscMetadata()))]
    env = environ(server, slskd_downloads, music) | {
        "SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0", "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0"}
    return await open_api(aiohttp_client, tmp_path / "data", env, plugins, ManualClock())


def two_disc_folder(extension: str) -> list[Peer]:
    disc1 = album_peer("discs", f"{ARTIST}\\{ALBUM}", DISC1, disc="CD1", extension=extension,
                       bit_rates=[320, 320] if extension == "mp3" else None)
    disc2 = album_peer("discs", f"{ARTIST}\\{ALBUM}", DISC2, disc="CD2", extension=extension,
                       bit_rates=[320, 320] if extension == "mp3" else None, cover=False)
    disc1.files += disc2.files
    return [disc1]


def _files(music: Path, extension: str) -> list[Path]:
    return sorted((music / ARTIST / ALBUM).rglob(f"*.{extension}"))


@pytest.mark.parametrize("catalogue", [two_disc_folder("flac")])
async def test_a_two_disc_flac_album_gets_disc_number_and_total_discs(two_disc_api, fake, music):
    queued = await request_album(two_disc_api, {"album_id": ALBUM_ID, "source": "itunes"})
    await run_to_end(two_disc_api, fake)
    assert (await album_detail(two_disc_api, queued["id"]))["status"] == "completed"
    found = {FLAC(p)["title"][0]: FLAC(p) for p in _files(music, "flac")}
    assert sorted(found) == sorted(TITLES)
    for index, title in enumerate(TITLES):
        tags = found[title]
        assert tags["discnumber"] == [str(index // 2 + 1)]
        assert tags["disctotal"] == ["2"] and tags["totaldiscs"] == ["2"]
        assert tags["tracktotal"] == ["4"]


@pytest.mark.parametrize("catalogue", [two_disc_folder("mp3")])
async def test_a_two_disc_mp3_album_gets_tpos_n_of_m(two_disc_api, fake, music):
    queued = await request_album(two_disc_api, {"album_id": ALBUM_ID, "source": "itunes"})
    await run_to_end(two_disc_api, fake)
    assert (await album_detail(two_disc_api, queued["id"]))["status"] == "completed"
    found = {str(ID3(p)["TIT2"]): ID3(p) for p in _files(music, "mp3")}
    assert sorted(found) == sorted(TITLES)
    for index, title in enumerate(TITLES):
        assert str(found[title]["TPOS"]) == f"{index // 2 + 1}/2"


# ---------------------------------------------------------------------------- cancelling


@pytest.mark.parametrize("catalogue", [[
    album_peer("holder", f"{ARTIST}\\{ALBUM}", TITLES, upload_speed=9_000_000)]])
async def test_cancelling_an_album_cancels_its_transfers_and_keeps_what_was_imported(
        api, fake, music):
    for shared in fake.peer("holder").files:
        if "One More Time" not in shared.filename and shared.filename.endswith(".flac"):
            shared.fault = "stuck"        # held queued by the peer
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "downloading"
    assert [t["download"]["status"] for t in album["tracks"]] == [
        "completed", "downloading", "downloading", "downloading"]
    assert len(fake.transfers) == 4       # three tracks held queued, and the cover

    reply = await api.delete(f"{D}/{queued['id']}", params={"kind": "album"})
    assert reply.status == 200, reply.json
    cancelled = reply.data["download"]
    assert cancelled["status"] == "cancelled" and cancelled["kind"] == "album"
    assert [t["download"]["status"] for t in cancelled["tracks"]] == [
        "completed", "cancelled", "cancelled", "cancelled"]
    assert fake.transfers == {}           # slskd holds none of its transfers any more
    assert [p.name for p in (music / ARTIST / ALBUM).glob("*.flac")] == ["01 - One More Time.flac"]
    listed = (await api.get(D, params={"kind": "album", "status": "cancelled"})).data["downloads"]
    assert [d["id"] for d in listed] == [queued["id"]]

    again = await api.delete(f"{D}/{queued['id']}", params={"kind": "album"})
    assert again.status == 409 and "already cancelled" in again.json["error"]["message"]
    missing = await api.delete(f"{D}/9999", params={"kind": "album"})
    assert missing.status == 404 and "Album download 9999" in missing.json["error"]["message"]


async def test_a_track_download_is_cancelled_with_delete_too(api, fake):
    for peer in fake.peers:
        for shared in peer.files:
            shared.fault = "stuck"
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    first = (await album_detail(api, queued["id"]))["tracks"][0]["download"]
    reply = await api.delete(f"{D}/{first['id']}")
    assert reply.status == 200, reply.json
    assert reply.data["download"]["status"] == "cancelled"
    assert (await api.delete(f"{D}/{first['id']}")).status == 409


# ------------------------------------------------------------- whole albums on the wishlist

W = "/api/v1/wishlist"
ENTRY = f"album:itunes:{ALBUM_ID}"


async def wished(api, category: str = "", **kw: Any) -> list[tuple[str, str]]:
    reply = await api.get(W, params={"category": category} if category else {}, **kw)
    assert reply.status == 200, reply.json
    return [(t["kind"], t["track_id"]) for t in reply.data["tracks"]]


async def test_a_whole_album_goes_on_the_wishlist_and_lists_under_albums(api):
    reply = await api.post(W, {"album": ALBUM_OBJECT, "source": "itunes"})
    assert reply.status == 201, reply.json
    entry = reply.data["track"]
    assert (entry["kind"], entry["track_id"], entry["track_name"], entry["artist_name"]) == (
        "album", ENTRY, ALBUM, ARTIST)
    assert entry["track_data"]["id"] == ALBUM_ID and entry["album_download_id"] is None
    single = {"id": "1", "name": "Solo", "artists": [{"name": ARTIST}],
              "album": {"name": "Solo", "album_type": "single"}}
    assert (await api.post(W, {"track_data": single})).status == 201
    assert await wished(api, "albums") == [("album", ENTRY)]
    assert await wished(api, "singles") == [("track", "1")]
    assert await wished(api) == [("album", ENTRY), ("track", "1")]
    # The same album again (here by id only: the source says what it is) updates the entry.
    again = await api.post(W, {"album_id": ALBUM_ID, "source": "itunes"})
    assert again.status == 200 and again.data["created"] is False, again.json
    assert again.data["track"]["track_data"]["total_tracks"] == 4
    assert (await api.delete(f"{W}/{ENTRY}")).status == 200
    assert await wished(api, "albums") == []


async def test_bad_album_entries_say_what_to_fix(api):
    unknown = await api.post(W, {"album_id": "999", "source": "itunes"})
    assert unknown.status == 404 and "lists no tracks" in unknown.json["error"]["message"]
    no_source = await api.post(W, {"album": {"id": "abc", "name": "X"}})
    assert no_source.status == 400 and "source" in no_source.json["error"]["message"], no_source.json
    absent = await api.post(W, {"album_id": ALBUM_ID, "source": "spotify"})
    assert absent.status == 503 and "'spotify' is not installed" in absent.json["error"]["message"]
    no_id = await api.post(W, {"album": {"name": "X"}})
    assert no_id.status == 400
    assert await wished(api) == []


async def test_album_entries_are_per_profile(api):
    kid = (await api.post("/api/v1/profiles", {"name": "Kid"})).data["profile"]["id"]
    as_kid = {"headers": {"X-Profile-Id": str(kid)}}
    assert (await api.post(W, {"album": ALBUM_OBJECT, "source": "itunes"}, **as_kid)).status == 201
    assert await wished(api, "albums") == []
    assert await wished(api, "albums", **as_kid) == [("album", ENTRY)]
    # The admin wanting it too shares the row; the kid removing it leaves the admin's.
    assert (await api.post(W, {"album": ALBUM_OBJECT, "source": "itunes"})).status == 201
    assert (await api.delete(f"{W}/{ENTRY}", **as_kid)).status == 200
    assert await wished(api, "albums") == [("album", ENTRY)]
    assert await wished(api, "albums", **as_kid) == []


async def run_wishlist(api, fake) -> dict[str, Any]:
    api.core.wishlist.poll_seconds = 0.02
    assert (await api.post(f"{W}/process")).status == 202
    for _ in range(50):
        if api.core.jobs.running(WISH_JOB) is None:
            break
        await run_to_end(api, fake)
        await asyncio.sleep(0.05)
    await api.core.jobs.wait(WISH_JOB)
    return (await api.get(f"{W}/process")).data


async def test_a_wishlist_run_requests_a_whole_album_entry_as_one_album_download(api, fake, music):
    assert (await api.post(W, {"album": ALBUM_OBJECT, "source": "itunes"})).status == 201
    status = await run_wishlist(api, fake)
    assert (status["albums_requested"], status["downloaded"], status["failed"]) == (1, 1, 0)
    listed = (await api.get(D, params={"kind": "album"})).data["downloads"]
    assert [(d["album_name"], d["status"], d["completed_tracks"]) for d in listed] == [
        (ALBUM, "completed", 4)]
    assert fake.count(*SEARCH) == 1
    assert len(list((music / ARTIST / ALBUM).glob("*.flac"))) == 4
    assert await wished(api) == []


@pytest.mark.parametrize("catalogue", [[]])
async def test_a_failed_album_entry_counts_a_failure_and_stays(api, fake):
    assert (await api.post(W, {"album": ALBUM_OBJECT, "source": "itunes"})).status == 201
    status = await run_wishlist(api, fake)
    assert (status["albums_requested"], status["downloaded"], status["failed"]) == (1, 0, 1)
    (entry,) = (await api.get(W, params={"category": "albums"})).data["tracks"]
    assert entry["kind"] == "album" and entry["retry_count"] == 1
    assert "did not download" in entry["failure_reason"]
    assert entry["album_download_id"] is None and entry["last_attempted"] is not None
    # Two failures: an automatic run waits for the back-off; a manual one tries again.
    await run_wishlist(api, fake)
    (entry,) = (await api.get(W)).data["tracks"]
    assert entry["retry_count"] == 2 and entry["next_retry_at"] is not None
    assert api.core.wishlist.is_due(entry["retry_count"], entry["last_attempted"],
                                    api.core.wishlist.clock()) is False


# --------------------------------------------------------- tracks the library has already

FIRST_TRACK = {"id": "700", "name": TITLES[0], "artists": [ARTIST], "album": ALBUM,
               "album_id": ALBUM_ID, "duration_ms": 3000, "track_number": 1, "disc_number": 1,
               "release_date": "2001-03-12", "source": "itunes"}


def batch_files(fake, username: str) -> list[list[str]]:
    return [[t["filename"].rsplit("\\", 1)[-1] for t in b["transfers"]]
            for b in fake.batches.values() if b["username"] == username]


@pytest.mark.parametrize("catalogue", [[
    album_peer("three", f"{ARTIST}\\{ALBUM}", TITLES[1:], numbers=[2, 3, 4]),
    album_peer("single_owner", "Singles", [f"{ARTIST} - {TITLES[0]}"], cover=False),
]])
async def test_an_album_request_skips_the_tracks_the_library_has(api, fake, music):
    single = await api.post(D, FIRST_TRACK)
    assert single.status == 202, single.json
    await run_to_end(api, fake)
    owned = (await api.get(f"{D}/{single.data['download']['id']}")).data["download"]
    assert owned["status"] == "completed", owned

    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed", album
    first = album["tracks"][0]
    assert (first["already_in_library"], first["library_track_id"], first["download"]) == (
        True, owned["library_track_id"], None)
    assert [t["already_in_library"] for t in album["tracks"]] == [True, False, False, False]
    assert [t["download"]["status"] for t in album["tracks"][1:]] == ["completed"] * 3
    # The folder lacking the owned track is complete for what is needed: one batch of its three
    # tracks (and the cover), no search of the owned track.
    assert album["username"] == "three" and album["completed_tracks"] == 4
    (chosen,) = [f for f in album["folders"] if f["username"] == "three"]
    assert chosen["accepted"] and chosen["coverage"] == 1.0 and chosen["missing"] == []
    assert batch_files(fake, "three") == [[f"{n:02d} - {t}.flac" for n, t in
                                           zip([2, 3, 4], TITLES[1:], strict=True)] + ["cover.jpg"]]
    albums = (await api.get("/api/v1/library/albums")).data["albums"]
    assert [(a["title"], a["track_count"]) for a in albums] == [(ALBUM, 4)], albums

    # Every track there now: nothing to fetch, unless forced.
    searches = fake.count(*SEARCH)
    again = await api.post(D, {"album": ALBUM_OBJECT, "source": "itunes"})
    assert again.status == 200, again.json
    assert again.data["status"] == "already_in_library" and again.data["download"] is None
    assert len(again.data["library_track_ids"]) == 4
    assert owned["library_track_id"] in again.data["library_track_ids"]
    assert (await api.get(D, params={"kind": "album"})).json["pagination"]["total"] == 1
    forced = await api.post(D, {"album": ALBUM_OBJECT, "source": "itunes", "force": True})
    assert forced.status == 202 and forced.data["status"] == "queued", forced.json
    await api.core.albums.settle()
    assert fake.count(*SEARCH) > searches


# ------------------------------------------------------------------ failover as one batch


@pytest.mark.parametrize("fault", ["Rejected", "Errored", "stuck"])
@pytest.mark.parametrize("catalogue", [[
    album_peer("first", f"{ARTIST}\\{ALBUM}", TITLES, upload_speed=9_000_000),
    album_peer("second", f"{ARTIST}\\2001 - {ALBUM}", TITLES, upload_speed=100_000),
]])
async def test_a_failed_folder_moves_to_the_next_folder_in_one_batch(api, fake, music, fault):
    fake.peer("first").fault = fault            # the peer fails every file it was asked for
    queued = await request_album(api, {"album": ALBUM_OBJECT, "source": "itunes"})
    await run_to_end(api, fake)
    api.core.downloads.clock.advance(61)        # a peer holding them queued: past the timeout
    await run_to_end(api, fake)
    album = await album_detail(api, queued["id"])
    assert album["status"] == "completed", album
    assert album["username"] == "second"
    assert album["chosen_reason"].startswith("moved on from first"), album["chosen_reason"]
    assert [(t["username"], t["outcome"].split(" (")[0]) for t in album["tried_folders"]] == [
        ("first", "4 of its files failed at once")]
    assert [t["download"]["username"] for t in album["tracks"]] == ["second"] * 4
    # One batch per folder: the second folder's four tracks and its cover in one request,
    # no per-track enqueue and no search of its own.
    assert fake.count(*BATCH) == 2 and fake.count(*LEGACY) == 0
    assert len(batch_files(fake, "second")) == 1
    assert sorted(batch_files(fake, "second")[0]) == sorted(
        [f"{n:02d} - {t}.flac" for n, t in enumerate(TITLES, start=1)] + ["cover.jpg"])
    assert fake.count(*SEARCH) == 1
    assert len(list((music / ARTIST / ALBUM).glob("*.flac"))) == 4
    assert fake.transfers == {}
