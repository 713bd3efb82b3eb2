"""Reading an album request of ``POST /downloads`` into the release to fetch, with its tracklist.

Three forms: ``{"album": <album object as the search endpoints return it>}`` (its ``source``
given or guessed from the id), ``{"album_id": "...", "source": "..."}``, and ``{"query":
"Artist - Album", "type": "album"}`` (looked up through ``source`` auto). The tracklist always
comes from the metadata source's ``album_tracks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import UNSET

from soulsync_core.api.envelope import ApiError, bad_request, not_found
from soulsync_core.downloads.album_store import AlbumWanted
from soulsync_core.downloads.albums import AlbumNotFound, album_from_source
from soulsync_core.downloads.wanted import guess_source
from soulsync_core.matching import fold
from soulsync_core.models import Album
from soulsync_core.search import AUTO, MetadataSearch, SourceUnavailable, UnknownSource

if TYPE_CHECKING:
    from soulsync_core.api.downloads import DownloadBody

ALBUM_SOURCES = ("spotify", "itunes", "tidal", "hydrabase")
QUERY_RESULTS = 10


def is_album_request(body: DownloadBody) -> bool:
    """True when the body asks for an album rather than one track."""
    from soulsync_core.api.downloads import AlbumRef

    if body.type == "album":
        return True
    if body.name is not UNSET or body.query is not UNSET:
        return False
    return isinstance(body.album, AlbumRef) or body.album_id is not None


async def album_from_body(search: MetadataSearch, body: DownloadBody) -> AlbumWanted:
    """Return the release an album request names; ApiError (400/404/503) saying what to fix."""
    from soulsync_core.api.downloads import AlbumRef, _names, _text

    if body.query is not UNSET:
        if body.type != "album":
            raise bad_request('Send "type": "album" with an album query.')
        return await _album_from_query(search, body.query.strip())
    if body.name is not UNSET:
        raise bad_request('"type": "album" takes an album object, album_id or query, not a track name.')
    album = body.album if isinstance(body.album, AlbumRef) else None
    album_id = _text(body.album_id) or (_text(album.id) if album is not None else None)
    if not album_id:
        raise bad_request('An album request needs the album\'s id: {"album": {...}} as the search '
                          'endpoints return it, or {"album_id": "...", "source": "itunes"}.')
    source = (body.source or "").strip().lower() or guess_source(album_id)
    if not source:
        raise bad_request(f"source is required to look album {album_id!r} up: one of "
                          f"{', '.join(ALBUM_SOURCES)}.")
    info = Album(album_id, album.name if album else "", _names(album.artists) if album else [],
                 album.release_date if album else None, album.total_tracks or 0 if album else 0,
                 (album.album_type or "album") if album else "album",
                 album.image_url if album else None)  # type: ignore[arg-type]
    return await _album_with_tracks(search, source, info)


async def _album_from_query(search: MetadataSearch, text: str) -> AlbumWanted:
    if not text:
        raise bad_request('query must be a non-empty string such as "Daft Punk - Discovery".')
    if not search.names():
        raise ApiError(503, "NOT_AVAILABLE", "No metadata source is installed to look the album up.")
    artist, dash, name = text.partition(" - ")
    terms = f"{artist.strip()} {name.strip()}" if dash else text
    albums, source = await search.search("albums", terms, QUERY_RESULTS, AUTO)
    if not albums:
        raise not_found(f"No metadata source found an album for {text!r}.")
    chosen = albums[0]
    if dash:
        chosen = next((a for a in albums if fold(a.name) == fold(name.strip())
                       and any(fold(x) == fold(artist.strip()) for x in a.artists)), chosen)
    return await _album_with_tracks(search, source, chosen)


async def _album_with_tracks(search: MetadataSearch, source: str, album: Album) -> AlbumWanted:
    try:
        return await album_from_source(search, source, album)
    except UnknownSource as exc:
        raise bad_request(str(exc)) from None
    except SourceUnavailable as exc:
        raise ApiError(503, "NOT_AVAILABLE", f"The album's tracklist could not be read: {exc}") from None
    except AlbumNotFound as exc:
        raise not_found(str(exc)) from None
