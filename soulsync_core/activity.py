"""The persistent activity feed: what SoulSync did, newest first, kept across restarts."""

from __future__ import annotations

import logging

import msgspec

from soulsync_core.db import Database
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

# The feed is for people, not an audit log; this bounds the table on a box that runs for years.
MAX_ITEMS = 10_000
PRUNE_EVERY = 100


class ActivityItem(msgspec.Struct):
    """One feed entry. ``type`` is machine-readable (``api_key.created``), ``title`` is for people."""

    id: int
    type: str
    title: str
    message: str
    timestamp: str


class Activity:
    """Writes and reads the ``activity`` table."""

    def __init__(self, db: Database):
        self._db = db
        self._since_prune = 0

    async def record(self, type: str, title: str, message: str = "") -> None:
        """Append an item (and log it at INFO); prune the oldest beyond MAX_ITEMS now and then."""
        log.info("%s: %s", title, message)
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO activity (type, title, message, created_at) VALUES (?, ?, ?, ?)",
                (type, title, message, utc_now_iso()),
            )
            self._since_prune += 1
            if self._since_prune >= PRUNE_EVERY:
                self._since_prune = 0
                await conn.execute(
                    "DELETE FROM activity WHERE id <= (SELECT MAX(id) FROM activity) - ?",
                    (MAX_ITEMS,),
                )

    async def page(self, offset: int, limit: int) -> tuple[list[ActivityItem], int]:
        """Return ``(items newest first, total count)`` for one page of the feed."""
        total = await self._db.fetchval("SELECT COUNT(*) FROM activity")
        rows = await self._db.fetchall(
            "SELECT id, type, title, message, created_at FROM activity "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        items = [ActivityItem(r["id"], r["type"], r["title"], r["message"], r["created_at"])
                 for r in rows]
        return items, int(total or 0)
