"""The download pipeline end to end over HTTP: the daemon, the fake slskd, a stub metadata source.

Nothing waits on wall-clock time: the fake's transfers move when a test ticks them, the
monitor looks when a test polls, and the transfer timeouts expire when the test's clock says.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import mutagen
import pytest

import soulsync_slskd.plugin
from soulsync_core.db import DB_FILENAME
from soulsync_core.playlists import m3u
from tests import audio
from tests.download_fixtures import (
    ARTIST,
    FLAC_FAST,
    FLAC_SLOW,
    LIVE,
    MP3_FILE,
    SECONDS,
    TITLE,
    TOO_LONG,
    TRACK,
    TRIBUTE,
    VARIOUS,
    ManualClock,
    StubMetadata,
    environ,
    files_under,
    flac,
    live_version_first,
    metadata_plugin,
    open_api,
    service,
)
from tests.fakes.slskd import Peer, SlskdFake
from tests.library_fixtures import record

D = "/api/v1/downloads"
ENQUEUE = ("POST", "/api/v0/transfers/downloads/{username}")
ALL_TRANSFERS = ("GET", "/api/v0/transfers/downloads")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metadata() -> StubMetadata:
    return live_version_first()


@pytest.fixture
def make_api(aiohttp_client, tmp_path, server, slskd_downloads, music, clock, metadata):
    """Start a daemon on the fake (same data dir each time: a second call is a restart)."""

    async def make(key: str | None = None, **settings: str):
        plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(metadata))]
        return await open_api(aiohttp_client, tmp_path / "data",
                              environ(server, slskd_downloads, music, **settings), plugins, clock, key)

    return make


@pytest.fixture
async def api(make_api):
    return await make_api()


async def request(api, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(D, body)
    assert reply.status == 202, reply.json
    return reply.data["download"]


async def detail(api, download_id: int) -> dict[str, Any]:
    reply = await api.get(f"{D}/{download_id}")
    assert reply.status == 200, reply.json
    return reply.data["download"]


async def finish_transfers(api, fake: SlskdFake) -> None:
    """Let the fake finish what it can, then one monitor tick and whatever it started."""
    await fake.settle()
    await service(api).poll()
    await service(api).settle()


async def library_tracks(api, title: str) -> list[dict[str, Any]]:
    reply = await api.get("/api/v1/library/tracks", params={"title": title})
    assert reply.status == 200, reply.json
    return reply.data["tracks"]


def vorbis(path: Path) -> dict[str, list[str]]:
    tags = mutagen.File(path).tags
    return {key.lower(): list(values) for key, values in tags.as_dict().items()}


# --------------------------------------------------------------------------- happy paths


async def test_track_is_fetched_tagged_filed_and_indexed(api, fake, music, slskd_downloads):
    queued = await request(api, TRACK)
    assert isinstance(queued["id"], int)
    assert (queued["status"], queued["track_name"], queued["artist_name"], queued["album_name"]) == (
        "queued", TITLE, ARTIST, "Discovery")
    await service(api).settle()
    running = await detail(api, queued["id"])
    assert (running["status"], running["username"], running["filename"]) == (
        "downloading", "flac_fast", FLAC_FAST)
    assert running["size"] == 400_000 and running["quality"] == "flac 16/44.1 kHz"

    await fake.tick(4)  # Requested -> Queued -> Initializing -> InProgress, 1/4 of the bytes
    await service(api).poll()
    assert (await detail(api, queued["id"]))["progress"] == 25
    await finish_transfers(api, fake)

    done = await detail(api, queued["id"])
    final = music / ARTIST / "Discovery" / "01 - One More Time.flac"
    assert (done["status"], done["progress"], done["error"], done["retry_count"]) == (
        "completed", 100, None, 0)
    assert done["final_path"] == str(final) and done["metadata_enhanced"] is True
    assert files_under(music) == [final]  # no temporary file left behind
    assert files_under(slskd_downloads) == []  # the client's copy is gone
    assert fake.transfers == {}  # and its transfer removed from slskd
    tags = vorbis(final)
    assert tags["title"] == [TITLE] and tags["artist"] == [ARTIST] and tags["albumartist"] == [ARTIST]
    assert (tags["album"], tags["tracknumber"], tags["discnumber"], tags["date"]) == (
        ["Discovery"], ["1"], ["1"], ["2001-03-12"])
    assert (tags["isrc"], tags["itunes_track_id"], tags["itunes_album_id"]) == (
        ["GBDUW0000053"], ["697195462"], ["697194953"])

    [track] = await library_tracks(api, TITLE)
    assert (track["artist_name"], track["album_title"], track["track_number"], track["format"]) == (
        ARTIST, "Discovery", 1, "FLAC")
    assert (track["file_path"], track["itunes_track_id"], track["isrc"], track["year"]) == (
        str(final), "697195462", "GBDUW0000053", 2001)
    assert done["library_track_id"] == track["id"]

    verdicts = {c["username"]: c for c in done["candidates"]}
    accepted = [c["username"] for c in done["candidates"] if c["accepted"]]
    assert accepted == ["flac_fast", "flac_slow", "mp3_user"]
    assert verdicts["flac_fast"]["quality_rank"] == 0 and verdicts["mp3_user"]["quality_rank"] == 1
    assert verdicts["live_user"]["reasons"] == ["is a live version; the wanted track is not"]
    assert verdicts["tribute"]["reasons"][0].startswith("artist 'Daft Punk' does not match")
    assert verdicts["va_user"]["reasons"] == [
        "is in the compilation folder 'Various Artists' and the wanted album is not a compilation"]
    assert verdicts["long_user"]["reasons"] == ["40 s longer than the wanted track (tolerance 5 s)"]
    assert {c["filename"] for c in done["candidates"]} >= {LIVE, TRIBUTE, VARIOUS, TOO_LONG, MP3_FILE}

    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert [a["type"] for a in feed if a["type"].startswith("download.")] == [
        "download.completed", "download.started"]


async def test_query_is_resolved_through_metadata_search_first(api, fake, music, metadata):
    queued = await request(api, {"query": "Daft Punk - One More Time"})
    assert metadata.queries == ["Daft Punk One More Time"]  # the dash is not searched for
    # The source listed a live version first; the studio track is the one that matches.
    assert (queued["track_name"], queued["track_id"], queued["source"]) == (TITLE, "697195462", "itunes")
    await service(api).settle()
    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "completed"
    assert done["track"]["duration_ms"] == SECONDS * 1000
    [track] = await library_tracks(api, TITLE)
    assert track["itunes_track_id"] == "697195462"


async def test_query_nobody_knows_is_404_and_creates_nothing(api):
    reply = await api.post(D, {"query": "Nobody - Nothing At All"})
    assert reply.status == 404
    assert reply.error["message"] == "No metadata source found a track for 'Nobody - Nothing At All'."
    assert (await api.get(D)).data["downloads"] == []


async def test_asking_twice_while_unfinished_returns_the_same_download(api, fake):
    first = await request(api, TRACK)
    again = await api.post(D, {**TRACK, "popularity": 80})
    assert again.status == 202
    assert again.data["created"] is False and again.data["download"]["id"] == first["id"]
    await service(api).settle()
    assert fake.count(*ENQUEUE) == 1


# ---------------------------------------------------------------------------- faults


FAULTS = [
    ("Errored", "slskd reported Errored: Remote connection closed"),
    ("Rejected", "slskd reported Rejected: File not shared."),
    ("TimedOut", "slskd reported TimedOut: Inactivity timeout of 15000 milliseconds was exceeded"),
    ("stuck", "still queued by the peer after 60 s"),
    ("stalled", "stuck at 0 % for 60 s"),
    ("vanish", "vanished from slskd's transfer list"),
]


@pytest.mark.parametrize(("fault", "outcome"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_each_fault_moves_on_to_the_next_candidate(api, fake, music, clock, fault, outcome):
    fake.peer("flac_fast").fault = fault
    queued = await request(api, TRACK)
    await service(api).settle()
    assert (await detail(api, queued["id"]))["username"] == "flac_fast"

    await fake.tick(6)                  # the fault shows (stuck and stalled stop moving)
    await fake.settle()
    await service(api).poll()           # failed, rejected, timed out: given up at once
    await service(api).settle()
    clock.advance(61)                   # queued / stalled past their 60 s
    await service(api).poll()           # ... given up; a vanished one is missing twice now
    await service(api).settle()

    moved = await detail(api, queued["id"])
    assert (moved["status"], moved["username"], moved["filename"]) == ("downloading", "flac_slow", FLAC_SLOW)
    assert (moved["attempts"], moved["retry_count"]) == (2, 1)
    assert [(t["username"], t["filename"], t["outcome"]) for t in moved["tried"]] == [
        ("flac_fast", FLAC_FAST, outcome)]
    assert all(t.username != "flac_fast" for t in fake.transfers.values())  # removed from slskd

    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "completed"
    assert files_under(music) == [music / ARTIST / "Discovery" / "01 - One More Time.flac"]


async def test_all_candidates_failing_fails_with_what_was_tried(api, fake):
    for name in ("flac_fast", "flac_slow", "mp3_user"):
        fake.peer(name).fault = "Rejected"
    queued = await request(api, TRACK)
    for _ in range(3):
        await service(api).settle()
        await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "failed"
    assert done["error"] == (
        "no other file to try after 3 attempt(s): "
        "flac_fast '01 - One More Time.flac': slskd reported Rejected: File not shared.; "
        "flac_slow '01 - One More Time.flac': slskd reported Rejected: File not shared.; "
        "mp3_user '01. Daft Punk - One More Time.mp3': slskd reported Rejected: File not shared.")
    # Once the first search's files were used up, the next query was searched too.
    assert done["queries"] == ["Daft Punk One More Time", "One More Time"]
    assert fake.count("POST", "/api/v0/searches") == 2
    assert fake.count(*ENQUEUE) == 3 and fake.transfers == {}
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert feed[0]["type"] == "download.failed" and "flac_fast" in feed[0]["message"]


async def test_max_attempts_bounds_the_files_tried(make_api, fake):
    api = await make_api(max_attempts="2")
    for name in ("flac_fast", "flac_slow", "mp3_user"):
        fake.peer(name).fault = "Errored"
    queued = await request(api, TRACK)
    for _ in range(2):
        await service(api).settle()
        await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "failed" and done["attempts"] == 2
    assert done["error"].startswith("gave up after 2 file(s) (downloads.max_attempts): flac_fast")
    assert fake.count(*ENQUEUE) == 2


async def test_offline_peer_is_skipped_at_enqueue(api, fake):
    fake.peer("flac_fast").fault = "offline"
    queued = await request(api, TRACK)
    await service(api).settle()
    moved = await detail(api, queued["id"])
    assert moved["username"] == "flac_slow"
    assert moved["tried"][0]["outcome"].startswith("slskd could not enqueue")


async def test_no_matching_file_is_not_found_with_the_closest_refusal(api, fake):
    queued = await request(api, {**TRACK, "duration_ms": 200_000})
    await service(api).settle()
    done = await detail(api, queued["id"])
    assert done["status"] == "not_found" and done["attempts"] == 0
    assert done["error"].startswith("no file matched in 2 search(es) ('Daft Punk One More Time', "
                                    "'One More Time'): 7 result(s) refused; the closest, ")
    assert "197 s shorter than the wanted track" in done["error"]
    assert fake.count(*ENQUEUE) == 0
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert feed[0]["type"] == "download.failed"


async def test_no_search_result_at_all_is_not_found(api, fake):
    queued = await request(api, {"name": "Aerodynamic", "artists": [ARTIST], "album": "Discovery"})
    await service(api).settle()
    done = await detail(api, queued["id"])
    assert (done["status"], done["error"], done["candidates"]) == (
        "not_found", "no file matched in 1 search(es) ('Daft Punk Aerodynamic')", [])


async def test_a_file_of_the_wrong_length_is_refused_for_the_next(api, fake, music):
    queued = await request(api, TRACK)
    await service(api).settle()
    # The peer listed 3 s but sends 30 s: the downloaded file itself is checked.
    fake.peer("flac_fast").files[0].length = 30
    await finish_transfers(api, fake)
    moved = await detail(api, queued["id"])
    assert moved["username"] == "flac_slow"
    assert moved["tried"][0]["outcome"] == "the file is 27 s longer than the wanted track (tolerance 5 s)"
    await finish_transfers(api, fake)
    assert (await detail(api, queued["id"]))["status"] == "completed"
    assert [p.name for p in files_under(music)] == ["01 - One More Time.flac"]


# ------------------------------------------------------------------------- cancelling


async def test_cancel_checks_the_username_and_removes_the_transfer(api, fake):
    queued = await request(api, TRACK)
    await service(api).settle()
    await fake.tick(4)
    wrong = await api.post(f"{D}/{queued['id']}/cancel", {"username": "someone_else"})
    assert wrong.status == 400
    assert wrong.error["message"] == (f"username 'someone_else' is not the peer of download "
                                      f"{queued['id']} (it has 'flac_fast').")
    reply = await api.post(f"{D}/{queued['id']}/cancel", {"username": "flac_fast"})
    assert reply.status == 200
    assert reply.data["message"] == "Download cancelled."
    assert reply.data["download"]["status"] == "cancelled"
    assert fake.transfers == {}
    again = await api.post(f"{D}/{queued['id']}/cancel")
    assert again.status == 409
    assert again.error["message"] == f"Download {queued['id']} is already cancelled."
    await service(api).poll()
    assert (await detail(api, queued["id"]))["status"] == "cancelled"


async def test_cancel_all_cancels_queued_and_running_downloads(make_api, fake):
    fake.peers.append(Peer("discovery", [flac(r"@@h\Daft Punk\Discovery\02 - Aerodynamic.flac"),
                                         flac(r"@@h\Daft Punk\Discovery\03 - Digital Love.flac")]))
    api = await make_api(max_concurrent="2")
    ids = []
    for title, number in ((TITLE, 1), ("Aerodynamic", 2), ("Digital Love", 3)):
        body = {**TRACK, "id": f"69719546{number}", "name": title, "track_number": number}
        ids.append((await request(api, body))["id"])
    await service(api).settle()
    statuses = [(await detail(api, i))["status"] for i in ids]
    assert statuses == ["downloading", "downloading", "queued"]  # max_concurrent 2
    assert len(fake.transfers) == 2

    reply = await api.post(f"{D}/cancel-all")
    assert reply.status == 200
    assert reply.data == {"message": "All downloads cancelled and cleared.", "cancelled": 3}
    assert [(await detail(api, i))["status"] for i in ids] == ["cancelled"] * 3
    assert fake.transfers == {}
    await service(api).settle()
    assert fake.count(*ENQUEUE) == 2  # the queued one never started
    stats = await api.get("/api/v1/system/stats")
    assert stats.data["downloads"]["active"] == 0


async def test_concurrency_limit_queues_the_rest_until_a_slot_frees(make_api, fake):
    fake.peers.append(Peer("discovery", [flac(r"@@h\Daft Punk\Discovery\02 - Aerodynamic.flac")]))
    api = await make_api(max_concurrent="1")
    first = await request(api, TRACK)
    second = await request(api, {**TRACK, "id": "697195463", "name": "Aerodynamic", "track_number": 2})
    await service(api).settle()
    assert (await detail(api, second["id"]))["status"] == "queued"
    assert (await api.get("/api/v1/system/stats")).data["downloads"]["active"] == 2
    await finish_transfers(api, fake)  # the first completes and frees its slot
    assert (await detail(api, first["id"]))["status"] == "completed"
    assert (await detail(api, second["id"]))["status"] == "downloading"


# ------------------------------------------------------------------ files and the library


HOSTILE = {"id": "1", "source": "itunes", "name": "../../../../tmp/evil", "artists": ["AC/DC"],
           "album": "../../../../tmp", "album_artist": "../../etc", "duration_ms": SECONDS * 1000}


async def test_hostile_names_and_remote_paths_never_leave_the_library(api, fake, music, tmp_path):
    fake.peers = [
        # slskd refuses remote paths with ".." segments; SoulSync moves on to the next file.
        Peer("climber", [flac(r"@@x\..\..\..\..\AC DC\tmp\01 - tmp evil.flac")], upload_speed=9_000_000),
        Peer("hidden", [flac(r"@@y\AC DC\..tmp evil\01 - ..tmp evil.flac")]),
    ]
    queued = await request(api, HOSTILE)
    await service(api).settle()
    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "completed", done
    assert done["tried"][0]["username"] == "climber"
    assert "dangerous path traversal" in done["tried"][0]["outcome"]
    final = Path(done["final_path"])
    assert final.parent.parent.parent == music
    assert final.relative_to(music).parts == ("_.._.._etc", "_.._.._.._.._tmp", "_.._.._.._.._tmp_evil.flac")
    assert vorbis(final)["title"] == ["../../../../tmp/evil"]  # tags keep the text as it is
    outside = [p for p in files_under(tmp_path)
               if not p.is_relative_to(music) and not p.is_relative_to(tmp_path / "data")
               and not p.is_relative_to(tmp_path / "slskd")]
    assert outside == []
    assert not (tmp_path / "tmp").exists() and not (music.parent / "etc").exists()


async def test_an_existing_better_file_is_kept(api, fake, music):
    existing = music / ARTIST / "Discovery" / "01 - One More Time.flac"
    existing.parent.mkdir(parents=True)
    audio.write_flac(existing, seconds=SECONDS, rate=96000, bits=24)
    before = existing.read_bytes()
    queued = await request(api, TRACK)
    await service(api).settle()
    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "completed" and done["final_path"] == str(existing)
    assert done["note"] == f"the library already had this track at equal or better quality: kept {existing}"
    assert done["metadata_enhanced"] is False
    assert existing.read_bytes() == before
    assert files_under(music) == [existing]
    [track] = await library_tracks(api, TITLE)
    assert (track["file_path"], track["bit_depth"]) == (str(existing), 24)
    assert done["library_track_id"] == track["id"]


async def test_a_worse_file_of_another_format_is_replaced(api, fake, music):
    old = music / ARTIST / "Discovery" / "01 - One More Time.mp3"
    old.parent.mkdir(parents=True)
    audio.make(old, "mp3", seconds=SECONDS, title=TITLE, artist=ARTIST, album="Discovery")
    await api.core.library.import_file(old)
    queued = await request(api, {**TRACK, "force": True})  # the library has it, as MP3
    await service(api).settle()
    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    new = music / ARTIST / "Discovery" / "01 - One More Time.flac"
    assert (done["status"], done["final_path"], done["note"]) == ("completed", str(new), None)
    assert files_under(music) == [new]
    tracks = await library_tracks(api, TITLE)
    assert [(t["file_path"], t["format"]) for t in tracks] == [(str(new), "FLAC")]


# ---------------------------------------------------------------------------- restart


async def test_restart_mid_download_finishes_it_exactly_once(make_api, fake, music):
    first = await make_api()
    queued = await request(first, TRACK)
    await service(first).settle()
    await fake.tick(5)  # InProgress, half the bytes
    await service(first).poll()
    assert (await detail(first, queued["id"]))["progress"] == 50
    await first.client.close()  # the daemon stops with the transfer still running in slskd

    second = await make_api(key=first.key)
    resumed = await detail(second, queued["id"])
    assert (resumed["status"], resumed["username"]) == ("downloading", "flac_fast")
    await finish_transfers(second, fake)
    done = await detail(second, queued["id"])
    assert (done["status"], done["attempts"]) == ("completed", 1)
    assert files_under(music) == [music / ARTIST / "Discovery" / "01 - One More Time.flac"]
    assert len(await library_tracks(second, TITLE)) == 1
    assert fake.count(*ENQUEUE) == 1 and fake.transfers == {}


@pytest.mark.parametrize("reached_slskd", [True, False], ids=["transfer-exists", "transfer-missing"])
async def test_restart_between_enqueue_and_saving_its_id(make_api, fake, music, tmp_path, reached_slskd):
    first = await make_api()
    queued = await request(first, TRACK)
    await service(first).settle()
    await first.client.close()
    # As if SoulSync had stopped after saving the attempt but before saving slskd's answer.
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        db.execute("UPDATE downloads SET transfer_id = NULL")
    if not reached_slskd:
        fake.transfers.clear()

    second = await make_api(key=first.key)
    await service(second).poll()
    await service(second).settle()
    assert len(fake.transfers) == 1  # found again, or asked for once more: never twice
    await finish_transfers(second, fake)
    done = await detail(second, queued["id"])
    assert (done["status"], done["attempts"]) == ("completed", 1)
    assert len(files_under(music)) == 1
    assert fake.count(*ENQUEUE) == (1 if reached_slskd else 2)


async def test_monitor_asks_for_the_transfer_list_once_per_tick(make_api, fake):
    fake.peers.append(Peer("discovery", [flac(rf"@@h\Daft Punk\Discovery\{n:02d} - Song {n}.flac")
                                         for n in range(2, 7)]))
    api = await make_api(max_concurrent="10")
    for n in range(2, 7):
        await request(api, {**TRACK, "id": f"9{n}", "name": f"Song {n}", "track_number": n})
    await service(api).settle()
    assert len(fake.transfers) == 5
    before = fake.count(*ALL_TRANSFERS)
    await service(api).poll()
    await service(api).poll()
    assert fake.count(*ALL_TRANSFERS) - before == 2


@pytest.mark.parametrize("moved", [False, True], ids=["before-the-move", "after-the-move"])
async def test_restart_during_the_import_finishes_it_once(make_api, fake, music, slskd_downloads,
                                                          tmp_path, moved):
    first = await make_api()
    queued = await request(first, TRACK)
    await service(first).settle()
    await fake.settle()  # completed in slskd, not seen by SoulSync yet
    await first.client.close()
    final = music / ARTIST / "Discovery" / "01 - One More Time.flac"
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        db.execute("UPDATE downloads SET status = 'post_processing', final_path = ?", (str(final),))
    if moved:  # it had stopped right after renaming the file into place
        [source] = files_under(slskd_downloads)
        final.parent.mkdir(parents=True)
        source.rename(final)

    second = await make_api(key=first.key)
    await service(second).settle()
    done = await detail(second, queued["id"])
    assert (done["status"], done["final_path"]) == ("completed", str(final))
    assert files_under(music) == [final] and files_under(slskd_downloads) == []
    assert len(await library_tracks(second, TITLE)) == 1
    assert fake.count(*ENQUEUE) == 1 and fake.transfers == {}


async def test_a_transfer_cleared_from_slskd_after_completing_is_still_imported(api, fake, music):
    queued = await request(api, TRACK)
    await service(api).settle()
    await fake.settle()
    fake.transfers.clear()  # "clear completed" in slskd's web UI before the monitor looked
    await service(api).poll()
    await service(api).poll()
    await service(api).settle()
    done = await detail(api, queued["id"])
    assert (done["status"], done["attempts"], done["tried"]) == ("completed", 1, [])
    assert files_under(music) == [music / ARTIST / "Discovery" / "01 - One More Time.flac"]


async def test_completion_listeners_hear_of_each_completed_download_once(api, fake):
    heard: list[tuple[int, str | None]] = []

    async def listener(download) -> None:
        heard.append((download.id, download.wanted.track_id))

    service(api).on_completed(listener)
    service(api).on_completed(lambda download: 1 / 0)  # a failing listener harms nobody
    queued = await request(api, TRACK)
    await service(api).settle()
    await finish_transfers(api, fake)
    await service(api).poll()
    assert heard == [(queued["id"], "697195462")]
    assert (await detail(api, queued["id"]))["status"] == "completed"


async def test_searches_that_time_out_end_not_found_saying_so(make_api, fake):
    api = await make_api(search_timeout_seconds="0.1")
    fake.search_seconds = 30
    queued = await request(api, TRACK)
    await service(api).settle()
    done = await detail(api, queued["id"])
    assert done["status"] == "not_found"
    assert done["error"] == ("no file matched in 2 search(es) ('Daft Punk One More Time', 'One More Time'); "
                             "the search 'Daft Punk One More Time' took longer than 0.1 s; "
                             "the search 'One More Time' took longer than 0.1 s")


async def test_slskd_not_connected_fails_the_download_with_its_reason(api, fake):
    fake.connected = False
    queued = await request(api, TRACK)
    await service(api).settle()
    done = await detail(api, queued["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("searching 'Daft Punk One More Time' failed: slskd is not "
                                    "connected to the Soulseek network")


async def test_a_symbolic_link_out_of_the_library_is_not_followed(api, fake, music, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (music / ARTIST).symlink_to(elsewhere, target_is_directory=True)
    queued = await request(api, TRACK)
    await service(api).settle()
    await finish_transfers(api, fake)
    done = await detail(api, queued["id"])
    assert done["status"] == "failed"
    assert done["error"] == (f"{music / ARTIST} is not a folder inside the music folder {music}; "
                             "SoulSync writes nothing outside it")
    assert files_under(elsewhere) == []


async def test_restart_while_searching_searches_again(make_api, fake, music):
    first = await make_api()
    fake.search_seconds = 30
    queued = await request(first, TRACK)
    await asyncio.wait_for(fake.search_started.wait(), 10)
    await first.client.close()  # stops in the middle of the search
    fake.search_seconds = 0.05

    second = await make_api(key=first.key)
    await service(second).settle()
    resumed = await detail(second, queued["id"])
    assert (resumed["status"], resumed["username"]) == ("downloading", "flac_fast")
    await finish_transfers(second, fake)
    assert (await detail(second, queued["id"]))["status"] == "completed"
    assert fake.count("POST", "/api/v0/searches") == 2 and fake.searches == {}


async def wait_for_status(api, download_id: int, status: str, attempts: int = 500) -> dict[str, Any]:
    """Wait until the download has ``status`` (bounded; the loop is real here), then return it
    through the API. Reads the store meanwhile: polling the API would meet its rate limit."""
    for _ in range(attempts):
        download = await service(api).get(download_id)
        assert download is not None
        if download.status == status:
            return await detail(api, download_id)
        await asyncio.sleep(0.02)
    raise AssertionError(f"download {download_id} stayed {download.status}, never {status}")


async def test_the_monitor_loop_works_on_its_own(make_api, fake, music):
    api = await make_api(monitor_interval_seconds="0.02")
    queued = await request(api, TRACK)
    await wait_for_status(api, queued["id"], "downloading")  # dispatched, searched, enqueued
    await fake.settle()
    done = await wait_for_status(api, queued["id"], "completed")  # seen, imported
    assert done["final_path"] == str(music / ARTIST / "Discovery" / "01 - One More Time.flac")


# ---------------------------------------------------------------- playlist sync


async def test_a_synced_playlists_missing_track_is_downloaded_then_written_into_its_m3u8(
        api, fake, music):
    """Playlist sync with the pipeline: the library lacks one track, the fake slskd has it."""
    await api.core.library.store.save([record("Daft Punk", "Homework", "Around the World",
                                              folder=str(music / "Daft Punk" / "Homework"),
                                              duration=429_000)])
    tracks = [{"id": "1", "name": "Around the World", "artists": ["Daft Punk"], "album": "Homework",
               "duration_ms": 428_000}, TRACK]
    reply = await api.post("/api/v1/playlists/daft/sync", {"playlist_name": "Daft", "tracks": tracks})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait("daft")
    status = (await api.get("/api/v1/playlists/daft/sync")).data
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

    done = (await api.get("/api/v1/playlists/daft/sync")).data
    arrived = done["tracks"][1]
    assert (arrived["status"], arrived["action"], arrived["method"]) == ("matched", "downloaded", "download")
    assert arrived["download_status"] is None and done["totals"]["matched"] == 2
    assert done["totals"]["in_m3u8"] == 2
    assert [e.path for e in m3u.read_entries(playlist)] == [
        "../Daft Punk/Homework/01 - Around the World.flac",
        f"../{ARTIST}/Discovery/01 - {TITLE}.flac"]
    assert (music / ARTIST / "Discovery" / f"01 - {TITLE}.flac").is_file()
    assert (await api.get("/api/v1/wishlist")).data["tracks"] == []  # the wishlist let it go

    again = await api.post("/api/v1/playlists/daft/sync", {"playlist_name": "Daft", "tracks": tracks})
    assert again.status == 202
    await api.core.playlists.wait("daft")
    final = (await api.get("/api/v1/playlists/daft/sync")).data
    assert final["totals"]["matched"] == 2 and final["totals"]["reused"] == 2
    assert final["totals"]["downloading"] == 0


async def test_a_synced_playlists_cancelled_download_shows_as_failed(api, fake):
    reply = await api.post("/api/v1/playlists/daft/sync", {"playlist_name": "Daft", "tracks": [TRACK]})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait("daft")
    entry = (await api.get("/api/v1/playlists/daft/sync")).data["tracks"][0]
    assert entry["action"] == "downloading" and entry["download_status"] in ("queued", "searching")
    cancelled = await api.post(f"{D}/{entry['download_id']}/cancel", {})
    assert cancelled.status == 200, cancelled.json
    status = (await api.get("/api/v1/playlists/daft/sync")).data
    assert (status["tracks"][0]["action"], status["tracks"][0]["download_status"]) == (
        "download_failed", "cancelled")
    assert status["totals"]["downloading"] == 0
