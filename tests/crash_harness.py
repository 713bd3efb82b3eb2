"""Kill a real ``soulsync serve`` with SIGKILL at named points, restart it, and check what is left.

Shared by tests/test_crash_*.py and benchmarks/crash.py. A :class:`CrashSite` is one data dir,
music folder and slskd downloads folder, with the fake slskd (tests/fakes/slskd.py) running in
the caller's event loop, so the caller counts its enqueues and moves its transfers with
``fake.tick()``. The daemon is started with the test-only pause variables of
:mod:`soulsync_core.faultpoints`; :meth:`CrashSite.kill_at` waits for its marker and kills it.

:func:`check` states what a crash must never do, as a list of findings (empty: all is well):
a download not ended exactly once, a second transfer requested from slskd, two files of one
track, a hidden temporary file in the music folder, a library that differs from a fresh scan of
the same folder, a row that was there before the crash and is gone, a corrupt database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from soulsync_core.core import Core
from soulsync_core.library.service import JOB_KIND
from soulsync_core.library.tags import AUDIO_EXTENSIONS
from tests.daemon_process import DaemonProcess
from tests.download_fixtures import TRACK, catalogue
from tests.fakes.slskd import DEFAULT_API_KEY, SLSKD, SlskdFake, make_app

ENQUEUE = ("POST", "/api/v0/transfers/downloads/{username}")
FINAL = ("completed", "failed", "not_found", "cancelled")
WAIT_SECONDS = 30.0


def library_rows(db_path: Path) -> set[tuple[Any, ...]]:
    """Return every track of a database as (folder, file, title, size) rows."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return set(db.execute(
            "SELECT f.path, t.file_name, t.title, t.file_size FROM tracks t "
            "JOIN folders f ON f.id = t.folder_id").fetchall())


async def fresh_scan(music: Path, data_dir: Path) -> set[tuple[Any, ...]]:
    """Scan ``music`` into a new database at ``data_dir``; return its :func:`library_rows`."""
    core = await Core.open(data_dir, environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(music)},
                           entry_points=False)
    try:
        await core.library.start_scan("crash-check")
        await core.jobs.wait(JOB_KIND)
    finally:
        await core.close()
    return library_rows(data_dir / "soulsync.db")


@dataclass
class CrashSite:
    """One daemon's folders, its fake slskd and the daemons started on them."""

    root: Path
    server: TestServer
    started: list[DaemonProcess] = field(default_factory=list)
    key: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)   # more settings of every start

    @classmethod
    async def open(cls, root: Path) -> CrashSite:
        await asyncio.to_thread((root / "music").mkdir, parents=True, exist_ok=True)
        app = make_app(root / "slskd", peers=catalogue(), search_seconds=0.2)
        server = TestServer(app)
        await server.start_server()
        return cls(root, server)

    async def close(self) -> None:
        for daemon in self.started:
            daemon.kill()
        await self.server.close()

    @property
    def fake(self) -> SlskdFake:
        return self.server.app[SLSKD]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def music(self) -> Path:
        return self.root / "music"

    @property
    def marker(self) -> Path:
        return self.root / "paused-at"

    def environ(self, pause_at: str | None) -> dict[str, str]:
        env = {
            "SOULSYNC_SOULSEEK__SLSKD_URL": str(self.server.make_url("/")),
            "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
            "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(self.root / "slskd"),
            "SOULSYNC_LIBRARY__MUSIC_DIR": str(self.music),
            "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "0.1",
            "SOULSYNC_DOWNLOADS__FILE_WAIT_SECONDS": "0.2",
            "SOULSYNC_DOWNLOADS__SEARCH_TIMEOUT_SECONDS": "10",
        }
        env.update(self.extra_env)
        if pause_at:
            env["SOULSYNC_TEST_PAUSE_AT"] = pause_at
            env["SOULSYNC_TEST_PAUSE_MARKER"] = str(self.marker)
        return env

    async def start(self, pause_at: str | None = None) -> DaemonProcess:
        """Start a daemon (pausing at ``pause_at`` when given); bootstrap the key once."""
        self.marker.unlink(missing_ok=True)
        daemon = DaemonProcess(self.data_dir, self.root / f"daemon-{len(self.started) + 1}.log",
                               self.root / "home", env=self.environ(pause_at))
        self.started.append(daemon)
        await daemon.start()
        if self.key is None:
            status, body = await self.call(daemon, "POST", "/api/v1/api-keys/bootstrap",
                                           {"label": "crash"})
            assert status == 201, body
            self.key = body["data"]["key"]
        return daemon

    async def call(self, daemon: DaemonProcess, method: str, path: str,
                   body: Any = None) -> tuple[int, Any]:
        """Send one request; return (status, decoded body)."""
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.request(method, daemon.base_url + path, json=body,
                                       headers=headers) as response:
                return response.status, await response.json(content_type=None)

    async def request_download(self, daemon: DaemonProcess) -> int:
        status, body = await self.call(daemon, "POST", "/api/v1/downloads", TRACK)
        assert status == 202 and body["data"]["created"], body
        return int(body["data"]["download"]["id"])

    async def kill_at(self, daemon: DaemonProcess, point: str) -> None:
        """Move the fake's transfers until the daemon paused at ``point``, then SIGKILL it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not (self.marker.exists() and self.marker.read_text() == point):
            assert daemon.proc is not None
            if daemon.proc.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                raise AssertionError(f"the daemon never paused at {point}; log:\n{daemon.log_text()}")
            await self.fake.tick()
            await asyncio.sleep(0.05)
        daemon.kill()

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the daemon's database directly (WAL: safe beside a running daemon)."""
        with contextlib.closing(sqlite3.connect(self.data_dir / "soulsync.db", timeout=10)) as db:
            return db.execute(sql, args).fetchall()

    async def wait_until(self, what: str, condition: Any, daemon: DaemonProcess,
                         tick: bool = True) -> None:
        """Tick the fake slskd until ``condition()`` holds; fail naming ``what`` after a while."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log:\n{daemon.log_text()}")
            if tick:
                await self.fake.tick()
            await asyncio.sleep(0.05)

    async def finish_downloads(self, daemon: DaemonProcess) -> None:
        """Move the fake's transfers until every download row has a final status."""
        marks = ", ".join("?" * len(FINAL))
        await self.wait_until("every download to end", lambda: not self.rows(
            f"SELECT id FROM downloads WHERE status NOT IN ({marks})", FINAL), daemon)


async def check(site: CrashSite, before: dict[str, set[Any]], downloads: int,
                library_files: int | None = None) -> list[str]:
    """Return what went wrong (empty: nothing). Call with the daemon stopped.

    ``before`` maps a ``SELECT`` of ids to the ids it gave before the crash: every one must
    still be there. ``downloads`` is how many downloads were asked for (one track each);
    ``library_files`` how many audio files the music folder must hold (default: ``downloads``).
    """
    findings: list[str] = []
    [(integrity,)] = site.rows("PRAGMA integrity_check")
    if integrity != "ok":
        findings.append(f"integrity_check: {integrity}")
    statuses = site.rows("SELECT id, status FROM downloads ORDER BY id")
    if len(statuses) != downloads:
        findings.append(f"{len(statuses)} download rows for {downloads} downloads: {statuses}")
    completed = [row for row in statuses if row[1] == "completed"]
    if len(completed) != downloads:
        findings.append(f"downloads that did not complete exactly once: {statuses}")
    enqueues = site.fake.count(*ENQUEUE)
    if enqueues != downloads:
        findings.append(f"{enqueues} transfers requested from slskd for {downloads} download(s)")
    files = sorted(p for p in site.music.rglob("*") if p.is_file())
    hidden = [p for p in files if p.name.startswith(".")]
    if hidden:
        findings.append(f"half-written files left in the library: {hidden}")
    audio = [p for p in files if not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS]
    expected = downloads if library_files is None else library_files
    if len(audio) != expected:
        findings.append(f"{len(audio)} audio files in the library, {expected} expected: {audio[:5]}")
    for sql, ids in before.items():
        now = {row[0] for row in site.rows(sql)}
        if not ids <= now:
            findings.append(f"rows lost ({sql}): {sorted(ids - now)}")
    fresh = await fresh_scan(site.music, site.root / "fresh")
    kept = library_rows(site.data_dir / "soulsync.db")
    if kept != fresh:
        findings.append(f"the library differs from a fresh scan: {len(kept - fresh)} extra, "
                        f"{len(fresh - kept)} missing, e.g. {sorted(kept ^ fresh)[:3]}")
    return findings
