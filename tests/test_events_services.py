"""What the services publish: library scans and changes, the wishlist, playlist sync (the
download, health, settings and key events are in test_events.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soulsync_core.events import Subscription
from tests import audio
from tests.test_watchlist import NOW, QUIET, Clock, Discography
from tests.test_watchlist import plugin as watchlist_plugin


async def collect_until(subscription: Subscription, last: str) -> list[Any]:
    """Return the events of ``subscription`` up to and including the first of type ``last``."""
    events = []
    while True:
        item = await subscription.next()
        assert item is not None
        events.append(item.event)
        if item.event.type == last:
            return events


async def test_a_scan_publishes_started_progress_finished_and_library_changed(soulsync_factory,
                                                                             music: Path):
    (music / "Band" / "Album").mkdir(parents=True)
    audio.write_flac(music / "Band" / "Album" / "01 - Song.flac")
    api = await soulsync_factory(environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(music)})
    subscription, _ = api.core.events.subscribe(("library.*",))
    started = await api.post("/api/v1/library/scan")
    assert started.status == 202, started.json
    events = await collect_until(subscription, "library.changed")
    kinds = [e.type for e in events]
    assert kinds[0] == "library.scan.started" and kinds[-2:] == ["library.scan.finished",
                                                                 "library.changed"]
    assert set(kinds[1:-2]) <= {"library.scan.progress"}
    finished = events[-2].data
    status = (await api.get("/api/v1/library/scan")).data
    assert finished["state"] == "completed" and finished["files_read"] == 1
    assert set(finished) == set(status) and finished["job_id"] == status["job_id"]
    assert events[-1].data == {"source": "scan", "files_read": 1, "files_removed": 0}


async def test_wishlist_added_carries_the_listed_track_and_removed_its_id(soulsync_factory):
    api = await soulsync_factory()
    subscription, _ = api.core.events.subscribe(("wishlist.*",))
    body = {"track_data": {"id": "sp:1", "name": "Digital Love", "artists": ["Daft Punk"]},
            "failure_reason": "No sources found"}
    reply = await api.post("/api/v1/wishlist", body)
    assert reply.status == 201, reply.json
    again = await api.post("/api/v1/wishlist", body)  # an update, not an addition
    assert again.status == 200
    assert (await api.delete("/api/v1/wishlist/sp:1")).status == 200
    added, removed = await subscription.next(), await subscription.next()
    assert added is not None and removed is not None
    assert (added.event.type, added.event.data) == ("wishlist.added", reply.data["track"])
    assert (removed.event.type, removed.event.data) == (
        "wishlist.removed", {"track_id": "sp:1", "profile_id": 1})
    assert subscription.pending() == 0


async def test_playlist_sync_publishes_its_phases_and_the_result(soulsync_factory, music: Path):
    api = await soulsync_factory(environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
                                          "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"})
    subscription, _ = api.core.events.subscribe(("playlist.*",))
    tracks = [{"id": "t1", "name": "A Song Nobody Has", "artists": ["Nobody"], "album": "None",
               "duration_ms": 200_000}]
    reply = await api.post("/api/v1/playlists/road/sync", {"playlist_name": "Road", "tracks": tracks})
    assert reply.status in (200, 202), reply.json
    events = await collect_until(subscription, "playlist.sync.finished")
    phases = [e.data["phase"] for e in events[:-1]]
    assert phases == ["reading the playlist", "matching", "wanting missing tracks",
                      "writing the playlist"]
    result = events[-1].data
    assert result["playlist_id"] == "road" and result["playlist_name"] == "Road"
    assert result["state"] == "completed"
    assert result["totals"]["total"] == 1 and result["totals"]["missing"] == 1
    assert result["m3u8_path"] == str(music / "Playlists" / "Road.m3u8")


async def test_watchlist_scan_publishes_each_release_found_and_the_finished_scan(soulsync_factory):
    disco = Discography()
    api = await soulsync_factory(plugins=[("disco", watchlist_plugin(disco))], environ=QUIET)
    api.core.watchlist.clock = api.core.wishlist.clock = Clock(NOW)
    subscription, _ = api.core.events.subscribe(("watchlist.*",))
    watched = await api.post("/api/v1/watchlist", {"artist_id": "100", "artist_name": "Daft Punk"})
    assert watched.status == 201
    disco.release("100", "new", "New One", "2026-03-08", ["New Song", "Other Song"])
    disco.release("100", "old", "Old One", "2020-01-01", ["Old Song"])
    assert (await api.post("/api/v1/watchlist/scan")).status == 202
    events = await collect_until(subscription, "watchlist.scan.finished")
    found, finished = events[0], events[-1]
    assert [e.type for e in events] == ["watchlist.release_found", "watchlist.scan.finished"]
    assert found.data == {"artist_name": "Daft Punk", "album_id": "new", "album_name": "New One",
                          "release_date": "2026-03-08", "release_type": "single", "tracks": 2,
                          "missing": 2, "added": 2}
    status = (await api.get("/api/v1/watchlist/scan")).data
    assert finished.data["state"] == "completed" and finished.data["job_id"] == status["job_id"]
    assert finished.data["tracks_added"] == status["tracks_added"] == 2


async def test_a_failed_playlist_sync_still_publishes_finished_with_the_error(soulsync_factory,
                                                                           tmp_path: Path):
    missing = tmp_path / "no-such-music"
    api = await soulsync_factory(environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(missing),
                                          "SOULSYNC_PLAYLIST_SYNC__DOWNLOAD_MISSING": "false"})
    subscription, _ = api.core.events.subscribe(("playlist.sync.finished",))
    tracks = [{"id": "t1", "name": "Song", "artists": ["Someone"], "duration_ms": 200_000}]
    reply = await api.post("/api/v1/playlists/road/sync", {"playlist_name": "Road", "tracks": tracks})
    assert reply.status in (200, 202), reply.json
    events = await collect_until(subscription, "playlist.sync.finished")
    finished = events[-1].data
    assert finished["state"] == "failed" and finished["playlist_id"] == "road"
    await api.core.playlists.wait("road")
    job = (await api.get("/api/v1/playlists/road/sync")).data  # the job's own record
    assert job["state"] == "failed" and finished["error"] == job["error"]
    assert str(missing) in finished["error"]
