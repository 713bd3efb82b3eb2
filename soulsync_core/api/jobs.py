"""``/system/jobs``: the background jobs (library scan, wishlist run, watchlist scan) at a glance."""

from __future__ import annotations

import msgspec
from aiohttp import web

from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ok
from soulsync_core.library.service import JOB_KIND as LIBRARY_SCAN
from soulsync_core.watchlist import JOB_KIND as WATCHLIST_SCAN
from soulsync_core.wishlist import JOB_KIND as WISHLIST_RUN

routes = Routes("system")


class JobSummary(msgspec.Struct):
    """One kind of job. ``state`` is ``running``, the last run's final state, or ``idle`` when
    it never ran; ``next_run`` is the next scheduled start (null: not on a schedule);
    ``last_error`` is the error of the latest run that failed; ``partial`` is true when the
    last run completed with some items failed. Times are ISO-8601 UTC."""

    kind: str
    state: str
    last_run_id: str | None
    last_run_started: str | None
    last_run_finished: str | None
    next_run: str | None
    last_error: str | None
    last_error_at: str | None
    partial: bool = False


class JobList(msgspec.Struct):
    jobs: list[JobSummary]


@routes.get("/system/jobs", "Background jobs: state, last run, next run, last error.",
            response=JobList)
async def list_jobs(request: web.Request) -> web.Response:
    core = core_of(request)
    schedules = {LIBRARY_SCAN: core.library.schedule, WISHLIST_RUN: core.wishlist.schedule,
                 WATCHLIST_SCAN: core.watchlist.schedule}
    jobs = []
    for kind in (LIBRARY_SCAN, WISHLIST_RUN, WATCHLIST_SCAN):
        latest = await core.jobs.latest(kind)
        failure = await core.jobs.last_failure(kind)
        schedule = schedules.get(kind)
        jobs.append(JobSummary(
            kind, latest.state if latest else "idle", latest.id if latest else None,
            latest.created_at if latest else None, latest.finished_at if latest else None,
            await schedule.next_run() if schedule else None,
            failure.error if failure else None, failure.finished_at if failure else None,
            bool(latest and latest.partial)))
    return ok(JobList(jobs))
