"""Finding a wanted track in the library: the one place that answers "do we have it, which file?".

Used by playlist sync (which files go into the M3U8), the wishlist (drop what the library
has) and the watchlist. The verdict on each candidate is
:func:`soulsync_core.matching.track_similarity`, the same scoring the download ranking uses;
this module only finds the candidates, fast, and picks the best.

Candidates come from the library's indexes, never from a walk over all tracks, and a whole
batch of wanted tracks (:data:`BATCH`) shares each statement (a JSON list of the wanted rows
joined in SQL), run on the read connections:

1. **Ids**: the wanted source's track id (Spotify, iTunes, Deezer) and the ISRC, through their
   partial indexes (one ``IN`` list per column). A hit is the recording (confidence 1.0);
   several files of it: the better file wins.
2. **The artists' tracks**: library artists whose folded name equals a wanted artist's (also
   with or without a leading "The", as "Beatles, The", and the joint credit of a duet, "A & B")
   are walked through the album and track indexes. ``tracks_album`` holds ``title_fold``, so
   titles are tested in the index without reading track rows: a candidate must contain one
   of the two longest words of the wanted title (split at punctuation, so "Don't"/"Dont"
   spellings both pass). Tracks whose own artist tag contains the name (compilations, "A
   feat. B") come from the small ``tracks_artist_fts`` index.
3. **Fallback**, only for wanted tracks still unmatched *and* none of whose artists exists
   under that exact name: artists whose name contains every word of the wanted artist
   (``artists_fts``: "Guns N Roses" finds "Guns N' Roses", "Jimi Hendrix" finds "The Jimi
   Hendrix Experience"), their tracks narrowed by the title words again. The trigram lookups
   cost about 1 ms each, which is why an artist found by name skips them.

Candidates are screened in Python on their folded titles (contains the wanted title, or its
head is close enough by rapidfuzz), at most :data:`MAX_SCORED` per wanted track are read
whole and scored. Screening and scoring run in a worker thread, one hop per statement and
batch, so the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from soulsync_core.db import Database
from soulsync_core.downloads.models import TAGGED_SOURCES, Wanted
from soulsync_core.library.folding import TRIGRAM, fts_phrase
from soulsync_core.library.folding import fold as library_fold
from soulsync_core.library.queries import LOOKUP_COLUMNS
from soulsync_core.matching import TrackInfo, parse_title, track_similarity
from soulsync_core.matching.quality import LOSSLESS
from soulsync_core.settings import Settings

# Wanted tracks whose candidates are found by one statement (and scored in one thread hop).
BATCH = 250
# Candidates scored per wanted track, the most similar titles first.
MAX_SCORED = 25
# Title screening: a candidate whose title head is at least this similar (0-100) is scored.
_SCREEN_RATIO = 75
# Album artists that name no one: never looked up by name (their tracks carry a track artist).
_NOBODY = frozenset({"various artists", "various", "va", "v.a.", "unknown artist", "unknown"})

Method = Literal["id", "isrc", "exact", "fuzzy"]


@dataclass(frozen=True)
class LibraryMatch:
    """A library track found for a wanted one: its id, how sure (0 to 1), how, and its file."""

    track_id: int
    confidence: float
    method: Method
    path: str


# --------------------------------------------------------------------------- SQL

# The columns scoring needs, in this order (see _Track).
_TRACK_COLUMNS = (
    "t.id, t.title, ar.name, t.track_artist, al.title, t.duration, t.isrc, "
    "f.path || '/' || t.file_name, t.format, t.bit_depth, t.sample_rate, t.bitrate, t.file_mtime")
_TRACK_JOINS = ("CROSS JOIN albums al ON al.id = t.album_id CROSS JOIN artists ar ON ar.id = t.artist_id "
                "CROSS JOIN folders f ON f.id = t.folder_id")
# The wanted side of a batch: rows [index, artist key, FTS phrase, title word, title word] as
# JSON. A candidate title must contain one of the two longest words of the wanted title (the
# second is NULL for a one-word title: instr() with "" would accept anything).
_WANTED_ROWS = ("WITH w(i, name, phrase, word, word2) AS (SELECT json_extract(value, '$[0]'), "
                "json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
                "json_extract(value, '$[4]') FROM json_each(?))")
_HAS_WORD = "(instr(t.title_fold, w.word) > 0 OR instr(t.title_fold, w.word2) > 0)"
# Step 2: the tracks of artists named exactly so (titles from the tracks_album index), then
# tracks whose own artist tag contains the name (tracks_artist_fts), each with its wanted index.
_BY_ARTIST = (
    f"{_WANTED_ROWS} "
    "SELECT w.i, t.id, t.title_fold FROM w CROSS JOIN artists a ON a.name_fold = w.name "
    "CROSS JOIN albums al ON al.artist_id = a.id CROSS JOIN tracks t ON t.album_id = al.id "
    f"WHERE {_HAS_WORD} "
    "UNION ALL SELECT w.i, t.id, t.title_fold FROM w CROSS JOIN tracks_artist_fts "
    "CROSS JOIN tracks t ON t.id = tracks_artist_fts.rowid "
    f"WHERE w.phrase IS NOT NULL AND tracks_artist_fts MATCH w.phrase AND {_HAS_WORD}"
)
# Which wanted tracks have an artist of exactly that name (step 3 is only for the others).
_KNOWN_ARTISTS = f"{_WANTED_ROWS} SELECT DISTINCT w.i FROM w CROSS JOIN artists a ON a.name_fold = w.name"
# Step 3: artists whose name contains every word (artists_fts), their tracks with the title word.
_BY_ARTIST_WORDS = (
    f"{_WANTED_ROWS} "
    "SELECT w.i, t.id, t.title_fold FROM w CROSS JOIN artists_fts "
    "CROSS JOIN albums al ON al.artist_id = artists_fts.rowid CROSS JOIN tracks t ON t.album_id = al.id "
    f"WHERE artists_fts MATCH w.phrase AND {_HAS_WORD}"
)
# Tracks by a provider-id column (formatted in; the key is the last column), and by id.
_BY_ID = (f"SELECT {_TRACK_COLUMNS}, t.{{column}} FROM tracks t {_TRACK_JOINS} "
          "WHERE t.{column} IN (SELECT value FROM json_each(?))")
_BY_TRACK_ID = (f"SELECT {_TRACK_COLUMNS} FROM tracks t {_TRACK_JOINS} "
                "WHERE t.id IN (SELECT value FROM json_each(?))")


def matcher_statements() -> list[str]:
    """Return every statement the matcher runs (for the query-plan test)."""
    ids = [_BY_ID.format(column=c) for c in {*_ID_COLUMNS.values(), "isrc"}]
    return [*ids, _BY_ARTIST, _KNOWN_ARTISTS, _BY_ARTIST_WORDS, _BY_TRACK_ID]


_ID_COLUMNS = {source: LOOKUP_COLUMNS["track"][source] for source in TAGGED_SOURCES}


# ------------------------------------------------------------------ text helpers

_APOSTROPHES = re.compile(r"['`\u2019\u00b4]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_HEAD_END = re.compile(r"\s+(?:[(\[{]|[-\u2013\u2014]\s|(?:feat|ft|featuring)\b)")
_STOP_WORDS = frozenset({"the", "and", "of", "a", "an"})


@functools.lru_cache(maxsize=65536)
def _loose(folded: str) -> str:
    """Return already folded text with apostrophes gone and other punctuation as spaces."""
    return " ".join(_NON_ALNUM.sub(" ", _APOSTROPHES.sub("", folded)).split())


def _head(folded: str) -> str:
    """Return the loose title before its first bracket, " - " suffix or "feat."."""
    return _loose(_HEAD_END.split(folded, maxsplit=1)[0])


def _words(text: str) -> list[str]:
    return [w for w in _loose(library_fold(text)).split() if w not in _STOP_WORDS]


def _longest_words(text: str) -> list[str | None]:
    """Return the two longest words of ``text`` as ``title_fold`` holds them ([] for none).

    Words are split at any punctuation ("don't" gives "don" and "t"), so each is a substring
    of the folded title whichever way the other side spells it; None stands for no second.
    """
    words = sorted(dict.fromkeys(_NON_ALNUM.split(library_fold(text))), key=len, reverse=True)
    words = [w for w in words if w and w not in _STOP_WORDS] or [w for w in words if w]
    return [*words[:2], None][:2] if words else []


@functools.lru_cache(maxsize=16384)
def _name_keys(name: str) -> list[str]:
    """Return the folded library names ``name`` may be stored as ("The" moved, added or dropped)."""
    key = library_fold(name)
    if not key or key in _NOBODY:
        return []
    bare = key[4:] if key.startswith("the ") else key
    return list(dict.fromkeys([key, bare, f"the {bare}", f"{bare}, the"]))


@dataclass
class _Wanted:
    """A wanted track prepared for the queries: its matching view, keys and title screens."""

    wanted: Wanted
    info: TrackInfo
    names: list[str]          # the wanted artists, album artist and joint credits, as written
    words: list[str | None]   # the two longest words of the title (None: no second word)
    screens: tuple[str, ...]  # loose forms of the title a candidate title may contain
    head: str                 # the loose title head
    screen_text: str = ""     # the screens joined, for heads found inside them

    @classmethod
    def of(cls, wanted: Wanted) -> _Wanted:
        info = wanted.track_info()
        parsed = parse_title(wanted.title)
        artists = [a for a in wanted.artists if a and a.strip()]
        # A duet may be filed under one joint album artist ("Queen & David Bowie").
        joint = ([f"{artists[0]}{sep}{artists[1]}" for sep in (" & ", ", ", " and ")]
                 if len(artists) > 1 else [])
        names = list(dict.fromkeys(n for n in (*artists, wanted.album_artist, *joint) if n and n.strip()))
        screens = tuple(dict.fromkeys(s for s in (_loose(library_fold(parsed.base)),
                                                  _loose(library_fold(parsed.bare))) if s))
        return cls(wanted, info, names, _longest_words(parsed.base) or _longest_words(wanted.title),
                   screens, _head(library_fold(wanted.title)), " | ".join(screens))

    def passes(self, title_fold: str) -> int:
        """Return how alike a candidate's folded title looks (0-100; 0: not worth scoring)."""
        loose = _loose(title_fold)
        if any(s in loose for s in self.screens):
            return 100
        head = _head(title_fold)
        if len(head) >= 3 and head in self.screen_text:
            return 90
        score = _ratio(self.head, head)
        return int(score) if score >= _SCREEN_RATIO else 0


@functools.cache
def _rapidfuzz_ratio() -> Any:
    from rapidfuzz import fuzz

    return fuzz.ratio


def _ratio(a: str, b: str) -> float:
    return _rapidfuzz_ratio()(a, b)


class _Track(msgspec.Struct, array_like=True):
    """A library track row as scoring needs it (columns of _TRACK_COLUMNS, in order)."""

    id: int
    title: str
    artist: str
    track_artist: str | None
    album: str
    duration: int | None
    isrc: str | None
    path: str
    format: str
    bit_depth: int | None
    sample_rate: int | None
    bitrate: int | None
    mtime: int

    def info(self) -> TrackInfo:
        artists = tuple(a for a in (self.artist, self.track_artist) if a)
        return TrackInfo(self.title, artists, self.album, self.duration or 0, self.isrc)

    def quality(self) -> tuple[int, int, int, int, int]:
        """Return the sort key of the file itself: lossless, bit depth, rate, bitrate, newest."""
        return ((self.format or "").lower() in LOSSLESS, self.bit_depth or 0, self.sample_rate or 0,
                self.bitrate or 0, self.mtime)


def _isrc(value: str | None) -> str:
    return (value or "").replace("-", "").strip().upper()


# ------------------------------------------------------------------------ matcher


class LibraryMatcher:
    """Matches wanted tracks against the library (reads only).

    Its statements run on the database's read connections. The duration tolerance is the
    ``downloads.duration_tolerance_seconds`` setting, read on each call.
    """

    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._settings = settings

    async def match(self, wanted: Wanted) -> LibraryMatch | None:
        """Return the library track that is the wanted recording, None when there is none.

        A track tagged with the wanted source's id or the same ISRC wins outright; otherwise
        the candidate the shared matching accepts with the highest confidence (ties: the
        better file, then the newest).
        """
        return (await self.match_many([wanted]))[0]

    async def match_many(self, wanted: Sequence[Wanted]) -> list[LibraryMatch | None]:
        """Return :meth:`match` of each wanted track, in order (None where nothing matches)."""
        results: list[LibraryMatch | None] = []
        for start in range(0, len(wanted), BATCH):
            batch = await asyncio.to_thread(_prepare, wanted[start:start + BATCH])
            results += await self._match_batch(batch)
        return results

    async def _match_batch(self, batch: list[_Wanted]) -> list[LibraryMatch | None]:
        results: list[LibraryMatch | None] = [None] * len(batch)
        await self._match_ids(batch, results)
        tolerance = float(self._settings.get("downloads.duration_tolerance_seconds"))
        todo = [i for i, r in enumerate(results) if r is None and batch[i].names and batch[i].words]
        if not todo:
            return results
        named = [row for i in todo for row in _artist_rows(i, batch[i])]
        await self._search(_BY_ARTIST, named, batch, results, tolerance)
        todo = [i for i in todo if results[i] is None]
        if todo:
            # An artist known by its exact name had its tracks walked above: the word search
            # (about 1 ms of trigram lookups each) is for names spelt differently.
            left = set(todo)
            known = {row[0] for row in await self._db.fetchall(
                _KNOWN_ARTISTS, (_json(row for row in named if row[0] in left),))}
            worded = [row for i in todo if i not in known for row in _artist_word_rows(i, batch[i])]
            await self._search(_BY_ARTIST_WORDS, worded, batch, results, tolerance)
        return results

    async def _search(self, statement: str, rows: list[list[Any]], batch: list[_Wanted],
                      results: list[LibraryMatch | None], tolerance: float) -> None:
        """Run one candidate statement for ``rows`` and fill ``results`` with what scoring accepts."""
        if not rows:
            return
        found = await self._db.fetchall(statement, (_json(rows),))
        picked = await asyncio.to_thread(_screen, batch, found)
        tracks = await self._tracks({track_id for ids in picked.values() for track_id in ids})
        for i, match in (await asyncio.to_thread(_score, batch, picked, tracks, tolerance)).items():
            results[i] = match

    async def _match_ids(self, batch: list[_Wanted], results: list[LibraryMatch | None]) -> None:
        """Fill ``results`` for the wanted tracks the library has by provider id or ISRC."""
        by_column: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, item in enumerate(batch):
            w = item.wanted
            if w.source in _ID_COLUMNS and w.track_id:
                by_column[_ID_COLUMNS[w.source]][w.track_id].append(i)
        for column, keys in by_column.items():
            rows = await self._db.fetchall(_BY_ID.format(column=column), (_json(keys),))
            _keep_best(results, rows, keys, "id", lambda value: value)
        isrcs: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(batch):
            if results[i] is None and _isrc(item.wanted.isrc):
                isrcs[_isrc(item.wanted.isrc)].append(i)
        if isrcs:
            # Tags may keep an ISRC with hyphens or in lower case; those spellings are asked for.
            spellings = {s for key in isrcs for s in (key, key.lower(), _hyphenated(key))}
            rows = await self._db.fetchall(_BY_ID.format(column="isrc"), (_json(spellings),))
            _keep_best(results, rows, isrcs, "isrc", _isrc)

    async def _tracks(self, ids: set[int]) -> dict[int, _Track]:
        if not ids:
            return {}
        rows = await self._db.fetchall(_BY_TRACK_ID, (_json(sorted(ids)),))
        return {row[0]: _Track(*row) for row in rows}


def _prepare(wanted: Sequence[Wanted]) -> list[_Wanted]:
    return [_Wanted.of(w) for w in wanted]


def _json(values: Iterable[Any]) -> str:
    return msgspec.json.encode(list(values)).decode()


def _hyphenated(isrc: str) -> str:
    """Return ``CCXXXYYNNNNN`` written ``CC-XXX-YY-NNNNN``."""
    return f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}" if len(isrc) == 12 else isrc


def _keep_best(results: list[LibraryMatch | None], rows: Iterable[Sequence[Any]],
               keys: dict[str, list[int]], method: Method, normalise: Any) -> None:
    """Set ``results[i]`` to the best file among ``rows`` (columns + the key) for each wanted index."""
    best: dict[int, _Track] = {}
    for row in rows:
        track = _Track(*row[:-1])
        for i in keys.get(normalise(row[-1]), ()):
            if i not in best or track.quality() > best[i].quality():
                best[i] = track
    for i, track in best.items():
        results[i] = LibraryMatch(track.id, 1.0, method, track.path)


def _artist_rows(i: int, item: _Wanted) -> list[list[Any]]:
    """Return the step-2 rows of a wanted track: one per name key (phrase on the first only)."""
    rows: list[list[Any]] = []
    for name in item.names:
        keys = _name_keys(name)
        for n, key in enumerate(keys):
            phrase = fts_phrase(keys[0]) if n == 0 and len(keys[0]) >= TRIGRAM else None
            rows.append([i, key, phrase, *item.words])
    return rows


def _artist_word_rows(i: int, item: _Wanted) -> list[list[Any]]:
    """Return the step-3 rows: per wanted artist, every word of 3+ characters must be in the name."""
    rows: list[list[Any]] = []
    if not item.words:
        return rows
    for name in item.names:
        words = [w for w in _words(name) if len(w) >= TRIGRAM]
        if words and library_fold(name) not in _NOBODY:
            rows.append([i, None, " AND ".join(fts_phrase(w) for w in dict.fromkeys(words)), *item.words])
    return rows


def _screen(batch: list[_Wanted], found: Iterable[Sequence[Any]]) -> dict[int, list[int]]:
    """Return, per wanted index, the candidate track ids whose titles are worth scoring."""
    scored: dict[int, dict[int, int]] = defaultdict(dict)
    for i, track_id, title_fold in found:
        seen = scored[i]
        if track_id not in seen:
            seen[track_id] = batch[i].passes(title_fold)
    return {i: [t for t, s in sorted(seen.items(), key=lambda kv: -kv[1]) if s][:MAX_SCORED]
            for i, seen in scored.items()}


def _score(batch: list[_Wanted], picked: dict[int, list[int]], tracks: dict[int, _Track],
           tolerance: float) -> dict[int, LibraryMatch]:
    """Return, per wanted index, the accepted candidate with the best (confidence, file)."""
    out: dict[int, LibraryMatch] = {}
    for i, ids in picked.items():
        best: tuple[float, tuple[int, ...], LibraryMatch] | None = None
        for track_id in ids:
            track = tracks.get(track_id)
            if track is None:  # deleted between the two reads
                continue
            score = track_similarity(batch[i].info, track.info(), duration_tolerance_s=tolerance)
            if not score.matched:
                continue
            key = (score.confidence, track.quality())
            if best is None or key > best[:2]:
                best = (*key, LibraryMatch(track.id, score.confidence, score.method, track.path))
        if best is not None:
            out[i] = best[2]
    return out
