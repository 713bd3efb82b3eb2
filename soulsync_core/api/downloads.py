"""``/downloads``: ask for a track, follow downloads, cancel them (CONTRACT decision 7)."""

from __future__ import annotations

from typing import Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.admin import require_admin_key
from soulsync_core.api.album_requests import album_from_body, is_album_request
from soulsync_core.api.body_rules import NON_BLANK, rules
from soulsync_core.api.endpoints import Routes, comma_list_of, core_of, path_id
from soulsync_core.api.envelope import ApiError, bad_request, not_found, ok
from soulsync_core.api.paging import clamp_page
from soulsync_core.downloads.album_store import AlbumDownloadDetail, AlbumDownloadObject
from soulsync_core.downloads.albums import AlbumInLibrary
from soulsync_core.downloads.models import (
    STATUSES,
    DownloadDetail,
    DownloadObject,
    Wanted,
    download_detail,
    download_object,
)
from soulsync_core.downloads.service import (
    DownloadConflict,
    DownloadNotFound,
    NoDownloadClient,
    UsernameMismatch,
)
from soulsync_core.downloads.wanted import guess_source, resolve_query
from soulsync_core.library.objects import LibraryTrack, raw
from soulsync_core.search import SourceUnavailable

routes = Routes("downloads")


# ---------------------------------------------------------------------- request types


class ArtistRef(msgspec.Struct):
    """An artist given as an object (Spotify style); only ``name`` is used."""

    name: str


class AlbumRef(msgspec.Struct):
    """An album given as an object (Spotify style)."""

    name: str = ""
    id: str | int | None = None
    release_date: str | None = None
    total_tracks: int | None = None
    album_type: str | None = None
    artists: list[str | ArtistRef] = msgspec.field(default_factory=list)
    image_url: str | None = None


class DownloadBody(msgspec.Struct):
    """A track object as the search endpoints return it, or ``query`` (``"Artist - Title"``).

    ``artists`` may be names or ``{"name": …}`` objects, ``album`` a name or an object.
    ``source`` names the metadata source the ids come from (guessed from ``id`` when absent).
    ``force`` downloads the track even when the library has it already.
    Fields the search results carry but a download does not use (``popularity``,
    ``image_url`` …) are accepted and ignored.
    """

    query: str | UnsetType = UNSET
    id: str | int | None = None
    name: str | UnsetType = UNSET
    artists: list[str | ArtistRef] | UnsetType = UNSET
    album: str | AlbumRef | None = None
    album_artist: str | None = None
    duration_ms: int | float = 0
    album_id: str | int | None = None
    track_number: int | None = None
    disc_number: int | None = None
    total_tracks: int | None = None
    release_date: str | None = None
    isrc: str | None = None
    source: str | None = None
    force: bool = False
    type: Literal["track", "album"] = "track"


class DownloadsQuery(msgspec.Struct):
    status: comma_list_of(*STATUSES) = ""  # type: ignore[valid-type]
    kind: Literal["track", "album"] = "track"
    page: int = 1
    limit: int = 50


class CancelBody(msgspec.Struct):
    username: str | None = None


# --------------------------------------------------------------------- response types


class DownloadList(msgspec.Struct):
    """``downloads``: track downloads, or album downloads with ``kind=album``."""

    downloads: list[DownloadObject | AlbumDownloadObject]


class DownloadReply(msgspec.Struct):
    download: DownloadDetail | AlbumDownloadDetail


class DownloadKindQuery(msgspec.Struct):
    kind: Literal["track", "album"] = "track"


class DownloadQueued(msgspec.Struct):
    """``status``: ``queued`` (a new download, ``created`` true), ``already_downloading`` (an
    unfinished download of the same track is returned) or ``already_in_library`` (200: nothing
    is downloaded, ``download`` is null and ``track`` is the library's track). For an album
    request ``download`` is the album download (``kind`` ``album``) with its tracks; when the
    library has every track of it, ``already_in_library`` with ``library_track_ids`` (in
    tracklist order)."""

    message: str
    created: bool
    download: DownloadObject | AlbumDownloadDetail | None
    status: Literal["queued", "already_downloading", "already_in_library"] = "queued"
    track: LibraryTrack | None = None
    library_track_ids: list[int] | None = None


class CancelReply(msgspec.Struct):
    message: str
    download: DownloadObject


class CancelAllReply(msgspec.Struct):
    message: str
    cancelled: int


# ---------------------------------------------------------------------------- helpers


def _names(artists: list[str | ArtistRef]) -> list[str]:
    return [name for name in ((a if isinstance(a, str) else a.name).strip() for a in artists) if name]


def _text(value: str | int | None) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise bad_request(f"{name} must be a positive integer when given.")
    return value


def wanted_from_body(body: DownloadBody) -> Wanted:
    """Return the wanted track a track-object body describes; 400 naming what is missing."""
    if body.name is UNSET or not body.name.strip():
        raise bad_request('name is required (the track title), or send {"query": "Artist - Title"}.')
    artists = _names(body.artists) if body.artists is not UNSET else []
    if not artists:
        raise bad_request('artists must list at least one artist name, e.g. ["Daft Punk"].')
    if body.duration_ms < 0:
        raise bad_request("duration_ms must be 0 (unknown) or more.")
    album = body.album
    album_name = album if isinstance(album, str) else album.name if album is not None else ""
    album_artists = _names(album.artists) if isinstance(album, AlbumRef) else []
    track_id = _text(body.id)
    source = (body.source or "").strip().lower() or guess_source(track_id)
    return Wanted(
        title=body.name.strip(), artists=artists, album=album_name.strip(),
        album_artist=(body.album_artist or "").strip() or (album_artists[0] if album_artists else ""),
        duration_ms=round(body.duration_ms),
        track_number=_positive("track_number", body.track_number),
        track_total=_positive("total_tracks", body.total_tracks if body.total_tracks is not None
                              else album.total_tracks if isinstance(album, AlbumRef) else None),
        disc_number=_positive("disc_number", body.disc_number),
        release_date=_text(body.release_date) or (
            _text(album.release_date) if isinstance(album, AlbumRef) else None),
        isrc=_text(body.isrc), track_id=track_id,
        album_id=_text(body.album_id) or (_text(album.id) if isinstance(album, AlbumRef) else None),
        source=source, compilation=isinstance(album, AlbumRef) and album.album_type == "compilation",
    )


def _statuses(raw: str) -> list[str]:
    """Return the statuses of ``?status=`` (its declaration checked each is one)."""
    return [part.strip().lower() for part in raw.split(",") if part.strip()]


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(503, "NOT_AVAILABLE", str(exc))


# -------------------------------------------------------------------------- endpoints


@routes.get("/downloads", "Downloads, newest first: filter by status (comma list), paging; "
            "kind=album lists album downloads.",
            query=DownloadsQuery, response=DownloadList, paginated=True)
async def list_downloads(request: web.Request, query: DownloadsQuery) -> web.Response:
    page = clamp_page(query.page, query.limit)
    core = core_of(request)
    if query.kind == "album":
        albums, total = await core.albums.page(page.offset, page.limit,
                                               tuple(_statuses(query.status)))
        return ok(DownloadList([await core.albums.summary(a) for a in albums]),
                  pagination=page.pagination(total))
    downloads, total = await core.downloads.page(_statuses(query.status), page.offset, page.limit)
    return ok(DownloadList([download_object(d) for d in downloads]),
              pagination=page.pagination(total))


@routes.get("/downloads/{download_id}", "One download, with every search result's verdict; "
            "kind=album: an album download with its tracks and scored folders.",
            query=DownloadKindQuery, response=DownloadReply, errors=(404,),
            path_types={"download_id": int})
async def get_download(request: web.Request, query: DownloadKindQuery) -> web.Response:
    download_id = path_id(request, "download_id", "Download")
    core = core_of(request)
    if query.kind == "album":
        album = await core.albums.get(download_id)
        if album is None:
            raise not_found(f"Album download {download_id} not found.")
        return ok(DownloadReply(await core.albums.detail(album)))
    download = await core.downloads.get(download_id)
    if download is None:
        raise not_found(f"Download {download_id} not found.")
    return ok(DownloadReply(download_detail(download)))


@routes.post("/downloads", "Download one track (a track object or a query) or an album (an album "
             "object, album_id with source, or a query with type album); 202 with the download, "
             "200 with the library's track when it is there already (unless force).",
             body=rules(DownloadBody, {"anyOf": [
                 {"required": ["query"], "not": {"required": ["name"]},
                  "properties": {"query": NON_BLANK}},
                 {"required": ["name", "artists"], "not": {"required": ["query"]}, "properties": {
                     "name": NON_BLANK, "artists": {"type": "array", "contains": {"anyOf": [
                         NON_BLANK, {"type": "object", "required": ["name"],
                                     "properties": {"name": NON_BLANK}}]}},
                     "duration_ms": {"minimum": 0}, "track_number": {"minimum": 1},
                     "disc_number": {"minimum": 1}, "total_tracks": {"minimum": 1}}},
                 # An album request (see api/album_requests.py).
                 {"required": ["album"], "not": {"required": ["query"]},
                  "properties": {"album": {"type": "object"}}},
                 {"required": ["album_id", "source"], "not": {"required": ["query"]},
                  "properties": {"album_id": {"anyOf": [NON_BLANK, {"type": "integer"}]},
                                 "source": NON_BLANK}}]}),
             response=DownloadQueued, status=202, also=(200,), errors=(404, 503))
async def start_download(request: web.Request, body: DownloadBody) -> web.Response:
    core = core_of(request)
    try:
        core.downloads.client()
    except NoDownloadClient as exc:
        raise _unavailable(exc) from None
    if is_album_request(body):
        album = await album_from_body(core.search, body)
        try:
            row, created = await core.albums.request(album, force=body.force)
        except NoDownloadClient as exc:
            raise _unavailable(exc) from None
        except AlbumInLibrary as exc:
            return ok(DownloadQueued('The library has every track of this album already; send '
                                     '"force": true to download it anyway.', False, None,
                                     "already_in_library", library_track_ids=exc.track_ids))
        detail = await core.albums.detail(row)
        if created:
            return ok(DownloadQueued("Album download queued.", True, detail), status=202)
        return ok(DownloadQueued("This album is being downloaded already.", False, detail,
                                 "already_downloading"), status=202)
    if body.query is not UNSET:
        if body.name is not UNSET:
            raise bad_request("Send either a track (name, artists …) or query, not both.")
        text = body.query.strip()
        if not text:
            raise bad_request('query must be a non-empty string such as "Daft Punk - One More Time".')
        if not core.search.names():
            raise ApiError(503, "NOT_AVAILABLE", "No metadata source is installed to look the query "
                           "up; send the track itself (name, artists, album, duration_ms).")
        try:
            wanted = await resolve_query(core.search, text)
        except SourceUnavailable as exc:  # no metadata source could be asked at all
            raise ApiError(503, "SOURCE_UNAVAILABLE", f"{exc}.") from None
        if wanted is None:
            raise not_found(f"No metadata source found a track for {text!r}.")
    else:
        wanted = wanted_from_body(body)
    if not body.force:
        match = await core.downloads.in_library(wanted)
        track = await core.library.queries.track(match.track_id) if match is not None else None
        if track is not None:
            return ok(DownloadQueued('The library has this track already; send "force": true to '
                                     "download it anyway.", False, None, "already_in_library",
                                     raw(track)))
    try:
        download, created = await core.downloads.request(wanted)
    except NoDownloadClient as exc:
        raise _unavailable(exc) from None
    if created:
        return ok(DownloadQueued("Download queued.", True, download_object(download)), status=202)
    return ok(DownloadQueued("This track is being downloaded already.", False,
                             download_object(download), "already_downloading"), status=202)


@routes.post("/downloads/{download_id}/cancel",
             "Cancel a download and remove its transfer; username, when given, must match.",
             body=CancelBody, response=CancelReply, errors=(404, 409), path_types={"download_id": int})
async def cancel_download(request: web.Request, body: CancelBody) -> web.Response:
    download_id = path_id(request, "download_id", "Download")
    username = body.username if body.username and body.username.strip() else None
    try:
        download = await core_of(request).downloads.cancel(download_id, username)
    except DownloadNotFound as exc:
        raise not_found(str(exc)) from None
    except UsernameMismatch as exc:
        raise bad_request(str(exc)) from None
    except DownloadConflict as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from None
    return ok(CancelReply("Download cancelled.", download_object(download)))


class CancelledReply(msgspec.Struct):
    """``download``: the cancelled track download, or album download (``kind`` ``album``)."""

    message: str
    download: DownloadObject | AlbumDownloadDetail


@routes.delete("/downloads/{download_id}",
               "Cancel a download (kind=album: an album download, its track transfers and the "
               "folder's; what is imported stays).",
               query=DownloadKindQuery, response=CancelledReply, errors=(404, 409),
               path_types={"download_id": int})
async def delete_download(request: web.Request, query: DownloadKindQuery) -> web.Response:
    download_id = path_id(request, "download_id", "Download")
    core = core_of(request)
    try:
        if query.kind == "album":
            album = await core.albums.cancel(download_id)
            return ok(CancelledReply("Album download cancelled.", await core.albums.detail(album)))
        download = await core.downloads.cancel(download_id)
    except DownloadNotFound as exc:
        raise not_found(str(exc)) from None
    except DownloadConflict as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from None
    return ok(CancelledReply("Download cancelled.", download_object(download)))


@routes.post("/downloads/cancel-all",
             "Cancel every unfinished download and remove their transfers.",
             response=CancelAllReply)
async def cancel_all_downloads(request: web.Request) -> web.Response:
    await require_admin_key(request, "cancel every profile's downloads")
    cancelled = await core_of(request).downloads.cancel_all()
    return ok(CancelAllReply("All downloads cancelled and cleared.", cancelled))
