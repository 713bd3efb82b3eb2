"""The job runner: one job per kind, persisted state, interrupted jobs recovered."""

from __future__ import annotations

import asyncio

import pytest

from soulsync_core.core import Core
from soulsync_core.jobs import JobConflict, JobContext


async def test_job_runs_persists_result_and_blocks_a_second_of_its_kind(core: Core):
    release = asyncio.Event()

    async def work(ctx: JobContext) -> dict:
        ctx.progress(done=1)
        await release.wait()
        return {"items": 3}

    info = await core.jobs.start("scan", work, {"full": True})
    assert info.state == "running"
    with pytest.raises(JobConflict) as conflict:
        await core.jobs.start("scan", work)
    assert conflict.value.running.id == info.id
    other = await core.jobs.start("sync", lambda ctx: asyncio.sleep(0))  # another kind is fine
    release.set()
    await core.jobs.wait("scan")
    await core.jobs.wait("sync")
    done = await core.jobs.get(info.id)
    assert done is not None
    assert (done.state, done.result, done.params, done.progress) == (
        "completed", {"items": 3}, {"full": True}, {"done": 1})
    assert (await core.jobs.get(other.id)).state == "completed"
    assert (await core.jobs.latest("scan")).id == info.id


async def test_failed_job_records_error(core: Core):
    async def fail(ctx: JobContext) -> None:
        raise ValueError("slskd said no")

    info = await core.jobs.start("scan", fail)
    await core.jobs.wait("scan")
    done = await core.jobs.get(info.id)
    assert (done.state, done.error) == ("failed", "slskd said no")


async def test_concurrent_starts_give_exactly_one_job(core: Core):
    async def work(ctx: JobContext) -> None:
        await asyncio.sleep(0.05)

    results = await asyncio.gather(*(core.jobs.start("scan", work) for _ in range(10)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, JobConflict) for r in results) == 1
    await core.jobs.wait("scan")


async def test_job_running_at_crash_is_interrupted_on_next_start(data_dir):
    core = await Core.open(data_dir, environ={}, entry_points=False)
    # What a kill -9 in the middle of a job leaves behind: a row that says running.
    await core.db.execute("INSERT INTO jobs (id, kind, state, created_at) "
                          "VALUES ('j1', 'scan', 'running', '2026-01-01T00:00:00+00:00')")
    await core.close()
    core = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        assert await core.jobs.recover() == 1
        row = await core.jobs.get("j1")
        assert row.state == "interrupted" and "stopped" in row.error and row.finished_at
        assert await core.jobs.recover() == 0
    finally:
        await core.close()


async def test_shutdown_cancels_running_jobs(core: Core):
    async def work(ctx: JobContext) -> None:
        await asyncio.sleep(60)

    info = await core.jobs.start("scan", work)
    await asyncio.sleep(0)
    await core.jobs.shutdown()
    assert (await core.jobs.get(info.id)).state == "cancelled"
    assert core.jobs.running("scan") is None


async def test_expected_failure_is_one_warning_line_without_traceback(core: Core, caplog):
    import logging

    from soulsync_core.jobs import JobFailed

    async def work(ctx: JobContext) -> None:
        raise JobFailed("The music folder /nope does not exist.")

    with caplog.at_level(logging.WARNING, logger="soulsync_core.jobs"):
        info = await core.jobs.start("scan", work)
        await core.jobs.wait("scan")
    done = await core.jobs.get(info.id)
    assert (done.state, done.error) == ("failed", "The music folder /nope does not exist.")
    record = next(r for r in caplog.records if "failed" in r.getMessage())
    assert record.levelno == logging.WARNING and record.exc_info is None


@pytest.mark.parametrize(("done", "failed", "state", "partial", "error"), [
    (0, 0, "completed", False, None),
    (2, 0, "completed", False, None),
    (1, 2, "completed", True, None),
    (0, 1, "failed", False, "Nothing could be done: 1 item failed (first: item 0: gone)."),
    (0, 3, "failed", False, "Nothing could be done: 3 items failed (first: item 0: gone)."),
])
async def test_one_outcome_rule_for_every_job(core: Core, done, failed, state, partial, error):
    async def work(ctx: JobContext) -> dict:
        for _ in range(done):
            ctx.item_done()
        for i in range(failed):
            ctx.item_failed(f"item {i}", "gone")
        return {"tried": done + failed}

    info = await core.jobs.start("sync", work)
    await core.jobs.wait("sync")
    row = await core.jobs.get(info.id)
    assert (row.state, row.partial, row.error, row.result) == (state, partial, error,
                                                              {"tried": done + failed})
    assert [(e.item, e.error) for e in row.item_errors] == [(f"item {i}", "gone")
                                                           for i in range(failed)]
