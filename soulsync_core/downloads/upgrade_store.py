"""All SQL of quality upgrades: the refused (peer, file) pairs and the trash folder's files."""

from __future__ import annotations

from dataclasses import dataclass

from soulsync_core.db import Database


@dataclass(frozen=True)
class TrashedFile:
    """A replaced file in the trash: where it was in the library and where it is now."""

    id: int
    track_id: int | None
    original_path: str
    trash_path: str
    trashed_at: str


@dataclass(frozen=True)
class LibraryFile:
    """A library track's file and the stream figures the library stored for it."""

    track_id: int
    path: str
    format: str
    bitrate: int | None
    bit_depth: int | None
    sample_rate: int | None
    duration_ms: int | None
    title: str
    artist: str
    album: str


class UpgradeStore:
    """Reads and writes ``upgrade_refused`` and ``upgrade_trash``, and reads library files."""

    def __init__(self, db: Database):
        self._db = db

    async def refused(self) -> set[tuple[str, str]]:
        """Return every ``(username, filename)`` tried as an upgrade and not taken."""
        rows = await self._db.fetchall("SELECT username, filename FROM upgrade_refused")
        return {(row[0], row[1]) for row in rows}

    async def refuse(self, username: str, filename: str, track_id: int, reason: str,
                     at: str) -> None:
        """Remember that ``username``'s ``filename`` is not to be tried again, and why."""
        await self._db.execute(
            "INSERT INTO upgrade_refused (username, filename, track_id, reason, tried_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (username, filename) DO UPDATE SET "
            "track_id = excluded.track_id, reason = excluded.reason, tried_at = excluded.tried_at",
            (username, filename, track_id, reason, at))

    async def library_files(self) -> list[LibraryFile]:
        """Return every library track's file with its stored figures, by artist, album, disc
        and track number (one read; the cutoff is computed by the caller)."""
        rows = await self._db.fetchall(
            "SELECT t.id, f.path || '/' || t.file_name, t.format, t.bitrate, t.bit_depth, "
            "t.sample_rate, t.duration, t.title, coalesce(t.track_artist, ar.name), al.title "
            "FROM tracks t JOIN folders f ON f.id = t.folder_id "
            "JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id "
            "ORDER BY ar.name_key, al.title_key, t.disc_number, t.track_number, t.id")
        return [LibraryFile(*row) for row in rows]

    async def library_file(self, track_id: int) -> LibraryFile | None:
        """Return one track's file and figures, None when the track does not exist."""
        row = await self._db.fetchone(
            "SELECT t.id, f.path || '/' || t.file_name, t.format, t.bitrate, t.bit_depth, "
            "t.sample_rate, t.duration, t.title, coalesce(t.track_artist, ar.name), al.title "
            "FROM tracks t JOIN folders f ON f.id = t.folder_id "
            "JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id "
            "WHERE t.id = ?", (track_id,))
        return None if row is None else LibraryFile(*row)

    async def add_trash(self, track_id: int, original_path: str, trash_path: str,
                        at: str) -> int:
        """Record a file moved into the trash; return its row id."""
        async with self._db.write() as conn:
            cursor = await conn.execute(
                "INSERT INTO upgrade_trash (track_id, original_path, trash_path, trashed_at) "
                "VALUES (?, ?, ?, ?)", (track_id, original_path, trash_path, at))
            return int(cursor.lastrowid or 0)

    async def trash_before(self, moment: str) -> list[TrashedFile]:
        """Return the trashed files moved there before ``moment`` (ISO-8601 UTC)."""
        rows = await self._db.fetchall(
            "SELECT id, track_id, original_path, trash_path, trashed_at FROM upgrade_trash "
            "WHERE trashed_at < ? ORDER BY trashed_at", (moment,))
        return [TrashedFile(*row) for row in rows]

    async def forget_trash(self, trash_id: int) -> None:
        """Drop the record of a trashed file that was deleted."""
        await self._db.execute("DELETE FROM upgrade_trash WHERE id = ?", (trash_id,))
