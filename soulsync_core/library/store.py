"""Writing the library: batched upserts of scanned files and removals, one transaction each.

Every method of :class:`LibraryStore` costs a fixed handful of round trips to the database
thread whatever the batch size: artists, albums and tracks are written with ``executemany``
and find their parents through indexed sub-selects on the grouping keys, so a batch of 1,000
files is as cheap in round trips as a batch of one. Counts, totals, genre counts, search
indexes and the removal of albums and artists left empty are kept by the schema's triggers
(``db/migrations/0002_library.sql``), so no code path can forget them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import aiosqlite

from soulsync_core.db import Database
from soulsync_core.library.search_index import merge_search_indexes
from soulsync_core.library.tags import TrackRecord
from soulsync_core.timefmt import utc_now_iso

# SQLite 3.32+ allows 32,766 variables per statement; chunks stay far below it.
_CHUNK = 900

_ARTIST_ID = "(SELECT id FROM artists WHERE name_key = ?)"
_ALBUM_ID = f"(SELECT id FROM albums WHERE artist_id = {_ARTIST_ID} AND title_key = ? AND release_key = ?)"
_FOLDER_ID = "(SELECT id FROM folders WHERE path = ?)"

_UPSERT_ARTIST = """
INSERT INTO artists (name, name_key, name_fold, letter, musicbrainz_id, spotify_artist_id,
                     itunes_artist_id, deezer_id, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name_key) DO UPDATE SET
    musicbrainz_id = coalesce(artists.musicbrainz_id, excluded.musicbrainz_id),
    spotify_artist_id = coalesce(artists.spotify_artist_id, excluded.spotify_artist_id),
    itunes_artist_id = coalesce(artists.itunes_artist_id, excluded.itunes_artist_id),
    deezer_id = coalesce(artists.deezer_id, excluded.deezer_id),
    updated_at = excluded.updated_at
WHERE (artists.musicbrainz_id IS NULL AND excluded.musicbrainz_id IS NOT NULL)
   OR (artists.spotify_artist_id IS NULL AND excluded.spotify_artist_id IS NOT NULL)
   OR (artists.itunes_artist_id IS NULL AND excluded.itunes_artist_id IS NOT NULL)
   OR (artists.deezer_id IS NULL AND excluded.deezer_id IS NOT NULL)
"""

_UPSERT_ALBUM = f"""
INSERT INTO albums (artist_id, title, title_key, title_fold, release_key, record_type,
                    musicbrainz_release_id, spotify_album_id, itunes_album_id, deezer_id,
                    created_at, updated_at)
VALUES ({_ARTIST_ID}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (artist_id, title_key, release_key) DO UPDATE SET
    musicbrainz_release_id = coalesce(albums.musicbrainz_release_id, excluded.musicbrainz_release_id),
    spotify_album_id = coalesce(albums.spotify_album_id, excluded.spotify_album_id),
    itunes_album_id = coalesce(albums.itunes_album_id, excluded.itunes_album_id),
    deezer_id = coalesce(albums.deezer_id, excluded.deezer_id),
    updated_at = excluded.updated_at
WHERE (albums.spotify_album_id IS NULL AND excluded.spotify_album_id IS NOT NULL)
   OR (albums.itunes_album_id IS NULL AND excluded.itunes_album_id IS NOT NULL)
   OR (albums.deezer_id IS NULL AND excluded.deezer_id IS NOT NULL)
"""

_TRACK_COLUMNS = ("title, title_fold, artist_fold, track_artist, track_artist_fold, track_number, "
                  "disc_number, year, genres, duration, format, bitrate, sample_rate, bit_depth, bpm, "
                  "file_size, file_mtime, musicbrainz_recording_id, isrc, spotify_track_id, "
                  "itunes_track_id, deezer_id, updated_at")
_TRACK_VALUES = ", ".join("?" * len(_TRACK_COLUMNS.split(", ")))

_UPSERT_TRACK = f"""
INSERT INTO tracks (album_id, artist_id, folder_id, file_name, {_TRACK_COLUMNS}, created_at)
VALUES ({_ALBUM_ID}, {_ARTIST_ID}, {_FOLDER_ID}, ?, {_TRACK_VALUES}, ?)
ON CONFLICT (folder_id, file_name) DO UPDATE SET
    album_id = excluded.album_id, artist_id = excluded.artist_id,
    {", ".join(f"{c} = excluded.{c}" for c in _TRACK_COLUMNS.split(", "))}
"""

_MOVE_TRACK = f"""
UPDATE tracks SET album_id = {_ALBUM_ID}, artist_id = {_ARTIST_ID}, folder_id = {_FOLDER_ID},
    file_name = ?, {", ".join(f"{c} = ?" for c in _TRACK_COLUMNS.split(", "))}
WHERE id = ?
"""

# Album year and genres follow from its tracks; artist genres from its albums.
_ALBUM_REFRESH = """
UPDATE albums SET
    year = (SELECT min(year) FROM tracks WHERE album_id = albums.id),
    genres = (SELECT json_group_array(value) FROM (
        SELECT DISTINCT j.value AS value FROM tracks t, json_each(t.genres) j
         WHERE t.album_id = albums.id ORDER BY 1)),
    updated_at = ?
WHERE id = {target}
"""
_ARTIST_REFRESH = """
UPDATE artists SET
    genres = (SELECT json_group_array(value) FROM (
        SELECT DISTINCT j.value AS value FROM albums a, json_each(a.genres) j
         WHERE a.artist_id = artists.id ORDER BY 1)),
    updated_at = ?
WHERE {target}
"""


@dataclass(frozen=True, slots=True)
class KnownFile:
    """A file the library knows: a track (``track_id``) or a skipped unreadable file (None)."""

    track_id: int | None
    folder_id: int
    file_name: str
    file_size: int
    file_mtime: int


@dataclass(frozen=True, slots=True)
class SkippedFile:
    folder: str
    file_name: str
    file_size: int
    file_mtime: int
    reason: str


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _track_values(r: TrackRecord, now: int) -> tuple:
    return (r.title, r.title_fold, r.artist_fold, r.track_artist, r.track_artist_fold, r.track_number,
            r.disc_number, r.year, json.dumps(r.genres, ensure_ascii=False) if r.genres else None,
            r.duration, r.format, r.bitrate, r.sample_rate, r.bit_depth, r.bpm, r.file_size,
            r.file_mtime, r.musicbrainz_recording_id, r.isrc, r.spotify_track_id, r.itunes_track_id,
            r.deezer_track_id, now)


def _album_key(r: TrackRecord) -> tuple[str, str, str]:
    return (r.artist_key, r.album_key, r.release_key)


class LibraryStore:
    """Writes scanned files into the library tables (and reads what a scan compares against)."""

    def __init__(self, db: Database):
        self._db = db
        # One merge of the search indexes at a time: a second caller then finds them merged.
        self._merging = asyncio.Lock()

    async def save(self, records: Sequence[TrackRecord],
                   moved: Mapping[int, TrackRecord] | None = None) -> None:
        """Insert or update ``records`` (by path) and re-point ``moved`` tracks to their new path.

        ``moved`` maps an existing track id to the record of the file it moved to; the row keeps
        its id. All of it is one transaction: a crash leaves the previous state.
        """
        moved = moved or {}
        everything = [*records, *moved.values()]
        if not everything:
            return
        now = int(time.time())
        artists: dict[str, TrackRecord] = {}
        albums: dict[tuple[str, str, str], TrackRecord] = {}
        for r in everything:
            artists.setdefault(r.artist_key, r)
            albums.setdefault(_album_key(r), r)
        artist_ids = {r.artist_key: [r.musicbrainz_artist_id, r.spotify_artist_id,
                                     r.itunes_artist_id, r.deezer_artist_id] for r in artists.values()}
        album_ids = {key: [r.musicbrainz_release_id, r.spotify_album_id, r.itunes_album_id,
                           r.deezer_album_id] for key, r in albums.items()}
        # A provider id carried by any file of the batch counts, not only by the first one.
        for r in everything:
            _merge(artist_ids[r.artist_key], [r.musicbrainz_artist_id, r.spotify_artist_id,
                                              r.itunes_artist_id, r.deezer_artist_id])
            _merge(album_ids[_album_key(r)], [r.musicbrainz_release_id, r.spotify_album_id,
                                              r.itunes_album_id, r.deezer_album_id])
        async with self._db.write() as conn:
            await conn.executemany("INSERT INTO folders (path) VALUES (?) ON CONFLICT (path) DO NOTHING",
                                   [(folder,) for folder in sorted({r.folder for r in everything})])
            await conn.executemany(_UPSERT_ARTIST, [
                (r.artist, key, r.artist_fold, r.artist_letter, *artist_ids[key], now, now)
                for key, r in artists.items()])
            await conn.executemany(_UPSERT_ALBUM, [
                (key[0], r.album, key[1], r.album_fold, key[2], r.record_type, *album_ids[key], now, now)
                for key, r in albums.items()])
            await conn.executemany(_UPSERT_TRACK, [
                (*_album_key(r), r.artist_key, r.folder, r.file_name, *_track_values(r, now), now)
                for r in records])
            await conn.executemany(_MOVE_TRACK, [
                (*_album_key(r), r.artist_key, r.folder, r.file_name, *_track_values(r, now), track_id)
                for track_id, r in moved.items()])
            # A file that was skipped as unreadable before and reads fine now is a track now.
            await conn.executemany(
                f"DELETE FROM library_skipped WHERE folder_id = {_FOLDER_ID} AND file_name = ?",
                [(r.folder, r.file_name) for r in everything])
            await _refresh(conn, now, album_keys=list(albums), artist_keys=list(artists))
            await _touch(conn)

    async def merge_search_indexes(self) -> dict[str, int]:
        """Merge the search indexes that writes have split into too many segments (see
        :mod:`search_index`); return the segments each merged index had."""
        async with self._merging:
            return await merge_search_indexes(self._db)

    async def replace_file(self, track_id: int, record: TrackRecord) -> None:
        """Point track ``track_id`` at the file ``record`` was read from (a quality upgrade's
        new file, of any name), keeping the row's id and with it every reference to it."""
        await self.save([], moved={track_id: record})

    async def save_skipped(self, files: Sequence[SkippedFile]) -> None:
        """Remember unreadable files (by path, with size and mtime), replacing what was known."""
        if not files:
            return
        async with self._db.write() as conn:
            await conn.executemany("INSERT INTO folders (path) VALUES (?) ON CONFLICT (path) DO NOTHING",
                                   [(folder,) for folder in sorted({f.folder for f in files})])
            await conn.executemany(
                f"INSERT INTO library_skipped (folder_id, file_name, file_size, file_mtime, reason) "
                f"VALUES ({_FOLDER_ID}, ?, ?, ?, ?) ON CONFLICT (folder_id, file_name) DO UPDATE SET "
                "file_size = excluded.file_size, file_mtime = excluded.file_mtime, reason = excluded.reason",
                [(f.folder, f.file_name, f.file_size, f.file_mtime, f.reason) for f in files])

    async def remove_tracks(self, track_ids: Sequence[int]) -> int:
        """Delete tracks by id (albums and artists left empty go with them); return how many."""
        removed = 0
        now = int(time.time())
        for chunk in _chunks(list(track_ids)):
            async with self._db.write() as conn:
                rows = await conn.execute_fetchall(
                    f"DELETE FROM tracks WHERE id IN ({_marks(len(chunk))}) RETURNING album_id, artist_id",
                    chunk)
                removed += len(rows)
                await _refresh(conn, now, album_ids=sorted({r[0] for r in rows}),
                               artist_ids=sorted({r[1] for r in rows}))
                await _touch(conn)
        return removed

    async def remove_skipped(self, entries: Sequence[tuple[int, str]]) -> None:
        """Forget skipped files given as ``(folder_id, file_name)``."""
        if entries:
            await self._db.executemany(
                "DELETE FROM library_skipped WHERE folder_id = ? AND file_name = ?", entries)

    async def remove_empty_folders(self, folder_ids: Sequence[int]) -> None:
        """Delete the given folder rows that no track and no skipped file refers to any more."""
        for chunk in _chunks(list(folder_ids)):
            await self._db.execute(
                f"DELETE FROM folders WHERE id IN ({_marks(len(chunk))}) "
                "AND NOT EXISTS (SELECT 1 FROM tracks WHERE folder_id = folders.id) "
                "AND NOT EXISTS (SELECT 1 FROM library_skipped WHERE folder_id = folders.id)", chunk)

    async def folders(self) -> dict[str, int]:
        """Return ``{folder path: id}`` of every folder the library knows."""
        return {row[1]: row[0] for row in await self._db.fetchall("SELECT id, path FROM folders")}

    async def known_files(self, folder_ids: Sequence[int]) -> list[KnownFile]:
        """Return the tracks and skipped files recorded in the given folders."""
        known: list[KnownFile] = []
        for chunk in _chunks(list(folder_ids), _CHUNK // 2):
            marks = _marks(len(chunk))
            rows = await self._db.fetchall(
                f"SELECT id, folder_id, file_name, file_size, file_mtime FROM tracks "
                f"WHERE folder_id IN ({marks}) UNION ALL "
                f"SELECT NULL, folder_id, file_name, file_size, file_mtime FROM library_skipped "
                f"WHERE folder_id IN ({marks})", [*chunk, *chunk])
            known.extend(KnownFile(*row) for row in rows)
        return known

    async def moved_candidates(self, sizes: Sequence[int]) -> list[tuple[int, str, int, int]]:
        """Return ``(track id, path, size, mtime)`` of tracks whose file has one of ``sizes``."""
        found: list[tuple[int, str, int, int]] = []
        for chunk in _chunks(sorted(set(sizes))):
            rows = await self._db.fetchall(
                "SELECT t.id, f.path || '/' || t.file_name, t.file_size, t.file_mtime FROM tracks t "
                f"JOIN folders f ON f.id = t.folder_id WHERE t.file_size IN ({_marks(len(chunk))})",
                chunk)
            found.extend((row[0], row[1], row[2], row[3]) for row in rows)
        return found

    async def track_id(self, folder: str, file_name: str) -> int | None:
        """Return the id of the track at ``folder/file_name``, or None."""
        return await self._db.fetchval(
            f"SELECT id FROM tracks WHERE folder_id = {_FOLDER_ID} AND file_name = ?", (folder, file_name))

    async def track_count(self) -> int:
        """Return the maintained number of tracks."""
        return int(await self._db.fetchval("SELECT tracks FROM library_stats WHERE id = 1") or 0)


def _merge(target: list[str | None], values: list[str | None]) -> None:
    for index, value in enumerate(values):
        if target[index] is None and value is not None:
            target[index] = value


async def _refresh(conn: aiosqlite.Connection, now: int, *,
                   album_keys: Sequence[tuple[str, str, str]] = (), artist_keys: Sequence[str] = (),
                   album_ids: Sequence[int] = (), artist_ids: Sequence[int] = ()) -> None:
    """Recompute year and genres of the given albums, then the genres of the given artists."""
    if album_keys:
        await conn.executemany(_ALBUM_REFRESH.format(target=_ALBUM_ID),
                               [(now, *key) for key in album_keys])
    if album_ids:
        await conn.executemany(_ALBUM_REFRESH.format(target="?"), [(now, i) for i in album_ids])
    if artist_keys:
        await conn.executemany(_ARTIST_REFRESH.format(target="name_key = ?"),
                               [(now, key) for key in artist_keys])
    if artist_ids:
        await conn.executemany(_ARTIST_REFRESH.format(target="id = ?"), [(now, i) for i in artist_ids])


async def _touch(conn: aiosqlite.Connection) -> None:
    await conn.execute("UPDATE library_stats SET last_update = ? WHERE id = 1", (utc_now_iso(),))
