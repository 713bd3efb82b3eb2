"""The /downloads endpoints' validation, errors, filters and paging (no transfers run here)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import soulsync_slskd.plugin
from soulsync_core.downloads.models import Wanted
from tests.download_fixtures import TRACK

D = "/api/v1/downloads"
NAME_REQUIRED = 'name is required (the track title), or send {"query": "Artist - Title"}.'
# A configured client pointing at a port nobody listens on: requests are accepted, and no test
# here lets the monitor reach it (it ticks every 300 s and nothing is dispatched).
UNREACHABLE = {"SOULSYNC_SOULSEEK__SLSKD_URL": "http://127.0.0.1:9",
               "SOULSYNC_SOULSEEK__API_KEY": "fake-slskd-api-key-0123456789",
               "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "300"}


@pytest.fixture
async def api(soulsync_factory):
    return await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)], environ=UNREACHABLE)


async def add(api, title: str, status: str) -> int:
    """A download row in ``status`` (written directly: nothing is fetched)."""
    store = api.core.downloads.store
    download = await store.create(Wanted(title, ["Artist"]), f"~{title}", "soulseek")
    await store.update(download, status=status)
    return download.id


async def test_without_a_download_client_post_is_503_saying_what_to_install(soulsync_factory):
    api = await soulsync_factory()
    reply = await api.post(D, TRACK)
    assert reply.status == 503
    assert reply.error == {"code": "NOT_AVAILABLE", "message": "No download client is installed: the "
                           "soulsync-slskd plugin provides Soulseek through slskd."}


async def test_unconfigured_client_post_is_503_naming_the_settings(soulsync_factory):
    api = await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)])
    reply = await api.post(D, TRACK)
    assert reply.status == 503
    assert reply.error["message"].startswith(
        "Soulseek client not configured: set soulseek.slskd_url and soulseek.api_key")
    assert (await api.get(D)).data["downloads"] == []


async def test_query_without_any_metadata_source_is_503(api):
    reply = await api.post(D, {"query": "Daft Punk - One More Time"})
    assert reply.status == 503
    assert reply.error["message"].startswith("No metadata source is installed")


async def test_query_when_no_metadata_source_can_be_asked_is_503_with_the_reasons(soulsync_factory):
    import soulsync_itunes.plugin

    api = await soulsync_factory(
        plugins=[("slskd", soulsync_slskd.plugin), ("itunes", soulsync_itunes.plugin)],
        environ={**UNREACHABLE, "SOULSYNC_ITUNES__BASE_URL": "", "SOULSYNC_SEARCH__AUTO_ORDER": "itunes"})
    reply = await api.post(D, {"query": "Daft Punk - One More Time"})
    assert reply.status == 503
    assert reply.error == {"code": "SOURCE_UNAVAILABLE", "message": (
        "auto is unavailable: no metadata source could be asked (itunes: it is not configured "
        "(see its settings section)).")}
    assert (await api.get(D)).data["downloads"] == []


@pytest.mark.parametrize(("body", "message"), [
    ([TRACK], "Request body must be a JSON object, not a list."),
    ({}, NAME_REQUIRED),
    ({"artists": ["A"]}, NAME_REQUIRED),
    ({"name": "  ", "artists": ["A"]}, NAME_REQUIRED),
    ({"name": 5, "artists": ["A"]}, "name must be a string, not an integer."),
    ({"name": "Song"}, 'artists must list at least one artist name, e.g. ["Daft Punk"].'),
    ({"name": "Song", "artists": []}, 'artists must list at least one artist name, e.g. ["Daft Punk"].'),
    ({"name": "Song", "artists": "A"}, "artists must be a list, not a string."),
    ({"name": "Song", "artists": [{"id": "x"}]}, "artists[0].name is required."),
    ({"name": "Song", "artists": ["A"], "duration_ms": "long"},
     "duration_ms must be an integer or a number, not a string."),
    ({"name": "Song", "artists": ["A"], "duration_ms": -1}, "duration_ms must be 0 (unknown) or more."),
    ({"name": "Song", "artists": ["A"], "track_number": 0},
     "track_number must be a positive integer when given."),
    ({"name": "Song", "artists": ["A"], "album": 7},
     "album must be a string or an object or null, not an integer."),
    ({"query": 5}, "query must be a string, not an integer."),
    ({"query": "   "}, 'query must be a non-empty string such as "Daft Punk - One More Time".'),
    ({"query": "A - B", "name": "B", "artists": ["A"]},
     "Send either a track (name, artists …) or query, not both."),
])
async def test_bad_bodies_are_400_naming_the_field(api, body: Any, message: str):
    reply = await api.post(D, body)
    assert reply.status == 400, reply.json
    assert reply.error == {"code": "BAD_REQUEST", "message": message}
    assert (await api.get(D)).data["downloads"] == []


async def test_spotify_style_track_objects_are_understood(api):
    body = {"id": "4iV5W9uYEdYUVa79Axb7Rh", "name": "One More Time",
            "artists": [{"name": "Daft Punk", "id": "4tZw"}],
            "album": {"name": "Discovery", "id": "2noR", "release_date": "2001-03-07",
                      "total_tracks": 14, "artists": [{"name": "Daft Punk"}]},
            "duration_ms": 320357.0, "track_number": 1, "popularity": 77}
    reply = await api.post(D, body)
    assert reply.status == 202, reply.json
    download = reply.data["download"]
    assert (download["artist_name"], download["album_name"], download["source"]) == (
        "Daft Punk", "Discovery", "spotify")
    track = (await api.get(f"{D}/{download['id']}")).data["download"]["track"]
    assert (track["duration_ms"], track["track_total"], track["album_id"], track["release_date"]) == (
        320357, 14, "2noR", "2001-03-07")


async def test_path_ids_must_be_integers_and_exist(api):
    for method, path in (("GET", f"{D}/abc"), ("POST", f"{D}/1.5/cancel")):
        reply = await api.request(method, path)
        assert reply.status == 400
        assert reply.error == {"code": "BAD_REQUEST", "message": "download_id must be an integer."}
    for method, path in (("GET", f"{D}/999"), ("POST", f"{D}/999/cancel"),
                         ("GET", f"{D}/99999999999999999999")):
        reply = await api.request(method, path)
        assert reply.status == 404
        assert reply.error["message"].startswith("Download 999")


async def test_cancel_body_username_must_be_a_string(api):
    download_id = await add(api, "Song", "queued")
    reply = await api.post(f"{D}/{download_id}/cancel", {"username": 5})
    assert reply.status == 400
    assert reply.error["message"] == "username must be a string or null, not an integer."


async def test_cancel_a_queued_download_and_not_a_finished_one(api):
    queued = await add(api, "Queued", "queued")
    done = await add(api, "Done", "completed")
    reply = await api.post(f"{D}/{queued}/cancel", {})
    assert reply.status == 200 and reply.data["download"]["status"] == "cancelled"
    reply = await api.post(f"{D}/{done}/cancel", {"username": ""})
    assert reply.status == 409
    assert reply.error == {"code": "CONFLICT", "message": f"Download {done} is already completed."}


async def test_status_filter_and_paging(api):
    ids = {}
    for n, status in enumerate(["completed", "failed", "cancelled", "failed", "not_found", "failed"]):
        ids[n] = await add(api, f"Song {n}", status)
    reply = await api.get(D, params={"status": "failed, NOT_FOUND", "limit": "2", "page": "2"})
    assert reply.status == 200
    assert [d["id"] for d in reply.data["downloads"]] == [ids[3], ids[1]]  # newest first
    assert reply.json["pagination"] == {"page": 2, "limit": 2, "total": 4, "total_pages": 2,
                                        "has_next": False, "has_prev": True}
    everything = await api.get(D, params={"limit": "1000"})
    assert everything.json["pagination"]["limit"] == 200 and everything.json["pagination"]["total"] == 6
    download = everything.data["downloads"][0]
    assert (download["track_name"], download["artist_name"], download["progress"], download["size"]) == (
        "Song 5", "Artist", 0, None)
    assert (download["batch_id"], download["retry_count"]) == (None, 0)
    assert isinstance(download["status_change_time"], float)
    assert download["created_at"].endswith("+00:00")


async def test_unknown_status_and_non_integer_paging_are_400(api):
    reply = await api.get(D, params={"status": "done"})
    assert reply.status == 400
    assert reply.error["message"] == ("status must be a comma-separated list of queued, searching, "
                                      "downloading, post_processing, completed, failed, not_found, "
                                      "cancelled, not 'done'.")
    reply = await api.get(D, params={"page": "x"})
    assert reply.status == 400 and reply.error["message"] == "page must be an integer, not a string."


async def test_stats_count_unfinished_downloads(api):
    for status in ("queued", "downloading", "completed", "failed"):
        await add(api, status, status)
    assert (await api.get("/api/v1/system/stats")).data["downloads"] == {"active": 2, "failed": 1}


async def test_a_request_returns_the_unfinished_download_of_its_track_and_inserts_once(api):
    store = api.core.downloads.store
    wanted = Wanted("Once", ["Artist"])
    # Many at once (as a flood of POSTs): one row, the others get it back.
    results = await asyncio.gather(*(store.create_unless_unfinished(wanted, "~once", "soulseek")
                                     for _ in range(20)))
    assert sum(created for _d, created in results) == 1
    assert len({d.id for d, _c in results}) == 1
    first = results[0][0]
    assert (first.status, first.wanted.title, first.track_key) == ("queued", "Once", "~once")
    await store.update(first, status="completed")
    again, created = await store.create_unless_unfinished(wanted, "~once", "soulseek")
    assert created and again.id != first.id  # a finished one does not count
