"""What an album download is, and all SQL of the ``album_downloads`` table (migration 0020).

An album download is the release asked for (:class:`AlbumWanted`, with its tracklist), the
Soulseek searches run for it, every (peer, folder) found with its verdict, the folder being
taken and why, and the id of the ordinary download of each tracklist entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from soulsync_core.db import Database, Row
from soulsync_core.downloads.folder_scoring import FolderScore
from soulsync_core.downloads.models import DownloadObject, Wanted
from soulsync_core.matching import fold
from soulsync_core.timefmt import utc_now_iso

AlbumStatus = Literal["queued", "searching", "downloading", "completed", "failed", "cancelled"]
ALBUM_FINISHED: tuple[str, ...] = ("completed", "failed", "cancelled")
ALBUM_UNFINISHED: tuple[str, ...] = ("queued", "searching", "downloading")


class AlbumWanted(msgspec.Struct, omit_defaults=True):
    """The release to fetch: its tags and its tracklist (each entry a :class:`Wanted` with the
    album's tags filled in). ``image_url`` is the metadata source's cover image."""

    name: str
    artists: list[str]
    tracks: list[Wanted]
    album_artist: str = ""
    release_date: str | None = None
    album_id: str | None = None
    source: str | None = None
    album_type: str = "album"
    image_url: str | None = None

    @property
    def artist(self) -> str:
        return self.album_artist or (self.artists[0] if self.artists else "")


class TriedFolder(msgspec.Struct):
    """A folder given up on, and why (the peer was offline, refused the files …)."""

    username: str
    folder: str
    outcome: str


class AlbumDownload(msgspec.Struct):
    """A row of ``album_downloads`` (see ``0020_album_downloads.sql`` for the columns)."""

    id: int
    status: AlbumStatus
    album_key: str
    album: AlbumWanted
    client: str
    queries: list[str]
    next_query: int
    folders: list[FolderScore]
    chosen: int | None
    chosen_reason: str | None
    tried_folders: list[TriedFolder]
    tracks: list[int | None]
    error: str | None
    note: str | None
    created_at: str
    updated_at: str
    finished_at: str | None
    # Per tracklist entry: the library track it has already (not fetched), else None
    # (migration 0022; empty for rows from before it).
    in_library: list[int | None] = msgspec.field(default_factory=list)

    def owned(self, index: int) -> int | None:
        """Return the library track id tracklist entry ``index`` already has, or None."""
        return self.in_library[index] if index < len(self.in_library) else None


class AlbumTrackState(msgspec.Struct):
    """One tracklist entry of an album download: its number, title and its download (null
    before it exists); ``from_folder`` true when its file comes from the chosen folder, false
    when it is fetched on its own (the per-track fallback). ``already_in_library``: the library
    had it when the album was requested (``library_track_id``), so it is not fetched and has no
    download."""

    disc_number: int | None
    track_number: int | None
    title: str
    download: DownloadObject | None
    from_folder: bool
    already_in_library: bool = False
    library_track_id: int | None = None


class AlbumDownloadObject(msgspec.Struct, tag_field="kind", tag="album"):
    """An album download as the API shows it (``kind`` is always ``album``).

    ``completed_tracks`` counts the tracks in the library (those it had already included);
    ``folder`` is the chosen
    (peer, folder), null before one is chosen.
    """

    id: int
    status: AlbumStatus
    album_name: str
    artist_name: str
    source: str | None
    album_id: str | None
    total_tracks: int
    completed_tracks: int
    username: str | None
    folder: str | None
    chosen_reason: str | None
    error: str | None
    note: str | None
    created_at: str
    updated_at: str
    finished_at: str | None


class AlbumDownloadDetail(AlbumDownloadObject):
    """An album download with every track's state, the searches, every scored folder (with
    its breakdown: the files assigned to tracks, what is missing, why it was refused) and the
    folders given up on."""

    tracks: list[AlbumTrackState]
    queries: list[str]
    folders: list[FolderScore]
    tried_folders: list[TriedFolder]


def album_key(album: AlbumWanted) -> str:
    """Return the key two requests for the same release share: the source's id when known,
    else the folded artist and album name."""
    if album.album_id:
        return f"{album.source or ''}:{album.album_id}"
    return "~" + "|".join((fold(album.artist), fold(album.name)))


_encode = msgspec.json.Encoder().encode
_JSON_COLUMNS: dict[str, Any] = {"album": AlbumWanted, "queries": list[str],
                                 "folders": list[FolderScore], "tried_folders": list[TriedFolder],
                                 "tracks": list[int | None], "in_library": list[int | None]}
_COLUMNS = frozenset(AlbumDownload.__struct_fields__) - {"id", "created_at"}


def _from_row(row: Row) -> AlbumDownload:
    values = {key: row[key] for key in row.keys()}
    for column, kind in _JSON_COLUMNS.items():
        values[column] = msgspec.json.decode(values[column], type=kind)
    return msgspec.convert(values, AlbumDownload)


def _to_column(column: str, value: Any) -> Any:
    return _encode(value).decode() if column in _JSON_COLUMNS else value


class AlbumStore:
    """Reads and writes ``album_downloads`` rows as :class:`AlbumDownload` objects."""

    def __init__(self, db: Database):
        self._db = db

    async def create(self, album: AlbumWanted, client: str,
                     in_library: list[int | None] | None = None) -> AlbumDownload:
        """Insert a new ``queued`` album download and return it (``in_library``: the library
        track each tracklist entry has already, None for those to fetch)."""
        now = utc_now_iso()
        async with self._db.write() as conn:
            cursor = await conn.execute(
                "INSERT INTO album_downloads (status, album_key, album, client, tracks, in_library, "
                "created_at, updated_at) VALUES ('queued', ?, ?, ?, ?, ?, ?, ?)",
                (album_key(album), _to_column("album", album), client,
                 _to_column("tracks", [None] * len(album.tracks)),
                 _to_column("in_library", in_library or [None] * len(album.tracks)), now, now))
            album_id = int(cursor.lastrowid or 0)
        found = await self.get(album_id)
        assert found is not None  # just written
        return found

    async def get(self, album_download_id: int) -> AlbumDownload | None:
        """Return one album download, or None."""
        row = await self._db.fetchone("SELECT * FROM album_downloads WHERE id = ?", (album_download_id,))
        return _from_row(row) if row else None

    async def unfinished_with_key(self, key: str) -> AlbumDownload | None:
        """Return the oldest unfinished album download of ``key``, or None."""
        row = await self._db.fetchone(
            "SELECT * FROM album_downloads WHERE album_key = ? AND status IN (?, ?, ?) ORDER BY id "
            "LIMIT 1", (key, *ALBUM_UNFINISHED))
        return _from_row(row) if row else None

    async def with_status(self, statuses: Sequence[str]) -> list[AlbumDownload]:
        """Return the album downloads in ``statuses``, oldest first."""
        marks = ", ".join("?" * len(statuses))
        rows = await self._db.fetchall(
            f"SELECT * FROM album_downloads WHERE status IN ({marks}) ORDER BY id", tuple(statuses))
        return [_from_row(r) for r in rows]

    async def page(self, offset: int, limit: int,
                   statuses: tuple[str, ...] = ()) -> tuple[list[AlbumDownload], int]:
        """Return ``(album downloads newest first, total)``, only those in ``statuses`` when
        given (a status no album has, such as ``not_found``, matches none)."""
        where = f" WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        total = await self._db.fetchval(f"SELECT COUNT(*) FROM album_downloads{where}", statuses)
        rows = await self._db.fetchall(
            f"SELECT * FROM album_downloads{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*statuses, limit, offset))
        return [_from_row(r) for r in rows], int(total or 0)

    async def update(self, album: AlbumDownload, **fields: Any) -> None:
        """Write ``fields`` to the row and to ``album`` in place; a final status stamps
        ``finished_at``."""
        now = utc_now_iso()
        if fields.get("status") in ALBUM_FINISHED and album.status not in ALBUM_FINISHED:
            fields["finished_at"] = now
        fields["updated_at"] = now
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"not columns of album_downloads: {sorted(unknown)}")
        assignments = ", ".join(f"{column} = ?" for column in fields)
        await self._db.execute(f"UPDATE album_downloads SET {assignments} WHERE id = ?",
                               (*(_to_column(c, v) for c, v in fields.items()), album.id))
        for column, value in fields.items():
            setattr(album, column, value)

    async def owner_of(self, download_id: int) -> AlbumDownload | None:
        """Return the album download one of whose tracks is download ``download_id``, or None."""
        row = await self._db.fetchone(
            "SELECT a.* FROM album_downloads a, json_each(a.tracks) t WHERE t.value = ? "
            "ORDER BY a.id DESC LIMIT 1", (download_id,))
        return _from_row(row) if row else None
