"""All SQL of playlist sync: synced playlists, their entries, pinned matches, library paths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from soulsync_core.db import Database
from soulsync_core.profiles import DEFAULT_PROFILE
from soulsync_core.timefmt import utc_now_iso

# SQLite's default limit on bound parameters is 32766; ids are read in slices well below it.
_ID_SLICE = 900


@dataclass
class Entry:
    """One entry of a synced playlist, as stored (``wanted`` is the track object asked for)."""

    position: int
    wanted_key: str
    wanted: dict[str, Any]
    library_track_id: int | None = None
    confidence: float | None = None
    method: str | None = None
    action: str = "none"
    download_id: int | None = None


@dataclass
class SyncedPlaylist:
    """A playlist's row: what its last sync saw and wrote, and whose sync it was."""

    id: str
    source: str | None
    name: str
    mode: str
    snapshot_id: str | None
    tracks_hash: str
    library_state: str
    m3u8_path: str | None
    job_id: str | None
    synced_at: str | None
    profile_id: int = DEFAULT_PROFILE


class PlaylistStore:
    """Reads and writes the ``playlists``, ``playlist_entries`` and ``playlist_pins`` tables."""

    def __init__(self, db: Database):
        self._db = db

    async def playlist(self, playlist_id: str) -> SyncedPlaylist | None:
        """Return the playlist's row, None when it was never synced."""
        row = await self._db.fetchone("SELECT * FROM playlists WHERE id = ?", (playlist_id,))
        return None if row is None else SyncedPlaylist(**dict(row))

    async def entries(self, playlist_id: str) -> list[Entry]:
        """Return the playlist's entries in playlist order."""
        rows = await self._db.fetchall(
            "SELECT * FROM playlist_entries WHERE playlist_id = ? ORDER BY position", (playlist_id,))
        return [Entry(r["position"], r["wanted_key"], msgspec.json.decode(r["wanted"]),
                      r["library_track_id"], r["confidence"], r["method"], r["action"],
                      r["download_id"]) for r in rows]

    async def save(self, playlist: SyncedPlaylist, entries: Sequence[Entry]) -> None:
        """Replace the playlist's row and all its entries, in one transaction; the row
        becomes the state of the profile that synced it (``playlist.profile_id``)."""
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO playlists (id, source, name, mode, snapshot_id, tracks_hash, "
                "library_state, m3u8_path, job_id, synced_at, profile_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET source = excluded.source, name = excluded.name, "
                "mode = excluded.mode, snapshot_id = excluded.snapshot_id, "
                "tracks_hash = excluded.tracks_hash, library_state = excluded.library_state, "
                "m3u8_path = excluded.m3u8_path, job_id = excluded.job_id, "
                "synced_at = excluded.synced_at, profile_id = excluded.profile_id",
                (playlist.id, playlist.source, playlist.name, playlist.mode, playlist.snapshot_id,
                 playlist.tracks_hash, playlist.library_state, playlist.m3u8_path, playlist.job_id,
                 playlist.synced_at, playlist.profile_id))
            await conn.execute("DELETE FROM playlist_entries WHERE playlist_id = ?", (playlist.id,))
            await conn.executemany(
                "INSERT INTO playlist_entries (playlist_id, position, wanted_key, wanted, "
                "library_track_id, confidence, method, action, download_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(playlist.id, e.position, e.wanted_key, msgspec.json.encode(e.wanted).decode(),
                  e.library_track_id, e.confidence, e.method, e.action, e.download_id)
                 for e in entries])

    async def m3u8_paths(self) -> list[str]:
        """Return the M3U8 file of every synced playlist that has one."""
        rows = await self._db.fetchall("SELECT m3u8_path FROM playlists WHERE m3u8_path IS NOT NULL")
        return [row[0] for row in rows]

    async def m3u8_owner(self, path: str) -> str | None:
        """Return the id of the playlist whose M3U8 file is ``path``, None when none is."""
        return await self._db.fetchval("SELECT id FROM playlists WHERE m3u8_path = ?", (path,))

    async def set_entry(self, playlist_id: str, position: int, **fields: Any) -> None:
        """Update columns of one entry (``library_track_id``, ``confidence``, ``method``,
        ``action``, ``download_id``)."""
        columns = ", ".join(f"{name} = ?" for name in fields)
        await self._db.execute(
            f"UPDATE playlist_entries SET {columns} WHERE playlist_id = ? AND position = ?",
            (*fields.values(), playlist_id, position))

    async def entries_downloading(self, download_id: int) -> list[tuple[str, int]]:
        """Return ``(playlist_id, position)`` of every entry waiting for that download."""
        rows = await self._db.fetchall(
            "SELECT playlist_id, position FROM playlist_entries WHERE download_id = ?",
            (download_id,))
        return [(r[0], r[1]) for r in rows]

    # ---------------------------------------------------------------------------- pins

    async def pins(self, playlist_id: str) -> dict[str, int | None]:
        """Return the playlist's pinned matches: wanted key to library track id (None: none)."""
        rows = await self._db.fetchall(
            "SELECT wanted_key, library_track_id FROM playlist_pins WHERE playlist_id = ?",
            (playlist_id,))
        return {r[0]: r[1] for r in rows}

    async def pin(self, playlist_id: str, wanted_key: str, library_track_id: int | None) -> None:
        """Pin an entry to a library track (None: to "not in the library")."""
        await self._db.execute(
            "INSERT INTO playlist_pins (playlist_id, wanted_key, library_track_id, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (playlist_id, wanted_key) DO UPDATE SET "
            "library_track_id = excluded.library_track_id, created_at = excluded.created_at",
            (playlist_id, wanted_key, library_track_id, utc_now_iso()))

    async def unpin(self, playlist_id: str, wanted_key: str) -> bool:
        """Remove a pin; return whether there was one."""
        return bool(await self._db.execute(
            "DELETE FROM playlist_pins WHERE playlist_id = ? AND wanted_key = ?",
            (playlist_id, wanted_key)))

    # ------------------------------------------------------------------------- library

    async def library_state(self) -> str:
        """Return a text that changes whenever a track is added, changed or removed.

        Built from the maintained totals, the newest track id and the last write time: cheap
        (one row and the end of the primary key), no scan.
        """
        row = await self._db.fetchone(
            "SELECT tracks, last_update, (SELECT max(id) FROM tracks) FROM library_stats "
            "WHERE id = 1")
        return "" if row is None else f"{row[0]}|{row[1]}|{row[2]}"

    async def track_files(self, track_ids: Iterable[int]) -> dict[int, tuple[str, int, str]]:
        """Return ``{id: (file path, duration ms, "Artist - Title")}`` of the tracks that exist."""
        ids = sorted(set(track_ids))
        found: dict[int, tuple[str, int, str]] = {}
        for start in range(0, len(ids), _ID_SLICE):
            chunk = ids[start:start + _ID_SLICE]
            rows = await self._db.fetchall(
                "SELECT t.id, f.path || '/' || t.file_name, coalesce(t.duration, 0), "
                "coalesce(t.track_artist, a.name) || ' - ' || t.title "
                "FROM tracks t JOIN folders f ON f.id = t.folder_id "
                "JOIN artists a ON a.id = t.artist_id "
                f"WHERE t.id IN ({', '.join('?' * len(chunk))})", chunk)
            found.update({r[0]: (r[1], r[2], r[3]) for r in rows})
        return found
