"""Backups: checked atomic copies through the API, the CLI and before migrations; pruning;
restore and its refusals; names from outside never become paths."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from soulsync_core import backup as backup_module
from soulsync_core.backup import (
    JOB_KIND,
    BackupInputError,
    BackupService,
    DaemonRunning,
    restore,
)
from soulsync_core.core import Core
from soulsync_core.datalock import LOCK_FILENAME
from soulsync_core.db import DB_FILENAME, Database
from soulsync_core.db import snapshot as snapshot_module
from soulsync_core.db.migrate import load_migrations, migrate
from soulsync_core.db.snapshot import SnapshotError, inspect_file, write_snapshot
from soulsync_core.jobs import JobConflict

ROOT = Path(__file__).resolve().parent.parent
B = "/api/v1/system/backups"
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exists(path: str | Path) -> bool:
    return os.path.exists(path)


def size_of(path: str | Path) -> int:
    return os.path.getsize(path)


def names_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def labels(path: Path) -> list[str]:
    """The labels of the API keys stored in the database file ``path``."""
    conn = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in conn.execute("SELECT label FROM api_keys"))
    finally:
        conn.close()


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # A real process: in-process main() would replace the test run's log handlers.
    return subprocess.run([sys.executable, "-m", "soulsync_core", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "SOULSYNC_PLUGINS": "none"})


class StepClock:
    """A UTC clock that moves an hour each time it is read (distinct backup names)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(hours=1)
        return self.now


# --- the API ------------------------------------------------------------------------------------


async def test_post_backup_writes_a_checked_private_copy_listed_with_its_result(api, key, core):
    assert (await api.get(B)).data["backups"] == []
    reply = await api.post(B)
    assert reply.status == 202
    assert reply.data["job"]["kind"] == JOB_KIND
    await core.jobs.wait(JOB_KIND)

    listing = (await api.get(B)).data
    [entry] = listing["backups"]
    folder = Path(listing["folder"])
    assert folder == core.data_dir / "backups"
    path = folder / entry["name"]
    assert entry["size_bytes"] == path.stat().st_size == listing["total_size_bytes"]
    assert entry["kind"] == "regular"
    assert mode(path) == 0o600
    last = listing["last"]
    assert last["state"] == "completed"
    assert last["result"]["name"] == entry["name"]
    assert last["result"]["integrity"] == "ok"
    assert last["result"]["schema_version"] == load_migrations()[-1].version
    # One self-contained file (no WAL beside it) that holds what the database held.
    assert not exists(f"{path}-wal")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert labels(path) == labels(core.db.path)
    assert names_in(folder) == [entry["name"]]  # no temp file left


async def test_the_daemon_keeps_serving_while_a_backup_runs(api, key, core, monkeypatch):
    copying = threading.Event()
    served = threading.Event()
    real = backup_module.write_snapshot

    def held_copy(source: Path, target: Path) -> Any:
        copying.set()
        # Released only by a request answered meanwhile: a copy on the event loop would
        # block that request and fail here.
        if not served.wait(30):
            raise OSError("no request was served while the backup ran")
        return real(source, target)

    monkeypatch.setattr(backup_module, "write_snapshot", held_copy)
    assert (await api.post(B)).status == 202
    await asyncio.to_thread(copying.wait, 30)
    assert (await api.post("/api/v1/api-keys", {"label": "during"})).status == 201
    assert (await api.get("/api/v1/system/status")).status == 200
    served.set()
    await core.jobs.wait(JOB_KIND)
    last = await core.backups.last_run()
    assert last.state == "completed", last.error
    assert "during" in labels(core.backups.folder() / last.result["name"])


async def test_a_second_backup_while_one_runs_is_409(api, key, core):
    release = asyncio.Event()

    async def held(_ctx: Any) -> None:
        await release.wait()

    await core.jobs.start(JOB_KIND, held)
    reply = await api.post(B)
    assert reply.status == 409
    assert reply.error["code"] == "CONFLICT"
    assert "already running" in reply.error["message"]
    release.set()
    await core.jobs.wait(JOB_KIND)


@pytest.mark.parametrize("label", ["../../escape", "a/b", "..", "x.db", "UPPER", "-dash",
                                   "a" * 41, "pre-migration-v1", "", "back\\slash"])
async def test_a_label_that_is_not_a_plain_name_is_400_and_writes_nothing(api, key, core, label):
    reply = await api.post(B, {"label": label})
    assert reply.status == 400
    assert "label must" in reply.error["message"]
    assert core.jobs.running(JOB_KIND) is None
    assert not (core.data_dir / "backups").exists()
    assert sorted(p.name for p in core.data_dir.parent.iterdir()) == ["data"]


async def test_body_with_a_wrong_type_or_unknown_field_is_400(api, key):
    assert (await api.post(B, {"label": 5})).status == 400
    reply = await api.post(B, {"name": "../soulsync.db"})
    assert reply.status == 400
    assert "name" in reply.error["message"]


async def test_a_label_becomes_part_of_the_name_inside_the_backup_folder(api, key, core):
    assert (await api.post(B, {"label": "before-upgrade"})).status == 202
    await core.jobs.wait(JOB_KIND)
    [entry] = (await api.get(B)).data["backups"]
    assert entry["label"] == "before-upgrade"
    assert entry["name"].endswith("-before-upgrade.db")
    assert (core.data_dir / "backups" / entry["name"]).is_file()


async def test_backups_need_a_key(api):
    assert (await api.get(B)).status == 401
    assert (await api.post(B)).status == 401


async def test_the_schedule_has_a_next_run_and_interval_zero_has_none(api, key, core):
    for _ in range(1000):  # the scheduler stores its first due time right after start-up
        if (await api.get(B)).data["next_run"] is not None:
            break
        await asyncio.sleep(0.01)
    data = (await api.get(B)).data
    assert data["next_run"] is not None
    assert (data["interval_hours"], data["keep"]) == (24, 7)
    assert (await api.patch("/api/v1/settings", {"backup.interval_hours": 0})).status == 200
    for _ in range(1000):
        if (await api.get(B)).data["next_run"] is None:
            break
        await asyncio.sleep(0.01)
    assert (await api.get(B)).data["next_run"] is None


# --- the service ----------------------------------------------------------------------------------


async def service(core: Core, **settings: Any) -> BackupService:
    if settings:
        await core.settings.apply(core.settings.validate_patch(settings))
    return BackupService(core.db, core.settings, core.jobs, core.data_dir, clock=StepClock())


async def backup_now(backups: BackupService, **kw: Any) -> Any:
    info = await backups.start(**kw)
    await backups._jobs.wait(JOB_KIND)
    return await backups._jobs.get(info.id)


async def test_only_the_newest_backups_are_kept_and_pre_migration_ones_stay(core):
    backups = await service(core, **{"backup.keep": 2})
    folder = backups.folder()
    folder.mkdir(parents=True)
    pre = folder / "soulsync-20200101T000000Z-pre-migration-v3.db"
    write_snapshot(core.db.path, pre)
    (folder / "notes.txt").write_text("mine")
    names = [(await backup_now(backups)).result["name"] for _ in range(3)]
    listed = [b.name for b in await backups.backups()]
    assert listed == [names[2], names[1], pre.name]
    assert (await backups._jobs.get((await backups.last_run()).id)).result["pruned"] == [names[0]]
    assert (folder / "notes.txt").read_text() == "mine"


async def test_a_copy_that_fails_its_integrity_check_prunes_nothing_and_leaves_no_file(
        core, monkeypatch):
    backups = await service(core, **{"backup.keep": 1})
    first = (await backup_now(backups)).result["name"]
    monkeypatch.setattr(snapshot_module, "check_integrity",
                        lambda conn: ["row 3 missing from index tracks_by_title"])
    failed = await backup_now(backups)
    assert failed.state == "failed"
    assert "integrity_check" in failed.error and "row 3 missing" in failed.error
    assert failed.progress["integrity"] == "failed"
    assert sorted(p.name for p in backups.folder().iterdir()) == [first]


async def test_an_unwritable_backup_folder_fails_the_job_with_what_to_fix(core, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    await core.settings.apply(core.settings.validate_patch({"backup.dir": str(blocker / "b")}))
    backups = await service(core)
    failed = await backup_now(backups)
    assert failed.state == "failed"
    assert "Cannot write the backup" in failed.error and "backup.dir" in failed.error


async def test_start_refuses_a_label_that_is_a_path(core):
    backups = await service(core)
    with pytest.raises(BackupInputError):
        await backups.start(label="../x")


async def test_scheduled_run_is_skipped_while_one_runs(core):
    backups = await service(core)
    release = asyncio.Event()

    async def held(_ctx: Any) -> None:
        await release.wait()

    await core.jobs.start(JOB_KIND, held)
    await backups._start_scheduled()  # no JobConflict escapes: the schedule goes on
    with pytest.raises(JobConflict):
        await backups.start()
    release.set()
    await core.jobs.wait(JOB_KIND)


# --- before a migration -------------------------------------------------------------------------


async def old_database(data_dir: Path, version_count: int) -> None:
    os.makedirs(data_dir)
    conn = await aiosqlite.connect(data_dir / DB_FILENAME, isolation_level=None)
    try:
        await conn.execute("PRAGMA journal_mode = WAL")
        await migrate(conn, load_migrations()[:version_count])
    finally:
        await conn.close()


async def test_a_database_is_backed_up_before_it_is_migrated(data_dir):
    migrations = load_migrations()
    await old_database(data_dir, len(migrations) - 1)
    old_version = migrations[-2].version
    db = await Database.open(data_dir)
    await db.close()
    [made] = list((data_dir / "backups").iterdir())
    assert made.name.endswith(f"-pre-migration-v{old_version}.db")
    assert inspect_file(made) == old_version
    assert mode(made) == 0o600
    db = await Database.open(data_dir)  # up to date now: no second backup
    await db.close()
    assert len(list((data_dir / "backups").iterdir())) == 1


async def test_a_new_empty_database_is_not_backed_up(data_dir):
    db = await Database.open(data_dir)
    await db.close()
    assert not (data_dir / "backups").exists()


async def test_when_the_backup_before_a_migration_fails_nothing_is_migrated(data_dir):
    migrations = load_migrations()
    await old_database(data_dir, len(migrations) - 1)
    (data_dir / "backups").write_text("a file where the folder belongs")
    with pytest.raises(OSError):
        await Database.open(data_dir)
    assert inspect_file(data_dir / DB_FILENAME) == migrations[-2].version


# --- the command line ------------------------------------------------------------------------------


async def make_data_dir(data_dir: Path, *key_labels: str) -> None:
    core = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        for label in key_labels:
            await core.keys.create(label)
    finally:
        await core.close()


async def test_cli_backup_to_a_file_then_restore_it_keeping_the_replaced_database(data_dir, tmp_path):
    await make_data_dir(data_dir, "first")
    target = tmp_path / "copy.db"
    done = await asyncio.to_thread(run_cli, "backup", "--data-dir", data_dir, "--to", target)
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stdout and "integrity ok" in done.stdout
    assert mode(target) == 0o600
    assert labels(target) == ["first"]
    again = await asyncio.to_thread(run_cli, "backup", "--data-dir", data_dir, "--to", target)
    assert again.returncode == 1 and "exists" in again.stderr

    await make_data_dir(data_dir, "second")
    done = await asyncio.to_thread(run_cli, "restore", "--data-dir", data_dir, target)
    assert done.returncode == 0, done.stderr
    assert labels(data_dir / DB_FILENAME) == ["first"]
    [replaced] = data_dir.glob(f"{DB_FILENAME}.replaced-*")
    assert labels(replaced) == ["first", "second"]
    assert mode(replaced) == 0o600 and mode(data_dir / DB_FILENAME) == 0o600
    core = await Core.open(data_dir, environ={}, entry_points=False)  # the daemon starts on it
    try:
        assert [k.label for k in await core.keys.list()] == ["first"]
    finally:
        await core.close()


async def test_cli_backup_without_to_goes_to_the_backup_folder(data_dir):
    await make_data_dir(data_dir, "k")
    done = await asyncio.to_thread(run_cli, "backup", "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    [made] = (data_dir / "backups").iterdir()
    assert labels(made) == ["k"]


async def test_restore_refuses_while_a_daemon_holds_the_data_dir(data_dir, tmp_path):
    await make_data_dir(data_dir, "live")
    copy = tmp_path / "copy.db"
    write_snapshot(data_dir / DB_FILENAME, copy)
    await make_data_dir(data_dir, "newer")
    fd = os.open(data_dir / LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running daemon holds
        with pytest.raises(DaemonRunning, match="stop it first"):
            restore(data_dir, copy)
        done = await asyncio.to_thread(run_cli, "restore", "--data-dir", data_dir, copy)
        assert done.returncode == 1 and "daemon is running" in done.stderr
    finally:
        os.close(fd)
    assert labels(data_dir / DB_FILENAME) == ["live", "newer"]
    assert not list(data_dir.glob("*.replaced-*"))


async def test_restore_refuses_a_backup_of_a_newer_schema(data_dir, tmp_path):
    await make_data_dir(data_dir, "mine")
    newer = tmp_path / "newer.db"
    write_snapshot(data_dir / DB_FILENAME, newer)
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_version VALUES (9999, 'future', '2030-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    with pytest.raises(SnapshotError, match=r"newer SoulSync \(schema version 9999"):
        restore(data_dir, newer)
    done = await asyncio.to_thread(run_cli, "restore", "--data-dir", data_dir, newer)
    assert done.returncode == 1 and "Install that SoulSync version" in done.stderr
    assert labels(data_dir / DB_FILENAME) == ["mine"]


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
async def test_restore_refuses_a_file_that_is_no_database(data_dir, tmp_path, content):
    await make_data_dir(data_dir, "mine")
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    with pytest.raises(SnapshotError):
        restore(data_dir, bad)
    assert labels(data_dir / DB_FILENAME) == ["mine"]


async def test_restore_refuses_an_sqlite_file_that_is_not_soulsync(data_dir, tmp_path):
    await make_data_dir(data_dir, "mine")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(SnapshotError, match="not a SoulSync database"):
        restore(data_dir, other)
    assert labels(data_dir / DB_FILENAME) == ["mine"]


async def test_the_replaced_database_keeps_rows_still_in_its_wal(data_dir, tmp_path):
    await make_data_dir(data_dir, "old")
    copy = tmp_path / "copy.db"
    write_snapshot(data_dir / DB_FILENAME, copy)
    # A daemon killed after a commit leaves the row in the WAL, not yet in the main file.
    crash = ("import os, sqlite3, sys\n"
             "conn = sqlite3.connect(sys.argv[1])\n"
             "conn.execute('PRAGMA wal_autocheckpoint = 0')\n"
             "conn.execute(\"UPDATE api_keys SET label = 'in-wal'\")\n"
             "conn.commit()\n"
             "os._exit(0)\n")
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", crash,
                                             str(data_dir / DB_FILENAME)], check=True, timeout=30)
    assert size_of(f"{data_dir / DB_FILENAME}-wal") > 0
    done = restore(data_dir, copy)
    assert labels(done.replaced) == ["in-wal"]
    assert labels(data_dir / DB_FILENAME) == ["old"]
    assert not exists(f"{data_dir / DB_FILENAME}-wal")


async def test_restore_run_as_root_leaves_the_files_to_the_daemons_user(data_dir, tmp_path):
    await make_data_dir(data_dir, "mine")
    copy = tmp_path / "copy.db"
    write_snapshot(data_dir / DB_FILENAME, copy)  # root's, as after sudo soulsync backup
    os.chown(data_dir, NOBODY, NOBODY)
    os.chown(data_dir / DB_FILENAME, NOBODY, NOBODY)
    done = restore(data_dir, copy)
    for path in (data_dir / DB_FILENAME, done.replaced, data_dir / LOCK_FILENAME):
        assert (path.stat().st_uid, path.stat().st_gid) == (NOBODY, NOBODY)


async def test_restore_of_a_plain_copy_of_the_database_file_adds_nothing_beside_it(data_dir,
                                                                                   tmp_path):
    await make_data_dir(data_dir, "copied")
    folder = tmp_path / "usb"
    folder.mkdir()
    # A file copy of a (WAL mode) database, as rsync of the data directory makes it.
    shutil.copyfile(data_dir / DB_FILENAME, folder / "soulsync.db")
    await make_data_dir(data_dir, "later")
    restore(data_dir, folder / "soulsync.db")
    assert names_in(folder) == ["soulsync.db"]  # no -wal or -shm left beside the copy
    assert labels(data_dir / DB_FILENAME) == ["copied"]
