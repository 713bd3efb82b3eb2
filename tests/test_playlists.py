"""Accounts and playlists through the API: the copy-paste login, listing and reading playlists,
and syncing a playlist into the library (matching, M3U8, wishlist, pins, remembered state).

The playlist source is the in-memory one of :mod:`tests.playlist_fixtures`; the real Spotify
and TIDAL plugins have their own tests against their fakes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from typing import Any

import pytest

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.db import DB_FILENAME
from soulsync_core.models import Playlist, Track
from soulsync_core.playlists import m3u
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests.library_fixtures import record
from tests.playlist_fixtures import NAME, FakePlaylistSource, source_plugin, track

P = "/api/v1/playlists"
A = f"/api/v1/auth/{NAME}"

LIBRARY = [
    # (artist, album, title, seconds)
    ("Daft Punk", "Discovery", "One More Time", 320),
    ("Daft Punk", "Discovery", "Aerodynamic", 212),
    ("Björk", "Homogenic", "Jóga", 305),
    ("The Beatles", "Abbey Road", "Come Together", 259),
    ("Queen", "Live Killers", "Bohemian Rhapsody (Live)", 361),
    ("Queen", "A Night at the Opera", "Bohemian Rhapsody", 355),
]

# What clients send (the public server's shape): artists as strings or {name}, album as a
# string or an object, ids optional.
CLIENT_TRACKS: list[dict[str, Any]] = [
    {"id": "0DiWol3AO6WpXZgp0goxAV", "name": "One More Time", "artists": ["Daft Punk"],
     "album": "Discovery", "duration_ms": 320_000},
    {"id": "3Qm86XLflmIXVm1wcwkgDK", "name": "Joga", "artists": [{"name": "Bjork"}],
     "album": {"name": "Homogenic", "images": [{"url": "https://img.test/h.jpg"}]},
     "duration_ms": 305_500},
    {"name": "Come Together - Remastered 2009", "artists": ["The Beatles"],
     "album": "Abbey Road (Remastered)", "duration_ms": 259_900},
    {"id": "4u7EnebtmKWzUH433cf5Qv", "name": "Bohemian Rhapsody", "artists": ["Queen"],
     "album": "A Night at the Opera", "duration_ms": 354_000},
    {"id": "7ouMYWpwJ422jRcDASZB7P", "name": "A Song Nobody Has", "artists": ["Nobody At All"],
     "album": "Nowhere", "duration_ms": 200_000},
]


@pytest.fixture
def plugin() -> tuple[Any, list[FakePlaylistSource]]:
    return source_plugin()


@pytest.fixture
def make_api(aiohttp_client, tmp_path, music, plugin):
    """Start a daemon (the same data dir each time: a second call is a restart)."""

    async def make(key: str | None = None, **settings: str) -> ApiClient:
        env = {"SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
               "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"}
        env.update({f"SOULSYNC_{k.upper()}": v for k, v in settings.items()})
        core = await Core.open(tmp_path / "data", environ=env, entry_points=False,
                               plugins=[(NAME, plugin[0])])
        client = await aiohttp_client(create_app(core))
        api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
        if key is None:
            await api.bootstrap()
        else:
            api.key = key
        return api

    return make


@pytest.fixture
async def api(make_api, music) -> ApiClient:
    api = await make_api()
    records = [record(artist, album, title, folder=str(music / artist / album), number=i + 1,
                      duration=seconds * 1000)
               for i, (artist, album, title, seconds) in enumerate(LIBRARY)]
    await api.core.library.store.save(records)
    return api


@pytest.fixture
def source(plugin) -> FakePlaylistSource:
    return plugin[1][-1]


async def connect(api: ApiClient, source: FakePlaylistSource) -> None:
    started = await api.get(A)
    assert started.status == 200, started.json
    reply = await api.post(A, {"redirect_url": source.approve(started.data["url"])})
    assert reply.status == 200, reply.json


async def library_id(api: ApiClient, title: str, artist: str) -> int:
    reply = await api.get("/api/v1/library/tracks", params={"title": title, "artist": artist})
    return next(t["id"] for t in reply.data["tracks"] if t["title"] == title)


async def sync(api: ApiClient, playlist_id: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(f"{P}/{playlist_id}/sync", body)
    assert reply.status == 202, reply.json
    assert reply.data["playlist_id"] == playlist_id
    await api.core.playlists.wait(playlist_id)
    status = await api.get(f"{P}/{playlist_id}/sync")
    assert status.status == 200, status.json
    assert status.data["state"] == "completed", status.data
    return status.data


# ------------------------------------------------------------------------------ accounts


async def test_copy_paste_login_stores_tokens_in_sqlite_and_never_shows_them(api, source, tmp_path):
    started = await api.get(A)
    assert started.status == 200, started.json
    data = started.data
    assert data["account"]["connected"] is False
    assert data["redirect_uri"] == "http://127.0.0.1:8008/auth/fakemusic/callback"
    assert data["url"].startswith("https://accounts.fakemusic.test/authorize?") and data["state"]

    redirect = source.approve(data["url"])
    reply = await api.post(A, {"redirect_url": redirect})
    assert reply.status == 200, reply.json
    assert reply.data["account"] == {"connected": True, "user_id": "alice", "display_name": "Alice",
                                     "scopes": ["playlist-read"]}
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        assert db.execute("SELECT key FROM account_data WHERE account = ?", (NAME,)).fetchall() == [
            ("tokens",)]  # the finished login's state is gone
    assert (await api.get(A)).data["account"]["connected"] is True
    settings = await api.get("/api/v1/settings")
    assert "at-" not in json.dumps(settings.json)
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert feed[0]["type"] == "account.connected" and "Alice" in feed[0]["message"]
    assert (await api.get("/api/v1/system/status")).data["services"][NAME] is True

    out = await api.delete(A)
    assert out.status == 200 and out.data["account"]["connected"] is False
    assert (await api.get("/api/v1/system/status")).data["services"][NAME] is False


async def test_login_with_a_bare_code_and_bad_answers(api, source):
    started = (await api.get(A)).data
    code = source.approve(started["url"]).split("code=")[1].split("&")[0]
    assert (await api.post(A, {"code": code})).data["account"]["connected"] is True

    started = (await api.get(A)).data
    other = source.approve(started["url"]).replace(started["state"], "someone-elses-state")
    wrong = await api.post(A, {"redirect_url": other})
    assert wrong.status == 400 and "another login attempt" in wrong.error["message"]
    empty = await api.post(A, {})
    assert empty.status == 400 and "redirect_url" in empty.error["message"]
    unknown = await api.get("/api/v1/auth/myspace")
    assert unknown.status == 404 and NAME in unknown.error["message"]


async def test_the_callback_finishes_a_login_reaching_the_daemon(api, source):
    started = (await api.get(A)).data
    path = source.approve(started["url"]).removeprefix("http://127.0.0.1:8008")
    page = await api.client.get(path)  # the browser: no API key
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "connected to Fakemusic as Alice" in await page.text()
    again = await api.client.get(path)  # the same address twice: that login is over
    assert again.status == 400 and "No login is in progress" in await again.text()
    assert (await api.get(A)).data["account"]["connected"] is True
    assert (await api.client.get("/auth/myspace/callback?code=x")).status == 404


# ----------------------------------------------------------------------------- listing


async def test_playlists_need_a_connected_account_and_a_known_source(api, source):
    source.playlists["pl1"] = Playlist("pl1", "Road Trip", "alice", tracks=[
        track("0DiWol3AO6WpXZgp0goxAV", "One More Time", "Daft Punk", "Discovery"),
        Track("", "My Demo", ["Me"], "Local Files", 90_000),
        Track("5ZULPHQ3hHfjUiPsnwNx4U", "  ", ["Nobody"], "Untitled", 60_000)])  # no title: left out
    refused = await api.get(P, params={"source": NAME})
    assert refused.status == 401 and refused.error["code"] == "NOT_AUTHENTICATED"
    assert f"soulsync auth {NAME}" in refused.error["message"]
    other = await api.get(P, params={"source": "napster"})
    assert other.status == 400 and other.error["message"] == f"source must be one of: '{NAME}'."

    await connect(api, source)
    listed = await api.get(P, params={"source": NAME})
    assert listed.status == 200, listed.json
    assert listed.data == {"source": NAME, "playlists": [
        {"id": "pl1", "name": "Road Trip", "owner": "alice", "track_count": 3, "image_url": None}]}

    one = await api.get(f"{P}/pl1", params={"source": NAME})
    assert one.status == 200, one.json
    assert one.data["playlist"]["total_tracks"] == 2  # the source gave no total: the tracks shown
    assert one.data["playlist"]["tracks"] == [
        {"id": "0DiWol3AO6WpXZgp0goxAV", "name": "One More Time", "artists": ["Daft Punk"],
         "album": "Discovery", "duration_ms": 180_000, "image_url": None},
        {"id": "", "name": "My Demo", "artists": ["Me"], "album": "Local Files",
         "duration_ms": 90_000, "image_url": None}]
    missing = await api.get(f"{P}/nope", params={"source": NAME})
    assert missing.status == 404 and missing.error["message"] == "Playlist not found."


# -------------------------------------------------------------------------------- sync


async def test_sync_matches_the_library_writes_m3u8_and_wishes_for_the_rest(api, music):
    result = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert result["totals"] == {"total": 5, "matched": 4, "missing": 1, "reused": 0,
                                     "wishlisted": 1, "downloading": 0, "downloaded": 0,
                                     "in_m3u8": 4}
    by_name = {t["track"]["name"]: t for t in result["tracks"]}
    studio = await library_id(api, "Bohemian Rhapsody", "Queen")
    assert by_name["Bohemian Rhapsody"]["library_track_id"] == studio  # not the live version
    assert by_name["Joga"]["status"] == "matched" and by_name["Joga"]["track"]["image_url"] == (
        "https://img.test/h.jpg")
    assert by_name["Come Together - Remastered 2009"]["track"]["id"] == ""
    assert by_name["A Song Nobody Has"].items() >= {"status": "missing", "action": "wishlist",
                                                    "library_track_id": None}.items()

    playlist = music / "Playlists" / "Road Trip.m3u8"
    assert result["m3u8_path"] == str(playlist)
    text = playlist.read_text(encoding="utf-8")
    assert text.splitlines()[:3] == ["#EXTM3U", "#EXTINF:320,Daft Punk - One More Time",
                                     "../Daft Punk/Discovery/01 - One More Time.flac"]
    assert [e.path for e in m3u.read_entries(playlist)] == [
        "../Daft Punk/Discovery/01 - One More Time.flac", "../Björk/Homogenic/03 - Jóga.flac",
        "../The Beatles/Abbey Road/04 - Come Together.flac",
        "../Queen/A Night at the Opera/06 - Bohemian Rhapsody.flac"]

    wishlist = (await api.get("/api/v1/wishlist")).data["tracks"]
    assert [(w["track_name"], w["source_type"]) for w in wishlist] == [("A Song Nobody Has", "playlist")]
    assert wishlist[0]["source_info"].items() >= {"playlist_name": "Road Trip",
                                                  "playlist_id": "road"}.items()
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert feed[0]["type"] == "playlist.synced" and "4 of 5" in feed[0]["message"]


async def test_resync_of_an_unchanged_playlist_does_no_matching(api, monkeypatch):
    await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    asked: list[int] = []
    matcher = api.core.playlists._matcher
    real = matcher.match_many

    async def counting(wanted):
        asked.append(len(wanted))
        return await real(wanted)

    monkeypatch.setattr(matcher, "match_many", counting)
    again = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert asked == [0] and again["totals"]["reused"] == 5 and again["totals"]["matched"] == 4

    # A new library track: only the entry that was missing is looked for again.
    await api.core.library.store.save([record("Nobody At All", "Nowhere", "A Song Nobody Has",
                                              folder="/elsewhere/Nowhere", duration=200_000)])
    third = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert asked == [0, 1] and third["totals"]["matched"] == 5 and third["totals"]["reused"] == 4


async def test_sync_state_survives_a_restart(api, make_api):
    await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    key = api.key
    await api.client.close()
    restarted = await make_api(key=key)
    status = await restarted.get(f"{P}/road/sync")
    assert status.status == 200 and status.data["totals"]["matched"] == 4
    assert status.data["playlist_name"] == "Road Trip" and len(status.data["tracks"]) == 5


async def test_a_pinned_match_wins_in_later_syncs(api, music):
    await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    live = await library_id(api, "Bohemian Rhapsody (Live)", "Queen")
    pinned = await api.post(f"{P}/road/sync/matches", {"position": 3, "track_id": live})
    assert pinned.status == 200, pinned.json
    assert pinned.data.items() >= {"library_track_id": live, "method": "pinned", "pinned": True}.items()
    assert "Live Killers" in (music / "Playlists" / "Road Trip.m3u8").read_text()

    again = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert again["tracks"][3].items() >= {"library_track_id": live, "method": "pinned"}.items()

    none = await api.post(f"{P}/road/sync/matches", {"position": 0, "track_id": None})
    assert none.status == 200 and none.data["status"] == "missing"
    third = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert third["tracks"][0]["status"] == "missing" and third["totals"]["matched"] == 3

    unpinned = await api.post(f"{P}/road/sync/matches", {"position": 0, "pinned": False})
    assert unpinned.status == 200 and unpinned.data["pinned"] is False
    fourth = await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    assert fourth["tracks"][0]["status"] == "matched"

    for body, status in (({"position": 9, "track_id": live}, 404),
                         ({"position": 0, "track_id": 999_999}, 404),
                         ({"position": 0}, 400)):
        reply = await api.post(f"{P}/road/sync/matches", body)
        assert reply.status == status, (body, reply.json)
    assert (await api.post(f"{P}/never/sync/matches", {"position": 0, "track_id": live})).status == 404


async def test_append_mode_keeps_what_the_file_held(api, music):
    playlist = music / "Playlists" / "Mix.m3u8"
    playlist.parent.mkdir()
    playlist.write_text("#EXTM3U\n#EXTINF:100,Someone - Added By Hand\n../Someone/x.mp3\n")
    await sync(api, "mix", {"playlist_name": "Mix", "tracks": CLIENT_TRACKS[:1], "sync_mode": "append"})
    entries = m3u.read_entries(playlist)
    assert [e.path for e in entries] == ["../Someone/x.mp3", "../Daft Punk/Discovery/01 - One More Time.flac"]
    assert entries[0].label == "Someone - Added By Hand"

    await sync(api, "mix", {"playlist_name": "Mix", "tracks": CLIENT_TRACKS[:1]})  # replace
    assert [e.path for e in m3u.read_entries(playlist)] == [
        "../Daft Punk/Discovery/01 - One More Time.flac"]


async def test_sync_fetches_the_tracks_from_the_source_and_409_while_running(api, source, music):
    source.playlists["pl1"] = Playlist("pl1", "From The Source", "alice", snapshot_id="s1", tracks=[
        track("0DiWol3AO6WpXZgp0goxAV", "One More Time", "Daft Punk", "Discovery", 320)])
    refused = await api.post(f"{P}/pl1/sync", {"source": NAME})
    assert refused.status == 401 and refused.error["code"] == "NOT_AUTHENTICATED"
    await connect(api, source)

    source.block = asyncio.Event()
    first = await api.post(f"{P}/pl1/sync", {"source": NAME})
    assert first.status == 202, first.json
    second = await api.post(f"{P}/pl1/sync", {"source": NAME})
    assert second.status == 409 and second.error["code"] == "CONFLICT"
    running = await api.get(f"{P}/pl1/sync")
    assert running.data["state"] == "running"
    other = await api.post(f"{P}/other/sync", {"playlist_name": "Other", "tracks": CLIENT_TRACKS[:1]})
    assert other.status == 202  # another playlist syncs meanwhile
    source.block.set()
    await api.core.playlists.wait("pl1")
    done = (await api.get(f"{P}/pl1/sync")).data
    assert done["state"] == "completed" and done["playlist_name"] == "From The Source"
    assert done["source"] == NAME and done["totals"]["matched"] == 1
    assert (music / "Playlists" / "From The Source.m3u8").exists()

    gone = await api.post(f"{P}/gone/sync", {"source": NAME})
    assert gone.status == 202
    await api.core.playlists.wait("gone")
    failed = (await api.get(f"{P}/gone/sync")).data
    assert failed["state"] == "failed" and "not found" in failed["error"]


@pytest.mark.parametrize(("body", "message"), [
    ({}, "Missing 'playlist_name' or 'tracks' in body"),
    ({"tracks": CLIENT_TRACKS}, "Missing 'playlist_name' or 'tracks' in body"),
    ({"playlist_name": "X", "tracks": []}, "tracks must be a non-empty list"),
    ({"playlist_name": "X", "tracks": "abc"}, "tracks must be a non-empty list"),
    ({"playlist_name": "X", "tracks": [{"name": "A"}, {"artists": ["B"]}]}, "tracks[1].name is required"),
    ({"playlist_name": "X", "tracks": [{"name": "A", "artists": "B"}]}, "tracks[0].artists must be a list"),
    ({"playlist_name": "X", "tracks": CLIENT_TRACKS, "sync_mode": "merge"}, "sync_mode must be one of"),
    ({"source": "napster"}, "source must be one of"),
])
async def test_bad_sync_requests_are_400_and_store_nothing(api, body, message):
    reply = await api.post(f"{P}/road/sync", body)
    assert reply.status == 400 and message in reply.error["message"], reply.json
    assert (await api.get(f"{P}/road/sync")).status == 404


async def test_a_renamed_playlist_replaces_its_old_file_and_names_do_not_collide(api, music):
    await sync(api, "a", {"playlist_name": "Chill", "tracks": CLIENT_TRACKS[:1]})
    await sync(api, "b", {"playlist_name": "Chill", "tracks": CLIENT_TRACKS[1:2]})
    folder = music / "Playlists"
    assert sorted(p.name for p in folder.iterdir()) == ["Chill (b).m3u8", "Chill.m3u8"]
    await sync(api, "a", {"playlist_name": "Chill Out", "tracks": CLIENT_TRACKS[:1]})
    assert sorted(p.name for p in folder.iterdir()) == ["Chill (b).m3u8", "Chill Out.m3u8"]


# ------------------------------------------------------------------- the music folder


async def failed_sync(api: ApiClient, playlist_id: str) -> dict[str, Any]:
    reply = await api.post(f"{P}/{playlist_id}/sync", {"playlist_name": "Road Trip",
                                                       "tracks": CLIENT_TRACKS})
    assert reply.status == 202, reply.json
    await api.core.playlists.wait(playlist_id)
    status = (await api.get(f"{P}/{playlist_id}/sync")).data
    assert status["state"] == "failed", status
    return status


async def test_sync_without_the_music_folder_fails_and_creates_nothing(api, music):
    shutil.rmtree(music)  # an unmounted share
    status = await failed_sync(api, "road")
    assert status["error"] == (f"The music folder {music} does not exist or is not a folder. "
                               "Set library.music_dir to the folder that holds your music.")
    assert not music.exists()
    assert (await api.get("/api/v1/wishlist")).data["tracks"] == []  # nothing wanted either


async def test_a_playlists_dir_whose_parent_is_missing_is_not_created(make_api, tmp_path):
    target = tmp_path / "nas" / "Playlists"
    api = await make_api(library__playlists_dir=str(target))
    status = await failed_sync(api, "road")
    assert status["error"] == (f"The folder {target.parent} (where the playlists folder "
                               "Playlists goes) does not exist. Create it, or set "
                               "library.playlists_dir to an existing folder.")
    assert not target.parent.exists()
    target.parent.mkdir()
    assert (await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
            )["m3u8_path"] == str(target / "Road Trip.m3u8")


async def test_a_pin_after_the_music_folder_went_away_is_kept_but_writes_nothing(api, music):
    await sync(api, "road", {"playlist_name": "Road Trip", "tracks": CLIENT_TRACKS})
    shutil.rmtree(music)
    reply = await api.post(f"{P}/road/sync/matches", {"position": 0, "track_id": None})
    assert reply.status == 409 and reply.error["message"].startswith(
        f"The pin is saved, but the M3U8 was not written: The music folder {music} does not exist")
    assert not music.exists()
    status = (await api.get(f"{P}/road/sync")).data
    assert status["tracks"][0]["pinned"] is True


def test_an_entry_naming_no_artist_is_keyed_by_its_title_and_album():
    # A pasted playlist may hold such entries; keying them crashed the whole sync job.
    from soulsync_core.playlists.tracks import LOCAL_ID_PREFIX, key_of

    def entry(name: str, album: str) -> dict[str, Any]:
        return {"id": LOCAL_ID_PREFIX + name, "name": name, "artists": [], "album": {"name": album}}

    assert key_of(entry("Intro", "LP")) == key_of(entry("intro", "lp"))
    assert key_of(entry("Intro", "LP")) != key_of(entry("Outro", "LP"))
