"""Rows of the iTunes Search API turned into SoulSync models.

Album type rule, in order:

1. ``compilation`` when ``collectionType`` is ``Compilation`` or the artist is
   ``Various Artists``;
2. ``single`` / ``ep`` when the collection name ends with `` - Single`` / `` - EP`` (Apple's own
   label for those releases);
3. ``single`` when the collection has 1 to 3 tracks (Apple sometimes omits the suffix);
4. ``album`` otherwise.

The `` - Single`` / `` - EP`` suffix is removed from album names (of albums and of tracks'
``album`` field alike), so names match the tags of downloaded files.
"""

from __future__ import annotations

import re
from typing import Any

from soulsync_core.models import Album, AlbumType, Artist, Track

Row = dict[str, Any]

SUFFIX_TYPES: tuple[tuple[str, AlbumType], ...] = ((" - Single", "single"), (" - EP", "ep"))
MAX_SINGLE_TRACKS = 3
ARTWORK_SIZE = "600x600bb"
_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")


def is_song(row: Row) -> bool:
    """True for song rows (not music videos, not the collection row of a lookup)."""
    return row.get("wrapperType") == "track" and row.get("kind") == "song" and "trackId" in row


def is_collection(row: Row) -> bool:
    """True for album rows (a lookup's wrapper row of the artist is not one)."""
    return row.get("wrapperType") == "collection" and "collectionId" in row


def is_artist(row: Row) -> bool:
    return row.get("wrapperType") == "artist" and "artistId" in row


def release_date(value: Any) -> str | None:
    """Return the ``YYYY[-MM[-DD]]`` prefix of an iTunes ``releaseDate``, or None."""
    match = _DATE.match(value) if isinstance(value, str) else None
    return match.group(0) if match else None


def artwork(row: Row) -> str | None:
    """Return ``artworkUrl100`` asked for at 600x600 (Apple resizes by URL), or None."""
    url = row.get("artworkUrl100")
    return url.replace("100x100bb", ARTWORK_SIZE) if isinstance(url, str) and url else None


def split_collection_name(name: str) -> tuple[str, AlbumType | None]:
    """Return ``(name without " - Single"/" - EP", the type the suffix stands for or None)``."""
    for suffix, kind in SUFFIX_TYPES:
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    return name, None


def album_type(row: Row) -> AlbumType:
    """Return the album type of a collection row by the rule in this module's docstring."""
    if (str(row.get("collectionType", "")).lower() == "compilation"
            or row.get("artistName") == "Various Artists"):
        return "compilation"
    _, kind = split_collection_name(row.get("collectionName", ""))
    if kind is not None:
        return kind
    count = row.get("trackCount") or 0
    return "single" if 0 < count <= MAX_SINGLE_TRACKS else "album"


def _artists(row: Row) -> list[str]:
    name = row.get("artistName")
    return [name] if name else []


def _optional_id(value: Any) -> str | None:
    return None if value is None else str(value)


def to_track(row: Row) -> Track:
    """Map a song row (``wrapperType`` track, ``kind`` song)."""
    album, _ = split_collection_name(row.get("collectionName", ""))
    return Track(
        id=str(row["trackId"]),
        name=row.get("trackName", ""),
        artists=_artists(row),
        album=album,
        duration_ms=row.get("trackTimeMillis") or 0,
        popularity=0,
        preview_url=row.get("previewUrl"),
        image_url=artwork(row),
        release_date=release_date(row.get("releaseDate")),
        album_id=_optional_id(row.get("collectionId")),
        track_number=row.get("trackNumber"),
        disc_number=row.get("discNumber"),
        explicit=row.get("trackExplicitness") == "explicit",
    )


def to_album(row: Row) -> Album:
    """Map a collection row."""
    name, _ = split_collection_name(row.get("collectionName", ""))
    return Album(
        id=str(row["collectionId"]),
        name=name,
        artists=_artists(row),
        release_date=release_date(row.get("releaseDate")),
        total_tracks=row.get("trackCount") or 0,
        album_type=album_type(row),
        image_url=artwork(row),
    )


def to_artist(row: Row) -> Artist:
    """Map an artist row; iTunes has no popularity or follower figures, so both are 0."""
    genre = row.get("primaryGenreName")
    return Artist(
        id=str(row["artistId"]),
        name=row.get("artistName", ""),
        popularity=0,
        genres=[genre] if genre else [],
        followers=0,
        image_url=artwork(row),
    )
