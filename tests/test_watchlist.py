"""The watchlist: the list and its validation, scans (dates, filters, cap, dry run, errors),
``is_watched`` on library artists, and a scan through the real iTunes plugin and its fake."""

from __future__ import annotations

import asyncio
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from soulsync_core.hooks import ProviderError, hookimpl
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_core.watchlist import JOB_KIND
from soulsync_itunes import plugin as itunes_plugin
from tests.fakes import itunes
from tests.library_fixtures import record

WL = "/api/v1/watchlist"
QUIET = {"SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0", "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0"}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Discography:
    """A metadata source named ``itunes`` whose releases the tests write."""

    name = "itunes"
    configured = True

    def __init__(self) -> None:
        self.albums: dict[str, list[Album]] = {}
        self.tracks: dict[str, list[Track]] = {}
        self.failing: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.asked = asyncio.Event()

    def release(self, artist_id: str, album_id: str, name: str, day: str | None, titles: list[str],
                album_type: str = "album", artist: str = "Daft Punk") -> None:
        self.albums.setdefault(artist_id, []).append(
            Album(album_id, name, [artist], day, len(titles), album_type))  # type: ignore[arg-type]
        self.tracks[album_id] = [Track(f"{album_id}-{i}", title, [artist], name, 200_000,
                                       album_id=album_id, track_number=i)
                                 for i, title in enumerate(titles, start=1)]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health(self) -> Health:
        return Health(ok=True)

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        return []

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        return []

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        return []

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        if artist_id in self.failing:
            raise ProviderError("the provider answered 502")
        return self.albums.get(artist_id, [])[:limit]

    async def album_tracks(self, album_id: str) -> list[Track]:
        self.asked.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.tracks.get(album_id, [])


def plugin(source: Discography) -> types.SimpleNamespace:
    @hookimpl
    def metadata_providers(settings: Any) -> list[Discography]:
        return [source]

    return types.SimpleNamespace(metadata_providers=metadata_providers)


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def disco() -> Discography:
    return Discography()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def api(soulsync_factory, disco, clock):
    client = await soulsync_factory(plugins=[("disco", plugin(disco))], environ=QUIET)
    client.core.watchlist.clock = clock
    client.core.wishlist.clock = clock
    return client


async def watch(api, artist_id: str = "100", name: str = "Daft Punk", status: int = 201,
                **extra: Any) -> dict[str, Any]:
    reply = await api.post(WL, {"artist_id": artist_id, "artist_name": name, **extra})
    assert reply.status == status, reply.json
    return reply.data["artist"]


async def scan(api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = await api.post(f"{WL}/scan", body)
    assert reply.status == 202, reply.json
    await api.core.jobs.wait(JOB_KIND)
    status = await api.get(f"{WL}/scan")
    assert status.status == 200 and status.data["state"] == "completed", status.json
    return status.data


async def wanted(api) -> list[str]:
    reply = await api.get("/api/v1/wishlist", params={"limit": "200"})
    return [t["track_name"] for t in reply.data["tracks"]]


async def set_last_scan(api, artist_id: str, moment: str) -> None:
    await api.core.db.execute("UPDATE watchlist_artists SET last_scan_at = ? WHERE artist_id = ?",
                              (moment, artist_id))


# ------------------------------------------------------------------------------ the list


async def test_add_guesses_the_source_and_readding_returns_the_same_row(api):
    artist = await watch(api, "100")
    assert (artist["source"], artist["itunes_artist_id"], artist["spotify_artist_id"]) == (
        "itunes", "100", None)
    assert artist["include_albums"] and not artist["include_live"] and artist["last_scan_timestamp"] is None
    again = await api.post(WL, {"artist_id": 100, "artist_name": "Daft Punk (again)"})
    assert again.status == 200 and again.data["created"] is False
    assert again.data["artist"]["id"] == artist["id"] and again.data["artist"]["artist_name"] == "Daft Punk"
    explicit = await watch(api, "abc", "X", source="Apple_Music")
    assert explicit["source"] == "itunes"
    names = [a["artist_name"] for a in (await api.get(WL)).data["artists"]]
    assert names == ["X", "Daft Punk"]  # most recently added first
    assert (await api.get(WL, params={"fields": "artist_id,source"})).data["artists"][0] == {
        "artist_id": "abc", "source": "itunes"}


@pytest.mark.parametrize(("body", "message"), [
    ({}, "Missing 'artist_id' or 'artist_name'"),
    ({"artist_id": "1"}, "Missing 'artist_id' or 'artist_name'"),
    ({"artist_name": "X"}, "Missing 'artist_id' or 'artist_name'"),
    ({"artist_id": " ", "artist_name": "X"}, "artist_id is required"),
    ({"artist_id": "1", "artist_name": ""}, "artist_name is required"),
    ({"artist_id": ["1"], "artist_name": "X"}, "artist_id must be"),
    ({"artist_id": True, "artist_name": "X"}, "artist_id must be"),
    ({"artist_id": "1", "artist_name": 5}, "artist_name must be a string"),
    ({"artist_id": "1", "artist_name": "X", "source": "deezer"},
     "source must be a registered metadata provider (itunes)"),
])
async def test_bad_watch_requests_are_400(api, body, message):
    reply = await api.post(WL, body)
    assert reply.status == 400 and message in reply.error["message"], reply.json
    assert (await api.get(WL)).data["artists"] == []


async def test_patch_filters_strictly(api):
    await watch(api, "100")
    reply = await api.patch(f"{WL}/100", {"include_live": True, "include_albums": False})
    assert reply.status == 200, reply.json
    assert reply.data["updated"] == {"include_live": True, "include_albums": False}
    assert reply.data["artist"]["include_live"] and not reply.data["artist"]["include_albums"]
    for body, message in [
        ({"include_live": "false"}, "include_live must be true or false, not a string."),
        ({"include_eps": 1}, "include_eps must be true or false"),
        ({"include_eps": None}, "include_eps must be true or false"),
        ({"include_single": True}, "include_single"),
        ({}, "No valid fields provided. Allowed: include_albums"),
    ]:
        bad = await api.patch(f"{WL}/100", body)
        assert bad.status == 400 and message in bad.error["message"], (body, bad.json)
    artist = (await api.get(WL)).data["artists"][0]
    assert artist["include_live"] is True and artist["include_albums"] is False  # nothing lost
    missing = await api.patch(f"{WL}/999", {"include_live": True})
    assert missing.status == 404 and missing.error["message"] == "Artist not found in watchlist."


async def test_delete(api):
    await watch(api, "100")
    assert (await api.delete(f"{WL}/100")).status == 200
    reply = await api.delete(f"{WL}/100")
    assert reply.status == 404 and reply.error["message"] == "Artist not found in watchlist."


# ---------------------------------------------------------------------------------- scans


async def test_dates_same_day_included_earlier_excluded_future_waits(api, disco, clock):
    await watch(api, "100")
    await set_last_scan(api, "100", "2026-03-05T18:00:00+00:00")
    disco.release("100", "future", "Tomorrow", "2026-03-11", ["Future Song"])
    disco.release("100", "new", "New One", "2026-03-08", ["New Song"])
    disco.release("100", "sameday", "Same Day", "2026-03-05", ["Same Day Song"])
    disco.release("100", "before", "Before", "2026-03-04", ["Old Song"])
    disco.release("100", "undated", "Undated", None, ["Undated Song"])
    status = await scan(api)
    assert sorted(await wanted(api)) == ["New Song", "Same Day Song"]
    outcome = status["artists"][0]
    assert (outcome["status"], outcome["cutoff"], outcome["upcoming"], outcome["undated"],
            outcome["releases_found"], outcome["tracks_added"]) == ("ok", "2026-03-05", 1, 1, 2, 2)
    assert (status["releases_found"], status["tracks_added"]) == (2, 2)
    row = (await api.get("/api/v1/wishlist")).data["tracks"][0]
    assert row["source_type"] == "watchlist" and row["provider"] == "itunes"
    assert row["source_info"]["watchlist_artist_name"] == "Daft Punk"
    assert row["source_info"]["album_name"] in ("New One", "Same Day")
    artist = (await api.get(WL)).data["artists"][0]
    assert artist["last_scan_timestamp"] == "2026-03-10T12:00:00+00:00"
    # The next day: the release dated today is picked up; nothing is added twice.
    clock.now = NOW + timedelta(days=1)
    status = await scan(api)
    assert sorted(await wanted(api)) == ["Future Song", "New Song", "Same Day Song"]
    assert status["tracks_added"] == 1


async def test_never_scanned_artist_looks_back_lookback_days(api, disco):
    await watch(api, "100")
    disco.release("100", "edge", "Edge", "2026-02-08", ["Edge Song"])      # NOW - 30 days
    disco.release("100", "older", "Older", "2026-02-07", ["Older Song"])
    disco.release("100", "year", "Year Only", "2026", ["Year Song"])       # 1 January
    await scan(api)
    assert await wanted(api) == ["Edge Song"]
    await api.patch("/api/v1/settings", {"watchlist.lookback_days": 90})
    await api.post(WL, {"artist_id": "200", "artist_name": "Other"})
    disco.release("200", "o-year", "Other Year", "2026", ["Other Year Song"], artist="Other")
    await scan(api, {"artist_ids": ["200"]})
    assert sorted(await wanted(api)) == ["Edge Song", "Other Year Song"]


async def test_release_type_and_content_filters(api, disco):
    await watch(api, "100")
    disco.release("100", "single", "Single", "2026-03-09", ["Single A", "Single B (Remix)"], "single")
    disco.release("100", "ep", "EP", "2026-03-09", [f"EP {i}" for i in range(5)], "single")
    disco.release("100", "lp", "LP", "2026-03-09",
                  ["LP 1", "LP 2 (Live at Wembley)", "LP 3 - Acoustic", "LP 4 - 2011 Remaster",
                   "LP 5", "LP 6", "LP 7"])
    disco.release("100", "hits", "Greatest Hits", "2026-03-09", [f"Hit {i}" for i in range(8)])
    await api.patch(f"{WL}/100", {"include_eps": False})
    await scan(api, {"dry_run": True})
    status = (await api.get(f"{WL}/scan")).data
    kinds = {r["album_name"]: (r["release_type"], r["missing"]) for r in status["releases"]}
    assert kinds == {"Single": ("single", 1), "LP": ("album", 5)}
    await api.patch(f"{WL}/100", {"include_eps": True, "include_live": True, "include_remixes": True,
                                  "include_acoustic": True, "include_compilations": True})
    status = await scan(api, {"dry_run": True})
    assert status["tracks_missing"] == 2 + 5 + 7 + 8 and status["tracks_added"] == 0


async def test_tracks_in_the_library_or_wanted_already_are_not_added(api, disco):
    await api.core.library.store.save([record("Daft Punk", "LP", "Owned Song")])
    await api.post("/api/v1/wishlist", {"track_data": {"id": "x", "name": "Wanted Song",
                                                       "artists": ["Daft Punk"]}})
    await watch(api, "100")
    disco.release("100", "lp", "LP", "2026-03-09", ["Owned Song", "Wanted Song", "New Song"])
    disco.release("100", "single", "New Song", "2026-03-01", ["New Song"], "single")
    status = await scan(api)
    assert sorted(await wanted(api)) == ["New Song", "Wanted Song"]
    assert status["tracks_added"] == 1


async def test_cap_stops_the_scan_and_unfinished_artists_are_rescanned(api, disco):
    await api.patch("/api/v1/settings", {"watchlist.max_tracks_per_scan": 3})
    await watch(api, "100")
    await watch(api, "200", "Other")
    disco.release("100", "a", "A", "2026-03-09", ["A1", "A2"])
    disco.release("200", "b", "B", "2026-03-09", ["B1", "B2"], artist="Other")
    status = await scan(api)
    assert status["cap_reached"] is True and status["tracks_added"] == 3
    assert [a["status"] for a in status["artists"]] == ["ok", "partial"]
    artists = {a["artist_id"]: a for a in (await api.get(WL)).data["artists"]}
    assert artists["100"]["last_scan_timestamp"] is not None
    assert artists["200"]["last_scan_timestamp"] is None  # not finished: scanned again next time
    status = await scan(api)
    assert sorted(await wanted(api)) == ["A1", "A2", "B1", "B2"] and not status["cap_reached"]
    activity = (await api.get("/api/v1/system/activity")).data["activities"]
    assert any("stopped at the per-scan cap" in a["message"] for a in activity)


async def test_dry_run_adds_nothing_and_keeps_the_last_scan(api, disco):
    await watch(api, "100")
    disco.release("100", "a", "A", "2026-03-09", ["A1", "A2"])
    status = await scan(api, {"dry_run": True})
    assert (status["dry_run"], status["tracks_missing"], status["tracks_added"]) == (True, 2, 0)
    assert await wanted(api) == []
    assert (await api.get(WL)).data["artists"][0]["last_scan_timestamp"] is None


async def test_one_artist_failing_is_recorded_and_the_scan_goes_on(api, disco):
    await watch(api, "100")
    await watch(api, "200", "Other")
    disco.failing.add("100")
    disco.release("200", "b", "B", "2026-03-09", ["B1"], artist="Other")
    status = await scan(api)
    first, second = status["artists"]
    assert (first["status"], first["error"]) == ("error", "itunes is unavailable: the provider answered 502")
    assert second["status"] == "ok" and await wanted(api) == ["B1"]
    artists = {a["artist_id"]: a for a in (await api.get(WL)).data["artists"]}
    assert artists["100"]["last_scan_timestamp"] is None


async def test_a_derived_source_that_is_not_installed_is_refused(api):
    reply = await api.post(WL, {"artist_id": "4tZwfgrHOc3mvqYlEYSvVi", "artist_name": "DP"})
    assert reply.status == 400
    assert reply.error["message"] == (
        "source must be a registered metadata provider (itunes); without a source, the id "
        "'4tZwfgrHOc3mvqYlEYSvVi' means spotify, which is not installed; send source.")
    assert (await api.get(WL)).data["artists"] == []


async def test_artists_of_a_missing_or_unconfigured_provider_are_skipped_with_an_error(
        soulsync_factory, disco):
    off = Discography()
    off.name, off.configured = "tidal", False  # type: ignore[misc]
    api = await soulsync_factory(plugins=[("disco", plugin(disco)), ("off", plugin(off))],
                                 environ=QUIET)
    api.core.watchlist.clock = api.core.wishlist.clock = Clock(NOW)
    await watch(api, "100")
    await watch(api, "t1", "Tidal Artist", source="tidal")
    # Watched while its plugin was installed; the plugin is gone since.
    await api.core.db.execute(
        "INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, date_added, "
        "updated_at) VALUES ('deezer', '27', 'Gone', 'gone', ?, ?)", (NOW.isoformat(),) * 2)
    disco.release("100", "a", "A", "2026-03-09", ["A1"])
    status = await scan(api)
    outcomes = {a["artist_id"]: (a["status"], a["error"]) for a in status["artists"]}
    assert outcomes == {
        "100": ("ok", None),
        "t1": ("error", "tidal is unavailable: it is not configured (see its settings section)"),
        "27": ("error", "the metadata provider 'deezer' is not installed")}
    assert status["artists_scanned"] == 3 and await wanted(api) == ["A1"]
    assert status["partial"] is True and status["error"] is None
    jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
    assert (jobs[JOB_KIND]["state"], jobs[JOB_KIND]["partial"]) == ("completed", True)


async def test_a_scan_where_every_artist_failed_is_failed(api, disco):
    await watch(api, "100")
    await watch(api, "200", "Other")
    disco.failing.update({"100", "200"})
    assert (await api.post(f"{WL}/scan")).status == 202
    await api.core.jobs.wait(JOB_KIND)
    status = (await api.get(f"{WL}/scan")).data
    assert (status["state"], status["partial"]) == ("failed", False)
    assert status["error"] == ("Nothing could be done: 2 items failed (first: Daft Punk (itunes "
                               "100): itunes is unavailable: the provider answered 502).")
    assert [a["status"] for a in status["artists"]] == ["error", "error"]
    jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
    assert (jobs[JOB_KIND]["state"], jobs[JOB_KIND]["last_error"]) == ("failed", status["error"])
    activity = (await api.get("/api/v1/system/activity")).data["activities"][0]
    assert activity["type"] == "watchlist.scan_failed"


async def test_second_scan_while_one_runs_is_409_and_scan_body_is_checked(api, disco):
    await watch(api, "100")
    disco.release("100", "a", "A", "2026-03-09", ["A1"])
    disco.gate = asyncio.Event()
    first = await api.post(f"{WL}/scan")
    assert first.status == 202 and first.data["message"] == "Watchlist scan started."
    await disco.asked.wait()
    running = await api.get(f"{WL}/scan")
    assert running.data["state"] == "running" and running.data["artists_total"] == 1
    second = await api.post(f"{WL}/scan", {"dry_run": True})
    assert second.status == 409 and second.error["code"] == "CONFLICT"
    disco.gate.set()
    await api.core.jobs.wait(JOB_KIND)
    for body, status, message in [
            ({"dry_run": "yes"}, 400, "dry_run must be true or false"),
            ({"artist_ids": "100"}, 400, "artist_ids must be"),
            ({"artist_ids": ["100", "nope"]}, 404, "artist_ids not on the watchlist: nope")]:
        reply = await api.post(f"{WL}/scan", body)
        assert reply.status == status and message in reply.error["message"], reply.json
    jobs = {j["kind"]: j for j in (await api.get("/api/v1/system/jobs")).data["jobs"]}
    assert jobs["watchlist_scan"]["state"] == "completed" and jobs["watchlist_scan"]["next_run"] is None


async def test_library_artists_is_watched_by_id_else_by_name(api):
    await api.core.library.store.save([
        record("Daft Punk", "Discovery", "One More Time"),
        record("Justice", "Cross", "Genesis", itunes_artist_id="555"),
        record("Genesis", "Selling England", "Firth of Fifth", itunes_artist_id="777"),
        record("Air", "Moon Safari", "La Femme d'Argent"),
    ])
    await watch(api, "100", "Daft Punk")   # by name: the library artist has no iTunes id
    await watch(api, "555", "Justice FR")  # by id, whatever the name
    await watch(api, "999", "Genesis")     # a namesake: the library's Genesis is iTunes 777
    artists = (await api.get("/api/v1/library/artists")).data["artists"]
    assert {a["name"]: a["is_watched"] for a in artists} == {
        "Air": False, "Daft Punk": True, "Genesis": False, "Justice": True}
    watched = await api.get("/api/v1/library/artists", params={"watchlist": "watched"})
    assert [a["name"] for a in watched.data["artists"]] == ["Daft Punk", "Justice"]
    assert watched.json["pagination"]["total"] == 2
    unwatched = await api.get("/api/v1/library/artists", params={"watchlist": "unwatched"})
    assert [a["name"] for a in unwatched.data["artists"]] == ["Air", "Genesis"]


# ------------------------------------------------------------------ the real iTunes plugin


@pytest.fixture
async def itunes_api(soulsync_factory, aiohttp_server):
    server = await aiohttp_server(itunes.make_app())
    env = QUIET | {"SOULSYNC_ITUNES__BASE_URL": str(server.make_url("")).rstrip("/")}
    return await soulsync_factory(plugins=[("itunes", itunes_plugin)], environ=env)


async def test_itunes_release_on_the_day_of_the_last_scan_is_found(itunes_api):
    api = itunes_api
    # Discovery came out on 2001-03-07; the last scan ran later that day.
    api.core.watchlist.clock = Clock(datetime(2001, 3, 9, 8, 0, tzinfo=UTC))
    await watch(api, "5468295", "Daft Punk")
    await set_last_scan(api, "5468295", "2001-03-07T20:00:00+00:00")
    status = await scan(api)
    assert status["artists"][0]["status"] == "ok", status
    assert status["artists"][0]["upcoming"] == 2   # the 2023 releases are in the future then
    assert [r["album_name"] for r in status["releases"]] == ["Discovery"]
    assert {"One More Time", "Aerodynamic", "Digital Love"} <= set(await wanted(api))
    # A last scan the day after: Discovery is older, nothing new.
    await api.delete("/api/v1/wishlist/697195462")
    await set_last_scan(api, "5468295", "2001-03-08T00:00:00+00:00")
    status = await scan(api)
    assert status["releases_found"] == 0 and status["tracks_added"] == 0


async def test_watching_without_any_metadata_provider_is_503_not_available(soulsync_factory):
    # No request could be right then: the daemon lacks the plugin, not the client a field.
    bare = await soulsync_factory(environ=QUIET)
    reply = await bare.post(WL, {"artist_id": "123", "artist_name": "X"})
    assert (reply.status, reply.error["code"]) == (503, "NOT_AVAILABLE"), reply.json
    assert "No metadata provider is installed" in reply.error["message"]
    assert (await bare.get(WL)).data["artists"] == []
