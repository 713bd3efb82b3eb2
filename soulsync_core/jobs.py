"""Background jobs (library scans, wishlist runs, watchlist scans, playlist syncs).

At most one job of a kind runs at a time: :meth:`JobRunner.start` raises :class:`JobConflict`
while one is running, which the API turns into 409. Every job is a row in ``jobs`` so that its
state and result can be read after it ends and after a restart; a job that was running when
the process died is marked ``interrupted`` at the next start instead of "running" forever.

One outcome rule for every job, applied here and nowhere else. A job works through items
(tracks to fetch, artists to scan) and tells its context about each with
:meth:`JobContext.item_done` and :meth:`JobContext.item_failed`. When it returns:

* ``failed`` when nothing could be done: at least one item failed and none was done (``error``
  says how many failed and why the first did);
* ``completed`` with ``partial: true`` when some items were done and others failed;
* ``completed`` with ``partial: false`` otherwise (also when there was nothing to do).

``item_errors`` keeps the failed items (at most :data:`MAX_ITEM_ERRORS`) in both cases. A job
that cannot start its work at all raises :class:`JobFailed` and is ``failed`` too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec

from soulsync_core.db import Database, Row
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

JobState = Literal["running", "completed", "failed", "cancelled", "interrupted"]
PROGRESS_SAVE_SECONDS = 1.0
# Failed items kept per job; the count in the error message covers them all.
MAX_ITEM_ERRORS = 100


class ItemError(msgspec.Struct):
    """One item a job could not do: ``item`` names it (an artist, a track), ``error`` says why."""

    item: str
    error: str


class JobInfo(msgspec.Struct):
    """A job row. ``partial`` and ``item_errors`` follow the outcome rule of this module."""

    id: str
    kind: str
    state: JobState
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: str
    finished_at: str | None
    partial: bool = False
    item_errors: list[ItemError] = msgspec.field(default_factory=list)


class JobFailed(Exception):
    """An expected failure (a missing folder, no download client): ``str()`` says what to fix.

    The job runner records it and logs one warning line; any other exception is a bug and is
    logged with its traceback.
    """


class JobConflict(Exception):
    """A job of that kind is running already; ``running`` describes it."""

    def __init__(self, running: JobInfo):
        super().__init__(f"a {running.kind} job is already running (id {running.id})")
        self.running = running


class JobContext:
    """Handed to a job function: its id, its parameters and a way to report progress."""

    def __init__(self, runner: JobRunner, info: JobInfo):
        self._runner = runner
        self.info = info
        self.items_done = 0
        self.items_failed = 0

    @property
    def params(self) -> dict[str, Any]:
        return self.info.params

    def progress(self, **fields: Any) -> None:
        """Merge ``fields`` into the job's progress; saved at most once a second."""
        self.info.progress.update(fields)
        self._runner._progress_changed(self.info)

    def item_done(self) -> None:
        """Count one item the job did (see the outcome rule in the module docstring)."""
        self.items_done += 1

    def item_failed(self, item: str, error: str) -> None:
        """Record one item the job could not do, and why."""
        self.items_failed += 1
        if len(self.info.item_errors) < MAX_ITEM_ERRORS:
            self.info.item_errors.append(ItemError(item, error))

    def outcome(self) -> tuple[JobState, bool, str | None]:
        """Return ``(state, partial, error)`` for a job function that returned."""
        if not self.items_failed:
            return "completed", False, None
        if self.items_done:
            return "completed", True, None
        first = self.info.item_errors[0]
        noun = "item" if self.items_failed == 1 else "items"
        return "failed", False, (f"Nothing could be done: {self.items_failed} {noun} failed "
                                 f"(first: {first.item}: {first.error}).")


JobFunction = Callable[[JobContext], Awaitable[dict[str, Any] | None]]


class JobRunner:
    """Starts jobs as tasks, one per kind, and keeps their rows up to date."""

    def __init__(self, db: Database, progress_interval: float = PROGRESS_SAVE_SECONDS):
        self._db = db
        self._interval = progress_interval
        self._running: dict[str, tuple[JobInfo, asyncio.Task[None]]] = {}
        self._saved_at: dict[str, float] = {}

    async def recover(self) -> int:
        """Mark jobs left ``running`` by a previous process as ``interrupted``; return how many."""
        return await self._db.execute(
            "UPDATE jobs SET state = 'interrupted', finished_at = ?, "
            "error = 'SoulSync stopped while this job was running.' WHERE state = 'running'",
            (utc_now_iso(),),
        )

    async def start(self, kind: str, fn: JobFunction,
                    params: dict[str, Any] | None = None) -> JobInfo:
        """Start ``fn`` as a job of ``kind`` and return its row; raise JobConflict if one runs."""
        if kind in self._running:
            raise JobConflict(self._running[kind][0])
        info = JobInfo(str(uuid.uuid4()), kind, "running", dict(params or {}), {}, None, None,
                       utc_now_iso(), None)
        # Claim the kind before the first await, so a concurrent start sees the conflict.
        placeholder: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[kind] = (info, placeholder)  # type: ignore[assignment]
        try:
            await self._db.execute(
                "INSERT INTO jobs (id, kind, state, params, progress, created_at) "
                "VALUES (?, ?, 'running', ?, '{}', ?)",
                (info.id, kind, _dump(info.params), info.created_at),
            )
        except BaseException:
            del self._running[kind]
            raise
        task = asyncio.create_task(self._run(info, fn), name=f"job:{kind}:{info.id}")
        self._running[kind] = (info, task)
        return info

    async def _run(self, info: JobInfo, fn: JobFunction) -> None:
        ctx = JobContext(self, info)
        try:
            info.result = await fn(ctx)
            info.state, info.partial, info.error = ctx.outcome()
            if info.error:
                log.warning("job %s (%s) failed: %s", info.kind, info.id, info.error)
        except asyncio.CancelledError:
            info.state, info.error = "cancelled", "The job was cancelled."
        except JobFailed as exc:
            log.warning("job %s (%s) failed: %s", info.kind, info.id, exc)
            info.state, info.error = "failed", str(exc) or type(exc).__name__
        except Exception as exc:
            log.exception("job %s (%s) failed", info.kind, info.id)
            info.state, info.error = "failed", str(exc) or type(exc).__name__
        info.finished_at = utc_now_iso()
        try:
            await self._db.execute(
                "UPDATE jobs SET state = ?, progress = ?, result = ?, error = ?, finished_at = ?, "
                "partial = ?, item_errors = ? WHERE id = ?",
                (info.state, _dump(info.progress),
                 None if info.result is None else _dump(info.result), info.error,
                 info.finished_at, int(info.partial), _dump(info.item_errors), info.id),
            )
        finally:
            self._running.pop(info.kind, None)
            self._saved_at.pop(info.id, None)

    def _progress_changed(self, info: JobInfo) -> None:
        now = time.monotonic()
        if now - self._saved_at.get(info.id, 0.0) < self._interval:
            return
        self._saved_at[info.id] = now
        task = asyncio.get_running_loop().create_task(self._save_progress(info))
        task.add_done_callback(_log_failure)

    async def _save_progress(self, info: JobInfo) -> None:
        await self._db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'",
                               (_dump(info.progress), info.id))

    def running(self, kind: str) -> JobInfo | None:
        """Return the running job of ``kind``, or None."""
        entry = self._running.get(kind)
        return entry[0] if entry else None

    async def get(self, job_id: str) -> JobInfo | None:
        """Return a job by id (live progress for a running one), or None."""
        for info, _task in self._running.values():
            if info.id == job_id:
                return info
        row = await self._db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _from_row(row) if row else None

    async def latest(self, kind: str) -> JobInfo | None:
        """Return the running job of ``kind``, else its most recent one, else None."""
        running = self.running(kind)
        if running:
            return running
        row = await self._db.fetchone(
            "SELECT * FROM jobs WHERE kind = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (kind,),
        )
        return _from_row(row) if row else None

    async def last_failure(self, kind: str) -> JobInfo | None:
        """Return the most recent job of ``kind`` that ended with an error, or None."""
        row = await self._db.fetchone(
            "SELECT * FROM jobs WHERE kind = ? AND error IS NOT NULL "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1", (kind,))
        return _from_row(row) if row else None

    async def wait(self, kind: str) -> None:
        """Wait until the running job of ``kind`` (if any) has ended and its row is saved."""
        entry = self._running.get(kind)
        if entry:
            await asyncio.gather(entry[1], return_exceptions=True)

    async def shutdown(self) -> None:
        """Cancel every running job and wait for their rows to be saved as ``cancelled``."""
        tasks = [task for _info, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _dump(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _from_row(row: Row) -> JobInfo:
    decode = msgspec.json.decode
    return JobInfo(row["id"], row["kind"], row["state"], decode(row["params"]),
                   decode(row["progress"]), decode(row["result"]) if row["result"] else None,
                   row["error"], row["created_at"], row["finished_at"], bool(row["partial"]),
                   decode(row["item_errors"], type=list[ItemError]))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not save job progress: %s", task.exception())
