"""All SQL of the ``downloads`` table: create, read, page, and the updates the pipeline makes.

Every change of ``status`` goes through :meth:`DownloadStore.update` with ``status=``, which
also stamps ``status_changed_at`` (and ``finished_at`` for a final status), so no caller can
forget them. The monitor's progress figures for many downloads are written by
:meth:`DownloadStore.save_progress` in one transaction per tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from soulsync_core.db import Database, Row
from soulsync_core.downloads.models import (
    FINISHED,
    UNFINISHED,
    Attempt,
    CandidateInfo,
    Download,
    Status,
    Wanted,
)
from soulsync_core.timefmt import utc_now_iso

_encode = msgspec.json.Encoder().encode
_JSON_COLUMNS: dict[str, Any] = {"wanted": Wanted, "queries": list[str],
                                 "candidates": list[CandidateInfo], "tried": list[Attempt]}
_COLUMNS = frozenset(Download.__struct_fields__) - {"id", "created_at"}
# Lists show no candidates: leave their (largest) JSON undecoded.
_SUMMARY = ", ".join("'[]' AS candidates" if name == "candidates" else name
                     for name in Download.__struct_fields__)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


_INSERT = ("INSERT INTO downloads (status, track_key, track_name, artist_name, album_name, "
           "wanted, client, created_at, updated_at, status_changed_at)")
_UNFINISHED_WITH_KEY = (f"SELECT * FROM downloads WHERE track_key = ? AND status IN "
                        f"({_marks(len(UNFINISHED))}) ORDER BY id LIMIT 1")


def _from_row(row: Row) -> Download:
    values = {key: row[key] for key in row.keys()}
    for column, kind in _JSON_COLUMNS.items():
        values[column] = msgspec.json.decode(values[column], type=kind)
    values["tagged"] = bool(values["tagged"])
    return msgspec.convert(values, Download)


def _to_column(column: str, value: Any) -> Any:
    return _encode(value).decode() if column in _JSON_COLUMNS else value


class DownloadStore:
    """Reads and writes ``downloads`` rows as :class:`Download` objects."""

    def __init__(self, db: Database):
        self._db = db

    async def create(self, wanted: Wanted, track_key: str, client: str) -> Download:
        """Insert a new ``queued`` download and return it."""
        rows = await self._db.execute_returning(
            f"{_INSERT} VALUES ('queued', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            self._values(wanted, track_key, client, utc_now_iso()))
        return _from_row(rows[0])

    async def create_unless_unfinished(self, wanted: Wanted, track_key: str,
                                       client: str) -> tuple[Download, bool]:
        """Insert a new ``queued`` download and return ``(it, True)``, unless one of
        ``track_key`` is unfinished: then return ``(the oldest such, False)``.

        The look-up and the insert are one statement, so two requests of one track never both
        insert, and the writer is held for one round trip (see :meth:`Database.execute`).
        """
        now = utc_now_iso()
        while True:
            rows = await self._db.execute_returning(
                f"{_INSERT} SELECT 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                f"(SELECT 1 FROM downloads WHERE track_key = ? AND status IN "
                f"({_marks(len(UNFINISHED))})) RETURNING *",
                (*self._values(wanted, track_key, client, now), track_key, *UNFINISHED))
            if rows:
                return _from_row(rows[0]), True
            existing = await self.unfinished_with_key(track_key)
            if existing is not None:  # else it finished meanwhile: insert after all
                return existing, False

    @staticmethod
    def _values(wanted: Wanted, track_key: str, client: str, now: str) -> tuple[Any, ...]:
        return (track_key, wanted.title, wanted.artist, wanted.album or None,
                _to_column("wanted", wanted), client, now, now, time.time())

    async def get(self, download_id: int) -> Download | None:
        """Return one download, or None."""
        row = await self._db.fetchone("SELECT * FROM downloads WHERE id = ?", (download_id,))
        return _from_row(row) if row else None

    async def statuses(self, download_ids: Iterable[int]) -> dict[int, str]:
        """Return ``{id: status}`` of the downloads that exist among ``download_ids``."""
        ids = sorted(set(download_ids))
        found: dict[int, str] = {}
        for start in range(0, len(ids), 900):  # well below SQLite's bound-parameter limit
            chunk = ids[start:start + 900]
            rows = await self._db.fetchall(
                f"SELECT id, status FROM downloads WHERE id IN ({_marks(len(chunk))})", chunk)
            found.update({row[0]: row[1] for row in rows})
        return found

    async def unfinished_with_key(self, track_key: str) -> Download | None:
        """Return the oldest download of ``track_key`` that has not finished, or None."""
        row = await self._db.fetchone(_UNFINISHED_WITH_KEY, (track_key, *UNFINISHED))
        return _from_row(row) if row else None

    async def page(self, statuses: Sequence[str], offset: int, limit: int) -> tuple[list[Download], int]:
        """Return ``(downloads newest first, total)``, only those in ``statuses`` when given.

        The downloads come without their ``candidates`` (empty lists), which lists never show.
        """
        where, params = "", ()
        if statuses:
            where, params = f"WHERE status IN ({_marks(len(statuses))})", tuple(statuses)
        total = await self._db.fetchval(f"SELECT COUNT(*) FROM downloads {where}", params)
        rows = await self._db.fetchall(
            f"SELECT {_SUMMARY} FROM downloads {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset))
        return [_from_row(r) for r in rows], int(total or 0)

    async def with_status(self, statuses: Iterable[str], limit: int = -1) -> list[Download]:
        """Return downloads in ``statuses``, oldest first (at most ``limit``; -1: all)."""
        wanted = tuple(statuses)
        rows = await self._db.fetchall(
            f"SELECT * FROM downloads WHERE status IN ({_marks(len(wanted))}) ORDER BY id LIMIT ?",
            (*wanted, limit))
        return [_from_row(r) for r in rows]

    async def count(self, statuses: Iterable[str]) -> int:
        """Return how many downloads are in ``statuses``."""
        wanted = tuple(statuses)
        return int(await self._db.fetchval(
            f"SELECT COUNT(*) FROM downloads WHERE status IN ({_marks(len(wanted))})", wanted) or 0)

    async def update(self, download: Download, *, status: Status | None = None, **fields: Any) -> None:
        """Write ``fields`` (and ``status``) to the row and to ``download`` in place.

        A status change stamps ``status_changed_at``; a final status also ``finished_at``.
        """
        now = utc_now_iso()
        if status is not None and status != download.status:
            fields["status"] = status
            fields["status_changed_at"] = time.time()
            if status in FINISHED:
                fields["finished_at"] = now
        fields["updated_at"] = now
        unknown = set(fields) - _COLUMNS
        if unknown:
            raise ValueError(f"not columns of downloads: {sorted(unknown)}")
        assignments = ", ".join(f"{column} = ?" for column in fields)
        await self._db.execute(f"UPDATE downloads SET {assignments} WHERE id = ?",
                               (*(_to_column(c, v) for c, v in fields.items()), download.id))
        for column, value in fields.items():
            setattr(download, column, value)

    async def save_progress(self, downloads: Sequence[Download]) -> None:
        """Write the transfer figures of many downloads in one transaction (one monitor tick)."""
        if not downloads:
            return
        now = utc_now_iso()
        for download in downloads:
            download.updated_at = now
        await self._db.executemany(
            "UPDATE downloads SET transfer_id = ?, transfer_state = ?, progress = ?, "
            "bytes_transferred = ?, speed = ?, updated_at = ? WHERE id = ?",
            [(d.transfer_id, d.transfer_state, d.progress, d.bytes_transferred, d.speed, now, d.id)
             for d in downloads])
