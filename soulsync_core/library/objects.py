"""The artist, album and track objects the API returns, and the ``?fields=`` filter.

Shapes follow the public SoulSync API (behaviour reference §2.2): the same keys, with ``null``
for what this library does not know (artwork, Last.fm, match statuses …). Ids are integers.
Objects are built as JSON text by SQLite (:func:`json_sql`) and spliced into the answer; the
Struct types below only describe them for the OpenAPI document, every field optional because
``?fields=`` may drop any of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import msgspec
from msgspec import UNSET, UnsetType

SERVER_SOURCE = "soulsync"


def _iso(column: str) -> str:
    return f"strftime('%Y-%m-%dT%H:%M:%S+00:00', {column}, 'unixepoch')"


# Whether the watchlist holds artist ``a``: by a provider id the artist carries, else by folded
# name, unless the artist has an id at the watch's provider (then a different one: a namesake).
# Each EXISTS walks one index of watchlist_artists. The first EXISTS does not depend on the
# artist, so SQLite evaluates it once per statement: with an empty watchlist (a common case)
# the four per-artist lookups (a tenth of the SQL time of an artist page) are skipped.
IS_WATCHED = (
    "(EXISTS (SELECT 1 FROM watchlist_artists) AND "
    "(EXISTS (SELECT 1 FROM watchlist_artists w WHERE w.source = 'spotify' "
    "AND w.artist_id = a.spotify_artist_id) "
    "OR EXISTS (SELECT 1 FROM watchlist_artists w WHERE w.source = 'itunes' "
    "AND w.artist_id = a.itunes_artist_id) "
    "OR EXISTS (SELECT 1 FROM watchlist_artists w WHERE w.source = 'deezer' "
    "AND w.artist_id = a.deezer_id) "
    "OR EXISTS (SELECT 1 FROM watchlist_artists w WHERE w.name_fold = a.name_fold "
    "AND CASE w.source WHEN 'spotify' THEN a.spotify_artist_id WHEN 'itunes' "
    "THEN a.itunes_artist_id WHEN 'deezer' THEN a.deezer_id END IS NULL)))"
)

# Each object's keys, in order, with the SQL expression that gives the value. The aliases are
# those of queries.py: a = artists, al = albums, ar = the album's artist, t = tracks,
# f = folders. NULL stands for what this library does not know (artwork, Last.fm …). Artists
# and albums carry their timestamps already formatted (migration 0006); tracks format per row.
ARTIST_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "a.id"), ("name", "a.name"), ("thumb_url", "NULL"), ("banner_url", "NULL"),
    ("genres", "json(a.genres)"), ("summary", "NULL"), ("style", "NULL"), ("mood", "NULL"),
    ("label", "NULL"), ("server_source", f"'{SERVER_SOURCE}'"),
    ("created_at", "a.created_iso"), ("updated_at", "a.updated_iso"),
    ("musicbrainz_id", "a.musicbrainz_id"), ("spotify_artist_id", "a.spotify_artist_id"),
    ("itunes_artist_id", "a.itunes_artist_id"), ("audiodb_id", "NULL"), ("deezer_id", "a.deezer_id"),
    ("tidal_id", "NULL"), ("qobuz_id", "NULL"), ("genius_id", "NULL"), ("lastfm_url", "NULL"),
    ("genius_url", "NULL"), ("album_count", "a.album_count"), ("track_count", "a.track_count"),
    ("is_watched", f"json(CASE WHEN {IS_WATCHED} THEN 'true' ELSE 'false' END)"),
    ("image_url", "NULL"),
)
ALBUM_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "al.id"), ("artist_id", "al.artist_id"), ("artist_name", "ar.name"),
    ("title", "al.title"), ("year", "al.year"), ("thumb_url", "NULL"),
    ("genres", "json(al.genres)"), ("track_count", "al.track_count"), ("duration", "al.duration"),
    ("style", "NULL"), ("mood", "NULL"), ("label", "NULL"), ("explicit", "NULL"),
    ("record_type", "al.record_type"), ("server_source", f"'{SERVER_SOURCE}'"),
    ("created_at", "al.created_iso"), ("updated_at", "al.updated_iso"),
    ("upc", "NULL"), ("copyright", "NULL"), ("musicbrainz_release_id", "al.musicbrainz_release_id"),
    ("spotify_album_id", "al.spotify_album_id"), ("itunes_album_id", "al.itunes_album_id"),
    ("audiodb_id", "NULL"), ("deezer_id", "al.deezer_id"), ("tidal_id", "NULL"),
    ("qobuz_id", "NULL"),
)
TRACK_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "t.id"), ("album_id", "t.album_id"), ("artist_id", "t.artist_id"),
    ("title", "t.title"), ("track_number", "t.track_number"), ("disc_number", "t.disc_number"),
    ("duration", "t.duration"), ("file_path", "f.path || '/' || t.file_name"),
    ("file_size", "t.file_size"), ("format", "t.format"), ("bitrate", "t.bitrate"),
    ("sample_rate", "t.sample_rate"), ("bit_depth", "t.bit_depth"), ("bpm", "t.bpm"),
    ("year", "t.year"), ("genres", "json(coalesce(t.genres, '[]'))"),
    ("track_artist", "t.track_artist"), ("explicit", "NULL"), ("style", "NULL"), ("mood", "NULL"),
    ("repair_status", "NULL"), ("repair_last_checked", "NULL"),
    ("server_source", f"'{SERVER_SOURCE}'"), ("created_at", _iso("t.created_at")),
    ("updated_at", _iso("t.updated_at")), ("isrc", "t.isrc"), ("copyright", "NULL"),
    ("musicbrainz_recording_id", "t.musicbrainz_recording_id"),
    ("spotify_track_id", "t.spotify_track_id"), ("itunes_track_id", "t.itunes_track_id"),
    ("audiodb_id", "NULL"), ("deezer_id", "t.deezer_id"), ("tidal_id", "NULL"), ("qobuz_id", "NULL"),
    ("genius_id", "NULL"), ("artist_name", "ar.name"), ("album_title", "al.title"),
)
_FIELDS = {"artist": ARTIST_FIELDS, "album": ALBUM_FIELDS, "track": TRACK_FIELDS}

Wanted = frozenset[str] | None

# Whole artists and albums read from their stored JSON (migration 0008) with the values that
# change with every track written, or live in another table, spliced in: string concatenation
# instead of a 26-key json_object() per row. The same text as json_sql() builds (tested).
STORED_ARTIST = (
    "a.json_head || ',\"album_count\":' || a.album_count || ',\"track_count\":' || a.track_count "
    f"|| ',\"is_watched\":' || CASE WHEN {IS_WATCHED} THEN 'true' ELSE 'false' END "
    "|| ',\"image_url\":null}'"
)
STORED_ALBUM = ("al.json_head || ',\"track_count\":' || al.track_count || ',\"duration\":' "
                "|| al.duration || ',' || al.json_tail")
_STORED = {"artist": STORED_ARTIST, "album": STORED_ALBUM}


@functools.lru_cache(maxsize=256)
def json_sql(kind: str, wanted: Wanted = None) -> str:
    """Return the SQL expression building the JSON text of a ``kind`` object.

    Objects are built by SQLite's JSON functions, in C, straight from the row: the API splices
    the text into its answer, so no Python dict is made per row. ``wanted`` keeps only those
    keys (None keeps all). Whole artists and albums come from their stored JSON instead.
    """
    if wanted is None and kind in _STORED:
        return _STORED[kind]
    return built_json_sql(kind, wanted)


@functools.lru_cache(maxsize=256)
def built_json_sql(kind: str, wanted: Wanted = None) -> str:
    """Return the ``json_object(...)`` expression of a ``kind`` object (what :func:`json_sql` gives
    for a subset of keys, and what the stored JSON must equal)."""
    pairs = [f"'{key}', {expression}" for key, expression in _FIELDS[kind]
             if wanted is None or key in wanted]
    return f"json_object({', '.join(pairs)})"


class Fields:
    """A parsed ``?fields=`` filter, applied per object type.

    Plain names (``id,name``) filter the objects of the endpoint's own type, the ones it
    lists or looks up; embedded children of another type are left whole unless named with
    their type: ``album.title`` or ``albums.title`` keeps only ``title`` in every album,
    wherever it appears. Unknown names are ignored. An empty filter keeps everything.
    """

    _PREFIXES = {"artist": "artist", "artists": "artist", "album": "album", "albums": "album",
                 "track": "track", "tracks": "track"}

    def __init__(self, raw: str, own: str):
        sets: dict[str, set[str]] = {}
        for part in raw.split(","):
            name = part.strip()
            if not name:
                continue
            prefix, dot, rest = name.partition(".")
            kind = self._PREFIXES.get(prefix) if dot else None
            sets.setdefault(kind or own, set()).add(rest.strip() if kind else name)
        self._sets = {kind: frozenset(names) for kind, names in sets.items()}

    def wanted(self, kind: str) -> Wanted:
        """Return the keys to keep in objects of ``kind``, or None to keep them all."""
        return self._sets.get(kind)


@dataclass(frozen=True, slots=True)
class JsonArray:
    """The objects of a list answer as the one JSON array SQLite built (UTF-8 ``data``).

    Kept as bytes from the database to the response: splitting it into objects and joining
    them again cost more than the SQL of an artist page.
    """

    data: bytes
    count: int

    def __len__(self) -> int:
        return self.count


EMPTY = JsonArray(b"[]", 0)


def raw_list(objects: JsonArray) -> msgspec.Raw:
    """Return a list answer's objects as the JSON array that msgspec embeds as it is."""
    return msgspec.Raw(objects.data)


def raw(obj: str) -> msgspec.Raw:
    """Return one JSON object text for msgspec to embed as it is."""
    return msgspec.Raw(obj.encode())


# ---------------------------------------------------------------- OpenAPI descriptions

Str = str | None | UnsetType
Int = int | None | UnsetType
Bool = bool | None | UnsetType


class LibraryArtist(msgspec.Struct):
    """A library artist; every field may be left out by ``?fields=``."""

    id: int | UnsetType = UNSET
    name: str | UnsetType = UNSET
    thumb_url: Str = UNSET
    banner_url: Str = UNSET
    genres: list[str] | UnsetType = UNSET
    summary: Str = UNSET
    style: Str = UNSET
    mood: Str = UNSET
    label: Str = UNSET
    server_source: Str = UNSET
    created_at: Str = UNSET
    updated_at: Str = UNSET
    musicbrainz_id: Str = UNSET
    spotify_artist_id: Str = UNSET
    itunes_artist_id: Str = UNSET
    audiodb_id: Str = UNSET
    deezer_id: Str = UNSET
    tidal_id: Str = UNSET
    qobuz_id: Str = UNSET
    genius_id: Str = UNSET
    lastfm_url: Str = UNSET
    genius_url: Str = UNSET
    album_count: int | UnsetType = UNSET
    track_count: int | UnsetType = UNSET
    is_watched: bool | UnsetType = UNSET
    image_url: Str = UNSET


class LibraryAlbum(msgspec.Struct):
    """A library album (``duration`` in ms); every field may be left out by ``?fields=``."""

    id: int | UnsetType = UNSET
    artist_id: int | UnsetType = UNSET
    artist_name: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    year: Int = UNSET
    thumb_url: Str = UNSET
    genres: list[str] | UnsetType = UNSET
    track_count: int | UnsetType = UNSET
    duration: Int = UNSET
    style: Str = UNSET
    mood: Str = UNSET
    label: Str = UNSET
    explicit: Bool = UNSET
    record_type: Str = UNSET
    server_source: Str = UNSET
    created_at: Str = UNSET
    updated_at: Str = UNSET
    upc: Str = UNSET
    copyright: Str = UNSET
    musicbrainz_release_id: Str = UNSET
    spotify_album_id: Str = UNSET
    itunes_album_id: Str = UNSET
    audiodb_id: Str = UNSET
    deezer_id: Str = UNSET
    tidal_id: Str = UNSET
    qobuz_id: Str = UNSET


class LibraryTrack(msgspec.Struct):
    """A library track (``duration`` in ms, ``bitrate`` in kbps); fields may be left out by ``?fields=``."""

    id: int | UnsetType = UNSET
    album_id: int | UnsetType = UNSET
    artist_id: int | UnsetType = UNSET
    title: str | UnsetType = UNSET
    track_number: Int = UNSET
    disc_number: int | UnsetType = UNSET
    duration: Int = UNSET
    file_path: str | UnsetType = UNSET
    file_size: int | UnsetType = UNSET
    format: str | UnsetType = UNSET
    bitrate: Int = UNSET
    sample_rate: Int = UNSET
    bit_depth: Int = UNSET
    bpm: float | UnsetType | None = UNSET
    year: Int = UNSET
    genres: list[str] | UnsetType = UNSET
    track_artist: Str = UNSET
    explicit: Bool = UNSET
    style: Str = UNSET
    mood: Str = UNSET
    repair_status: Str = UNSET
    repair_last_checked: Str = UNSET
    server_source: Str = UNSET
    created_at: Str = UNSET
    updated_at: Str = UNSET
    isrc: Str = UNSET
    copyright: Str = UNSET
    musicbrainz_recording_id: Str = UNSET
    spotify_track_id: Str = UNSET
    itunes_track_id: Str = UNSET
    audiodb_id: Str = UNSET
    deezer_id: Str = UNSET
    tidal_id: Str = UNSET
    qobuz_id: Str = UNSET
    genius_id: Str = UNSET
    artist_name: str | UnsetType = UNSET
    album_title: str | UnsetType = UNSET
