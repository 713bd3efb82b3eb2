"""GET /api/v1/system/health: each check's level, message and hint, against the real plugins
and their fakes, real folders (checked as an unprivileged user) and real backups."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

import soulsync_slskd.plugin
from soulsync_core.backup import JOB_KIND
from soulsync_core.db import snapshot as snapshot_module
from soulsync_core.db.snapshot import write_snapshot
from soulsync_core.health_checks import SERVER_DATE, clock_skew, music_folder, scrub
from soulsync_core.hooks import hookimpl
from soulsync_core.models import Health
from soulsync_core.testing import free_port
from soulsync_itunes import plugin as itunes_plugin
from soulsync_slskd.transport import AUTH_MESSAGE
from tests.fakes import itunes
from tests.fakes.base import FAULTS
from tests.fakes.slskd import DEFAULT_API_KEY, make_app

H = "/api/v1/system/health"
NOBODY = 65534


async def health(api: Any) -> tuple[str, dict[str, dict[str, str]]]:
    """Return the overall level and the checks by name (each answer checked against OpenAPI)."""
    reply = await api.get(H)
    assert reply.status == 200, reply.json
    checks = {c["check"]: c for c in reply.data["checks"]}
    assert len(checks) == len(reply.data["checks"])  # each check once
    for check in checks.values():
        assert check["message"]
        assert (check["hint"] == "") == (check["level"] == "ok")  # every problem says what to do
    return reply.data["level"], checks


@pytest.fixture
def make(soulsync_factory: Any, music: Path) -> Any:
    async def start(plugins: list[tuple[str, object]] | None = None, **env: str) -> Any:
        environ = {"SOULSYNC_LIBRARY__MUSIC_DIR": str(music), **env}
        return await soulsync_factory(plugins=plugins or [], environ=environ)
    return start


async def test_health_needs_a_key(api):
    assert (await api.get(H)).status == 401


async def test_a_fresh_daemon_warns_of_no_backup_and_no_integrity_check(make):
    api = await make()
    level, checks = await health(api)
    assert checks["music_folder"]["level"] == "ok"
    assert checks["backup"]["level"] == "warning"
    assert "There is no backup" in checks["backup"]["message"]
    assert "soulsync backup" in checks["backup"]["hint"]
    assert checks["database_integrity"]["level"] == "warning"
    assert "never been checked" in checks["database_integrity"]["message"]
    assert checks["clock"]["level"] == "ok" and "Skipped" in checks["clock"]["message"]
    assert level == "warning"


async def test_after_a_backup_backup_and_integrity_are_ok(make):
    api = await make()
    assert (await api.post("/api/v1/system/backups")).status == 202
    await api.core.jobs.wait(JOB_KIND)
    level, checks = await health(api)
    assert checks["backup"]["level"] == "ok"
    assert checks["database_integrity"]["level"] == "ok"
    assert "passed its integrity check" in checks["database_integrity"]["message"]
    assert level == "ok", checks


async def test_an_old_backup_is_a_warning(make):
    api = await make()
    folder = api.core.backups.folder()
    old = datetime.now(UTC) - timedelta(days=10)
    name = f"soulsync-{old.strftime('%Y%m%dT%H%M%SZ')}.db"
    await asyncio.to_thread(write_snapshot, api.core.db.path, folder / name)
    _level, checks = await health(api)
    assert checks["backup"]["level"] == "warning"
    assert name in checks["backup"]["message"]


async def test_scheduled_backups_off_says_so_in_the_hint(make):
    api = await make(SOULSYNC_BACKUP__INTERVAL_HOURS="0")
    _level, checks = await health(api)
    assert "backup.interval_hours is 0" in checks["backup"]["hint"]


async def test_a_failed_integrity_check_is_an_error(make, monkeypatch):
    api = await make()
    monkeypatch.setattr(snapshot_module, "check_integrity",
                        lambda conn: ["*** in database main ***", "Page 7: btreeInitPage() error"])
    assert (await api.post("/api/v1/system/backups")).status == 202
    await api.core.jobs.wait(JOB_KIND)
    level, checks = await health(api)
    assert checks["database_integrity"]["level"] == "error"
    assert "btreeInitPage" in checks["database_integrity"]["message"]
    assert "soulsync restore" in checks["database_integrity"]["hint"]
    assert checks["backup"]["level"] == "error"
    assert level == "error"


async def test_a_missing_music_folder_is_an_error(make, tmp_path):
    api = await make(SOULSYNC_LIBRARY__MUSIC_DIR=str(tmp_path / "not-mounted"))
    level, checks = await health(api)
    music = checks["music_folder"]
    assert music["level"] == "error" and "does not exist" in music["message"]
    assert "library.music_dir" in music["hint"]
    assert level == "error"


# --- folders as the daemon's user ---------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder under /tmp that another user may enter (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="soulsync-health-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def music_folder_as(uid: int, folder: Path) -> tuple[str, str]:
    """Run the music folder check in a child process that runs as ``uid`` (the interpreter
    lives under /root, which another user cannot enter, so the child is forked, not run)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, check, report, exit without pytest's teardown
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = music_folder(folder)
            os.write(write_end, json.dumps([result.level, result.message]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    level, message = json.loads(answer)
    return level, message


def test_a_read_only_music_folder_is_an_error_for_an_unprivileged_user(shared_tmp):
    read_only = shared_tmp / "music"
    read_only.mkdir(mode=0o755)  # root's: others may read, not write
    level, message = music_folder_as(NOBODY, read_only)
    assert level == "error"
    assert "read-only" in message and f"uid {NOBODY}" in message
    assert music_folder_as(0, read_only)[0] == "ok"  # root ignores modes: why this test setuids

    writable = shared_tmp / "own"
    writable.mkdir()
    os.chown(writable, NOBODY, NOBODY)
    assert music_folder_as(NOBODY, writable)[0] == "ok"

    hidden = shared_tmp / "private"
    hidden.mkdir(mode=0o700)
    level, message = music_folder_as(NOBODY, hidden)
    assert level == "error" and "cannot be read" in message


# --- slskd ----------------------------------------------------------------------------------------


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
async def slskd(aiohttp_server: Any, downloads: Path) -> Any:
    return await aiohttp_server(make_app(downloads, search_seconds=0.1))


def slskd_env(url: str, downloads: Path, key: str = DEFAULT_API_KEY) -> dict[str, str]:
    return {"SOULSYNC_SOULSEEK__SLSKD_URL": url, "SOULSYNC_SOULSEEK__API_KEY": key,
            "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads)}


SLSKD_PLUGIN = [("slskd", soulsync_slskd.plugin)]


async def test_slskd_up_and_its_folder_visible_are_ok(make, slskd, downloads):
    api = await make(SLSKD_PLUGIN, **slskd_env(str(slskd.make_url("/")), downloads))
    await api.core.health.check_all()
    _level, checks = await health(api)
    assert checks["service:soulseek"]["level"] == "ok"
    assert checks["download_folder:soulseek"]["level"] == "ok"


async def test_slskd_answering_with_a_skewed_date_warns_of_the_clock(make, slskd, downloads):
    api = await make(SLSKD_PLUGIN, **slskd_env(str(slskd.make_url("/")), downloads))
    await api.core.health.check_all()
    _level, checks = await health(api)
    # The fake answers with aiohttp's Date header (this machine's clock): in agreement.
    assert checks["clock"]["level"] == "ok" and "soulseek" in checks["clock"]["message"]
    slskd.app[FAULTS].clock_skew = -300.0  # slskd's clock 5 minutes behind ours
    await api.core.health.check_all()
    _level, checks = await health(api)
    assert checks["clock"]["level"] == "warning"
    # The header has whole seconds and the check's time is a moment after the answer.
    assert re.fullmatch(r"This machine's clock is 30[01] s ahead of soulseek's\.",
                        checks["clock"]["message"])
    assert "NTP" in checks["clock"]["hint"]


async def test_slskd_refusing_the_key_is_an_error_that_never_shows_the_key(make, slskd, downloads):
    wrong = "wrong-key-0123456789abcdef"
    api = await make(SLSKD_PLUGIN, **slskd_env(str(slskd.make_url("/")), downloads, wrong))
    await api.core.health.check_all()
    reply = await api.get(H)
    checks = {c["check"]: c for c in reply.data["checks"]}
    soulseek = checks["service:soulseek"]
    assert soulseek["level"] == "error"
    assert AUTH_MESSAGE in soulseek["message"]
    assert "soulseek.api_key" in soulseek["hint"]
    assert wrong not in json.dumps(reply.json) and DEFAULT_API_KEY not in json.dumps(reply.json)


async def test_slskd_unreachable_is_an_error_without_the_url_password(make, downloads):
    url = f"http://admin:hunter22@127.0.0.1:{free_port()}"
    api = await make(SLSKD_PLUGIN, **slskd_env(url, downloads))
    await api.core.health.check_all()
    reply = await api.get(H)
    soulseek = {c["check"]: c for c in reply.data["checks"]}["service:soulseek"]
    assert soulseek["level"] == "error"
    assert "could not be reached" in soulseek["message"]
    assert "hunter22" not in json.dumps(reply.json)


async def test_slskd_download_folder_not_visible_is_an_error(make, slskd, tmp_path):
    api = await make(SLSKD_PLUGIN, **slskd_env(str(slskd.make_url("/")), tmp_path / "elsewhere"))
    _level, checks = await health(api)
    folder = checks["download_folder:soulseek"]
    assert folder["level"] == "error" and "does not exist" in folder["message"]
    assert "soulseek.download_path" in folder["hint"]


async def test_slskd_without_a_download_folder_is_a_warning(make, slskd, downloads):
    env = slskd_env(str(slskd.make_url("/")), downloads)
    del env["SOULSYNC_SOULSEEK__DOWNLOAD_PATH"]
    api = await make(SLSKD_PLUGIN, **env)
    _level, checks = await health(api)
    assert checks["download_folder:soulseek"]["level"] == "warning"


# --- disk, plugins, providers, clock ------------------------------------------------------------


async def test_low_disk_space_is_a_warning_once_per_filesystem(make):
    api = await make(SOULSYNC_HEALTH__MIN_FREE_DISK_MB="100000000")  # more than any test disk
    _level, checks = await health(api)
    disks = {name: c for name, c in checks.items() if name.startswith("disk_space:")}
    # The music folder and the data directory share the test's filesystem: one line.
    assert list(disks) == ["disk_space:music folder"]
    assert disks["disk_space:music folder"]["level"] == "warning"
    assert "health.min_free_disk_mb" in disks["disk_space:music folder"]["hint"]


async def test_enough_disk_space_is_ok(make):
    api = await make(SOULSYNC_HEALTH__MIN_FREE_DISK_MB="0")
    _level, checks = await health(api)
    assert checks["disk_space:music folder"]["level"] == "ok"


async def test_a_plugin_that_failed_to_load_is_an_error(make):
    @hookimpl
    def metadata_provider(settings: Any) -> list[Any]:  # misspelt hook: refused at load
        return []

    api = await make([("typo", types.SimpleNamespace(metadata_provider=metadata_provider))])
    _level, checks = await health(api)
    plugin = checks["plugin:typo"]
    assert plugin["level"] == "error" and "failed to load" in plugin["message"]
    assert "plugins.enabled" in plugin["hint"]


async def test_a_rate_limited_provider_is_a_warning(make, aiohttp_server):
    app = itunes.make_app()
    server = await aiohttp_server(app)
    api = await make([("itunes", itunes_plugin)],
                     SOULSYNC_ITUNES__BASE_URL=str(server.make_url("")).rstrip("/"))
    app[FAULTS].retry_after, app[FAULTS].rate_limit_count = 120, -1
    reply = await api.post("/api/v1/search/tracks", {"query": "daft punk", "source": "itunes"})
    assert reply.status == 503
    _level, checks = await health(api)
    itunes_check = checks["service:itunes"]
    assert itunes_check["level"] == "warning"
    assert "rate limited" in itunes_check["message"]


async def test_a_clock_off_from_a_providers_date_header_is_a_warning(make):
    api = await make()
    behind = format_datetime(datetime.now(UTC) - timedelta(minutes=10), usegmt=True)

    async def check() -> Health:
        return Health(ok=True, details={SERVER_DATE: behind})

    api.core.health.register("timekeeper", check)
    await api.core.health.check_all()
    _level, checks = await health(api)
    assert checks["clock"]["level"] == "warning"
    assert "ahead of timekeeper" in checks["clock"]["message"]
    assert "NTP" in checks["clock"]["hint"]


def test_clock_within_a_minute_is_ok_and_a_bad_header_is_skipped():
    now = datetime.now(UTC)
    assert clock_skew({"a": (format_datetime(now, usegmt=True), now.timestamp() + 5)}).level == "ok"
    assert "Skipped" in clock_skew({"a": ("not a date", now.timestamp())}).message


def test_scrub_removes_secrets_and_url_passwords():
    text = "http://me:pw@host:5030 refused key sk_abc"
    assert scrub(text, ["sk_abc", ""]) == "http://***REDACTED***@host:5030 refused key ***REDACTED***"
