"""The health list of ``GET /api/v1/system/health``: what is wrong and what to do about it.

Each check answers ``ok``, ``warning`` or ``error`` with a message and a hint. Outside services
are never probed here: their state comes from the background checks of
:class:`~soulsync_core.health.ServiceHealth` and the search cool-downs. File system checks run
in a worker thread, as the daemon's own user (``os.access``), since that is who must read and
write the folders. No message carries a secret: every text passes :func:`scrub`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from soulsync_core.config import REDACTED
from soulsync_core.schedule import parse_iso, utc_now

if TYPE_CHECKING:
    from soulsync_core.core import Core

Level = Literal["ok", "warning", "error"]
LEVELS: tuple[Level, ...] = ("ok", "warning", "error")
MIB = 1024 * 1024
# A backup (and so an integrity check) counts as too old after two missed intervals, so one
# run that came late or failed once does not raise a warning.
STALE_INTERVALS = 2
# OAuth servers refuse tokens and signed requests whose time is off by more than a few
# minutes; a minute is well within that.
MAX_CLOCK_SKEW_SECONDS = 60
# Where a provider's health details may carry the Date header of its last answer.
SERVER_DATE = "server_date"
FOLDER_TIMEOUT = 10.0
SOULSEEK = "soulseek"
DOWNLOAD_PATH_SETTING = "soulseek.download_path"

_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
T = TypeVar("T")


class CheckResult(msgspec.Struct):
    """One line of the health list. ``check`` names what was checked (``music_folder``,
    ``service:soulseek``, ``disk_space:/srv``, …)."""

    check: str
    level: Level
    message: str
    hint: str


class HealthList(msgspec.Struct):
    """``level`` is the worst level of ``checks``."""

    level: Level
    checks: list[CheckResult]


def _ok(check: str, message: str) -> CheckResult:
    return CheckResult(check, "ok", message, "")


def worst(results: Iterable[CheckResult]) -> Level:
    """Return the most severe level among ``results`` (``ok`` for none)."""
    return max((r.level for r in results), key=LEVELS.index, default="ok")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with each of ``secrets`` and any user:password of a URL replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _URL_USERINFO.sub(REDACTED + "@", text)


def folder_problem(path: Path, what: str, *, write: bool) -> str | None:
    """Return why the daemon's user cannot use folder ``path`` (``~`` expanded; None when it
    can). Blocking."""
    path = path.expanduser()
    if not path.exists():
        return f"{what} {path} does not exist."
    if not path.is_dir():
        return f"{what} {path} is not a folder."
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{what} {path} cannot be read by the user SoulSync runs as (uid {os.geteuid()})."
    if write and not os.access(path, os.W_OK):
        return (f"{what} {path} is read-only for the user SoulSync runs as "
                f"(uid {os.geteuid()}).")
    return None


def music_folder(path: Path) -> CheckResult:
    """Check that the music folder exists and can be read and written. Blocking."""
    problem = folder_problem(path, "The music folder", write=True)
    if problem is None:
        return _ok("music_folder", f"The music folder {path} can be read and written.")
    return CheckResult("music_folder", "error", problem + " Scans and downloads cannot work.",
                       "Set library.music_dir to the folder that holds your music; on a NAS make "
                       "sure the share is mounted and that SoulSync's user owns it or may write "
                       "to it (e.g. chown -R soulsync: /path/to/music).")


def disk_space(paths: dict[str, Path], min_free_mb: int) -> list[CheckResult]:
    """Check the free space of the filesystems of ``paths`` (``{what: folder}``), each
    filesystem once. Blocking."""
    results: list[CheckResult] = []
    seen: set[int] = set()
    for what, path in paths.items():
        try:
            device = path.stat().st_dev
            usage = shutil.disk_usage(path)
        except OSError:
            continue  # a missing folder is the folder check's line
        if device in seen:
            continue
        seen.add(device)
        free_mb = usage.free // MIB
        name = f"disk_space:{what}"
        if min_free_mb and free_mb < min_free_mb:
            results.append(CheckResult(
                name, "error" if usage.free == 0 else "warning",
                f"Only {free_mb} MiB are free on the filesystem of the {what} ({path}).",
                "Free some space or move the folder to a larger disk; a full disk makes "
                "downloads and database writes fail. The threshold is health.min_free_disk_mb."))
        else:
            results.append(_ok(name, f"{free_mb} MiB free on the filesystem of the {what} "
                                     f"({path})."))
    return results


def clock_skew(dates: dict[str, tuple[str, float]]) -> CheckResult:
    """Compare ``{service: (Date header, epoch seconds it was received)}`` with our clock."""
    skews = {}
    for service, (header, received) in dates.items():
        try:
            theirs = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError):
            continue
        skews[service] = received - theirs
    if not skews:
        return _ok("clock", "Skipped: no service's answer carried a Date header to compare "
                            "the clock with.")
    service, skew = max(skews.items(), key=lambda item: abs(item[1]))
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
        direction = "ahead of" if skew > 0 else "behind"
        return CheckResult("clock", "warning",
                           f"This machine's clock is {abs(skew):.0f} s {direction} {service}'s.",
                           "Turn on time synchronisation (NTP, e.g. timedatectl set-ntp true); "
                           "account logins (OAuth) fail when the clock is off.")
    return _ok("clock", f"The clock agrees with {', '.join(sorted(skews))} (within "
                        f"{MAX_CLOCK_SKEW_SECONDS} s).")


async def health_list(core: Core) -> HealthList:
    """Return every check's result and, as ``level``, the worst of their levels."""
    settings = core.settings
    secrets = [str(settings.get(key)) for key in settings.schema.keys()
               if settings.schema.is_secret(key) and settings.get(key)]
    results = [await _in_thread("music_folder", music_folder, core.library.music_dir())]
    results.extend(_services(core))
    results.extend(await _download_folder(core))
    disk = await _in_thread("disk_space", disk_space,
                            {"music folder": core.library.music_dir(),
                             "data directory": core.data_dir},
                            settings.get("health.min_free_disk_mb"))
    results.extend(disk if isinstance(disk, list) else [disk])
    results.extend(await _backups(core))
    results.extend(_plugins(core))
    results.append(clock_skew({
        name: (str(state.details[SERVER_DATE]), state.checked_at)
        for name, state in core.health.states().items()
        if state.checked_at is not None and state.details.get(SERVER_DATE)}))
    clean = [CheckResult(r.check, r.level, scrub(r.message, secrets), scrub(r.hint, secrets))
             for r in results]
    return HealthList(worst(clean), clean)


async def _in_thread(name: str, fn: Callable[..., T], *args: Any,
                     **kwargs: Any) -> T | CheckResult:
    # A hung network share must not hang the health list with it.
    try:
        async with asyncio.timeout(FOLDER_TIMEOUT):
            return await asyncio.to_thread(fn, *args, **kwargs)
    except TimeoutError:
        return CheckResult(name, "error", f"Checking took longer than {FOLDER_TIMEOUT:g} s.",
                           "A network share that stopped answering is the usual cause; check "
                           "the NAS's mounts.")


def _services(core: Core) -> list[CheckResult]:
    results = []
    clients = {client.name for client in core.download_clients}
    for name, state in core.health.states().items():
        check = f"service:{name}"
        cooldown = core.search.cooldown_left(name)
        if cooldown > 0:
            results.append(CheckResult(
                check, "warning", f"{name} is rate limited for {cooldown:.0f} s more.",
                "Nothing to do: searches skip it until then. If it keeps happening, search "
                "less often (fewer watched artists, a longer watchlist.interval_hours)."))
        elif state.ok:
            results.append(_ok(check, f"{name} answered its last check."))
        elif state.error is not None:
            level: Level = "error" if name in clients else "warning"
            results.append(CheckResult(check, level, f"{name} is down: {state.error}",
                                       _service_hint(name)))
        elif name in clients:
            results.append(CheckResult(check, "warning", f"{name} is not configured: nothing "
                                       "can be downloaded.", _service_hint(name)))
    return results


def _service_hint(name: str) -> str:
    if name == SOULSEEK:
        return ("Check that slskd runs and is logged in to Soulseek, that soulseek.slskd_url "
                "points at it, and that soulseek.api_key is one of slskd's "
                "web.authentication.api_keys (with the ReadWrite role).")
    return (f"Check the {name} settings (GET /api/v1/settings) and GET /api/v1/system/status; "
            "searches use the other sources meanwhile.")


async def _download_folder(core: Core) -> list[CheckResult]:
    names = {client.name for client in core.download_clients}
    if SOULSEEK not in names or DOWNLOAD_PATH_SETTING not in core.settings.schema:
        return []
    configured = core.settings.get(DOWNLOAD_PATH_SETTING)
    check = "download_folder:soulseek"
    if not configured:
        return [CheckResult(check, "warning", "soulseek.download_path is not set: finished "
                            "downloads cannot be found.",
                            "Set soulseek.download_path to slskd's downloads folder as this "
                            "machine sees it (a shared volume or mount).")]
    path = Path(configured)
    problem = await _in_thread(check, folder_problem, path, "slskd's download folder",
                               write=False)
    if isinstance(problem, CheckResult):
        return [problem]
    if problem is None:
        return [_ok(check, f"slskd's download folder {configured} is visible.")]
    return [CheckResult(check, "error", problem + " Finished downloads cannot be imported.",
                        "Mount slskd's downloads folder on this machine and set "
                        "soulseek.download_path to where it appears; SoulSync's user must be "
                        "able to read it.")]


async def _backups(core: Core) -> list[CheckResult]:
    interval_hours = core.settings.get("backup.interval_hours")
    # Two missed intervals (at least two days) before a warning: one late run is no problem.
    stale = utc_now() - timedelta(hours=max(interval_hours, 24) * STALE_INTERVALS)
    backups = await core.backups.backups()
    last_run = await core.backups.last_run()
    success = await core.backups.last_success()
    how = "Run soulsync backup or POST /api/v1/system/backups now" + (
        "; scheduled backups are off (backup.interval_hours is 0)." if interval_hours == 0
        else ".")

    results = []
    if last_run is not None and last_run.state == "failed":
        results.append(CheckResult("backup", "error", f"The last backup failed: {last_run.error}",
                                   "Fix what the message says, then back up again "
                                   "(soulsync backup or POST /api/v1/system/backups)."))
    elif not backups:
        results.append(CheckResult("backup", "warning",
                                   f"There is no backup in {core.backups.folder()}.", how))
    elif (newest := parse_iso(backups[0].created_at)) is not None and newest < stale:
        results.append(CheckResult("backup", "warning", f"The newest backup ({backups[0].name}) "
                                   f"is from {backups[0].created_at}.", how))
    else:
        results.append(_ok("backup", f"The newest backup is {backups[0].name}."))

    checked = _checked_at(success.result if success else None)
    if last_run is not None and last_run.progress.get("integrity") == "failed":
        results.append(CheckResult(
            "database_integrity", "error",
            f"The database failed its integrity check at "
            f"{last_run.progress.get('integrity_checked_at')}: {last_run.error}",
            "Stop SoulSync and restore the newest good backup (soulsync restore FILE); see "
            "docs/operations.md, 'Database integrity'."))
    elif checked is None or checked < stale:
        when = ("has never been checked" if checked is None
                else f"was last checked at {checked.isoformat()}")
        results.append(CheckResult("database_integrity", "warning",
                                   f"The database {when} (every backup checks it).", how))
    else:
        results.append(_ok("database_integrity",
                           f"The database passed its integrity check at {checked.isoformat()}."))
    return results


def _checked_at(result: dict[str, object] | None) -> datetime | None:
    value = (result or {}).get("integrity_checked_at")
    return parse_iso(value) if isinstance(value, str) else None


def _plugins(core: Core) -> list[CheckResult]:
    results = []
    for info in core.plugins.report():
        check = f"plugin:{info.name}"
        if info.error:
            results.append(CheckResult(check, "error",
                                       f"The plugin {info.name} failed to load: {info.error}",
                                       "Reinstall or upgrade it (pip install -U ...), or leave "
                                       "it out of plugins.enabled; GET /api/v1/system/plugins "
                                       "shows every plugin."))
        else:
            results.append(_ok(check, f"The plugin {info.name} is loaded."))
    return results

