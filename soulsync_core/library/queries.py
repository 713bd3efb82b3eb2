"""Reading the library for the API: every query walks an index or an FTS5 trigram index.

Substring search compares folded text (see :mod:`folding`) through FTS5 with the trigram
tokenizer. The trigram index cannot serve terms shorter than three characters; those match
at the start of the name instead, through the ordinary indexes (``b`` finds ``Björk`` and
``Beck``, but not ``Abba``). Totals come from the maintained counts, or from counting an index
range or the FTS matches, never from counting a whole table.

A list query has two levels: the inner one finds, filters, orders and limits ids only; the
outer one builds the JSON objects (:func:`objects.json_sql`) of just those rows and orders
them again (a few dozen rows). A paged query carries its total as a column, so a page costs
one round trip to a reader process; only an empty page asks for the total separately.
Joins driven by an FTS match are written ``CROSS JOIN``, which SQLite never reorders: the
matches drive, instead of one FTS lookup per row of another index.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

from soulsync_core.db import Database, Row
from soulsync_core.db.changes import ChangeCounter
from soulsync_core.library.folding import PREFIX_END, TRIGRAM, fold, fts_phrase
from soulsync_core.library.objects import EMPTY, IS_WATCHED, JsonArray, Wanted, json_sql

Watchlist = Literal["all", "watched", "unwatched"]
Kind = Literal["artist", "album", "track"]

_ALBUM_JOINS = "JOIN artists ar ON ar.id = al.artist_id"
_TRACK_JOINS = ("JOIN folders f ON f.id = t.folder_id JOIN albums al ON al.id = t.album_id "
                "JOIN artists ar ON ar.id = t.artist_id")

# The tracks of a search by title and artist, both terms of 3+ characters, as rows ``m(id)``.
# Two ways, chosen inside the statement:
#
# - walk the artists: the albums of the artists whose name contains the artist term
#   (artists_fts), through their albums' titles texts (album_titles, migration 0024), so that
#   only the albums whose text contains the title term are walked, in the track index, which
#   holds title_fold (no album or track row is read); and the tracks whose own artist matches
#   (the small tracks_artist_fts, migration 0005). The UNION drops a track found both ways.
# - or, when those artists have many tracks, tracks_fts with both terms.
#
# The choice (``way.walk``) is made once, from the number of matching artists times the
# library's mean tracks per artist, plus the matching track artists: an estimate, which reads
# no artist row (summing the artists' own track counts read one row per artist, and at
# 1,000,000 tracks those pages pushed the rest of the search out of the reader's page cache:
# 4.4 ms instead of 2.1). The one-row ``way`` drives each branch, so a branch not chosen stops
# before reading anything; the matching artists are found once for the choice and the walk.
# Parameters, in order: artist phrase, artist phrase, _ARTIST_FIRST_MAX, _ARTIST_FIRST_SHARE,
# title, title, artist phrase, title, the tracks_fts query.
_TITLE_AND_ARTIST = (
    "(WITH wa(id) AS MATERIALIZED (SELECT rowid FROM artists_fts WHERE artists_fts MATCH ?), "
    "way(walk) AS MATERIALIZED (SELECT (SELECT count(*) FROM wa) * s.tracks / max(s.artists, 1) "
    "+ (SELECT count(*) FROM tracks_artist_fts WHERE tracks_artist_fts MATCH ?) "
    "<= max(?, s.tracks / ?) FROM library_stats s WHERE s.id = 1) "
    "SELECT t2.id AS id FROM way CROSS JOIN album_titles y2 CROSS JOIN tracks t2 "
    "ON t2.album_id = y2.album_id WHERE way.walk AND y2.artist_id IN (SELECT id FROM wa) "
    "AND instr(y2.titles, ?) > 0 AND instr(t2.title_fold, ?) > 0 "
    "UNION SELECT t3.id AS id FROM way CROSS JOIN tracks_artist_fts y CROSS JOIN tracks t3 "
    "ON t3.id = y.rowid WHERE way.walk AND tracks_artist_fts MATCH ? AND instr(t3.title_fold, ?) > 0 "
    "UNION ALL SELECT x.rowid AS id FROM way CROSS JOIN tracks_fts x "
    "WHERE NOT way.walk AND tracks_fts MATCH ?) m"
)
# Up to this many tracks of the matching artists (estimated), a title-and-artist search walks
# the artists' albums (about 0.07 us a track of theirs, through the albums' titles texts)
# rather than the trigram index of the title (whose cost grows with how common the title term
# is: ~10 ms for a term in 13,000 of 500,000 titles).
_ARTIST_FIRST_MAX = 10_000
# ... or up to this share of the library's tracks, whichever is more: the trigram index's cost
# grows with the library, as the matches of a title term do. A fixed bound alone sent the
# "wave" artists of a 1,000,000-track library (16,600 tracks) to the trigram index: 15 ms of
# server CPU a search instead of ~5.
_ARTIST_FIRST_SHARE = 50
# An artist search walks the name index instead of sorting the FTS matches when
# matches^2 x this >= (offset + limit) x artists, i.e. when walking to the end of the page
# (~0.15 us a name) costs less than reading and sorting every match (~1 us each).
_WALK_RATIO = 6

# Provider id columns that /library/lookup searches, per object type (each has an index).
LOOKUP_COLUMNS: dict[Kind, dict[str, str]] = {
    "artist": {"spotify": "spotify_artist_id", "itunes": "itunes_artist_id", "deezer": "deezer_id",
               "musicbrainz": "musicbrainz_id"},
    "album": {"spotify": "spotify_album_id", "itunes": "itunes_album_id", "deezer": "deezer_id",
              "musicbrainz": "musicbrainz_release_id"},
    "track": {"spotify": "spotify_track_id", "itunes": "itunes_track_id", "deezer": "deezer_id",
              "musicbrainz": "musicbrainz_recording_id", "isrc": "isrc"},
}


class _Filter:
    """WHERE terms and their parameters, built up one condition at a time."""

    def __init__(self) -> None:
        self.terms: list[str] = []
        self.params: list[Any] = []

    def add(self, term: str, *params: Any) -> None:
        self.terms.append(term)
        self.params.extend(params)

    def prefix(self, column: str, folded: str) -> None:
        self.add(f"{column} >= ? AND {column} < ?", folded, folded + PREFIX_END)

    @property
    def where(self) -> str:
        return f"WHERE {' AND '.join(self.terms)}" if self.terms else ""


# The objects of a list come back as one JSON array, built by SQLite and handed over as a BLOB
# (the UTF-8 bytes the response sends): one row crosses from SQLite to Python instead of one
# per object, and Python neither splits nor joins nor encodes anything.
def _array(column: str) -> str:
    """Return the SQL aggregate of ``column`` (one JSON object per row) as a JSON array BLOB."""
    return f"CAST('[' || coalesce(group_concat({column}, ','), '') || ']' AS BLOB)"


def _joined(sql: str) -> str:
    """Return ``sql`` (whose one column ``o`` is an object, rows in order) as one row: the JSON
    array of its objects and their number.

    The rows of the sub-select reach group_concat() in its ORDER BY order: SQLite does not
    flatten an ordered sub-select into an aggregate query.
    """
    return f"SELECT {_array('q.o')}, count(*) FROM ({sql}) q"


def _artist(wanted: Wanted, where: str) -> str:
    return f"SELECT {json_sql('artist', wanted)} AS o FROM artists a {where}"


def _album(wanted: Wanted, where: str) -> str:
    return f"SELECT {json_sql('album', wanted)} AS o FROM albums al {_ALBUM_JOINS} {where}"


def _track(wanted: Wanted, where: str) -> str:
    return f"SELECT {json_sql('track', wanted)} AS o FROM tracks t {_TRACK_JOINS} {where}"


# Default size of the answer cache: a page of 50 artists is ~40 KB, so ~200 answers.
CACHE_BYTES = 8 * 1024 * 1024
# What an entry costs beyond its key and value (dict slot, tuple, ints), counted in its size.
_ENTRY_OVERHEAD = 200


class AnswerCache:
    """Finished answers of library reads, kept until the database changes; bounded in bytes.

    An entry is valid only while the database's change number (:class:`ChangeCounter`) is
    what it was just before the answer was computed: any commit, by this process (scans,
    imports, removals) or another (``soulsync scan`` beside the daemon), empties the cache,
    so an answer is never older than the last committed write. Writes that are not library
    writes (jobs, activity) empty it too: cheap, and safe. Least recently used entries go
    first.
    """

    def __init__(self, changes: ChangeCounter, max_bytes: int):
        self.max_bytes = max_bytes
        self._changes = changes
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._version: int | None = None
        self.size = 0
        self.hits = 0
        self.misses = 0

    def version(self) -> int | None:
        """Return the database's current change number; None when the cache is off or it is unknown.

        Empties the cache when the number moved since the last call.
        """
        if self.max_bytes <= 0:
            return None
        version = self._changes.version()
        if version is None or version != self._version:
            self.clear()
            self._version = version
        return version

    def get(self, key: str, version: int | None) -> Any:
        """Return the value stored under ``key`` at ``version`` (from :meth:`version`), else None."""
        if version is None or version != self._version:
            return None
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: str, version: int | None, value: Any, size: int) -> None:
        """Store ``value`` (``size`` bytes) as computed from the database at ``version``.

        ``version`` must have been read before the value was computed: a commit in between
        moves the number, and the value is then dropped instead of stored under a stale one.
        """
        if version is None or version != self._version:
            return
        cost = size + len(key) + _ENTRY_OVERHEAD
        if cost > self.max_bytes // 4:
            return  # one huge answer would push out everything else
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._entries[key] = (value, cost)
        self.size += cost
        while self.size > self.max_bytes:
            _key, (_value, dropped) = self._entries.popitem(last=False)
            self.size -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0



class LibraryQueries:
    """The library's read queries. Objects come back as JSON text (see :mod:`objects`).

    ``cache`` holds finished answers for the API (:class:`AnswerCache`); ``cache_bytes`` 0
    turns it off.
    """

    def __init__(self, db: Database, cache_bytes: int = CACHE_BYTES):
        self._db = db
        self.cache = AnswerCache(db.changes, cache_bytes)

    async def _objects(self, sql: str, params: list[Any] | tuple[Any, ...]) -> JsonArray:
        """Return the objects of ``sql`` (one column ``o``), in order, in one round trip."""
        row = await self._db.fetchone(_joined(sql), params)
        assert row is not None  # an aggregate query always yields its row
        return JsonArray(row[0], row[1])

    async def _one(self, sql: str, params: tuple[Any, ...]) -> str | None:
        row = await self._db.fetchone(sql, params)
        return None if row is None else row[0]

    async def _page(self, kind: Kind, wanted: Wanted, source: str, count: str, filt: _Filter,
                    order: str, offset: int, limit: int) -> tuple[JsonArray, int]:
        alias, table, joins = {"artist": ("a", "artists", ""), "album": ("al", "albums", _ALBUM_JOINS),
                               "track": ("t", "tracks", _TRACK_JOINS)}[kind]
        count_params = filt.params if filt.terms else []
        inner = (f"SELECT {alias}.id AS id, ({count}) AS total FROM {source} {filt.where} "
                 f"ORDER BY {order} LIMIT ? OFFSET ?")
        row = await self._db.fetchone(
            f"SELECT {_array('q.o')}, count(*), max(q.total) FROM (SELECT {json_sql(kind, wanted)} "
            f"AS o, s.total AS total FROM ({inner}) s CROSS JOIN {table} {alias} ON {alias}.id = s.id "
            f"{joins} ORDER BY {order}) q",
            [*count_params, *filt.params, limit, offset])
        assert row is not None  # an aggregate query always yields its row
        if row[1]:
            return JsonArray(row[0], row[1]), int(row[2])
        return EMPTY, int(await self._db.fetchval(count, count_params) or 0)

    async def artists(self, *, search: str, letter: str, watchlist: Watchlist, offset: int,
                      limit: int, wanted: Wanted = None) -> tuple[JsonArray, int]:
        """Return ``(artists of the page ordered by name, total matching)``.

        ``letter`` is ``all``, ``a``-``z`` or ``#``; ``search`` a raw term (folded here).
        """
        filt = _Filter()
        if watchlist != "all":
            filt.add(IS_WATCHED if watchlist == "watched" else f"NOT {IS_WATCHED}")
        term = fold(search)
        source = "artists a"
        if search and len(term) >= TRIGRAM:
            source = "artists_fts x CROSS JOIN artists a ON a.id = x.rowid"
            filt.add("artists_fts MATCH ?", fts_phrase(term))
        elif search:
            filt.prefix("a.name_fold", term)
        if letter != "all":
            filt.add("a.letter = ?", letter)
        count = (f"SELECT count(*) FROM {source} {filt.where}" if filt.terms
                 else "SELECT artists FROM library_stats WHERE id = 1")
        if filt.terms == ["a.letter = ?"]:
            # Only the letter: its maintained count (migration 0025), not its index range.
            count = "SELECT coalesce((SELECT artists FROM artist_letters WHERE letter = ?), 0)"
        if filt.terms == ["artists_fts MATCH ?"]:
            return await self._searched_artists(term, offset, limit, wanted)
        return await self._page("artist", wanted, source, count, filt, "a.name_fold, a.id",
                                offset, limit)

    async def _searched_artists(self, term: str, offset: int, limit: int,
                                wanted: Wanted) -> tuple[JsonArray, int]:
        """Return a page of the artists whose folded name contains ``term`` (3+ characters).

        Two ways to the page, chosen inside the statement once the FTS index has counted the
        matches (its total is needed anyway): for a common term, walk the name index in order,
        testing each name, and stop at the end of the page (about ``(offset + limit) x
        artists / matches`` names, ~0.15 us each); for a rarer one, read every FTS match and
        sort them (~1 us each). Each branch of the UNION ALL tests the choice before reading
        anything (see below).
        """
        order = "a.name_fold, a.id"
        # The choice, tested in the loop of the one library_stats row that drives each branch:
        # a term of that row alone is tested before the inner loop starts (a constant WHERE
        # subquery was not: the FTS branch ran even when walking), and a one-row outer loop
        # keeps the walk in the name index's order, so it still stops at the end of the page.
        walk = f"(SELECT total FROM n) * (SELECT total FROM n) * {_WALK_RATIO} >= (?3 + ?4) * s.artists"
        walked = (f"SELECT a.id AS id FROM library_stats s CROSS JOIN artists a INDEXED BY "
                  f"artists_name WHERE s.id = 1 AND {walk} AND instr(a.name_fold, ?2) > 0 "
                  f"ORDER BY {order} LIMIT ?3 OFFSET ?4")
        fts = (f"SELECT a.id AS id FROM library_stats s CROSS JOIN artists_fts x CROSS JOIN "
               f"artists a ON a.id = x.rowid WHERE s.id = 1 AND NOT {walk} "
               f"AND artists_fts MATCH ?1 ORDER BY {order} LIMIT ?3 OFFSET ?4")
        row = await self._db.fetchone(
            "WITH n(total) AS (SELECT count(*) FROM artists_fts WHERE artists_fts MATCH ?1) "
            f"SELECT {_array('q.o')}, count(*), (SELECT total FROM n) FROM (SELECT "
            f"{json_sql('artist', wanted)} AS o FROM (SELECT * FROM ({walked}) UNION ALL "
            f"SELECT * FROM ({fts})) p CROSS JOIN artists a ON a.id = p.id ORDER BY {order}) q",
            (fts_phrase(term), term, limit, offset))
        assert row is not None  # an aggregate query always yields its row
        return JsonArray(row[0], row[1]), int(row[2])

    async def artist(self, artist_id: int, wanted: Wanted = None) -> str | None:
        return await self._one(_artist(wanted, "WHERE a.id = ?"), (artist_id,))

    async def artist_detail(self, artist_id: int, wanted_artist: Wanted = None,
                            wanted_album: Wanted = None) -> tuple[str, JsonArray] | None:
        """Return ``(artist, its albums by year then title)``; None when the artist is unknown.

        One statement, so one round trip to a reader: the artist's row, with its albums' array
        built by a sub-select and their number from the maintained ``album_count``.
        """
        albums = _album(wanted_album, "WHERE al.artist_id = ?1 ORDER BY al.year, al.title_fold, al.id")
        row = await self._db.fetchone(
            f"SELECT {json_sql('artist', wanted_artist)}, (SELECT {_array('q.o')} FROM ({albums}) q), "
            "a.album_count FROM artists a WHERE a.id = ?1",
            (artist_id,))
        if row is None:
            return None
        return row[0], JsonArray(row[1], row[2])

    async def artist_albums(self, artist_id: int, wanted: Wanted = None) -> JsonArray | None:
        """Return the artist's albums by year then title; None when the artist is unknown."""
        objects = await self._objects(
            _album(wanted, "WHERE al.artist_id = ? ORDER BY al.year, al.title_fold, al.id"),
            (artist_id,))
        if objects.count or await self._exists("artists", artist_id):
            return objects
        return None

    async def albums(self, *, search: str, artist_id: int | None, year: int | None, offset: int,
                     limit: int, wanted: Wanted = None) -> tuple[JsonArray, int]:
        """Return ``(albums of the page ordered by title, total matching)``."""
        filt = _Filter()
        term = fold(search)
        source = "albums al"
        if search and len(term) >= TRIGRAM:
            source = "albums_fts x CROSS JOIN albums al ON al.id = x.rowid"
            filt.add("albums_fts MATCH ?", fts_phrase(term))
        elif search:
            filt.prefix("al.title_fold", term)
        if artist_id is not None:
            filt.add("al.artist_id = ?", artist_id)
        if year is not None:
            filt.add("al.year = ?", year)
        count = (f"SELECT count(*) FROM {source} {filt.where}" if filt.terms
                 else "SELECT albums FROM library_stats WHERE id = 1")
        if filt.terms == ["albums_fts MATCH ?"]:
            # Only the search: count the matches in the FTS index, without reading the rows.
            count = "SELECT count(*) FROM albums_fts WHERE albums_fts MATCH ?"
        return await self._page("album", wanted, source, count, filt, "al.title_fold, al.id",
                                offset, limit)

    async def album(self, album_id: int, wanted: Wanted = None) -> str | None:
        return await self._one(_album(wanted, "WHERE al.id = ?"), (album_id,))

    async def album_tracks(self, album_id: int, wanted: Wanted = None) -> JsonArray | None:
        """Return the album's tracks by disc, track number, title; None when the album is unknown."""
        objects = await self._objects(
            _track(wanted, "WHERE t.album_id = ? ORDER BY t.disc_number, t.track_number, t.title_fold"),
            (album_id,))
        if objects.count or await self._exists("albums", album_id):
            return objects
        return None

    async def track(self, track_id: int, wanted: Wanted = None) -> str | None:
        return await self._one(_track(wanted, "WHERE t.id = ?"), (track_id,))

    async def _exists(self, table: str, row_id: int) -> bool:
        return await self._db.fetchval(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)) is not None

    async def search_tracks(self, title: str, artist: str, limit: int,
                            wanted: Wanted = None) -> JsonArray:
        """Return up to ``limit`` tracks whose title contains ``title`` and artist ``artist``.

        Either may be empty (not both: the caller refuses that). Exact titles come first, then
        titles starting with the term, then the rest; within each, exact artist names first;
        then by title and artist. When nothing matches and the title has a `` - `` suffix
        ("Song - 2011 Remaster"), the part before it is tried.
        """
        found = await self._search_tracks(fold(title), fold(artist), limit, wanted)
        if not found.count and " - " in title:
            found = await self._search_tracks(fold(title.split(" - ", 1)[0]), fold(artist), limit,
                                              wanted)
        return found

    async def _search_tracks(self, title: str, artist: str, limit: int,
                             wanted: Wanted) -> JsonArray:
        if not title and not artist:
            return EMPTY
        filt = _Filter()
        phrases = []
        if len(title) >= TRIGRAM:
            phrases.append(f"title_fold : {fts_phrase(title)}")
        if len(artist) >= TRIGRAM:
            phrases.append(f"{{artist_fold track_artist_fold}} : {fts_phrase(artist)}")
        source = "tracks t"
        if len(phrases) == 2:
            # A rare artist's tracks, walked through the indexes, are fewer than the matches
            # of a common title term in tracks_fts (whose doclists would all be read).
            source = f"{_TITLE_AND_ARTIST} CROSS JOIN tracks t ON t.id = m.id"
            # The source's parameters come before the filter's (none here), as in the SQL.
            phrase = fts_phrase(artist)
            filt.params = [phrase, phrase, _ARTIST_FIRST_MAX, _ARTIST_FIRST_SHARE, title, title,
                           phrase, title, " AND ".join(phrases), *filt.params]
        elif phrases:
            source = "tracks_fts x CROSS JOIN tracks t ON t.id = x.rowid"
            filt.add("tracks_fts MATCH ?", " AND ".join(phrases))
        if title and len(title) < TRIGRAM:
            filt.prefix("t.title_fold", title)
        if artist and len(artist) < TRIGRAM:
            if phrases or title:
                filt.add("(t.artist_fold >= ? AND t.artist_fold < ? OR "
                         "t.track_artist_fold >= ? AND t.track_artist_fold < ?)",
                         artist, artist + PREFIX_END, artist, artist + PREFIX_END)
            else:
                # Only a short artist term: walk the artists' name index to their albums.
                filt.add("t.album_id IN (SELECT al2.id FROM albums al2 WHERE al2.artist_id IN "
                         "(SELECT id FROM artists WHERE name_fold >= ? AND name_fold < ?))",
                         artist, artist + PREFIX_END)
        order = ("CASE WHEN t.title_fold = ?1 THEN 0 WHEN substr(t.title_fold, 1, ?2) = ?1 THEN 1 "
                 "ELSE 2 END, CASE WHEN t.artist_fold = ?3 OR t.track_artist_fold = ?3 THEN 0 "
                 "ELSE 1 END, t.title_fold, t.artist_fold, t.id")
        # Numbered parameters: the order is used twice (ranking the matches, then ordering the
        # page's objects); ?1-?3 are its terms, the source's and the filter's follow from ?4
        # (in filt.params, in that order), then the limit.
        source_where = _renumber(f"{source} {filt.where}", start=4)
        inner = (f"SELECT t.id AS id FROM {source_where} ORDER BY {order} "
                 f"LIMIT ?{4 + len(filt.params)}")
        return await self._objects(
            f"SELECT {json_sql('track', wanted)} AS o FROM ({inner}) s CROSS JOIN tracks t "
            f"ON t.id = s.id {_TRACK_JOINS} ORDER BY {order}",
            [title, len(title), artist, *filt.params, limit])

    async def recently_added(self, kind: Literal["artists", "albums", "tracks"], limit: int,
                             wanted: Wanted = None) -> JsonArray:
        """Return the ``limit`` newest artists, albums or tracks, newest first."""
        if kind == "artists":
            sql = _artist(wanted, "ORDER BY a.id DESC LIMIT ?")
        elif kind == "albums":
            sql = _album(wanted, "ORDER BY al.id DESC LIMIT ?")
        else:
            sql = _track(wanted, "ORDER BY t.id DESC LIMIT ?")
        return await self._objects(sql, (limit,))

    async def genres(self, source: Literal["artists", "albums"]) -> list[Row]:
        """Return ``(name, count)`` rows of the genres of artists or albums, most common first."""
        return await self._db.fetchall(
            "SELECT name, count FROM library_genres WHERE source = ? ORDER BY count DESC, name",
            (source,))

    async def lookup(self, kind: Kind, provider: str, value: str, wanted: Wanted = None) -> str | None:
        """Return the first artist, album or track carrying ``value`` as its ``provider`` id."""
        column = LOOKUP_COLUMNS[kind][provider]
        build = {"artist": (_artist, "a"), "album": (_album, "al"), "track": (_track, "t")}
        sql, alias = build[kind]
        return await self._one(sql(wanted, f"WHERE {alias}.{column} = ? LIMIT 1"), (value,))

    async def stats(self) -> Row:
        """Return the maintained ``artists, albums, tracks, last_update``."""
        row = await self._db.fetchone(
            "SELECT artists, albums, tracks, last_update FROM library_stats WHERE id = 1")
        assert row is not None  # the migration inserts the one row
        return row


def _renumber(sql: str, start: int) -> str:
    """Return ``sql`` with its plain ``?`` placeholders numbered from ``?start`` on."""
    parts = sql.split("?")
    out = [parts[0]]
    for index, part in enumerate(parts[1:]):
        out.append(f"?{start + index}{part}")
    return "".join(out)
