"""Periodic jobs: start a job every N seconds, with the next run time persisted.

The wishlist processor and the watchlist scan each have a :class:`Schedule`. The next run time
lives in ``job_schedule``, so a restart neither repeats a daily scan at once nor postpones it
by another day; a run whose time passed while SoulSync was stopped starts right after start-up.
The job itself goes through the :class:`~soulsync_core.jobs.JobRunner`, so a scheduled run that
finds one already running (started through the API) is skipped, never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from soulsync_core.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC (the default clock of the services)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Return ``moment`` as the ISO-8601 UTC text SoulSync stores (``2026-03-03T12:00:00+00:00``)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    """Return the aware UTC datetime of a stored timestamp; None for None or unparseable text."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Schedule:
    """Calls ``start()`` every ``interval()`` seconds (0 or less: never) until cancelled.

    ``first_delay`` seconds after the very first start-up comes the first run. ``start`` should
    start a job and return; its exceptions are logged, and the schedule goes on.
    """

    def __init__(self, db: Database, kind: str, interval: Callable[[], float],
                 start: Callable[[], Awaitable[object]], clock: Clock = utc_now,
                 first_delay: float = 60.0):
        self._db = db
        self.kind = kind
        self._interval = interval
        self._start = start
        self._clock = clock
        self._first_delay = first_delay
        self._changed = asyncio.Event()

    def reschedule(self) -> None:
        """Recompute the next run (call when the interval setting changed)."""
        self._changed.set()

    async def next_run(self) -> str | None:
        """Return the stored next run time (ISO-8601 UTC), None when none is scheduled."""
        return await self._db.fetchval("SELECT next_run_at FROM job_schedule WHERE kind = ?",
                                       (self.kind,))

    async def _store(self, moment: datetime) -> None:
        await self._db.execute(
            "INSERT INTO job_schedule (kind, next_run_at) VALUES (?, ?) "
            "ON CONFLICT (kind) DO UPDATE SET next_run_at = excluded.next_run_at",
            (self.kind, iso(moment)))

    async def _due(self, interval: float) -> datetime:
        now = self._clock()
        stored = parse_iso(await self.next_run())
        latest = now + timedelta(seconds=interval)
        if stored is None:
            stored = now + timedelta(seconds=min(self._first_delay, interval))
        elif stored > latest:
            stored = latest  # the interval was shortened: do not wait out the old one
        else:
            return stored
        await self._store(stored)
        return stored

    async def run_forever(self) -> None:
        """Wait for each due time and start the job; runs until cancelled."""
        while True:
            self._changed.clear()
            interval = self._interval()
            if interval <= 0:
                await self._db.execute("DELETE FROM job_schedule WHERE kind = ?", (self.kind,))
                await self._changed.wait()
                continue
            due = await self._due(interval)
            wait = (due - self._clock()).total_seconds()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait()
                    continue  # rescheduled: compute the due time again
            # Stored before the run: a crash during it does not start it again at once.
            await self._store(self._clock() + timedelta(seconds=interval))
            try:
                await self._start()
            except Exception:
                log.exception("scheduled %s failed to start", self.kind)
