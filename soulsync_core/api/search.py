"""``/search/{tracks,albums,artists}``: metadata search through one source or the ``auto`` chain."""

from __future__ import annotations

import msgspec
from aiohttp import web

from soulsync_core.api.endpoints import NonBlank, Routes, core_of, registered
from soulsync_core.api.envelope import ApiError, bad_request, ok
from soulsync_core.models import Album, Artist, Track
from soulsync_core.search import AUTO, Kind, SourceUnavailable, UnknownSource

routes = Routes("search")

MAX_LIMIT = 50


class SearchBody(msgspec.Struct):
    query: NonBlank  # type: ignore[valid-type]
    limit: int = 20
    source: registered("metadata_source") = AUTO  # type: ignore[valid-type]


class TrackResults(msgspec.Struct):
    tracks: list[Track]
    source: str


class AlbumResults(msgspec.Struct):
    albums: list[Album]
    source: str


class ArtistResults(msgspec.Struct):
    artists: list[Artist]
    source: str


async def _search(request: web.Request, kind: Kind, body: SearchBody) -> tuple[list, str]:
    query = body.query.strip()
    limit = min(max(1, body.limit), MAX_LIMIT)
    try:
        return await core_of(request).search.search(kind, query, limit, body.source)
    except UnknownSource as exc:
        raise bad_request(str(exc)) from None
    except SourceUnavailable as exc:
        raise ApiError(503, "SOURCE_UNAVAILABLE", f"{exc}.") from None


_OPTIONS = {"body": SearchBody, "errors": (503,)}


@routes.post("/search/tracks", "Search tracks; source auto tries search.auto_order in turn.",
             response=TrackResults, **_OPTIONS)
async def search_tracks(request: web.Request, body: SearchBody) -> web.Response:
    results, source = await _search(request, "tracks", body)
    return ok(TrackResults(results, source))


@routes.post("/search/albums", "Search albums; same sources and fallback as tracks.",
             response=AlbumResults, **_OPTIONS)
async def search_albums(request: web.Request, body: SearchBody) -> web.Response:
    results, source = await _search(request, "albums", body)
    return ok(AlbumResults(results, source))


@routes.post("/search/artists", "Search artists; same sources and fallback as tracks.",
             response=ArtistResults, **_OPTIONS)
async def search_artists(request: web.Request, body: SearchBody) -> web.Response:
    results, source = await _search(request, "artists", body)
    return ok(ArtistResults(results, source))
