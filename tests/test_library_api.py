"""The /library endpoints: parameters, edge cases, errors; every answer checked against OpenAPI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from soulsync_core.library import scanner as scanner_module
from tests.audio import make
from tests.library_fixtures import open_core, record

A = "/api/v1/library"


@pytest.fixture
async def core(data_dir: Path, music: Path):
    """Overrides conftest's core: the same, with library.music_dir set to ``music``."""
    core = await open_core(data_dir, music)
    yield core
    await core.close()


ARTISTS = ["Björk", "Motörhead", "Antonín Dvořák", "The Beatles", "Beck", "50 Cent", "Ørjan Nilsen",
           "!!!", "Midnight Oil", "Nightwish", "Massive Attack", "Madonna", "Rock_Star", "Rock Star",
           "RockXStar", "100% Pure", "1000 Pure", "Various Artists"]


@pytest.fixture
async def library(core):
    """A library of synthetic rows (files need not exist for the read endpoints)."""
    records = []
    for artist in ARTISTS:
        records.append(record(artist, f"{artist} Greatest", f"{artist} Song", number=1, year=1999,
                              genres=["Rock"]))
    records += [
        record("Björk", "Homogenic", "Jóga", number=2, year=1997, genres=["Electronic", "Pop"],
               duration=305000, isrc="GBAAN9700011", spotify_track_id="sp-joga",
               musicbrainz_release_id="mb-homogenic", spotify_artist_id="sp-bjork"),
        record("Björk", "Homogenic", "Hunter", number=1, year=1997, genres=["Electronic"],
               duration=255000, musicbrainz_release_id="mb-homogenic"),
        record("Björk", "Debut", "Human Behaviour", number=1, year=1993, genres=["Pop"]),
        record("Björk", "Homogenic", "Bachelorette", number=1, disc_number=2, year=1997,
               musicbrainz_release_id="mb-homogenic"),
        record("Wave Machines", "Harbour", "Harbor Lights", number=1),
        record("Wave Machines", "Harbour", "Harbor", number=2),
        record("Wave Machines", "Harbour", "Harbor Lights (Remastered 2011)", number=3),
        record("Tidal Wave", "Sea", "The Harbor", number=1),
        record("Various Artists", "Now 99", "Harbor Song", number=5, track_artist="Wavelength"),
        record("Other", "Other", "Harbor Lights", number=1),
    ]
    await core.library.store.save(records)
    return core


async def get(api, path: str, **params):
    return await api.get(path, params={k: str(v) for k, v in params.items()})


async def artist_id(api, name: str) -> int:
    reply = await get(api, f"{A}/artists", search=name)
    return next(a["id"] for a in reply.data["artists"] if a["name"] == name)


# -------------------------------------------------------------------------- artists


async def test_artists_page_is_ordered_by_folded_name_with_counts(api, key, library):
    reply = await get(api, f"{A}/artists", limit=5)
    assert reply.status == 200
    names = [a["name"] for a in reply.data["artists"]]
    assert names == ["!!!", "100% Pure", "1000 Pure", "50 Cent", "Antonín Dvořák"]
    assert reply.json["pagination"] == {"page": 1, "limit": 5, "total": len(ARTISTS) + 3,
                                        "total_pages": 5, "has_next": True, "has_prev": False}
    bjork = (await get(api, f"{A}/artists", search="bjork")).data["artists"][0]
    assert isinstance(bjork["id"], int)
    assert (bjork["album_count"], bjork["track_count"], bjork["is_watched"], bjork["image_url"]) == (
        3, 5, False, None)
    assert bjork["genres"] == ["Electronic", "Pop", "Rock"]
    assert bjork["spotify_artist_id"] == "sp-bjork"


async def test_artists_search_is_accent_and_case_insensitive_substring(api, key, library):
    for term, expected in [("bjork", ["Björk"]), ("BJÖRK", ["Björk"]), ("DVORAK", ["Antonín Dvořák"]),
                           ("night", ["Midnight Oil", "Nightwish"]), ("orjan", ["Ørjan Nilsen"]),
                           ("head", ["Motörhead"])]:
        reply = await get(api, f"{A}/artists", search=term)
        assert [a["name"] for a in reply.data["artists"]] == expected, term
        assert reply.json["pagination"]["total"] == len(expected)


async def test_artists_search_takes_percent_and_underscore_literally(api, key, library):
    reply = await get(api, f"{A}/artists", search="k_s")
    assert [a["name"] for a in reply.data["artists"]] == ["Rock_Star"]
    reply = await get(api, f"{A}/artists", search="00% p")
    assert [a["name"] for a in reply.data["artists"]] == ["100% Pure"]
    reply = await get(api, f"{A}/artists", search='"quoted"')
    assert reply.status == 200 and reply.data["artists"] == []


async def test_short_search_terms_match_the_start_of_names(api, key, library):
    reply = await get(api, f"{A}/artists", search="b")
    assert [a["name"] for a in reply.data["artists"]] == ["Beck", "Björk"]
    reply = await get(api, f"{A}/artists", search="MO")
    assert [a["name"] for a in reply.data["artists"]] == ["Motörhead"]


async def test_artists_by_letter(api, key, library):
    reply = await get(api, f"{A}/artists", letter="m")
    assert [a["name"] for a in reply.data["artists"]] == ["Madonna", "Massive Attack", "Midnight Oil",
                                                          "Motörhead"]
    assert (await get(api, f"{A}/artists", letter="M")).data == reply.data
    reply = await get(api, f"{A}/artists", letter="#")
    assert [a["name"] for a in reply.data["artists"]] == ["!!!", "100% Pure", "1000 Pure", "50 Cent"]
    reply = await get(api, f"{A}/artists", letter="o")  # Ø folds to O
    assert [a["name"] for a in reply.data["artists"]] == ["Ørjan Nilsen", "Other"]
    reply = await get(api, f"{A}/artists", letter="t", search="beat")
    assert [a["name"] for a in reply.data["artists"]] == ["The Beatles"]
    assert (await get(api, f"{A}/artists", letter="all")).json["pagination"]["total"] == len(ARTISTS) + 3
    for bad in ("ab", "1", "é"):
        reply = await get(api, f"{A}/artists", letter=bad)
        assert reply.status == 400
        assert reply.error["message"] == ("letter must be one letter a-z, '#' (names not starting "
                                          "with A-Z) or 'all'.")


async def test_artists_paging_edges(api, key, library):
    total = len(ARTISTS) + 3
    past = await get(api, f"{A}/artists", page=99, limit=10)
    assert past.data["artists"] == []
    assert past.json["pagination"] == {"page": 99, "limit": 10, "total": total, "total_pages": 3,
                                       "has_next": False, "has_prev": True}
    assert (await get(api, f"{A}/artists", letter="m", page=5)).json["pagination"]["total"] == 4
    assert (await get(api, f"{A}/artists", search="night", page=2)).json["pagination"]["total"] == 2
    zero = await get(api, f"{A}/artists", limit=0)
    assert zero.json["pagination"]["limit"] == 1 and len(zero.data["artists"]) == 1
    big = await get(api, f"{A}/artists", limit=1000)
    assert big.json["pagination"]["limit"] == 200 and len(big.data["artists"]) == total
    third = await get(api, f"{A}/artists", page=3, limit=2)
    assert [a["name"] for a in third.data["artists"]] == ["Antonín Dvořák", "Beck"]
    bad = await get(api, f"{A}/artists", page="two")
    assert bad.status == 400 and bad.error["message"] == "page must be an integer, not a string."


async def test_artists_watchlist_filter(api, key, library):
    assert (await get(api, f"{A}/artists", watchlist="watched")).data["artists"] == []
    unwatched = await get(api, f"{A}/artists", watchlist="unwatched")
    assert unwatched.json["pagination"]["total"] == len(ARTISTS) + 3
    bad = await get(api, f"{A}/artists", watchlist="maybe")
    assert bad.status == 400
    assert bad.error["message"] == "watchlist must be one of all, watched, unwatched, not 'maybe'."


async def test_fields_filter_applies_per_object_type(api, key, library):
    reply = await get(api, f"{A}/artists", search="bjork", fields=" id, name ,,nonsense")
    assert reply.data["artists"] == [{"id": reply.data["artists"][0]["id"], "name": "Björk"}]
    bjork = reply.data["artists"][0]["id"]
    detail = await get(api, f"{A}/artists/{bjork}", fields="id,name")
    assert set(detail.data["artist"]) == {"id", "name"}
    assert "title" in detail.data["albums"][0] and "track_count" in detail.data["albums"][0]
    detail = await get(api, f"{A}/artists/{bjork}", fields="name,albums.title")
    assert set(detail.data["artist"]) == {"name"}
    assert [set(a) for a in detail.data["albums"]] == [{"title"}] * 3
    tracks = await get(api, f"{A}/tracks", title="harbor", fields="title")
    assert all(set(t) == {"title"} for t in tracks.data["tracks"])


# --------------------------------------------------------------------- artist detail


async def test_artist_detail_and_albums_ordered_by_year(api, key, library):
    bjork = await artist_id(api, "Björk")
    reply = await get(api, f"{A}/artists/{bjork}")
    assert reply.status == 200
    assert reply.data["artist"]["name"] == "Björk"
    assert [(a["title"], a["year"]) for a in reply.data["albums"]] == [
        ("Debut", 1993), ("Homogenic", 1997), ("Björk Greatest", 1999)]
    homogenic = reply.data["albums"][1]
    assert (homogenic["track_count"], homogenic["duration"], homogenic["artist_id"]) == (3, 560000, bjork)
    assert homogenic["musicbrainz_release_id"] == "mb-homogenic"
    albums = await get(api, f"{A}/artists/{bjork}/albums")
    assert albums.data["albums"] == reply.data["albums"]


async def test_unknown_and_non_integer_ids(api, key, library):
    for path, message in [(f"{A}/artists/999", "Artist 999 not found."),
                          (f"{A}/artists/999/albums", "Artist 999 not found."),
                          (f"{A}/albums/999", "Album 999 not found."),
                          (f"{A}/albums/999/tracks", "Album 999 not found."),
                          (f"{A}/tracks/999", "Track 999 not found."),
                          (f"{A}/artists/{10**22}", f"Artist {10**22} not found.")]:
        reply = await api.get(path)
        assert (reply.status, reply.error["code"], reply.error["message"]) == (404, "NOT_FOUND", message)
    for path, name in [(f"{A}/artists/abc", "artist_id"), (f"{A}/artists/1.5/albums", "artist_id"),
                       (f"{A}/albums/x", "album_id"), (f"{A}/albums/%201/tracks", "album_id"),
                       (f"{A}/tracks/one", "track_id")]:
        reply = await api.get(path)
        assert (reply.status, reply.error["message"]) == (400, f"{name} must be an integer.")


# ---------------------------------------------------------------------------- albums


async def test_album_tracks_ordered_by_disc_then_number(api, key, library):
    bjork = await artist_id(api, "Björk")
    albums = (await get(api, f"{A}/artists/{bjork}/albums")).data["albums"]
    homogenic = next(a["id"] for a in albums if a["title"] == "Homogenic")
    reply = await get(api, f"{A}/albums/{homogenic}/tracks")
    tracks = reply.data["tracks"]
    assert [(t["disc_number"], t["track_number"], t["title"]) for t in tracks] == [
        (1, 1, "Hunter"), (1, 2, "Jóga"), (2, 1, "Bachelorette")]
    assert tracks[1]["artist_name"] == "Björk" and tracks[1]["album_title"] == "Homogenic"
    assert tracks[1]["file_path"] == "/music/Björk/Homogenic/02 - Jóga.flac"
    assert tracks[1]["genres"] == ["Electronic", "Pop"] and tracks[1]["duration"] == 305000
    detail = await get(api, f"{A}/albums/{homogenic}")
    assert detail.data["album"]["title"] == "Homogenic" and detail.data["tracks"] == tracks


async def test_albums_list_search_artist_and_year(api, key, library):
    everything = await get(api, f"{A}/albums", limit=200)
    assert everything.json["pagination"]["total"] == len(ARTISTS) + 6
    titles = [a["title"] for a in everything.data["albums"]]
    assert titles == sorted(titles, key=lambda t: t.lower().replace("ø", "o").replace("ö", "o")
                            .replace("á", "a").replace("í", "i").replace("ř", "r"))
    reply = await get(api, f"{A}/albums", search="homo")
    assert [a["title"] for a in reply.data["albums"]] == ["Homogenic"]
    assert reply.data["albums"][0]["artist_name"] == "Björk"
    bjork = await artist_id(api, "Björk")
    reply = await get(api, f"{A}/albums", artist_id=bjork, year=1997)
    assert [a["title"] for a in reply.data["albums"]] == ["Homogenic"]
    reply = await get(api, f"{A}/albums", year=1999, limit=3, page=2)
    assert reply.json["pagination"]["total"] == len(ARTISTS) and len(reply.data["albums"]) == 3
    bad = await get(api, f"{A}/albums", artist_id="x")
    assert bad.status == 400 and bad.error["message"] == "artist_id must be an integer, not a string."


# ---------------------------------------------------------------------------- tracks


async def test_track_search_ranks_exact_then_prefix_then_substring(api, key, library):
    reply = await get(api, f"{A}/tracks", title="HARBOR")
    titles = [(t["title"], t["artist_name"]) for t in reply.data["tracks"]]
    assert titles == [("Harbor", "Wave Machines"), ("Harbor Lights", "Other"),
                      ("Harbor Lights", "Wave Machines"),
                      ("Harbor Lights (Remastered 2011)", "Wave Machines"),
                      ("Harbor Song", "Various Artists"), ("The Harbor", "Tidal Wave")]
    reply = await get(api, f"{A}/tracks", title="harbor lights", artist="wave machines")
    assert [t["title"] for t in reply.data["tracks"]] == ["Harbor Lights",
                                                          "Harbor Lights (Remastered 2011)"]
    # Artist matches the album artist or the track's own artist tag.
    reply = await get(api, f"{A}/tracks", title="harbor", artist="wave")
    assert [(t["title"], t["artist_name"]) for t in reply.data["tracks"]] == [
        ("Harbor", "Wave Machines"), ("Harbor Lights", "Wave Machines"),
        ("Harbor Lights (Remastered 2011)", "Wave Machines"), ("Harbor Song", "Various Artists"),
        ("The Harbor", "Tidal Wave")]
    song = reply.data["tracks"][3]
    assert song["track_artist"] == "Wavelength"
    reply = await get(api, f"{A}/tracks", artist="Bjork")
    assert len(reply.data["tracks"]) == 5 and reply.data["tracks"][0]["title"] == "Bachelorette"
    reply = await get(api, f"{A}/tracks", title="joga")
    assert [t["title"] for t in reply.data["tracks"]] == ["Jóga"]
    assert reply.json["pagination"] is None


async def test_track_search_edges(api, key, library):
    for params in ({}, {"title": "  ", "artist": ""}):
        reply = await get(api, f"{A}/tracks", **params)
        assert reply.status == 400
        assert reply.error["message"] == "Provide at least 'title' or 'artist' query param."
    reply = await get(api, f"{A}/tracks", title="harbor", limit=0)
    assert len(reply.data["tracks"]) == 1
    assert len((await get(api, f"{A}/tracks", title="harbor", limit=1000)).data["tracks"]) == 6
    # A " - suffix" that matches nothing is dropped and the title tried again.
    reply = await get(api, f"{A}/tracks", title="Hunter - 2011 Remaster")
    assert [t["title"] for t in reply.data["tracks"]] == ["Hunter"]
    reply = await get(api, f"{A}/tracks", title="hu")  # short: start of the title
    assert [t["title"] for t in reply.data["tracks"]] == ["Human Behaviour", "Hunter"]
    reply = await get(api, f"{A}/tracks", artist="ti")
    assert [t["title"] for t in reply.data["tracks"]] == ["The Harbor"]
    reply = await get(api, f"{A}/tracks", title="harbor", artist="w")  # Wave Machines, Wavelength
    assert len(reply.data["tracks"]) == 4
    reply = await get(api, f"{A}/tracks", title="0% p")
    assert [t["title"] for t in reply.data["tracks"]] == ["100% Pure Song"]
    reply = await get(api, f"{A}/tracks", title="k_s")
    assert [t["title"] for t in reply.data["tracks"]] == ["Rock_Star Song"]
    assert (await get(api, f"{A}/tracks", title="♥")).data["tracks"] == []
    assert (await get(api, f"{A}/tracks", title="x", limit="many")).status == 400


async def test_track_by_id(api, key, library):
    found = (await get(api, f"{A}/tracks", title="jóga")).data["tracks"][0]
    reply = await get(api, f"{A}/tracks/{found['id']}")
    assert reply.data["track"] == found
    assert reply.data["track"]["isrc"] == "GBAAN9700011"
    assert reply.data["track"]["spotify_track_id"] == "sp-joga"
    only = await get(api, f"{A}/tracks/{found['id']}", fields="id,format")
    assert only.data["track"] == {"id": found["id"], "format": "FLAC"}


# ---------------------------------------------------------------------- the extras


async def test_recently_added(api, key, library):
    reply = await get(api, f"{A}/recently-added", type="tracks", limit=2)
    assert reply.data["type"] == "tracks"
    assert [t["title"] for t in reply.data["items"]] == ["Harbor Lights", "Harbor Song"]
    albums = await get(api, f"{A}/recently-added")
    assert albums.data["type"] == "albums" and albums.data["items"][0]["title"] == "Other"
    artists = await get(api, f"{A}/recently-added", type="artists", limit=1, fields="name")
    assert artists.data["items"] == [{"name": "Other"}]
    bad = await get(api, f"{A}/recently-added", type="songs")
    assert bad.status == 400
    assert bad.error["message"] == "type must be one of artists, albums, tracks, not 'songs'."


async def test_genres(api, key, library):
    reply = await get(api, f"{A}/genres")
    assert reply.data["source"] == "artists"
    assert reply.data["genres"] == [{"name": "Rock", "count": len(ARTISTS)},
                                    {"name": "Electronic", "count": 1}, {"name": "Pop", "count": 1}]
    albums = await get(api, f"{A}/genres", source="albums")
    assert albums.data["genres"] == [{"name": "Rock", "count": len(ARTISTS)},
                                     {"name": "Pop", "count": 2}, {"name": "Electronic", "count": 1}]
    assert (await get(api, f"{A}/genres", source="tracks")).status == 400


async def test_lookup_by_provider_id(api, key, library):
    reply = await get(api, f"{A}/lookup", type="track", provider="spotify", id="sp-joga")
    assert reply.data["track"]["title"] == "Jóga"
    reply = await get(api, f"{A}/lookup", type="track", provider="isrc", id="GBAAN9700011")
    assert reply.data["track"]["title"] == "Jóga"
    reply = await get(api, f"{A}/lookup", type="album", provider="musicbrainz", id="mb-homogenic")
    assert reply.data["album"]["title"] == "Homogenic"
    reply = await get(api, f"{A}/lookup", type="artist", provider="SPOTIFY", id="sp-bjork", fields="name")
    assert reply.data == {"artist": {"name": "Björk"}}
    missing = await get(api, f"{A}/lookup", type="artist", provider="itunes", id="42")
    assert (missing.status, missing.error["message"]) == (404, "No artist with itunes id 42 in the library.")
    bad = await get(api, f"{A}/lookup", type="album", provider="isrc", id="x")
    assert bad.status == 400
    assert bad.error["message"] == "provider must be one of spotify, itunes, deezer, musicbrainz, not 'isrc'."
    assert (await get(api, f"{A}/lookup", type="track", provider="spotify")).status == 400


async def test_stats_here_and_in_system_stats(api, key, core):
    empty = await get(api, f"{A}/stats")
    assert empty.data["artists"] == 0 and empty.data["last_update"] is None
    await core.library.store.save([record("A", "B", "C"), record("A", "B", "D", number=2),
                                   record("E", "F", "G")])
    reply = await get(api, f"{A}/stats")
    assert (reply.data["artists"], reply.data["albums"], reply.data["tracks"]) == (2, 2, 3)
    assert reply.data["database_size_mb"] > 0 and reply.data["last_update"].endswith("+00:00")
    system = await api.get("/api/v1/system/stats")
    assert system.data["library"] == {"artists": 2, "albums": 2, "tracks": 3}
    assert system.data["database"]["last_update"] == reply.data["last_update"]


# ------------------------------------------------------------------------------ scans


async def test_scan_endpoint_runs_one_scan_at_a_time_and_reports_progress(api, key, core, music,
                                                                         monkeypatch):
    idle = await api.get(f"{A}/scan")
    assert idle.data["state"] == "idle" and idle.data["job_id"] is None
    make(music / "A" / "B" / "01.flac", "flac", seconds=0.2, title="One", artist="A", album="B")
    make(music / "A" / "B" / "02.mp3", "mp3", seconds=0.2, title="Two", artist="A", album="B")
    (music / "A" / "B" / "03.flac").write_bytes(b"broken")
    gate = asyncio.Event()
    original = scanner_module.Scanner._scan_chunk

    async def held(self, *args, **kwargs):
        await gate.wait()
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(scanner_module.Scanner, "_scan_chunk", held)
    started = await api.post(f"{A}/scan")
    assert started.status == 202
    assert started.data["state"] == "running" and started.data["job_id"]
    conflict = await api.post(f"{A}/scan")
    assert conflict.status == 409 and conflict.error["code"] == "CONFLICT"
    assert started.data["job_id"] in conflict.error["message"]
    running = await api.get(f"{A}/scan")
    assert running.data["state"] == "running" and running.data["job_id"] == started.data["job_id"]
    gate.set()
    await core.jobs.wait("library_scan")
    done = await api.get(f"{A}/scan")
    assert done.data["state"] == "completed" and done.data["finished_at"]
    assert (done.data["files_total"], done.data["files_seen"], done.data["files_read"],
            done.data["files_skipped"], done.data["errors"]) == (3, 3, 2, 1, 0)
    assert done.data["music_dir"] == str(music)
    tracks = await get(api, f"{A}/tracks", artist="a")
    assert sorted(t["title"] for t in tracks.data["tracks"]) == ["One", "Two"]
    activity = (await api.get("/api/v1/system/activity")).data["activities"]
    assert activity[0]["type"] == "library.scan_completed"
    assert activity[0]["message"].startswith("3 files: 2 read")


async def test_scan_without_music_folder_is_a_conflict(api, key, music):
    music.rmdir()
    reply = await api.post(f"{A}/scan")
    assert reply.status == 409
    assert reply.error["message"].startswith(f"The music folder {music} does not exist")


# ---------------------------------------------------------------------- answer cache


async def schedules_stored(core) -> None:
    """Wait for the writes the schedules make just after start-up (their first due times):
    a commit between a cache test's two requests would rightly empty the cache."""
    kinds = [core.wishlist.schedule.kind, core.watchlist.schedule.kind,
             core.backups.schedule.kind]
    sql = f"SELECT COUNT(*) FROM job_schedule WHERE kind IN ({', '.join('?' * len(kinds))})"
    for _ in range(1000):
        if await core.db.fetchval(sql, kinds) == len(kinds):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the schedules of {kinds} never stored their next run")


async def test_answers_come_from_the_cache_until_the_library_changes(api, key, library):
    await schedules_stored(library)
    cache = library.library.queries.cache
    first = await get(api, f"{A}/artists", search="wave")
    hits = cache.hits
    again = await get(api, f"{A}/artists", search="wave")
    assert cache.hits == hits + 1 and again.json == first.json
    # An import (the store's write) is seen by the very next request.
    await library.library.store.save([record("Wave Riders", "Surf", "Harbor Tide")])
    after_import = await get(api, f"{A}/artists", search="wave")
    assert [a["name"] for a in after_import.data["artists"]] == ["Tidal Wave", "Wave Machines",
                                                                "Wave Riders"]
    assert after_import.json["pagination"]["total"] == 3
    stats = await get(api, f"{A}/stats")
    track_id = (await get(api, f"{A}/tracks", title="harbor tide")).data["tracks"][0]["id"]
    await library.library.store.remove_tracks([track_id])
    assert (await get(api, f"{A}/stats")).data["tracks"] == stats.data["tracks"] - 1
    assert (await get(api, f"{A}/artists", search="wave")).json["pagination"]["total"] == 2


async def test_the_cache_sees_writes_of_another_process(api, key, library):
    """``soulsync scan`` beside the daemon writes through a connection of its own."""
    import sqlite3

    before = await get(api, f"{A}/artists", search="wave")
    assert before.data["artists"][0]["name"] == "Tidal Wave"
    # A busy daemon may hold the write lock for a moment, as it would beside a real `soulsync scan`.
    other = sqlite3.connect(library.db.path, isolation_level=None, timeout=30)
    try:
        other.execute("UPDATE artists SET name = 'Tidal Wave Two' WHERE name = 'Tidal Wave'")
    finally:
        other.close()
    after = await get(api, f"{A}/artists", search="wave")
    assert after.data["artists"][0]["name"] == "Tidal Wave Two"


async def test_the_cache_is_emptied_by_a_scan(api, key, core, music):
    make(music / "A" / "B" / "01.flac", "flac", seconds=0.2, title="One", artist="A", album="B")
    await api.post(f"{A}/scan")
    await core.jobs.wait("library_scan")
    assert (await get(api, f"{A}/stats")).data["tracks"] == 1
    first = await get(api, f"{A}/tracks", artist="a")
    assert [t["title"] for t in first.data["tracks"]] == ["One"]
    make(music / "A" / "B" / "02.flac", "flac", seconds=0.2, title="Two", artist="A", album="B")
    await api.post(f"{A}/scan")
    await core.jobs.wait("library_scan")
    second = await get(api, f"{A}/tracks", artist="a")
    assert sorted(t["title"] for t in second.data["tracks"]) == ["One", "Two"]
    assert (await get(api, f"{A}/stats")).data["tracks"] == 2


async def test_no_cache_requests_are_computed_afresh(api, key, library):
    cache = library.library.queries.cache
    await get(api, f"{A}/artists", letter="b")
    hits, size = cache.hits, cache.size
    reply = await api.get(f"{A}/artists", params={"letter": "b"}, headers={"Cache-Control": "no-cache"})
    assert reply.status == 200 and [a["name"] for a in reply.data["artists"]] == ["Beck", "Björk"]
    assert (cache.hits, cache.size) == (hits, size)


async def test_cache_off_computes_every_answer(api, key, library):
    cache = library.library.queries.cache
    await get(api, f"{A}/artists", letter="b")
    assert cache.size > 0
    reply = await api.patch("/api/v1/settings", {"library.answer_cache_mb": 0})
    assert reply.status == 200, reply.json
    assert (cache.max_bytes, cache.size) == (0, 0)
    for _ in range(2):
        assert (await get(api, f"{A}/artists", letter="b")).json["pagination"]["total"] == 2
    assert cache.size == 0 and cache.hits == 0


async def test_the_cache_never_keeps_an_api_key_given_in_the_query(api, key, library):
    await schedules_stored(library)
    cache = library.library.queries.cache
    reply = await api.get(f"{A}/artists", auth=False, params={"search": "wave", "api_key": key})
    assert reply.status == 200
    assert list(cache._entries) == ["/api/v1/library/artists?search=wave"]
    hits = cache.hits
    assert (await get(api, f"{A}/artists", search="wave")).json == reply.json  # the same answer
    assert cache.hits == hits + 1


async def raw_body(api, path: str, **headers: str) -> bytes:
    """Return the body of a GET exactly as sent (the API client of the tests parses JSON)."""
    async with api.client.get(path, headers={"Authorization": f"Bearer {api.key}", **headers}) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.read()


async def test_answers_with_the_cache_off_are_the_bytes_of_those_with_it_on(api, key, library):
    # Four requests a query: more than the default read limit allows in a minute.
    assert (await api.patch("/api/v1/settings", {"api.rate_limits.read": 1000})).status == 200
    await schedules_stored(library)
    bjork = await artist_id(api, "Björk")
    homogenic = (await get(api, f"{A}/albums", search="homogenic")).data["albums"][0]["id"]
    paths = [f"{A}/artists?limit=5&page=2", f"{A}/artists?search=wave", f"{A}/artists?search=b",
             f"{A}/artists?letter=m", f"{A}/artists?watchlist=unwatched&letter=b",
             f"{A}/artists?fields=id,name", f"{A}/artists/{bjork}", f"{A}/artists/{bjork}/albums",
             f"{A}/albums?search=greatest&limit=3", f"{A}/albums/{homogenic}",
             f"{A}/albums/{homogenic}/tracks", f"{A}/tracks?title=harbor&artist=wave",
             f"{A}/tracks?title=harbor lights - live", f"{A}/tracks?artist=wa",
             f"{A}/tracks?title=h&artist=wave", f"{A}/recently-added?type=tracks&limit=4",
             f"{A}/genres", f"{A}/lookup?provider=isrc&id=GBAAN9700011&type=track"]
    cached = {}
    for path in paths:
        computed = await raw_body(api, path)
        assert await raw_body(api, path) == computed, path  # the second one from the cache
        cached[path] = computed
    assert library.library.queries.cache.hits >= len(paths)
    reply = await api.patch("/api/v1/settings", {"library.answer_cache_mb": 0})
    assert reply.status == 200, reply.json
    for path in paths:
        assert await raw_body(api, path) == cached[path], path
        assert await raw_body(api, path, **{"Cache-Control": "no-cache"}) == cached[path], path
    assert library.library.queries.cache.size == 0
