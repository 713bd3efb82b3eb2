"""The wishlist: the list and its validation, runs, back-off on a controlled clock, restarts."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import soulsync_slskd.plugin
from soulsync_core.core import Core
from soulsync_core.db import DB_FILENAME
from soulsync_core.downloads.models import Wanted
from soulsync_core.downloads.service import NoDownloadClient
from soulsync_core.wishlist import JOB_KIND
from tests.download_fixtures import (
    TRACK,
    ManualClock,
    catalogue,
    environ,
    live_version_first,
    metadata_plugin,
    open_api,
)
from tests.fakes.base import load_wire
from tests.fakes.slskd import SLSKD, make_app
from tests.library_fixtures import record

W = "/api/v1/wishlist"
QUIET = {"SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0", "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0"}


def track(track_id: str = "t1", name: str = "One More Time", artist: str = "Daft Punk",
          album: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": track_id, "name": name, "artists": [{"name": artist}],
            "album": album or {"name": "Discovery", "album_type": "album"}, **extra}


class Clock:
    """The services' wall clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeDownloads:
    """Stands in for the download pipeline: each request ends as ``outcome`` says
    (``completed``, ``failed``, or ``hang`` until :meth:`finish`)."""

    def __init__(self, core: Core, outcome: str = "failed"):
        self.core = core
        self.outcome = outcome
        self.rows: dict[int, SimpleNamespace] = {}
        self.requested: list[Wanted] = []
        self.requested_event = asyncio.Event()
        self.changed = asyncio.Condition()
        self.unavailable = False
        self.watched: set[int] = set()

    async def wait_requests(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.requested) >= count)

    async def request(self, wanted: Wanted) -> tuple[SimpleNamespace, bool]:
        if self.unavailable:
            raise NoDownloadClient("Soulseek client not configured: set soulseek.slskd_url.")
        status = {"hang": "downloading"}.get(self.outcome, self.outcome)
        download = SimpleNamespace(id=len(self.rows) + 1, status=status, wanted=wanted,
                                   error="no file matched" if status == "failed" else None)
        self.rows[download.id] = download
        self.requested.append(wanted)
        self.requested_event.set()
        async with self.changed:
            self.changed.notify_all()
        if status == "completed":
            await self.core.wishlist.download_completed(download)  # type: ignore[arg-type]
        return download, True

    async def get(self, download_id: int) -> SimpleNamespace | None:
        # A run reads its download after saving the link to it: tests wait for that.
        self.watched.add(download_id)
        async with self.changed:
            self.changed.notify_all()
        return self.rows.get(download_id)

    async def wait_watched(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.watched) >= count)

    def on_completed(self, listener: Any) -> None:
        pass

    async def finish(self, download_id: int, status: str) -> None:
        self.rows[download_id].status = status
        self.rows[download_id].error = "peer went away" if status == "failed" else None
        if status == "completed":
            await self.core.wishlist.download_completed(self.rows[download_id])  # type: ignore[arg-type]


def fake_pipeline(core: Core, outcome: str = "failed") -> tuple[FakeDownloads, Clock]:
    downloads, clock = FakeDownloads(core, outcome), Clock()
    core.wishlist.downloads = downloads  # type: ignore[assignment]
    core.wishlist.clock = clock
    core.wishlist.poll_seconds = 0.01
    return downloads, clock


def quiet(music: Path) -> dict[str, str]:
    """No schedules; downloads would be filed into ``music`` (a run needs the folder)."""
    return {**QUIET, "SOULSYNC_LIBRARY__MUSIC_DIR": str(music)}


@pytest.fixture
async def api(soulsync_factory, music):
    return await soulsync_factory(environ=quiet(music))


async def add(api, data: dict[str, Any], status: int = 201, **body: Any) -> dict[str, Any]:
    reply = await api.post(W, {"track_data": data, **body})
    assert reply.status == status, reply.json
    return reply.data


async def listed(api, **params: str) -> list[dict[str, Any]]:
    reply = await api.get(W, params=params or None)
    assert reply.status == 200, reply.json
    return reply.data["tracks"]


async def run(core: Core, *, manual: bool = False, state: str = "completed") -> dict[str, Any]:
    """Run the wishlist; the run must end in ``state`` (``failed``: every track tried failed)."""
    info = await core.wishlist.start_run(manual=manual)
    await core.jobs.wait(JOB_KIND)
    final = await core.jobs.get(info.id)
    assert final is not None and final.state == state, final
    return final.result or {}


# ------------------------------------------------------------------------------ the list


async def test_add_then_same_id_updates_the_same_row(api):
    first = await add(api, track(), failure_reason="missing")
    assert first["created"] is True and first["message"] == "Track added to wishlist."
    row = first["track"]
    assert (row["track_id"], row["spotify_track_id"], row["track_name"], row["artist_name"],
            row["album_name"], row["source_type"], row["retry_count"]) == (
        "t1", "t1", "One More Time", "Daft Punk", "Discovery", "api", 0)
    again = await add(api, track(name="One More Time (Radio Edit)"), status=200)
    assert again["created"] is False and again["track"]["id"] == row["id"]
    assert again["track"]["track_name"] == "One More Time (Radio Edit)"
    assert [t["id"] for t in await listed(api)] == [row["id"]]


async def test_spotify_track_data_string_artists_and_missing_album(api):
    reply = await api.post(W, {"spotify_track_data": {"id": 42, "name": " Aerodynamic ",
                                                      "artists": ["Daft Punk", "Guest"]},
                               "source_type": "playlist"})
    assert reply.status == 201, reply.json
    row = reply.data["track"]
    assert (row["track_id"], row["track_name"], row["artist_name"], row["album_name"],
            row["source_type"]) == ("42", "Aerodynamic", "Daft Punk, Guest", "Aerodynamic", "playlist")
    assert row["track_data"]["artists"] == [{"name": "Daft Punk"}, {"name": "Guest"}]


@pytest.mark.parametrize(("body", "message"), [
    ({}, "Missing 'track_data'"),
    ({"track_data": None}, "Missing 'track_data'"),
    ({"track_data": "t1"}, "track_data must be an object"),
    ({"track_data": ["t1"]}, "track_data must be an object"),
    ({"track_data": {"name": "x", "artists": ["a"]}}, "track_data.id is required"),
    ({"track_data": {"id": "", "name": "x"}}, "track_data.id is required"),
    ({"track_data": {"id": True, "name": "x"}}, "track_data.id is required"),
    ({"track_data": {"id": "t1"}}, "track_data.name is required"),
    ({"spotify_track_data": {"id": "t1", "name": "  "}}, "spotify_track_data.name is required"),
    ({"track_data": {"id": "t1", "name": "x", "artists": "Daft Punk"}}, "track_data.artists must be a list"),
    ({"track_data": {"id": "t1", "name": "x", "artists": [{"id": 1}]}}, "track_data.artists must be a list"),
    ({"track_data": {"id": "t1", "name": "x", "artists": [3]}}, "track_data.artists must be a list"),
    ({"track_data": {"id": "t1", "name": "x", "album": ["Discovery"]}}, "track_data.album must be an object"),
    ({"track_data": {"id": "t1", "name": "x", "duration_ms": "long"}},
     "track_data.duration_ms must be a number"),
    ({"track_data": {"id": "t1", "name": "x", "provider": 5}}, "track_data.provider must be a string"),
    ({"track_data": {"id": "t1", "name": "x"}, "source_info": "x"}, "source_info must be an object"),
    ({"track_data": {"id": "t1", "name": "x"}, "failure_reason": 5}, "failure_reason must be a string"),
])
async def test_every_bad_track_is_a_400_naming_the_field_and_stores_nothing(api, body, message):
    await add(api, track("keep"))
    reply = await api.post(W, body)
    assert reply.status == 400, reply.json
    assert reply.error["code"] == "BAD_REQUEST" and message in reply.error["message"]
    assert [t["track_id"] for t in await listed(api)] == ["keep"]


async def test_malformed_json_is_400(api):
    reply = await api.request("POST", W, raw=b'{"track_data": ')
    assert reply.status == 400 and reply.error["code"] == "BAD_REQUEST"


async def test_categories_paging_order_and_fields(api):
    await add(api, track("a1", "Song A", album={"name": "LP", "album_type": "album"}))
    await add(api, track("s1", "Song S", album={"name": "Single", "album_type": "single"}))
    await add(api, track("n1", "Song N", album={"name": "Loose"}))
    assert [t["track_id"] for t in await listed(api)] == ["a1", "s1", "n1"]  # oldest first
    assert [t["track_id"] for t in await listed(api, category="albums")] == ["a1"]
    assert [t["track_id"] for t in await listed(api, category="singles")] == ["s1", "n1"]
    reply = await api.get(W, params={"limit": "2", "page": "2"})
    assert [t["track_id"] for t in reply.data["tracks"]] == ["n1"]
    assert reply.json["pagination"]["total"] == 3 and reply.json["pagination"]["has_prev"]
    assert await listed(api, fields="track_id, track_name,bogus") == [
        {"track_id": "a1", "track_name": "Song A"}, {"track_id": "s1", "track_name": "Song S"},
        {"track_id": "n1", "track_name": "Song N"}]
    reply = await api.get(W, params={"category": "eps"})
    assert reply.status == 400 and "category must be singles or albums" in reply.error["message"]


async def test_delete_by_track_id(api):
    await add(api, track("t1"))
    reply = await api.delete(f"{W}/t1")
    assert reply.status == 200 and reply.data["message"] == "Track removed from wishlist."
    reply = await api.delete(f"{W}/t1")
    assert reply.status == 404 and reply.error["message"] == "Track not found in wishlist."


# ---------------------------------------------------------------------------------- runs


async def test_failures_back_off_on_the_schedule(api):
    core = api.core
    downloads, clock = fake_pipeline(core, "failed")
    await add(api, track())

    def tries() -> int:
        return len(downloads.requested)

    async def automatic(expect_try: bool) -> None:
        before = tries()
        await run(core, state="failed" if expect_try else "completed")
        assert tries() == before + expect_try, clock.now

    await automatic(True)             # 0 failures: tried
    await automatic(True)             # 1 failure: every run
    row = (await listed(api))[0]
    assert (row["retry_count"], row["failure_reason"]) == (2, "no file matched")
    assert row["last_attempted"] == "2026-03-03T12:00:00+00:00"
    assert row["next_retry_at"] == "2026-03-03T16:00:00+00:00"
    clock.advance(hours=3, minutes=59)
    await automatic(False)            # 2 failures: 4 h
    clock.advance(minutes=1)
    await automatic(True)
    clock.advance(hours=23, minutes=59)
    await automatic(False)            # 3 failures: 24 h
    clock.advance(minutes=1)
    await automatic(True)
    clock.advance(days=6, hours=23)
    await automatic(False)            # 4 failures: 7 days
    clock.advance(hours=1)
    await automatic(True)
    clock.advance(days=7)
    await automatic(True)             # never given up
    assert (await listed(api))[0]["retry_count"] == 6
    status = (await api.get(f"{W}/process")).data
    assert status["state"] == "failed" and status["failed"] == 1 and status["manual"] is False
    assert status["error"] == ("Nothing could be done: 1 item failed (first: Daft Punk - One More "
                               "Time: no file matched).")


async def test_manual_run_ignores_the_back_off_and_backoff_follows_settings(api):
    core = api.core
    downloads, _clock = fake_pipeline(core, "failed")
    await add(api, track())
    for _ in range(2):
        await run(core, state="failed")
    result = await run(core)
    assert result["waiting"] == 1 and len(downloads.requested) == 2
    reply = await api.post(f"{W}/process")
    assert reply.status == 202 and reply.data["message"] == "Wishlist processing started."
    await core.jobs.wait(JOB_KIND)
    assert len(downloads.requested) == 3
    await run(core)
    assert len(downloads.requested) == 3  # 3 failures: 24 h
    reply = await api.patch("/api/v1/settings", {"wishlist.retry_hours_after_3_failures": 0})
    assert reply.status == 200, reply.json
    await run(core, state="failed")
    assert len(downloads.requested) == 4


async def test_completed_download_removes_the_track(api):
    core = api.core
    downloads, _clock = fake_pipeline(core, "completed")
    await add(api, track("t1"))
    await add(api, track("t2", "Digital Love"))
    result = await run(core)
    assert result["downloaded"] == 2 and await listed(api) == []
    assert [w.title for w in downloads.requested] == ["One More Time", "Digital Love"]
    assert downloads.requested[0].album == "Discovery" and downloads.requested[0].artists == ["Daft Punk"]


async def test_a_download_by_any_path_removes_the_matching_track(api):
    await add(api, track("t1"))
    await add(api, track("other", "Digital Love"))
    download = SimpleNamespace(id=99, status="completed", error=None,
                               wanted=Wanted("One More Time", ["Daft Punk"], track_id="elsewhere"))
    await api.core.wishlist.download_completed(download)  # type: ignore[arg-type]
    assert [t["track_id"] for t in await listed(api)] == ["other"]
    activity = (await api.get("/api/v1/system/activity")).data["activities"]
    assert activity[0]["type"] == "wishlist.downloaded"


async def test_tracks_already_in_the_library_are_removed_with_a_note(api):
    core = api.core
    downloads, _clock = fake_pipeline(core, "failed")
    await core.library.store.save([record("Daft Punk", "Discovery", "One More Time")])
    await add(api, track("t1", "One More Time"))
    await add(api, track("t2", "Something Else"))
    result = await run(core)
    assert result["in_library"] == 1 and [w.title for w in downloads.requested] == ["Something Else"]
    assert [t["track_id"] for t in await listed(api)] == ["t2"]
    types = [a["type"] for a in (await api.get("/api/v1/system/activity")).data["activities"]]
    assert "wishlist.in_library" in types and "wishlist.completed" in types


async def test_second_run_while_one_runs_is_409(api):
    core = api.core
    downloads, _clock = fake_pipeline(core, "hang")
    await add(api, track())
    first = await api.post(f"{W}/process")
    assert first.status == 202
    await downloads.wait_watched(1)
    second = await api.post(f"{W}/process")
    assert second.status == 409 and second.error["code"] == "CONFLICT"
    assert first.data["run_id"] in second.error["message"]
    listed_now = await listed(api)
    assert listed_now[0]["download_id"] == 1
    await downloads.finish(1, "completed")
    await core.jobs.wait(JOB_KIND)
    assert await listed(api) == []
    assert (await api.post(f"{W}/process")).status == 202


async def test_concurrency_bounds_the_downloads_in_flight(api):
    core = api.core
    downloads, _clock = fake_pipeline(core, "hang")
    for i in range(5):
        await add(api, track(f"t{i}", f"Song {i}"))
    await api.patch("/api/v1/settings", {"wishlist.concurrency": 2})
    await core.wishlist.start_run()
    await downloads.requested_event.wait()
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(downloads.requested) == 2
    for download_id in (1, 2):
        await downloads.finish(download_id, "failed")
    await downloads.wait_requests(4)
    for download_id in (3, 4):
        await downloads.finish(download_id, "completed")
    await downloads.wait_requests(5)
    await downloads.finish(5, "completed")
    await core.jobs.wait(JOB_KIND)
    assert sorted(t["track_id"] for t in await listed(api)) == ["t0", "t1"]


async def test_no_download_client_fails_the_run_without_counting_failures(api):
    core = api.core
    downloads, _clock = fake_pipeline(core)
    downloads.unavailable = True
    await add(api, track())
    info = await core.wishlist.start_run()
    await core.jobs.wait(JOB_KIND)
    final = await core.jobs.get(info.id)
    assert final is not None and final.state == "failed"
    assert "Soulseek client not configured" in (final.error or "")
    assert (await listed(api))[0]["retry_count"] == 0
    jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
    assert jobs["wishlist"]["state"] == "failed"
    assert "Soulseek client not configured" in jobs["wishlist"]["last_error"]


async def test_real_pipeline_without_client_fails_the_run(api):
    await add(api, track())
    info = await api.core.wishlist.start_run()
    await api.core.jobs.wait(JOB_KIND)
    final = await api.core.jobs.get(info.id)
    assert final is not None and final.state == "failed" and "download client" in (final.error or "")


async def test_stats_count_wishlist_and_watchlist(api):
    core = api.core
    fake_pipeline(core, "failed")
    await add(api, track("t1"))
    await add(api, track("t2", "Two"))
    await run(core, state="failed")
    await add(api, track("t3", "Three"))
    # No metadata provider is installed here, so the API would refuse to watch anyone.
    await core.db.execute(
        "INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, date_added, "
        "updated_at) VALUES ('itunes', '123', 'Daft Punk', 'daft punk', ?, ?)",
        ("2026-03-03T12:00:00+00:00",) * 2)
    stats = (await api.get("/api/v1/system/stats")).data
    assert stats["wishlist"] == {"total": 3, "downloading": 0, "failed": 2}
    assert stats["watchlist"] == {"artists": 1}
    assert stats["downloads"] == {"active": 0, "failed": 0}


# ------------------------------------------------------------------------------ restarts


async def test_restart_during_a_run_loses_nothing_and_leaves_nothing_processing(tmp_path: Path,
                                                                                 music: Path):
    data, crashed = tmp_path / "data", tmp_path / "crashed"
    core = await Core.open(data, environ=quiet(music), entry_points=False)
    try:
        downloads, _clock = fake_pipeline(core, "hang")
        for i in range(3):
            await core.wishlist.add(track(f"t{i}", f"Song {i}"))
        await core.wishlist.start_run()
        await downloads.wait_watched(3)
        # A crash now: the files as they are while the run waits for its downloads.
        crashed.mkdir()
        for suffix in ("", "-wal"):
            source = data / f"{DB_FILENAME}{suffix}"
            if source.exists():
                shutil.copy(source, crashed / source.name)
    finally:
        await core.jobs.shutdown()
        await core.close()

    core = await Core.open(crashed, environ=quiet(music), entry_points=False)
    try:
        assert await core.jobs.recover() == 1
        job = await core.jobs.latest(JOB_KIND)
        assert job is not None and job.state == "interrupted"
        tracks, total = await core.wishlist.page("all", 0, 50)
        assert total == 3 and [t.download_id for t in tracks] == [1, 2, 3]
        # The downloads went on without us: one completed, one failed, one still running.
        downloads, _clock = fake_pipeline(core, "hang")
        for i, status in enumerate(("completed", "failed", "downloading"), start=1):
            downloads.rows[i] = SimpleNamespace(
                id=i, status=status, error="gone" if status == "failed" else None,
                wanted=Wanted(f"Song {i - 1}", ["Daft Punk"]))
        downloads.outcome = "failed"
        result = await run(core)  # one done, two failed: completed, partial
        assert (result["downloaded"], result["waiting"]) == (1, 1)
        tracks, total = await core.wishlist.page("all", 0, 50)
        by_id = {t.track_id: t for t in tracks}
        assert sorted(by_id) == ["t1", "t2"]
        assert by_id["t1"].retry_count == 2 and by_id["t1"].download_id is None  # settled, retried
        assert by_id["t2"].download_id == 3 and by_id["t2"].retry_count == 0     # still running
        await downloads.finish(3, "failed")
        await run(core, state="failed")
        tracks, _total = await core.wishlist.page("all", 0, 50)
        assert {t.track_id: t.download_id for t in tracks} == {"t1": None, "t2": None}
    finally:
        await core.close()


async def test_schedule_first_run_after_a_minute_and_a_missed_run_at_once(tmp_path: Path,
                                                                         music: Path):
    core = await Core.open(tmp_path / "data", environ={"SOULSYNC_WISHLIST__INTERVAL_MINUTES": "30",
                                                       "SOULSYNC_LIBRARY__MUSIC_DIR": str(music)},
                           entry_points=False)
    try:
        downloads, clock = fake_pipeline(core, "completed")
        schedule = core.wishlist.schedule
        assert await schedule._due(1800) == clock.now + timedelta(minutes=1)
        assert await schedule.next_run() == "2026-03-03T12:01:00+00:00"
        # SoulSync was stopped past that time: the run starts at once, the next is persisted.
        await core.wishlist.add(track())
        clock.advance(hours=2)
        task = asyncio.create_task(schedule.run_forever())
        try:
            await downloads.wait_requests(1)
            await core.jobs.wait(JOB_KIND)
            assert await schedule.next_run() == "2026-03-03T14:30:00+00:00"
            assert (await core.wishlist.page("all", 0, 5))[1] == 0
            job = await core.jobs.latest(JOB_KIND)
            assert job is not None and job.params == {"manual": False}
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await core.close()


# ------------------------------------------------- end to end: the real pipeline, fake slskd


async def test_wishlist_track_is_downloaded_through_slskd_and_leaves_the_list(
        aiohttp_client, aiohttp_server, tmp_path: Path):
    slskd_dir, music = tmp_path / "slskd", tmp_path / "music"
    music.mkdir()
    server = await aiohttp_server(make_app(slskd_dir, peers=catalogue(), search_seconds=0.05))
    env = environ(server, slskd_dir, music) | QUIET
    plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
    api = await open_api(aiohttp_client, tmp_path / "data", env, plugins, ManualClock())
    api.core.wishlist.poll_seconds = 0.05
    data = dict(TRACK, artists=[{"name": TRACK["artists"][0]}],
                album={"name": TRACK["album"], "album_type": "album", "release_date": "2001-03-12"})
    await add(api, data)
    assert (await api.post(f"{W}/process")).status == 202
    downloads, fake = api.core.downloads, server.app[SLSKD]
    while api.core.jobs.running(JOB_KIND) is not None:
        await downloads.settle()
        await fake.settle()
        await downloads.poll()
        await downloads.settle()
        await asyncio.sleep(0.05)  # lets the run read its download's new state
    status = (await api.get(f"{W}/process")).data
    assert (status["state"], status["downloaded"], status["failed"]) == ("completed", 1, 0)
    assert await listed(api) == []
    tracks = (await api.get("/api/v1/library/tracks", params={"title": "One More Time"})).data["tracks"]
    assert len(tracks) == 1


async def test_a_run_without_the_music_folder_fails_and_downloads_nothing(soulsync_factory,
                                                                          tmp_path):
    absent = tmp_path / "unmounted" / "music"
    api = await soulsync_factory(environ=quiet(absent))
    downloads, _clock = fake_pipeline(api.core, "completed")
    await add(api, track())
    assert (await api.post(f"{W}/process")).status == 202
    await api.core.jobs.wait(JOB_KIND)
    status = (await api.get(f"{W}/process")).data
    assert status["state"] == "failed"
    assert status["error"] == (f"The music folder {absent} does not exist or is not a folder. "
                               "Set library.music_dir to the folder that holds your music.")
    assert downloads.requested == [] and len(await listed(api)) == 1
    assert not absent.parent.exists()


async def test_shazarrs_body_a_spotify_track_under_spotify_track_data(api):
    """shazarr posts the public server's documented body: ``spotify_track_data`` holding the
    track object exactly as Spotify's search returns it (``external_ids``, album images, uri)."""
    sample = load_wire("spotify", "search_track.GET_v1_search_type_track.json")
    spotify_track = sample["tracks"]["items"][0]
    reply = await api.post(W, {"spotify_track_data": spotify_track})
    assert reply.status == 201, reply.json
    assert reply.data["created"] is True and reply.data["message"] == "Track added to wishlist."
    track = reply.data["track"]
    assert (track["spotify_track_id"], track["track_name"], track["artist_name"],
            track["album_name"]) == (spotify_track["id"], "One More Time", "Daft Punk", "Discovery")
    assert track["track_data"] == spotify_track  # stored whole, as sent
    again = await api.post(W, {"spotify_track_data": spotify_track})
    assert again.status == 200 and again.data["created"] is False
    assert [t["track_id"] for t in await listed(api)] == [spotify_track["id"]]
    # Its ISRC (under external_ids) finds the library's copy even under another title.
    await api.core.library.store.save([record("Daft Punk", "Discovery", "One More Time (Edit)",
                                              isrc=spotify_track["external_ids"]["isrc"])])
    downloads, _clock = fake_pipeline(api.core, "failed")
    result = await run(api.core, manual=True)
    assert result["in_library"] == 1 and downloads.requested == [] and await listed(api) == []
