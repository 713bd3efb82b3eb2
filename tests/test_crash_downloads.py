"""Crash safety of downloads: SIGKILL a real ``soulsync serve`` at each step of a download.

The daemon runs as a subprocess against the fake slskd (in this test's event loop, so its
enqueues are counted); :mod:`soulsync_core.faultpoints` pauses it at an exact step and the test
kills it there with SIGKILL, restarts it on the same data dir and lets the download finish.
Afterwards (tests/crash_harness.py :func:`check`) the download ended exactly once, slskd was
asked for the file once, the library holds one file and no temporary one, the library equals a
fresh scan of the folder, no row is lost and the database passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.crash_harness import CrashSite, check

BEFORE = ("SELECT id FROM downloads", "SELECT id FROM api_keys")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[CrashSite]:
    opened = await CrashSite.open(tmp_path / "site")
    yield opened
    await opened.close()


async def restart_and_finish(site: CrashSite, downloads: int) -> list[str]:
    """Record the rows, restart, let every download end, stop; return :func:`check`'s findings."""
    before = {sql: {row[0] for row in site.rows(sql)} for sql in BEFORE}
    daemon = await site.start()
    await site.finish_downloads(daemon)
    assert await daemon.stop() == 0, daemon.log_text()
    return await check(site, before, downloads)


@pytest.mark.parametrize("point", [
    "download.searched",        # the search ran at slskd, its results were not saved
    "download.enqueued",        # slskd has the transfer, its id was not saved
    "import.before_rename",     # copied and tagged under the temporary name
    "import.renamed",           # the final name is there, `tagged` was not saved
])
async def test_sigkill_at_a_step_of_a_download_loses_and_repeats_nothing(
        site: CrashSite, point: str) -> None:
    daemon = await site.start(pause_at=point)
    await site.request_download(daemon)
    await site.kill_at(daemon, point)
    if point == "import.before_rename":
        hidden = [p.name for p in site.music.rglob(".soulsync-*")]
        assert hidden, "the pause point was reached before the temporary file was written"
    assert await restart_and_finish(site, downloads=1) == []


async def test_sigkill_while_slskd_is_still_searching_searches_again_and_enqueues_once(
        site: CrashSite) -> None:
    site.fake.search_seconds = 1.5   # long enough that the kill lands before it ends
    daemon = await site.start()
    await site.request_download(daemon)
    await site.wait_until("a search to start", lambda: bool(site.fake.running_searches()), daemon,
                          tick=False)
    daemon.kill()
    assert site.rows("SELECT status FROM downloads") == [("searching",)]
    site.fake.search_seconds = 0.2
    assert await restart_and_finish(site, downloads=1) == []


async def test_sigkill_during_a_transfer_resumes_the_same_transfer(site: CrashSite) -> None:
    daemon = await site.start()
    await site.request_download(daemon)
    await site.wait_until("the transfer to be in progress", lambda: any(
        t.state == "InProgress" for t in site.fake.transfers.values()), daemon)
    daemon.kill()
    assert site.rows("SELECT status FROM downloads") == [("downloading",)]
    assert await restart_and_finish(site, downloads=1) == []


async def test_two_crashes_in_a_row_still_end_the_download_once(site: CrashSite) -> None:
    daemon = await site.start(pause_at="download.enqueued")
    await site.request_download(daemon)
    await site.kill_at(daemon, "download.enqueued")
    daemon = await site.start(pause_at="import.before_rename")
    await site.kill_at(daemon, "import.before_rename")
    assert await restart_and_finish(site, downloads=1) == []


async def test_an_import_killed_before_its_rename_that_cannot_resume_leaves_no_temporary_file(
        site: CrashSite) -> None:
    daemon = await site.start(pause_at="import.before_rename")
    download_id = await site.request_download(daemon)
    await site.kill_at(daemon, "import.before_rename")
    assert list(site.music.rglob(".soulsync-*"))
    # slskd's copy is gone meanwhile (cleared in slskd's web UI): the import cannot resume.
    for copy in [p for p in (site.root / "slskd").rglob("*") if p.is_file()]:
        copy.unlink()

    daemon = await site.start()
    await site.finish_downloads(daemon)
    assert await daemon.stop() == 0, daemon.log_text()
    [(status, error)] = site.rows("SELECT status, error FROM downloads WHERE id = ?", (download_id,))
    assert status == "failed" and "not where slskd keeps it" in error, (status, error)
    assert [p for p in site.music.rglob("*") if p.is_file()] == []
    assert list(site.music.iterdir()) == []  # nor the artist and album folders made for it
    assert site.rows("PRAGMA integrity_check") == [("ok",)]
    assert site.rows("SELECT id FROM tracks") == []
