"""The library scanner on a tree of real tagged audio files (every format), and rescans."""

from __future__ import annotations

import asyncio
import logging
import os
import unicodedata
from pathlib import Path

import pytest

from soulsync_core.library import scanner as scanner_module
from soulsync_core.library import service as library_service
from soulsync_core.library.tags import UnreadableFile, read_track
from tests.audio import make, tag
from tests.library_fixtures import open_core, scan

FORMATS = {  # kind -> (extension, format name, lossless)
    "flac": (".flac", "FLAC", True), "mp3": (".mp3", "MP3", False), "m4a": (".m4a", "AAC", False),
    "alac": (".m4a", "ALAC", True), "ogg": (".ogg", "OGG", False), "opus": (".opus", "OPUS", False),
    "wav": (".wav", "WAV", True), "aiff": (".aiff", "AIFF", True),
}


@pytest.fixture
def core(music_core):
    return music_core


async def rows(core, sql: str, params=()) -> list[dict]:
    return [dict(r) for r in await core.db.fetchall(sql, params)]


async def track_by_title(core, title: str) -> dict:
    found = await rows(core, "SELECT t.*, f.path AS folder FROM tracks t JOIN folders f "
                             "ON f.id = t.folder_id WHERE t.title = ?", (title,))
    assert len(found) == 1, found
    return found[0]


async def assert_counts_consistent(core) -> None:
    """The maintained counts equal what counting the rows gives."""
    stats = dict(await core.db.fetchone("SELECT * FROM library_stats"))
    for table in ("artists", "albums", "tracks"):
        assert stats[table] == await core.db.fetchval(f"SELECT count(*) FROM {table}"), table
    bad_albums = await rows(core, "SELECT al.id FROM albums al WHERE track_count != "
                                  "(SELECT count(*) FROM tracks WHERE album_id = al.id) OR duration != "
                                  "(SELECT coalesce(sum(duration), 0) FROM tracks WHERE album_id = al.id)")
    assert bad_albums == []
    bad_artists = await rows(core, "SELECT a.id FROM artists a WHERE album_count != "
                                   "(SELECT count(*) FROM albums WHERE artist_id = a.id) OR track_count != "
                                   "(SELECT count(*) FROM tracks WHERE artist_id = a.id)")
    assert bad_artists == []
    assert await rows(core, "SELECT id FROM albums WHERE track_count = 0") == []
    assert await rows(core, "SELECT id FROM artists WHERE album_count = 0") == []
    genres = {(r["source"], r["name"]): r["count"]
              for r in await rows(core, "SELECT * FROM library_genres")}
    expected: dict[tuple[str, str], int] = {}
    for source in ("artists", "albums"):
        for r in await rows(core, f"SELECT j.value AS name FROM {source} x, json_each(x.genres) j"):
            expected[(source, r["name"])] = expected.get((source, r["name"]), 0) + 1
    assert genres == expected


async def test_every_format_is_read_with_tags_and_stream_properties(core, music: Path):
    for kind, (ext, _name, _lossless) in FORMATS.items():
        make(music / "Formats" / "All" / f"{kind}{ext}", kind, seconds=0.5, title=f"Song {kind}",
             artist="Format Tester", album="All Formats", tracknumber="3/12", discnumber="2/2",
             date="2011-05-04", genre=["Rock", "Test"])
    job = await scan(core)
    assert job.state == "completed", job.error
    assert job.result["files_read"] == len(FORMATS) and job.result["files_skipped"] == 0
    for kind, (ext, name, lossless) in FORMATS.items():
        track = await track_by_title(core, f"Song {kind}")
        path = music / "Formats" / "All" / f"{kind}{ext}"
        assert track["format"] == name, kind
        assert track["track_number"] == 3 and track["disc_number"] == 2 and track["year"] == 2011
        assert track["genres"] == '["Rock", "Test"]'
        assert 450 <= track["duration"] <= 560, kind
        assert track["file_size"] == path.stat().st_size
        assert track["file_mtime"] == path.stat().st_mtime_ns
        assert track["sample_rate"] == (48000 if kind == "opus" else 44100), kind
        assert track["bit_depth"] == (16 if lossless else None), kind
        assert track["bitrate"] and track["bitrate"] > 0, kind
        assert track["folder"] == str(music / "Formats" / "All")
    albums = await rows(core, "SELECT * FROM albums")
    assert len(albums) == 1 and albums[0]["track_count"] == len(FORMATS)
    assert albums[0]["year"] == 2011 and albums[0]["genres"] == '["Rock","Test"]'
    await assert_counts_consistent(core)


@pytest.mark.parametrize("kind", ["flac", "mp3", "m4a"])  # Vorbis comments, ID3, MP4 atoms
async def test_provider_ids_are_read_from_each_tag_family(core, music: Path, kind: str):
    ext = FORMATS[kind][0]
    make(music / f"x{ext}", kind, seconds=0.2, title="Paranoid Android", artist="Radiohead",
         albumartist="Radiohead", album="OK Computer",
         musicbrainz_albumartistid="a74b1b7f-71a5-4011-9441-d0b5e4122711",
         musicbrainz_albumid="0b6b4ba0-d36f-47bd-b4ea-6a5b91842d29",
         musicbrainz_trackid="8cd9f5c6-4d4c-4b09-bd7c-9b1c0f9d0e6b", isrc="GBAYE9700122",
         SPOTIFY_TRACK_ID="6LgJvl0Xdtc73RJ1mN1a7Z", SPOTIFY_ALBUM_ID="6dVIqQ8qmQ5GBnJ9shOYGE",
         SPOTIFY_ARTIST_ID="4Z8W4fKeB5YxbusRsdQVPb", ITUNES_TRACK_ID="1097862870",
         ITUNES_ALBUM_ID="1097861387", ITUNES_ARTIST_ID="657515", DEEZER_TRACK_ID="3135556",
         DEEZER_ALBUM_ID="302127", DEEZER_ARTIST_ID="399")
    assert (await scan(core)).state == "completed"
    track = await track_by_title(core, "Paranoid Android")
    assert (track["musicbrainz_recording_id"], track["isrc"], track["spotify_track_id"],
            track["itunes_track_id"], track["deezer_id"]) == (
        "8cd9f5c6-4d4c-4b09-bd7c-9b1c0f9d0e6b", "GBAYE9700122", "6LgJvl0Xdtc73RJ1mN1a7Z",
        "1097862870", "3135556")
    album = (await rows(core, "SELECT * FROM albums"))[0]
    assert (album["musicbrainz_release_id"], album["spotify_album_id"], album["itunes_album_id"],
            album["deezer_id"]) == ("0b6b4ba0-d36f-47bd-b4ea-6a5b91842d29",
                                    "6dVIqQ8qmQ5GBnJ9shOYGE", "1097861387", "302127")
    artist = (await rows(core, "SELECT * FROM artists"))[0]
    assert (artist["musicbrainz_id"], artist["spotify_artist_id"], artist["itunes_artist_id"],
            artist["deezer_id"]) == ("a74b1b7f-71a5-4011-9441-d0b5e4122711",
                                     "4Z8W4fKeB5YxbusRsdQVPb", "657515", "399")


async def test_untagged_files_fall_back_to_their_path(core, music: Path):
    make(music / "Boards of Canada" / "Boards of Canada - Geogaddi" / "CD2" / "07 - Dawn Chorus.flac",
         "flac", seconds=0.2)
    make(music / "Loose Track.mp3", "mp3", seconds=0.2)
    make(music / "Half Tagged" / "Some Album" / "3. From The Path.ogg", "ogg", seconds=0.2,
         artist="Tagged Artist")
    assert (await scan(core)).state == "completed"
    dawn = await track_by_title(core, "Dawn Chorus")
    assert (dawn["track_number"], dawn["disc_number"], dawn["track_artist"]) == (7, 2, "Boards of Canada")
    album = (await rows(core, "SELECT al.title, ar.name FROM albums al JOIN artists ar "
                              "ON ar.id = al.artist_id WHERE al.id = ?", (dawn["album_id"],)))[0]
    assert album == {"title": "Geogaddi", "name": "Boards of Canada"}
    loose = await track_by_title(core, "Loose Track")
    names = (await rows(core, "SELECT al.title, ar.name FROM albums al JOIN artists ar "
                              "ON ar.id = al.artist_id WHERE al.id = ?", (loose["album_id"],)))[0]
    assert names == {"title": "Unknown Album", "name": "Unknown Artist"}
    half = await track_by_title(core, "From The Path")
    assert half["track_artist"] == "Tagged Artist" and half["track_number"] == 3
    assert (await rows(core, "SELECT title FROM albums WHERE id = ?", (half["album_id"],)))[0][
        "title"] == "Some Album"


async def test_corrupt_file_is_skipped_with_one_warning_counted_and_scan_goes_on(
        core, music: Path, caplog):
    make(music / "Good" / "Album" / "01 - Fine.flac", "flac", seconds=0.2, title="Fine")
    broken = music / "Good" / "Album" / "02 - Broken.flac"
    broken.write_bytes(b"this is no FLAC stream" * 20)
    (music / "Good" / "Album" / "03 - Truncated.mp3").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING, logger="soulsync_core.library.scanner"):
        job = await scan(core)
    assert job.state == "completed"
    assert (job.result["files_seen"], job.result["files_read"], job.result["files_skipped"]) == (3, 1, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "02 - Broken.flac" in w]) == 1
    assert len([w for w in warnings if "03 - Truncated.mp3" in w]) == 1
    assert await core.db.fetchval("SELECT count(*) FROM tracks") == 1

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="soulsync_core.library.scanner"):
        again = await scan(core)
    assert (again.result["files_skipped"], again.result["files_read"]) == (2, 0)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]  # not re-read

    broken.unlink()
    make(broken, "flac", seconds=0.2, title="Repaired")
    repaired = await scan(core)
    assert (repaired.result["files_read"], repaired.result["files_skipped"]) == (1, 1)
    assert (await track_by_title(core, "Repaired"))["format"] == "FLAC"
    assert await core.db.fetchval("SELECT count(*) FROM library_skipped") == 1


async def test_compilations_are_one_album(core, music: Path):
    for number, artist in enumerate(["Daft Punk", "Air", "Justice"], start=1):
        make(music / "Now 99" / f"{number:02d}.m4a", "m4a", seconds=0.2, title=f"Hit {number}",
             artist=artist, album="Now 99", compilation="1", tracknumber=str(number))
    for number, artist in enumerate(["Björk", "Moby"], start=1):
        make(music / "Chill" / f"{number:02d}.mp3", "mp3", seconds=0.2, title=f"Calm {number}",
             artist=artist, albumartist="Various Artists", album="Chill Out")
    assert (await scan(core)).state == "completed"
    albums = await rows(core, "SELECT al.title, al.track_count, al.record_type, ar.name FROM albums al "
                              "JOIN artists ar ON ar.id = al.artist_id ORDER BY al.title")
    assert albums == [
        {"title": "Chill Out", "track_count": 2, "record_type": "compilation", "name": "Various Artists"},
        {"title": "Now 99", "track_count": 3, "record_type": "compilation", "name": "Various Artists"},
    ]
    assert (await track_by_title(core, "Hit 2"))["track_artist"] == "Air"
    assert await core.db.fetchval("SELECT count(*) FROM artists") == 1


async def test_unicode_names_group_and_fold(core, music: Path):
    make(music / "Björk" / "Post" / "01 - Army of Me.flac", "flac", seconds=0.2, title="Army of Me",
         artist="Björk", album="Post")
    # macOS stores file names decomposed (NFD); the path fallback must still give one artist.
    nfd = unicodedata.normalize("NFD", "Björk")
    make(music / nfd / "Post" / "02 - Hyperballad.flac", "flac", seconds=0.2)
    make(music / "Motörhead" / "Ace of Spades" / "01.mp3", "mp3", seconds=0.2, title="Ace of Spades",
         artist="Motörhead", album="Ace of Spades")
    make(music / "Dvořák" / "Symphony 9" / "01.ogg", "ogg", seconds=0.2, title="Largo",
         artist="Antonín Dvořák", album="Symphony No. 9 „From the New World“")
    make(music / "北京" / "歌" / "01.opus", "opus", seconds=0.2, title="你好", artist="北京", album="歌")
    assert (await scan(core)).state == "completed"
    artists = {r["name"]: r for r in await rows(core, "SELECT * FROM artists")}
    assert set(artists) == {"Björk", "Motörhead", "Antonín Dvořák", "北京"}
    assert artists["Björk"]["track_count"] == 2 and artists["Björk"]["album_count"] == 1
    assert artists["Björk"]["name_fold"] == "bjork" and artists["Björk"]["letter"] == "b"
    assert artists["Antonín Dvořák"]["name_fold"] == "antonin dvorak"
    assert artists["北京"]["name_fold"] == "bei jing" and artists["北京"]["letter"] == "b"
    assert (await track_by_title(core, "你好"))["title_fold"] == "ni hao"


async def test_rescan_is_incremental_and_follows_changes_removals_and_moves(core, music: Path,
                                                                              monkeypatch):
    album = music / "Artist" / "Album"
    for number in (1, 2, 3):
        make(album / f"{number:02d} - Track {number}.flac", "flac", seconds=0.2,
             title=f"Track {number}", artist="Artist", album="Album", tracknumber=str(number),
             genre="Jazz")
    make(music / "Other" / "Single" / "01 - Lonely.mp3", "mp3", seconds=0.2, title="Lonely",
         artist="Other", album="Single", genre="Blues")
    first = await scan(core)
    assert (first.result["files_read"], first.result["files_unchanged"]) == (4, 0)
    ids = {r["title"]: r["id"] for r in await rows(core, "SELECT id, title FROM tracks")}

    reads: list[str] = []

    def counting_read(path, root, size, mtime):
        reads.append(path)
        return read_track(path, root, size, mtime)

    monkeypatch.setattr(scanner_module, "read_track", counting_read)
    unchanged = await scan(core)
    assert (unchanged.result["files_read"], unchanged.result["files_unchanged"]) == (0, 4)
    assert reads == []

    # Modify: new tags, new size -> re-read, same id.
    tag(album / "02 - Track 2.flac", title="Track Two (Remastered 2011)")
    # Move: to another folder, keeping size and mtime as `mv` does.
    moved_to = music / "Artist" / "Album (Moved)" / "01 - Track 1.flac"
    moved_to.parent.mkdir()
    os.rename(album / "01 - Track 1.flac", moved_to)
    # Delete: the only track of "Single" -> its album and artist go too.
    (music / "Other" / "Single" / "01 - Lonely.mp3").unlink()
    # Add.
    make(album / "04 - Track 4.flac", "flac", seconds=0.2, title="Track 4", artist="Artist",
         album="Album", tracknumber="4", genre="Soul")
    changed = await scan(core)
    result = changed.result
    assert (result["files_read"], result["files_moved"], result["files_removed"],
            result["files_unchanged"]) == (3, 1, 1, 1)
    assert sorted(Path(p).name for p in reads) == ["01 - Track 1.flac", "02 - Track 2.flac",
                                                  "04 - Track 4.flac"]
    after = {r["title"]: r for r in await rows(
        core, "SELECT t.id, t.title, f.path FROM tracks t JOIN folders f ON f.id = t.folder_id")}
    assert set(after) == {"Track 1", "Track Two (Remastered 2011)", "Track 3", "Track 4"}
    assert after["Track 1"]["id"] == ids["Track 1"]  # moved, not removed and added
    assert after["Track 1"]["path"] == str(moved_to.parent)
    assert after["Track Two (Remastered 2011)"]["id"] == ids["Track 2"]
    assert await rows(core, "SELECT name FROM artists") == [{"name": "Artist"}]
    assert await core.db.fetchval("SELECT count(*) FROM albums") == 1
    genres = await rows(core, "SELECT source, name, count FROM library_genres ORDER BY source, name")
    assert genres == [{"source": "albums", "name": "Jazz", "count": 1},
                      {"source": "albums", "name": "Soul", "count": 1},
                      {"source": "artists", "name": "Jazz", "count": 1},
                      {"source": "artists", "name": "Soul", "count": 1}]
    assert await core.db.fetchval("SELECT count(*) FROM folders") == 2  # "Other/Single" is gone
    await assert_counts_consistent(core)

    # A whole folder removed.
    for path in (music / "Artist" / "Album").iterdir():
        path.unlink()
    (music / "Artist" / "Album").rmdir()
    gone = await scan(core)
    assert gone.result["files_removed"] == 3
    assert [r["title"] for r in await rows(core, "SELECT title FROM tracks")] == ["Track 1"]
    await assert_counts_consistent(core)


async def test_retagged_file_moves_to_its_new_album_and_the_old_album_goes(core, music: Path):
    path = make(music / "a.flac", "flac", seconds=0.2, title="T", artist="First", album="One")
    assert (await scan(core)).state == "completed"
    tag(path, artist="Second", album="Two (Deluxe Edition)")
    assert (await scan(core)).result["files_read"] == 1
    names = await rows(core, "SELECT ar.name, al.title FROM albums al "
                             "JOIN artists ar ON ar.id = al.artist_id")
    assert names == [{"name": "Second", "title": "Two (Deluxe Edition)"}]
    await assert_counts_consistent(core)


async def test_missing_or_empty_music_folder_removes_nothing(core, music: Path, tmp_path: Path):
    make(music / "A" / "B" / "01.flac", "flac", seconds=0.2, title="Kept", artist="A", album="B")
    assert (await scan(core)).state == "completed"
    # Unmounted share: the mount point is an empty folder.
    (music / "A" / "B" / "01.flac").unlink()
    job = await scan(core)
    assert job.state == "failed" and "is mounted" in job.error
    assert await core.db.fetchval("SELECT count(*) FROM tracks") == 1
    # No folder at all: the scan does not even start.
    await asyncio.to_thread(music.rename, tmp_path / "elsewhere")
    from soulsync_core.library.scanner import ScanError

    with pytest.raises(ScanError, match="does not exist"):
        await core.library.start_scan()
    assert await core.db.fetchval("SELECT count(*) FROM tracks") == 1


async def test_hidden_and_non_audio_files_are_ignored(core, music: Path):
    make(music / "A" / "B" / "song.flac", "flac", seconds=0.2, title="Real")
    (music / "A" / "B" / "._song.flac").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (music / "A" / "B" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    (music / "A" / "B" / "notes.txt").write_text("liner notes")
    (music / ".Trash").mkdir()
    make(music / ".Trash" / "old.mp3", "mp3", seconds=0.2)
    job = await scan(core)
    assert (job.result["files_seen"], job.result["files_skipped"]) == (1, 0)


async def test_import_file_adds_one_file_and_refuses_paths_outside(core, music: Path, tmp_path: Path):
    path = make(music / "New" / "Download" / "01 - Fresh.opus", "opus", seconds=0.2, title="Fresh",
                artist="New", album="Download", SPOTIFY_TRACK_ID="sp123")
    track_id = await core.library.import_file(path)
    row = (await rows(core, "SELECT id, title, spotify_track_id FROM tracks"))[0]
    assert row == {"id": track_id, "title": "Fresh", "spotify_track_id": "sp123"}
    tag(path, title="Fresh (Radio Edit)")
    assert await core.library.import_file(str(path)) == track_id  # same file, same row
    assert await core.db.fetchval("SELECT title FROM tracks") == "Fresh (Radio Edit)"
    outside = make(tmp_path / "outside.flac", "flac", seconds=0.2)
    with pytest.raises(ValueError, match="not inside the music folder"):
        await core.library.import_file(outside)
    with pytest.raises(ValueError, match="not inside the music folder"):
        await core.library.import_file(f"{music}/../outside.flac")
    (music / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not an audio file"):
        await core.library.import_file(music / "x.txt")
    (music / "bad.mp3").write_bytes(b"nope")
    with pytest.raises(UnreadableFile):
        await core.library.import_file(music / "bad.mp3")
    await assert_counts_consistent(core)


async def test_scan_on_start_and_interval_scans(tmp_path: Path, music: Path, monkeypatch):
    make(music / "A" / "B" / "01.flac", "flac", seconds=0.2, title="Scheduled")
    monkeypatch.setattr(library_service, "SECONDS_PER_MINUTE", 0.01)
    core = await open_core(tmp_path / "data", music, scan_on_start="true")
    try:
        await core.start()
        await _wait_for_jobs(core, 1)
        assert await core.db.fetchval("SELECT count(*) FROM tracks") == 1
        await core.settings.apply({"library.scan_interval_minutes": 1})
        await _wait_for_jobs(core, 3)
        reasons = [r["params"] for r in await rows(core, "SELECT params FROM jobs ORDER BY rowid")]
        assert reasons[0] == '{"reason":"start-up"}' and '{"reason":"interval"}' in reasons[1:]
    finally:
        await core.stop()
        await core.close()


async def _wait_for_jobs(core, count: int) -> None:
    """Wait (bounded) until ``count`` scan jobs have finished."""
    for _ in range(2000):
        done = await core.db.fetchval(
            "SELECT count(*) FROM jobs WHERE kind = 'library_scan' AND state != 'running'")
        if done >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} scans finished")


async def test_a_write_cancelled_while_it_begins_leaves_no_transaction_open(core):
    # A scan job cancelled at shutdown can be waiting for BEGIN: the database thread still
    # runs the BEGIN, so the transaction must be rolled back, or the next write fails.
    task = asyncio.create_task(core.db.execute("UPDATE library_stats SET last_update = 'x'"))
    await asyncio.sleep(0)  # the task now waits for its BEGIN IMMEDIATE
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await core.db.execute("UPDATE library_stats SET last_update = NULL") == 1
    assert await core.db.fetchval("SELECT last_update FROM library_stats") is None


async def test_interval_scan_next_run_is_persisted_and_listed_in_system_jobs(api, key):
    jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
    assert jobs["library_scan"]["next_run"] is None  # no interval: not on a schedule
    await api.patch("/api/v1/settings", {"library.scan_interval_minutes": 60})
    for _ in range(100):  # the schedule task stores the due time right after the change
        jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
        if jobs["library_scan"]["next_run"]:
            break
        await asyncio.sleep(0.01)
    assert jobs["library_scan"]["next_run"] is not None
    stored = await api.core.db.fetchval("SELECT next_run_at FROM job_schedule WHERE kind = ?",
                                        ("library_scan",))
    assert stored == jobs["library_scan"]["next_run"]
