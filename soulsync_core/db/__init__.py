"""The SQLite database: one writer connection, read-only connections, migrations on open.

Writes go through :meth:`Database.write`, which serialises them with a lock so that two
coroutines never interleave statements inside one transaction. Reads use other connections,
taken in turn, so that a long write transaction (a library scan batch) never delays an API
read; WAL mode gives each reader a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite

from soulsync_core.db.changes import ChangeCounter
from soulsync_core.db.migrate import migrate
from soulsync_core.db.readers import ReadPool
from soulsync_core.db.readers import Row as ReadRow
from soulsync_core.db.snapshot import BACKUPS_DIRNAME, PRE_MIGRATION, backup_name, write_snapshot
from soulsync_core.paths import make_private_dir, make_private_file, tighten_if_exists

log = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters at DEBUG: key hashes, secret settings and
# account tokens would reach any log (the daemon's, a test's, an embedder's), so it never
# goes below INFO, whatever the root level.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

DB_FILENAME = "soulsync.db"
BUSY_TIMEOUT_MS = 5000
# Reader processes, each with one read-only connection: two let a slow query (a big search)
# run beside quick ones.
READERS = 2
# Page cache of each read connection, in KiB (SQLite's default is 2 MiB). A track search walks
# a few thousand index entries spread over the file; with 2 MiB those pages keep being evicted
# and read again through the OS (a 500,000-track search cost ~5 ms instead of ~3). Pages are
# allocated as they are read, so an idle daemon does not pay for it. A query whose pages do
# not fit misses on nearly every page (the cache is LRU and the query reads them in the same
# order each time), so a statement is written to touch few pages, not only few rows.
READER_CACHE_KIB = 8192

# What reads return (a tuple also indexed by column name), and what the writer's RETURNING does.
Row = ReadRow | sqlite3.Row


_READER_SETUP = (f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}", "PRAGMA foreign_keys = ON",
                 "PRAGMA query_only = ON", f"PRAGMA cache_size = -{READER_CACHE_KIB}")


async def _connect_writer(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in write()), never implicit.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable in WAL mode against process crashes; only an OS crash may lose the
    # last commits, which is the usual trade for a NAS disk.
    await conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _prepare_private(path: Path) -> None:
    # The database holds secrets (slskd's key, client secrets, OAuth tokens): the folder is
    # 0700 and the file 0600 before SQLite opens it, so its WAL and SHM (which SQLite creates
    # with the database file's mode) are 0600 too. Files of an older, looser install are
    # tightened.
    make_private_dir(path.parent)
    make_private_file(path)
    for suffix in ("-wal", "-shm"):
        tighten_if_exists(Path(f"{path}{suffix}"))


class _Statement(NamedTuple):
    sql: str
    params: tuple[Any, ...]
    returning: bool
    future: asyncio.Future[Any]


def _run_statements(conn: sqlite3.Connection,
                    batch: list[_Statement]) -> list[tuple[bool, Any]]:
    """Run each statement on the writer's thread; return ``(True, rowcount or rows)`` or
    ``(False, exception)`` per statement, in order."""
    results: list[tuple[bool, Any]] = []
    for statement in batch:
        try:
            cursor = conn.execute(statement.sql, statement.params)
            try:
                value = cursor.fetchall() if statement.returning else cursor.rowcount
            finally:
                cursor.close()
            results.append((True, value))
        except Exception as exc:
            results.append((False, exc))
    return results


class Database:
    """An open SoulSync database. Create with :meth:`open`, release with :meth:`close`."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, readers: ReadPool):
        self.path = path
        self._writer = writer
        self._readers = readers
        self._write_lock = asyncio.Lock()
        # Single write statements waiting for the writer, run together (see _statements).
        self._queued: list[_Statement] = []
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        # Caches of answers (library pages, verified API keys) check this before trusting
        # what they hold.
        self.changes = ChangeCounter(path)

    @classmethod
    async def open(cls, data_dir: Path) -> Database:
        """Open (creating if needed) ``soulsync.db`` in ``data_dir`` and bring its schema up to date.

        The directory is left ``0700`` and the database, its WAL and SHM ``0600``, whatever
        the umask (see :mod:`soulsync_core.paths`).

        Raises :class:`~soulsync_core.db.migrate.SchemaTooNewError` for a database written by a
        newer SoulSync, and :class:`~soulsync_core.db.migrate.MigrationError` when a migration
        fails (the failed migration is rolled back). Before migrating a database that has a
        schema, a checked copy goes to ``<data_dir>/backups`` (an OSError or SnapshotError
        from it stops the start, nothing migrated).
        """
        path = data_dir / DB_FILENAME
        await asyncio.to_thread(_prepare_private, path)
        writer = await _connect_writer(path)

        async def back_up(version: int) -> None:
            target = data_dir / BACKUPS_DIRNAME / backup_name(datetime.now(UTC),
                                                              f"{PRE_MIGRATION}-v{version}")
            await asyncio.to_thread(write_snapshot, path, target)
            log.warning("upgrading the database from schema version %d; a backup of it is in %s",
                        version, target)

        try:
            await migrate(writer, before_upgrade=back_up)
            readers = await ReadPool.open(path, READERS, _READER_SETUP)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, readers)

    async def close(self) -> None:
        """Checkpoint the WAL into the main file and close both connections (once)."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)  # queued writes land
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self.changes.close()
            await self._readers.close()
            try:
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                await self._writer.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """Yield the writer connection inside ``BEGIN IMMEDIATE``; commit on exit, roll back on error."""
        async with self._write_lock:
            try:
                # Inside the try: a task cancelled while awaiting BEGIN still has the BEGIN run
                # by the database thread, and the ROLLBACK queued behind it must close it.
                await self._writer.execute("BEGIN IMMEDIATE")
                yield self._writer
            except BaseException:
                with contextlib.suppress(sqlite3.OperationalError):  # BEGIN itself failed
                    await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return the number of rows it changed."""
        return await self._statement(sql, params, returning=False)

    async def execute_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one write statement with ``RETURNING`` in its own transaction; return the rows it
        returned."""
        return await self._statement(sql, params, returning=True)

    async def _statement(self, sql: str, params: Sequence[Any], *, returning: bool) -> Any:
        # Under load every trip to the writer's thread, and every hand-over of the write lock,
        # waits for a turn of a busy event loop; one trip per statement capped writes at about
        # 25 a second (POST /downloads queued for seconds). Statements that arrive while the
        # writer is busy are run together in one trip, each still its own autocommit
        # transaction: a failing one fails only its caller.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append(_Statement(sql, tuple(params), returning, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Run the queued statements, a batch per trip, until none is left."""
        while self._queued:
            async with self._write_lock:
                batch, self._queued = self._queued, []
                try:
                    results = await self._writer._execute(_run_statements, self._writer._conn,
                                                          batch)
                except Exception as exc:  # the connection is closed
                    for statement in batch:
                        if not statement.future.done():
                            statement.future.set_exception(exc)
                    continue
            for statement, (done, value) in zip(batch, results, strict=True):
                if statement.future.done():
                    continue  # its caller was cancelled; the statement ran all the same
                if done:
                    statement.future.set_result(value)
                else:
                    statement.future.set_exception(value)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one write statement for each parameter row, all in one transaction."""
        async with self.write() as conn:
            await conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Return the first row of a read query, or None when it yields no row."""
        rows = await self._readers.fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Return every row of a read query (run by a reader process, see :mod:`readers`)."""
        return await self._readers.fetchall(sql, params)

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Return the first column of the first row, or None when the query yields no row."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    def size_bytes(self) -> int:
        """Return the size on disk of the database file plus its WAL (a cheap ``stat``)."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(f"{self.path}{suffix}").stat().st_size
            except FileNotFoundError:
                pass
        return total
