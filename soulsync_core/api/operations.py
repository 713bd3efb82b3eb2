"""``/system/backups`` and ``/system/health``: keeping a long-running daemon safe and sound."""

from __future__ import annotations

import msgspec
from aiohttp import web

from soulsync_core.api.admin import require_admin_key
from soulsync_core.api.endpoints import Routes, core_of, text
from soulsync_core.api.envelope import ApiError, bad_request, ok
from soulsync_core.backup import BackupFile, BackupInputError
from soulsync_core.db.snapshot import PRE_MIGRATION
from soulsync_core.health_checks import HealthList, health_list
from soulsync_core.jobs import JobConflict, JobInfo

routes = Routes("system")


class BackupList(msgspec.Struct):
    """The backup folder's backups (newest first), the running or last backup job (``last``,
    null when none ever ran: its ``result`` holds name, size_bytes, schema_version,
    integrity, pruned), and the schedule (``next_run`` null: not on a schedule)."""

    folder: str
    backups: list[BackupFile]
    total_size_bytes: int
    last: JobInfo | None
    next_run: str | None
    interval_hours: int
    keep: int


class BackupRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``label`` becomes part of the new file's name (lowercase letters, digits, dashes)."""

    label: text(f"^(?!{PRE_MIGRATION})[a-z0-9][a-z0-9-]{{0,39}}$",  # type: ignore[valid-type]
                "must be 1 to 40 lowercase letters, digits and dashes, starting with a letter "
                f"or digit and not with {PRE_MIGRATION!r} (it becomes part of the file name)",
                ) | None = None


class BackupStarted(msgspec.Struct):
    message: str
    job: JobInfo


@routes.get("/system/backups", "Backups: the files with their sizes, the last result, the "
            "schedule.", response=BackupList)
async def list_backups(request: web.Request) -> web.Response:
    core = core_of(request)
    service = core.backups
    backups = await service.backups()
    return ok(BackupList(str(service.folder()), backups, sum(b.size_bytes for b in backups),
                         await service.last_run(), await service.schedule.next_run(),
                         core.settings.get("backup.interval_hours"),
                         core.settings.get("backup.keep")))


@routes.post("/system/backups", "Back up the database now (a job); 409 while a backup runs.",
             response=BackupStarted, body=BackupRequest, status=202, errors=(409,))
async def start_backup(request: web.Request, body: BackupRequest) -> web.Response:
    await require_admin_key(request, "start a backup")
    try:
        job = await core_of(request).backups.start(label=body.label)
    except BackupInputError as exc:
        raise bad_request(str(exc)) from None
    except JobConflict as exc:
        raise ApiError(409, "CONFLICT", f"A backup is already running (job {exc.running.id}); "
                       "follow it with GET /api/v1/system/backups.") from None
    return ok(BackupStarted("Backup started.", job), status=202)


@routes.get("/system/health", "Health checks: each with level ok, warning or error, a message "
            "and a hint what to do.", response=HealthList)
async def health(request: web.Request) -> web.Response:
    return ok(await health_list(core_of(request)))
