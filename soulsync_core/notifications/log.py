"""The delivery log: each notification delivered or given up on, and each target's summary."""

from __future__ import annotations

import msgspec

from soulsync_core.db import Database
from soulsync_core.timefmt import utc_now_iso

# Enough to see what happened lately; the table stays small on a box that runs for years.
MAX_ROWS = 2000


class Delivery(msgspec.Struct):
    target: str
    event_id: int
    event_type: str
    ok: bool
    attempts: int
    error: str | None
    at: str


class TargetSummary(msgspec.Struct):
    last_success_at: str | None = None
    last_failure_at: str | None = None
    last_error: str | None = None
    delivered: int = 0
    failed: int = 0


class DeliveryLog:
    """Writes and reads ``notification_log``. Errors written here never hold a URL."""

    def __init__(self, db: Database):
        self._db = db

    async def record(self, target: str, event_id: int, event_type: str, ok: bool, attempts: int,
                     error: str | None) -> Delivery:
        """Append one delivery and prune the oldest rows beyond MAX_ROWS; return it."""
        delivery = Delivery(target, event_id, event_type, ok, attempts, error, utc_now_iso())
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO notification_log (target, event_id, event_type, ok, attempts, error, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (target, event_id, event_type, int(ok), attempts, error, delivery.at))
            await conn.execute(
                "DELETE FROM notification_log WHERE id <= (SELECT MAX(id) FROM notification_log) - ?",
                (MAX_ROWS,))
        return delivery

    async def summaries(self) -> dict[str, TargetSummary]:
        """Return each logged target's last success, last failure (with its error) and counts."""
        rows = await self._db.fetchall(
            "SELECT target, SUM(ok) AS delivered, SUM(1 - ok) AS failed, "
            "MAX(CASE WHEN ok THEN at END) AS last_success_at, "
            "MAX(CASE WHEN NOT ok THEN id END) AS last_failure_id "
            "FROM notification_log GROUP BY target")
        summaries: dict[str, TargetSummary] = {}
        for row in rows:
            summary = TargetSummary(last_success_at=row["last_success_at"],
                                    delivered=int(row["delivered"] or 0),
                                    failed=int(row["failed"] or 0))
            if row["last_failure_id"] is not None:
                failure = await self._db.fetchone(
                    "SELECT at, error FROM notification_log WHERE id = ?", (row["last_failure_id"],))
                if failure is not None:
                    summary.last_failure_at, summary.last_error = failure["at"], failure["error"]
            summaries[row["target"]] = summary
        return summaries

    async def recent(self, limit: int) -> list[Delivery]:
        """Return the newest ``limit`` deliveries, newest first."""
        rows = await self._db.fetchall(
            "SELECT target, event_id, event_type, ok, attempts, error, at FROM notification_log "
            "ORDER BY id DESC LIMIT ?", (limit,))
        return [Delivery(r["target"], r["event_id"], r["event_type"], bool(r["ok"]), r["attempts"],
                         r["error"], r["at"]) for r in rows]
