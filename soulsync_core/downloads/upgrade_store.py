"""All SQL of quality upgrades: the refused (peer, file) pairs and folders, the trash folder's
files, the stored quality ranks of library files and the upgrades' transfers in flight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    album_id: int = 0
    track_number: int | None = None
    disc_number: int | None = None


@dataclass(frozen=True)
class UpgradeTransfer:
    """An upgrade's file asked of the download client and not yet put in place or given up."""

    id: int
    track_id: int
    username: str
    filename: str
    size: int
    transfer_id: str | None
    folder: str | None


# The library file's columns, in LibraryFile's order (t: tracks, f: folders, al, ar).
_FILE_COLUMNS = (
    "t.id, f.path || '/' || t.file_name, t.format, t.bitrate, t.bit_depth, t.sample_rate, "
    "t.duration, t.title, coalesce(t.track_artist, ar.name), al.title, t.album_id, "
    "t.track_number, t.disc_number")
_FILE_JOINS = ("FROM tracks t JOIN folders f ON f.id = t.folder_id "
               "JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id")
_FILE_ORDER = "ORDER BY ar.name_key, al.title_key, t.disc_number, t.track_number, t.id"
# Ranks written per transaction while the stored ranks are filled in.
RANK_CHUNK = 5000


class UpgradeStore:
    """Reads and writes the ``upgrade_*`` tables and ``track_quality``; reads library files."""

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
        rows = await self._db.fetchall(f"SELECT {_FILE_COLUMNS} {_FILE_JOINS} {_FILE_ORDER}")
        return [LibraryFile(*row) for row in rows]

    async def library_file(self, track_id: int) -> LibraryFile | None:
        """Return one track's file and figures, None when the track does not exist."""
        row = await self._db.fetchone(f"SELECT {_FILE_COLUMNS} {_FILE_JOINS} WHERE t.id = ?",
                                      (track_id,))
        return None if row is None else LibraryFile(*row)

    # ------------------------------------------------------------- the stored ranks

    async def rank_state(self) -> tuple[str | None, int | None]:
        """Return ``(profile, cutoff)`` the stored ranks and ``below`` flags were made under
        (as :meth:`set_rank_profile` / :meth:`set_cutoff` stored them)."""
        row = await self._db.fetchone("SELECT profile, cutoff FROM upgrade_rank_profile WHERE id = 1")
        return (None, None) if row is None else (str(row[0]), row[1])

    async def set_rank_profile(self, profile: str) -> None:
        """Drop every stored rank and note that new ones are computed under ``profile``."""
        async with self._db.write() as conn:
            await conn.execute("DELETE FROM track_quality")
            await conn.execute(
                "INSERT INTO upgrade_rank_profile (id, profile) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET profile = excluded.profile", (profile,))

    async def set_cutoff(self, cutoff: int) -> None:
        """Set every stored ``below`` flag for a new cutoff (one statement, no ranking)."""
        async with self._db.write() as conn:
            await conn.execute("UPDATE track_quality SET below = rule > ?", (cutoff,))
            await conn.execute("UPDATE upgrade_rank_profile SET cutoff = ? WHERE id = 1", (cutoff,))

    async def all_ranked(self) -> bool:
        """True when every track has a stored rank (two counts: the rows of a track that
        went are dropped with it, so equal counts mean none is missing)."""
        row = await self._db.fetchone(
            "SELECT (SELECT count(*) FROM tracks) = (SELECT count(*) FROM track_quality)")
        return bool(row and row[0])

    async def unranked(self) -> list[tuple[Any, ...]]:
        """Return ``(track_id, format, bitrate, bit_depth, sample_rate, artist name_key,
        album title_key, disc_number, track_number)`` of the tracks without a stored rank
        (new files, changed figures or places, a new profile)."""
        rows = await self._db.fetchall(
            "SELECT t.id, t.format, t.bitrate, t.bit_depth, t.sample_rate, ar.name_key, "
            "al.title_key, t.disc_number, t.track_number FROM tracks t "
            "JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id "
            "LEFT JOIN track_quality q ON q.track_id = t.id WHERE q.track_id IS NULL")
        return [tuple(row) for row in rows]

    async def store_ranks(self, ranks: list[tuple[Any, ...]]) -> None:
        """Store ``(track_id, rule, below, name_key, title_key, disc_number, track_number)``
        rows, a chunk per transaction (the loop keeps serving)."""
        for start in range(0, len(ranks), RANK_CHUNK):
            async with self._db.write() as conn:
                await conn.executemany(
                    "INSERT OR REPLACE INTO track_quality (track_id, rule, below, name_key, "
                    "title_key, disc_number, track_number) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    ranks[start:start + RANK_CHUNK])

    async def below(self, offset: int, limit: int) -> tuple[list[LibraryFile], int]:
        """Return ``(files flagged below the cutoff, from offset, total)``, by artist, album,
        disc and track number: a range of the ``track_quality_below`` index (the flags must
        be up to date: see the service)."""
        rows = await self._db.fetchall(
            f"SELECT {_FILE_COLUMNS} FROM track_quality q JOIN tracks t ON t.id = q.track_id "
            f"{_FILE_JOINS.removeprefix('FROM tracks t')} WHERE q.below = 1 "
            "ORDER BY q.name_key, q.title_key, q.disc_number, q.track_number, q.track_id "
            "LIMIT ? OFFSET ?", (limit, offset))
        total = await self._db.fetchone("SELECT count(*) FROM track_quality WHERE below = 1")
        return [LibraryFile(*row) for row in rows], int(total[0]) if total else 0

    async def album_sizes(self, album_ids: list[int]) -> dict[int, int]:
        """Return how many library tracks each of ``album_ids`` has."""
        sizes: dict[int, int] = {}
        for start in range(0, len(album_ids), 500):
            chunk = album_ids[start:start + 500]
            rows = await self._db.fetchall(
                f"SELECT album_id, count(*) FROM tracks WHERE album_id IN "
                f"({', '.join('?' * len(chunk))}) GROUP BY album_id", tuple(chunk))
            sizes.update({int(row[0]): int(row[1]) for row in rows})
        return sizes

    # ------------------------------------------------------------ transfers in flight

    async def add_transfer(self, track_id: int, username: str, filename: str, size: int,
                           folder: str | None, at: str) -> UpgradeTransfer:
        """Record that ``username``'s ``filename`` is about to be asked for track ``track_id``
        (before asking: a restart in between finds it by user and file)."""
        async with self._db.write() as conn:
            await conn.execute("DELETE FROM upgrade_transfers WHERE track_id = ?", (track_id,))
            cursor = await conn.execute(
                "INSERT INTO upgrade_transfers (track_id, username, filename, size, folder, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (track_id, username, filename, size, folder, at))
            row_id = int(cursor.lastrowid or 0)
        return UpgradeTransfer(row_id, track_id, username, filename, size, None, folder)

    async def set_transfer_id(self, row_id: int, transfer_id: str) -> None:
        """Save the client's id of an upgrade's transfer."""
        await self._db.execute("UPDATE upgrade_transfers SET transfer_id = ? WHERE id = ?",
                               (transfer_id, row_id))

    async def transfers(self) -> list[UpgradeTransfer]:
        """Return the upgrades' transfers in flight, oldest first."""
        rows = await self._db.fetchall(
            "SELECT id, track_id, username, filename, size, transfer_id, folder "
            "FROM upgrade_transfers ORDER BY id")
        return [UpgradeTransfer(*row) for row in rows]

    async def forget_transfer(self, row_id: int) -> None:
        """Drop an upgrade's transfer: its file was put in place or given up."""
        await self._db.execute("DELETE FROM upgrade_transfers WHERE id = ?", (row_id,))

    # -------------------------------------------------------------- refused folders

    async def refused_folders(self) -> set[tuple[str, str]]:
        """Return every ``(username, folder)`` tried as an album upgrade."""
        rows = await self._db.fetchall("SELECT username, folder FROM upgrade_refused_folders")
        return {(row[0], row[1]) for row in rows}

    async def refuse_folder(self, username: str, folder: str, reason: str, at: str) -> None:
        """Remember that ``username``'s album ``folder`` is not to be tried again, and why."""
        await self._db.execute(
            "INSERT INTO upgrade_refused_folders (username, folder, reason, tried_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (username, folder) DO UPDATE SET "
            "reason = excluded.reason, tried_at = excluded.tried_at",
            (username, folder, reason, at))

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
