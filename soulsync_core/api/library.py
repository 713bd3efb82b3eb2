"""``/library/*``: browse and search the music library, its stats, and library scans."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.endpoints import NonBlank, Routes, core_of, one_of, path_id, text
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.paging import clamp_page
from soulsync_core.downloads.service import NoDownloadClient
from soulsync_core.downloads.upgrades import UpgradeRunStatus, UpgradesOff, UpgradeTrack
from soulsync_core.jobs import JobConflict
from soulsync_core.library.objects import (
    EMPTY,
    Fields,
    LibraryAlbum,
    LibraryArtist,
    LibraryTrack,
    raw,
    raw_list,
)
from soulsync_core.library.queries import LOOKUP_COLUMNS, LibraryQueries
from soulsync_core.library.scanner import ScanError
from soulsync_core.library.service import ScanStatus

routes = Routes("library")

Letter = text(r"^ *(?:[a-zA-Z#]|[aA][lL][lL])? *$",
              "must be one letter a-z, '#' (names not starting with A-Z) or 'all'")


# ------------------------------------------------------------------------ query types


class FieldsQuery(msgspec.Struct):
    fields: str = ""


class ArtistsQuery(msgspec.Struct):
    search: str = ""
    letter: Letter = "all"
    page: int = 1
    limit: int = 50
    watchlist: one_of("all", "watched", "unwatched") = "all"  # type: ignore[valid-type]
    fields: str = ""


class AlbumsQuery(msgspec.Struct):
    search: str = ""
    artist_id: int | UnsetType = UNSET
    year: int | UnsetType = UNSET
    page: int = 1
    limit: int = 50
    fields: str = ""


class TracksQuery(msgspec.Struct):
    title: str = ""
    artist: str = ""
    limit: int = 50
    fields: str = ""


class RecentQuery(msgspec.Struct):
    type: one_of("artists", "albums", "tracks") = "albums"  # type: ignore[valid-type]
    limit: int = 50
    fields: str = ""


class GenresQuery(msgspec.Struct):
    source: one_of("artists", "albums") = "artists"  # type: ignore[valid-type]


class LookupQuery(msgspec.Struct):
    """``provider`` must be one the ``type`` has ids of (``isrc`` is for tracks only)."""

    type: one_of(*LOOKUP_COLUMNS)  # type: ignore[valid-type]
    provider: one_of(*LOOKUP_COLUMNS["track"])  # type: ignore[valid-type]
    id: NonBlank  # type: ignore[valid-type]
    fields: str = ""


# --------------------------------------------------------------------- response types


class ArtistList(msgspec.Struct):
    artists: list[LibraryArtist]


class ArtistDetail(msgspec.Struct):
    artist: LibraryArtist
    albums: list[LibraryAlbum]


class AlbumList(msgspec.Struct):
    albums: list[LibraryAlbum]


class AlbumDetail(msgspec.Struct):
    album: LibraryAlbum
    tracks: list[LibraryTrack]


class TrackList(msgspec.Struct):
    tracks: list[LibraryTrack]


class TrackDetail(msgspec.Struct):
    track: LibraryTrack


class RecentlyAdded(msgspec.Struct):
    """``items`` are artist, album or track objects, as ``type`` says."""

    items: list[dict[str, Any]]
    type: str


class GenreCount(msgspec.Struct):
    name: str
    count: int


class GenreList(msgspec.Struct):
    genres: list[GenreCount]
    source: str


class LookupResult(msgspec.Struct):
    """Exactly one of the keys, named after the ``type`` asked for."""

    artist: LibraryArtist | UnsetType = UNSET
    album: LibraryAlbum | UnsetType = UNSET
    track: LibraryTrack | UnsetType = UNSET


class LibraryStats(msgspec.Struct):
    artists: int
    albums: int
    tracks: int
    database_size_mb: float
    last_update: str | None


# ---------------------------------------------------------------------------- helpers


def _queries(request: web.Request) -> LibraryQueries:
    return core_of(request).library.queries


def _folded(value: str) -> str:
    """Return a choice as the handlers compare it (its declaration checked what it may be)."""
    return value.strip().lower()


_JSON = "application/json"
Handler = Callable[..., Awaitable[web.Response]]


def _cache_key(request: web.Request) -> str:
    """Return the path and query string, without an ``api_key`` (a secret kept out of memory,
    and one answer for every key)."""
    if "api_key" not in request.query:
        return request.path_qs
    query = [(k, v) for k, v in request.query.items() if k != "api_key"]
    return f"{request.path}?{urlencode(query)}"


def cached(handler: Handler) -> Handler:
    """Answer from the library's answer cache when the database has not changed since.

    The key is the request's path and query string as sent (less ``api_key``). Only 200
    answers are kept. A
    request with ``Cache-Control: no-cache`` is computed afresh and not stored (clients that
    want to be sure, and the benchmark's uncached figures).
    """

    @functools.wraps(handler)
    async def answer(request: web.Request, **kwargs: Any) -> web.Response:
        cache = _queries(request).cache
        if "no-cache" in request.headers.get("Cache-Control", ""):
            return await handler(request, **kwargs)
        version = cache.version()
        key = _cache_key(request)
        body = cache.get(key, version)
        if body is not None:
            return web.Response(body=body, content_type=_JSON)
        response = await handler(request, **kwargs)
        if response.status == 200 and isinstance(response.body, bytes):
            cache.put(key, version, response.body, len(response.body))
        return response

    return answer


# -------------------------------------------------------------------------- endpoints

@routes.get("/library/artists", "Library artists by name: search, first letter, paging, fields.",
            query=ArtistsQuery, response=ArtistList, paginated=True)
@cached
async def list_artists(request: web.Request, query: ArtistsQuery) -> web.Response:
    page = clamp_page(query.page, query.limit)
    watchlist = _folded(query.watchlist)
    objects, total = await _queries(request).artists(
        search=query.search.strip(), letter=_folded(query.letter) or "all", watchlist=watchlist,  # type: ignore[arg-type]
        offset=page.offset, limit=page.limit, wanted=Fields(query.fields, "artist").wanted("artist"))
    return ok({"artists": raw_list(objects)}, pagination=page.pagination(total))


@routes.get("/library/artists/{artist_id}", "One artist with its albums (by year, then title).",
            query=FieldsQuery, response=ArtistDetail, errors=(404,), path_types={"artist_id": int})
@cached
async def get_artist(request: web.Request, query: FieldsQuery) -> web.Response:
    artist_id = path_id(request, "artist_id", "Artist")
    queries = _queries(request)
    fields = Fields(query.fields, "artist")
    found = await queries.artist_detail(artist_id, fields.wanted("artist"), fields.wanted("album"))
    if found is None:
        raise not_found(f"Artist {artist_id} not found.")
    artist, albums = found
    return ok({"artist": raw(artist), "albums": raw_list(albums)})


@routes.get("/library/artists/{artist_id}/albums", "An artist's albums (by year, then title).",
            query=FieldsQuery, response=AlbumList, errors=(404,), path_types={"artist_id": int})
@cached
async def get_artist_albums(request: web.Request, query: FieldsQuery) -> web.Response:
    artist_id = path_id(request, "artist_id", "Artist")
    albums = await _queries(request).artist_albums(artist_id,
                                                   Fields(query.fields, "album").wanted("album"))
    if albums is None:
        raise not_found(f"Artist {artist_id} not found.")
    return ok({"albums": raw_list(albums)})


@routes.get("/library/albums", "Library albums by title: search, artist_id, year, paging.",
            query=AlbumsQuery, response=AlbumList, paginated=True)
@cached
async def list_albums(request: web.Request, query: AlbumsQuery) -> web.Response:
    page = clamp_page(query.page, query.limit)
    objects, total = await _queries(request).albums(
        search=query.search.strip(),
        artist_id=None if query.artist_id is UNSET else query.artist_id,  # type: ignore[arg-type]
        year=None if query.year is UNSET else query.year,  # type: ignore[arg-type]
        offset=page.offset, limit=page.limit, wanted=Fields(query.fields, "album").wanted("album"))
    return ok({"albums": raw_list(objects)}, pagination=page.pagination(total))


@routes.get("/library/albums/{album_id}", "One album with its tracks (by disc and track number).",
            query=FieldsQuery, response=AlbumDetail, errors=(404,), path_types={"album_id": int})
@cached
async def get_album(request: web.Request, query: FieldsQuery) -> web.Response:
    album_id = path_id(request, "album_id", "Album")
    queries = _queries(request)
    fields = Fields(query.fields, "album")
    album = await queries.album(album_id, fields.wanted("album"))
    if album is None:
        raise not_found(f"Album {album_id} not found.")
    tracks = await queries.album_tracks(album_id, fields.wanted("track")) or EMPTY
    return ok({"album": raw(album), "tracks": raw_list(tracks)})


@routes.get("/library/albums/{album_id}/tracks", "An album's tracks, by disc and track number.",
            query=FieldsQuery, response=TrackList, errors=(404,), path_types={"album_id": int})
@cached
async def get_album_tracks(request: web.Request, query: FieldsQuery) -> web.Response:
    album_id = path_id(request, "album_id", "Album")
    tracks = await _queries(request).album_tracks(album_id,
                                                  Fields(query.fields, "track").wanted("track"))
    if tracks is None:
        raise not_found(f"Album {album_id} not found.")
    return ok({"tracks": raw_list(tracks)})


@routes.get("/library/tracks", "Search tracks by title and/or artist (accent-insensitive substring).",
            query=TracksQuery, response=TrackList)
@cached
async def search_library_tracks(request: web.Request, query: TracksQuery) -> web.Response:
    title, artist = query.title.strip(), query.artist.strip()
    if not title and not artist:
        raise bad_request("Provide at least 'title' or 'artist' query param.")
    limit = clamp_page(1, query.limit).limit
    tracks = await _queries(request).search_tracks(title, artist, limit,
                                                   Fields(query.fields, "track").wanted("track"))
    return ok({"tracks": raw_list(tracks)})


@routes.get("/library/tracks/{track_id}", "One track, with its artist name and album title.",
            query=FieldsQuery, response=TrackDetail, errors=(404,), path_types={"track_id": int})
@cached
async def get_track(request: web.Request, query: FieldsQuery) -> web.Response:
    track_id = path_id(request, "track_id", "Track")
    track = await _queries(request).track(track_id, Fields(query.fields, "track").wanted("track"))
    if track is None:
        raise not_found(f"Track {track_id} not found.")
    return ok({"track": raw(track)})


_RECENT = {"artists": "artist", "albums": "album", "tracks": "track"}


@routes.get("/library/recently-added", "The newest artists, albums or tracks, newest first.",
            query=RecentQuery, response=RecentlyAdded)
@cached
async def recently_added(request: web.Request, query: RecentQuery) -> web.Response:
    kind = _folded(query.type)
    limit = clamp_page(1, query.limit).limit
    object_kind = _RECENT[kind]
    items = await _queries(request).recently_added(
        kind, limit, Fields(query.fields, object_kind).wanted(object_kind))  # type: ignore[arg-type]
    return ok({"items": raw_list(items), "type": kind})


@routes.get("/library/genres", "Genres of the library's artists or albums, with counts.",
            query=GenresQuery, response=GenreList)
@cached
async def library_genres(request: web.Request, query: GenresQuery) -> web.Response:
    source = _folded(query.source)
    rows = await _queries(request).genres(source)  # type: ignore[arg-type]
    return ok({"genres": [{"name": r["name"], "count": r["count"]} for r in rows],
               "source": source})


@routes.get("/library/lookup", "Find a library artist, album or track by a provider's id.",
            query=LookupQuery, response=LookupResult, errors=(404,))
@cached
async def library_lookup(request: web.Request, query: LookupQuery) -> web.Response:
    kind, provider = _folded(query.type), _folded(query.provider)
    if provider not in LOOKUP_COLUMNS[kind]:  # type: ignore[index]
        raise bad_request(f"provider must be one of {', '.join(LOOKUP_COLUMNS[kind])}, "  # type: ignore[index]
                          f"not {provider!r}.")
    value = query.id.strip()
    if not value:
        raise bad_request("id must be a non-empty provider id.")
    found = await _queries(request).lookup(kind, provider, value,  # type: ignore[arg-type]
                                           Fields(query.fields, kind).wanted(kind))
    if found is None:
        raise not_found(f"No {kind} with {provider} id {value} in the library.")
    return ok({kind: raw(found)})


@routes.get("/library/stats", "Library counts, database size and the last library change.",
            response=LibraryStats)
async def library_stats(request: web.Request) -> web.Response:
    core = core_of(request)
    queries = core.library.queries
    # The counts come from the answer cache; the size is read afresh (a checkpoint changes it).
    cache = None if "no-cache" in request.headers.get("Cache-Control", "") else queries.cache
    version = None if cache is None else cache.version()
    row = None if cache is None else cache.get("stats", version)
    if row is None:
        row = await queries.stats()
        if cache is not None:
            cache.put("stats", version, row, 100)
    return ok(LibraryStats(row["artists"], row["albums"], row["tracks"],
                           round(core.db.size_bytes() / (1024 * 1024), 2), row["last_update"]))


@routes.post("/library/scan", "Start a scan of the music folder; 409 while one runs or without the folder.",
             response=ScanStatus, status=202, errors=(409,))
async def start_library_scan(request: web.Request) -> web.Response:
    library = core_of(request).library
    try:
        await library.start_scan("api")
    except JobConflict as exc:
        raise ApiError(409, "CONFLICT",
                       f"A library scan is already running (job {exc.running.id}); follow it "
                       "with GET /api/v1/library/scan.") from None
    except ScanError as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from None
    return ok(await library.status(), status=202)


@routes.get("/library/scan", "Progress of the running scan, else the result of the last one.",
            response=ScanStatus)
async def library_scan_status(request: web.Request) -> web.Response:
    return ok(await core_of(request).library.status())


# ------------------------------------------------------------------------ upgrades


class UpgradesQuery(msgspec.Struct):
    page: int = 1
    limit: int = 50


class UpgradeList(msgspec.Struct):
    """``upgrade_until`` is the cutoff entry ("" when upgrades are off and the list empty)."""

    tracks: list[UpgradeTrack]
    upgrade_until: str


def _upgrades_off(exc: UpgradesOff) -> ApiError:
    return ApiError(409, "CONFLICT", str(exc))


@routes.get("/library/upgrades", "Library tracks below the quality cutoff (downloads.upgrade_until), "
            "paged; 409 when the cutoff is not a quality profile entry.",
            query=UpgradesQuery, response=UpgradeList, paginated=True, errors=(409,))
async def list_upgrades(request: web.Request, query: UpgradesQuery) -> web.Response:
    core = core_of(request)
    page = clamp_page(query.page, query.limit)
    try:
        tracks, total = await core.upgrades.cutoff_unmet(page.offset, page.limit)
    except UpgradesOff as exc:
        raise _upgrades_off(exc) from None
    return ok(UpgradeList(tracks, core.settings.get("downloads.upgrade_until").strip()),
              pagination=page.pagination(total))


@routes.post("/library/upgrades/run", "Start a quality upgrade run; 202 with its status, 409 while "
             "one runs or when upgrades are off, 503 without a download client.",
             response=UpgradeRunStatus, status=202, errors=(409, 503))
async def start_upgrade_run(request: web.Request) -> web.Response:
    upgrades = core_of(request).upgrades
    try:
        await upgrades.start_run("api")
    except UpgradesOff as exc:
        raise _upgrades_off(exc) from None
    except NoDownloadClient as exc:
        raise ApiError(503, "NOT_AVAILABLE", str(exc)) from None
    except JobConflict as exc:
        raise ApiError(409, "CONFLICT",
                       f"An upgrade run is already running (job {exc.running.id}); follow it "
                       "with GET /api/v1/library/upgrades/run.") from None
    return ok(await upgrades.status(), status=202)


@routes.get("/library/upgrades/run", "Progress of the running upgrade run, else the last one's result.",
            response=UpgradeRunStatus)
async def upgrade_run_status(request: web.Request) -> web.Response:
    return ok(await core_of(request).upgrades.status())
