"""``/watchlist``: watched artists, their filters, and watchlist scans."""

from __future__ import annotations

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.body_rules import NON_BLANK, NON_EMPTY_OBJECT, rules
from soulsync_core.api.endpoints import Routes, core_of, registered
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.middlewares import profile_of
from soulsync_core.api.wishlist import Message, field_filter, filtered, partial
from soulsync_core.jobs import JobConflict
from soulsync_core.watchlist import (
    INCLUDE_FLAGS,
    NotWatched,
    ScanStatus,
    WatchlistArtist,
    WatchlistInputError,
)

routes = Routes("watchlist")

WatchlistArtistObject = partial(WatchlistArtist, "WatchlistArtistObject")


class WatchlistQuery(msgspec.Struct):
    fields: str = ""


class WatchBody(msgspec.Struct):
    """``source`` is a registered metadata provider; without it an all-digit ``artist_id``
    is an iTunes id, anything else a Spotify id."""

    artist_id: str | int | UnsetType = UNSET
    artist_name: str | UnsetType = UNSET
    source: registered("metadata_provider") | None = None  # type: ignore[valid-type]


class FiltersBody(msgspec.Struct, forbid_unknown_fields=True):
    """Any of the ``include_*`` flags, each true or false."""

    include_albums: bool | UnsetType = UNSET
    include_eps: bool | UnsetType = UNSET
    include_singles: bool | UnsetType = UNSET
    include_live: bool | UnsetType = UNSET
    include_remixes: bool | UnsetType = UNSET
    include_acoustic: bool | UnsetType = UNSET
    include_compilations: bool | UnsetType = UNSET


class ScanBody(msgspec.Struct):
    """``dry_run`` reports what a scan would add without adding it; ``artist_ids`` limits
    the scan to those watched artists."""

    dry_run: bool = False
    artist_ids: list[str | int] | None = None


class WatchlistList(msgspec.Struct):
    artists: list[WatchlistArtistObject]  # type: ignore[valid-type]


class Watched(msgspec.Struct):
    """``created`` is false when the artist was watched already (the row is unchanged)."""

    message: str
    created: bool
    artist: WatchlistArtist


class FiltersUpdated(msgspec.Struct):
    message: str
    updated: dict[str, bool]
    artist: WatchlistArtist


class ScanStarted(msgspec.Struct):
    message: str
    scan_id: str
    scan: ScanStatus


@routes.get("/watchlist", "Watched artists, most recently added first (fields).",
            query=WatchlistQuery, response=WatchlistList, profiled=True)
async def list_watchlist(request: web.Request, query: WatchlistQuery) -> web.Response:
    wanted = field_filter(query.fields)
    artists = await core_of(request).watchlist.artists(profile_of(request))
    return ok({"artists": [filtered(a, wanted) for a in artists]})


@routes.post("/watchlist", "Watch an artist (201), or return the row already watching it (200).",
             body=rules(WatchBody, {"required": ["artist_id", "artist_name"], "properties": {
                 "artist_id": {"anyOf": [NON_BLANK, {"type": "integer"}]}, "artist_name": NON_BLANK}}),
             response=Watched, status=201, also=(200,), profiled=True, errors=(503,))
async def watch_artist(request: web.Request, body: WatchBody) -> web.Response:
    if body.artist_id is UNSET or body.artist_name is UNSET:
        raise bad_request("Missing 'artist_id' or 'artist_name': send the artist's id at its "
                          "metadata provider and its name.")
    core = core_of(request)
    if not core.search.names():
        # No request could be right: the daemon lacks the plugin, the client did nothing wrong.
        raise ApiError(503, "NOT_AVAILABLE", "No metadata provider is installed, so no artist "
                       "can be watched; install one (Spotify, iTunes, Hydrabase …).")
    try:
        artist, created = await core.watchlist.add(
            str(body.artist_id), body.artist_name, body.source, profile_of(request))
    except WatchlistInputError as exc:
        raise bad_request(str(exc)) from None
    message = (f"Added {artist.artist_name} to watchlist." if created
               else f"{artist.artist_name} is already on the watchlist.")
    return ok(Watched(message, created, artist), status=201 if created else 200)


@routes.patch("/watchlist/{artist_id}", "Change an artist's release-type and content filters.",
              body=rules(FiltersBody, NON_EMPTY_OBJECT), response=FiltersUpdated, errors=(404,),
              profiled=True)
async def update_filters(request: web.Request, body: FiltersBody) -> web.Response:
    flags = {key: getattr(body, key) for key in INCLUDE_FLAGS if getattr(body, key) is not UNSET}
    if not flags:
        raise bad_request(f"No valid fields provided. Allowed: {', '.join(INCLUDE_FLAGS)} "
                          "(each true or false).")
    artist = await core_of(request).watchlist.set_filters(request.match_info["artist_id"], flags,
                                                          profile_of(request))
    if artist is None:
        raise not_found("Artist not found in watchlist.")
    return ok(FiltersUpdated("Watchlist filters updated.", flags, artist))


@routes.delete("/watchlist/{artist_id}", "Stop watching an artist.", response=Message,
               errors=(404,), profiled=True)
async def unwatch_artist(request: web.Request) -> web.Response:
    if not await core_of(request).watchlist.remove(request.match_info["artist_id"],
                                                   profile_of(request)):
        raise not_found("Artist not found in watchlist.")
    return ok(Message("Artist removed from watchlist."))


@routes.post("/watchlist/scan", "Start a scan for new releases now; 409 while one runs.",
             body=ScanBody, response=ScanStarted, status=202, errors=(404, 409))
async def start_scan(request: web.Request, body: ScanBody) -> web.Response:
    watchlist = core_of(request).watchlist
    ids = None if body.artist_ids is None else [str(a).strip() for a in body.artist_ids]
    try:
        job = await watchlist.start_scan(dry_run=body.dry_run, artist_ids=ids)
    except NotWatched as exc:
        raise not_found(str(exc)) from None
    except WatchlistInputError as exc:
        raise bad_request(str(exc)) from None
    except JobConflict as exc:
        raise ApiError(409, "CONFLICT", f"Watchlist scan is already running (scan "
                       f"{exc.running.id}); follow it with GET /api/v1/watchlist/scan.") from None
    return ok(ScanStarted("Watchlist scan started.", job.id, await watchlist.status()), status=202)


@routes.get("/watchlist/scan", "The running scan, else the last one: per-artist outcome, "
            "releases found, tracks added.", response=ScanStatus)
async def scan_status(request: web.Request) -> web.Response:
    return ok(await core_of(request).watchlist.status())
