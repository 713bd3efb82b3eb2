"""``/wishlist``: tracks wanted but not in the library, and starting a wishlist run."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.album_requests import ALBUM_SOURCES, album_from_body
from soulsync_core.api.body_rules import NON_BLANK, TRACK_OBJECT, rules
from soulsync_core.api.downloads import DownloadBody
from soulsync_core.api.endpoints import Routes, core_of, one_of
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.middlewares import profile_of
from soulsync_core.api.paging import clamp_page
from soulsync_core.jobs import JobConflict
from soulsync_core.wishlist import RunStatus, WishlistInputError, WishlistTrack

routes = Routes("wishlist")

CATEGORIES = ("all", "singles", "albums")


def partial(struct: type[msgspec.Struct], name: str) -> Any:
    """Return a copy of ``struct`` whose fields are all optional: ``?fields=`` may drop any."""
    return msgspec.defstruct(name, [(f.name, f.type | UnsetType, UNSET)
                                    for f in msgspec.structs.fields(struct)])


def field_filter(raw: str) -> frozenset[str] | None:
    """Return the ``?fields=`` names (trimmed, empties dropped), None for all fields."""
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    return names or None


def filtered(obj: msgspec.Struct, wanted: frozenset[str] | None) -> dict[str, Any]:
    """Return ``obj`` as a dict keeping only ``wanted`` keys (all when None; unknown ignored)."""
    data = msgspec.to_builtins(obj)
    return data if wanted is None else {k: v for k, v in data.items() if k in wanted}


WishlistTrackObject = partial(WishlistTrack, "WishlistTrackObject")


class WishlistQuery(msgspec.Struct):
    category: one_of(*CATEGORIES, blank=True,  # type: ignore[valid-type]
                     must="must be singles or albums (or absent for both)") = ""
    page: int = 1
    limit: int = 50
    fields: str = ""


class WishlistBody(msgspec.Struct):
    """The track under ``track_data`` or ``spotify_track_data`` (at least ``id`` and ``name``;
    ``artists`` as ``[{"name": …}]`` or ``["…"]``; ``album`` an object) — or a whole album:
    ``album`` (an album object as the search endpoints return it, at least ``id`` and
    ``name``) or ``album_id``, with ``source`` (spotify, itunes, tidal or hydrabase)."""

    track_data: Any = UNSET
    spotify_track_data: Any = UNSET
    album: Any = UNSET
    album_id: str | int | UnsetType = UNSET
    source: str | None = None
    failure_reason: str | None = None
    source_type: str | None = None
    source_info: dict[str, Any] | None = None


class WishlistList(msgspec.Struct):
    tracks: list[WishlistTrackObject]  # type: ignore[valid-type]


class WishlistAdded(msgspec.Struct):
    """``created`` is false when the id was on the list already and its row was updated."""

    message: str
    created: bool
    track: WishlistTrack


class Message(msgspec.Struct):
    message: str


class RunStarted(msgspec.Struct):
    message: str
    run_id: str
    run: RunStatus


_TRACK_GIVEN = {"anyOf": [{"required": ["track_data"]}, {"required": ["spotify_track_data"]}]}
_ID = {"anyOf": [NON_BLANK, {"type": "integer"}]}
_SOURCE = {"enum": list(ALBUM_SOURCES)}


@routes.get("/wishlist", "Wanted tracks and whole albums (kind), oldest first: category "
            "singles|albums, paging, fields.",
            query=WishlistQuery, response=WishlistList, paginated=True, profiled=True)
async def list_wishlist(request: web.Request, query: WishlistQuery) -> web.Response:
    category = query.category.strip().lower() or "all"
    page = clamp_page(query.page, query.limit)
    tracks, total = await core_of(request).wishlist.page(category, page.offset, page.limit,  # type: ignore[arg-type]
                                                         profile_of(request))
    wanted = field_filter(query.fields)
    return ok({"tracks": [filtered(t, wanted) for t in tracks]},
              pagination=page.pagination(total))


@routes.post("/wishlist", "Add a track (201), or update the one with its id (200).",
             body=rules(WishlistBody, {"anyOf": [
                 {"required": ["track_data"], "properties": {"track_data": TRACK_OBJECT}},
                 {"required": ["spotify_track_data"], "not": {"required": ["track_data"]},
                  "properties": {"spotify_track_data": TRACK_OBJECT}},
                 # A whole album (see add_album_to_wishlist).
                 {"required": ["album", "source"], "not": _TRACK_GIVEN,
                  "properties": {"album": {"type": "object", "required": ["id", "name"],
                                           "properties": {"id": _ID, "name": NON_BLANK}},
                                 "source": _SOURCE}},
                 {"required": ["album_id", "source"], "not": _TRACK_GIVEN,
                  "properties": {"album_id": _ID, "source": _SOURCE}}]}),
             response=WishlistAdded, status=201, also=(200,), errors=(404, 503), profiled=True)
async def add_to_wishlist(request: web.Request, body: WishlistBody) -> web.Response:
    if body.track_data is UNSET and body.spotify_track_data is UNSET and (
            body.album is not UNSET or body.album_id is not UNSET):
        return await _add_album(request, body)
    field, data = "track_data", body.track_data
    if data is UNSET:
        field, data = "spotify_track_data", body.spotify_track_data
    if data is UNSET or data is None:
        raise bad_request("Missing 'track_data' (or 'spotify_track_data') in body: a track object "
                          'with at least id and name, e.g. {"id": "…", "name": "…", '
                          '"artists": [{"name": "…"}]}.')
    source_type = (body.source_type or "").strip() or "api"
    try:
        track, created = await core_of(request).wishlist.add(
            data, failure_reason=body.failure_reason or "Added via API", source_type=source_type,
            source_info=body.source_info, field=field, profile_id=profile_of(request))
    except WishlistInputError as exc:
        raise bad_request(str(exc)) from None
    message = "Track added to wishlist." if created else "Track already on the wishlist; entry updated."
    return ok(WishlistAdded(message, created, track), status=201 if created else 200)


async def _add_album(request: web.Request, body: WishlistBody) -> web.Response:
    """Put a whole album on the wishlist: the album object as given (with ``id`` and
    ``name``), or the album ``album_id`` of ``source`` as that source describes it."""
    core = core_of(request)
    data = body.album
    raw_id = data.get("id") if isinstance(data, dict) else body.album_id
    album_id = str(raw_id).strip() if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
    if not album_id:
        raise bad_request('A whole album needs its id: {"album": {"id": "…", "name": "…"}} or '
                          '{"album_id": "…", "source": "itunes"}.')
    source = (body.source or "").strip().lower()
    if source not in ALBUM_SOURCES:
        raise bad_request(f"source is required for album {album_id!r}: one of "
                          f"{', '.join(ALBUM_SOURCES)}.")
    if source not in core.search.names():
        raise ApiError(503, "NOT_AVAILABLE", f"The metadata source {source!r} is not installed: "
                       f"album {album_id!r} cannot be fetched from it.")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        # Only the id: the metadata source says what the album is (and that it exists).
        found = await album_from_body(core.search, DownloadBody(album_id=album_id, source=source))
        data = {"id": album_id, "name": found.name, "artists": found.artists,
                "release_date": found.release_date, "album_type": found.album_type,
                "image_url": found.image_url, "total_tracks": len(found.tracks)}
    try:
        entry, created = await core.wishlist.add_album(
            {**data, "id": album_id}, source, failure_reason=body.failure_reason or "Added via API",
            source_type=(body.source_type or "").strip() or "api", source_info=body.source_info,
            profile_id=profile_of(request))
    except WishlistInputError as exc:
        raise bad_request(str(exc)) from None
    message = "Album added to wishlist." if created else "Album already on the wishlist; entry updated."
    return ok(WishlistAdded(message, created, entry), status=201 if created else 200)


@routes.delete("/wishlist/{track_id}", "Remove the track with that provider track id (a whole "
               "album: album:<source>:<album id>).",
               response=Message, errors=(404,), profiled=True)
async def remove_from_wishlist(request: web.Request) -> web.Response:
    if not await core_of(request).wishlist.remove(request.match_info["track_id"],
                                                  profile_of(request)):
        raise not_found("Track not found in wishlist.")
    return ok(Message("Track removed from wishlist."))


@routes.post("/wishlist/process", "Start a wishlist run now (ignores the retry back-off); 409 "
             "while one runs.", response=RunStarted, status=202, errors=(409,))
async def process_wishlist(request: web.Request) -> web.Response:
    wishlist = core_of(request).wishlist
    try:
        job = await wishlist.start_run(manual=True)
    except JobConflict as exc:
        raise ApiError(409, "CONFLICT", f"Wishlist processing is already running (run "
                       f"{exc.running.id}); follow it with GET /api/v1/wishlist/process.") from None
    return ok(RunStarted("Wishlist processing started.", job.id, await wishlist.status()),
              status=202)


@routes.get("/wishlist/process", "The running wishlist run, else the last one.",
            response=RunStatus)
async def wishlist_run_status(request: web.Request) -> web.Response:
    return ok(await core_of(request).wishlist.status())
