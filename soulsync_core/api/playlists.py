"""``/playlists``: a streaming account's playlists, and syncing one into the library."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.body_rules import NON_BLANK, PLAYLIST_TRACK, rules
from soulsync_core.api.endpoints import Routes, core_of, one_of, registered
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.middlewares import profile_of
from soulsync_core.hooks import NotAuthenticated, ProviderError, RateLimited
from soulsync_core.jobs import JobConflict
from soulsync_core.music_folder import MusicFolderMissing
from soulsync_core.playlists.service import (
    SYNC_MODES,
    NoPlaylistSource,
    NotConnected,
    SyncEntry,
    SyncStatus,
    UnknownSource,
)
from soulsync_core.playlists.tracks import display_of, source_track_objects, track_object
from soulsync_core.search import capped_cooldown
from soulsync_core.wishlist import WishlistInputError

routes = Routes("playlists")

# Reading every page of a large account or playlist takes many requests; past this the
# client gets an answer rather than a hung request (the source's own timeouts are per request).
SOURCE_TIMEOUT_SECONDS = 120.0
MAX_SYNC_TRACKS = 10_000


class SourceQuery(msgspec.Struct):
    source: registered("playlist_source") = "spotify"  # type: ignore[valid-type]


class PlaylistSummary(msgspec.Struct):
    id: str
    name: str
    owner: str
    track_count: int
    image_url: str | None


class PlaylistList(msgspec.Struct):
    playlists: list[PlaylistSummary]
    source: str


class PlaylistTrack(msgspec.Struct):
    """``id`` is "" for a track the source has no id for (a local file of the owner)."""

    id: str
    name: str
    artists: list[str]
    album: str
    duration_ms: int
    image_url: str | None


class PlaylistDetail(msgspec.Struct):
    id: str
    name: str
    owner: str
    total_tracks: int
    tracks: list[PlaylistTrack]


class PlaylistAnswer(msgspec.Struct):
    playlist: PlaylistDetail
    source: str


class SyncBody(msgspec.Struct):
    """``tracks`` as existing clients send them, or none and ``source`` to fetch them."""

    playlist_name: str | None = None
    tracks: Any = UNSET
    source: str | None = None
    sync_mode: one_of(*SYNC_MODES, blank=True) | None = None  # type: ignore[valid-type]
    download_missing: bool | None = None


class SyncStarted(msgspec.Struct):
    message: str
    playlist_id: str
    job_id: str


class PinBody(msgspec.Struct):
    """``track_id`` a library track id, or null for "the library does not have it";
    ``pinned: false`` removes the pin (the next sync matches the entry again)."""

    position: int
    track_id: int | UnsetType | None = UNSET
    pinned: bool = True


@asynccontextmanager
async def _source_errors(request: web.Request, source: str) -> AsyncIterator[None]:
    """Turn what a playlist source raises into the API's errors (a 429's Retry-After passed on
    capped by ``search.max_cooldown_seconds``)."""
    try:
        async with asyncio.timeout(SOURCE_TIMEOUT_SECONDS):
            yield
    except LookupError:
        raise  # "no such playlist" (a source may raise an error that is both): the caller's 404
    except NoPlaylistSource as exc:
        raise ApiError(503, "NOT_AVAILABLE", str(exc)) from None
    except UnknownSource as exc:
        raise bad_request(str(exc)) from None
    except (NotConnected, NotAuthenticated) as exc:
        raise ApiError(401, "NOT_AUTHENTICATED", str(exc)) from None
    except RateLimited as exc:
        seconds = round(capped_cooldown(exc.retry_after, core_of(request).settings))
        raise ApiError(503, "SOURCE_UNAVAILABLE", f"{source} is rate limiting SoulSync; retry "
                       f"after {seconds} s.", {"Retry-After": str(seconds)}) from None
    except ProviderError as exc:
        raise ApiError(503, "SOURCE_UNAVAILABLE", f"{source} could not answer: {exc}") from None
    except TimeoutError:
        raise ApiError(503, "SOURCE_UNAVAILABLE", f"{source} did not answer within "
                       f"{SOURCE_TIMEOUT_SECONDS:.0f} s.") from None


def _source_name(raw: str) -> str:
    return raw.strip().lower() or "spotify"


@routes.get("/playlists", "Every playlist of the connected account of a source (all pages).",
            query=SourceQuery, response=PlaylistList, errors=(401, 503), profiled=True)
async def list_playlists(request: web.Request, query: SourceQuery) -> web.Response:
    source = _source_name(query.source)
    async with _source_errors(request, source):
        playlists = await core_of(request).playlists.list_playlists(source, profile_of(request))
    return ok(PlaylistList([PlaylistSummary(p.id, p.name, p.owner or "Unknown Owner", p.total_tracks,
                                            p.image_url) for p in playlists], source))


@routes.get("/playlists/{playlist_id}", "One playlist with all its tracks.",
            query=SourceQuery, response=PlaylistAnswer, errors=(401, 404, 503), profiled=True)
async def get_playlist(request: web.Request, query: SourceQuery) -> web.Response:
    source = _source_name(query.source)
    try:
        async with _source_errors(request, source):
            playlist = await core_of(request).playlists.get_playlist(
                source, request.match_info["playlist_id"], profile_of(request))
    except LookupError:
        raise not_found("Playlist not found.") from None
    tracks = [PlaylistTrack(**display_of(obj))
              for obj in source_track_objects(playlist.tracks, source)]
    detail = PlaylistDetail(playlist.id, playlist.name, playlist.owner or "Unknown Owner",
                            playlist.total_tracks or len(tracks), tracks)
    return ok(PlaylistAnswer(detail, source))


def _sync_tracks(body: SyncBody) -> list[dict[str, Any]] | None:
    """Return the checked track objects of the body, None when the source is to be read."""
    if body.tracks is UNSET or body.tracks is None:
        if not (body.source or "").strip():
            raise bad_request("Missing 'playlist_name' or 'tracks' in body (or give 'source', "
                              "e.g. \"spotify\", to read the playlist's tracks from it).")
        return None
    if not isinstance(body.tracks, list) or not body.tracks:
        raise bad_request("tracks must be a non-empty list of track objects "
                          '({"name": …, "artists": […]}).')
    if len(body.tracks) > MAX_SYNC_TRACKS:
        raise bad_request(f"tracks holds {len(body.tracks)} tracks; at most {MAX_SYNC_TRACKS} "
                          "can be synced at once.")
    if not (body.playlist_name or "").strip():
        raise bad_request("Missing 'playlist_name' or 'tracks' in body.")
    try:
        return [track_object(data, f"tracks[{i}]") for i, data in enumerate(body.tracks)]
    except WishlistInputError as exc:
        raise bad_request(str(exc)) from None


@routes.post("/playlists/{playlist_id}/sync", "Sync a playlist into the library (M3U8, missing "
             "tracks wanted); 409 while a sync of it runs.", body=rules(SyncBody, {"anyOf": [
                 {"required": ["tracks", "playlist_name"], "properties": {
                     "playlist_name": NON_BLANK, "tracks": {
                         "type": "array", "minItems": 1, "maxItems": MAX_SYNC_TRACKS,
                         "items": PLAYLIST_TRACK}}},
                 {"required": ["source"], "properties": {"source": NON_BLANK,
                                                         "tracks": {"type": "null"}}}]}),
             response=SyncStarted,
             status=202, errors=(401, 409, 503), profiled=True)
async def sync_playlist(request: web.Request, body: SyncBody) -> web.Response:
    playlist_id = request.match_info["playlist_id"]
    tracks = _sync_tracks(body)
    mode = (body.sync_mode or "").strip().lower() or None
    source = _source_name(body.source) if (body.source or "").strip() else None
    name = (body.playlist_name or "").strip() or None
    try:
        async with _source_errors(request, source or "spotify"):
            job = await core_of(request).playlists.start_sync(
                playlist_id, name=name, tracks=tracks, source=source, mode=mode,  # type: ignore[arg-type]
                download_missing=body.download_missing, profile_id=profile_of(request))
    except JobConflict:
        raise ApiError(409, "CONFLICT", "Sync already in progress for this playlist; follow it "
                       f"with GET /api/v1/playlists/{playlist_id}/sync.") from None
    return ok(SyncStarted("Playlist sync started.", playlist_id, job.id), status=202)


@routes.get("/playlists/{playlist_id}/sync", "The running or last sync of a playlist: state, "
            "totals, and per track the library match or what was done about it.",
            response=SyncStatus, errors=(404,), profiled=True)
async def sync_status(request: web.Request) -> web.Response:
    playlist_id = request.match_info["playlist_id"]
    status = await core_of(request).playlists.status(playlist_id, profile_of(request))
    if status is None:
        raise not_found(f"Playlist {playlist_id} was never synced.")
    return ok(status)


@routes.post("/playlists/{playlist_id}/sync/matches", "Pin the library track of one entry of "
             "the last sync (by position) for every later sync, or remove the pin.",
             body=rules(PinBody, {"anyOf": [
                 {"required": ["track_id"]},
                 {"required": ["pinned"], "properties": {"pinned": {"const": False}}}]}),
             response=SyncEntry, errors=(404, 409), profiled=True)
async def pin_match(request: web.Request, body: PinBody) -> web.Response:
    if body.pinned and body.track_id is UNSET:
        raise bad_request("track_id is required: a library track id, or null for \"not in the "
                          "library\" (or pinned: false to remove the pin).")
    track_id = None if body.track_id is UNSET else body.track_id
    try:
        entry = await core_of(request).playlists.pin(request.match_info["playlist_id"],
                                                     body.position, track_id, body.pinned,
                                                     profile_of(request))
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except MusicFolderMissing as exc:
        raise ApiError(409, "CONFLICT", f"The pin is saved, but the M3U8 was not written: "
                       f"{exc}") from None
    return ok(entry)
