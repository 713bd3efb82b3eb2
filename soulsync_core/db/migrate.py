"""Numbered schema migrations recorded in ``schema_version``.

Each ``NNNN_name.sql`` file under ``soulsync_core/db/migrations`` is applied once, in order,
inside its own ``BEGIN IMMEDIATE`` transaction together with its ``schema_version`` row, so a
failed migration leaves the database exactly as it was and two processes starting at once
cannot both apply the same migration.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from soulsync_core.timefmt import utc_now_iso

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration could not be applied; the database was left at the previous version."""


class SchemaTooNewError(MigrationError):
    """The database was written by a newer SoulSync than this one."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(script: str) -> tuple[str, ...]:
    """Return the complete SQL statements of ``script`` (triggers with inner ``;`` stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement.rstrip(";").strip() and not _only_comments(statement):
                statements.append(statement)
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        raise MigrationError(f"incomplete SQL statement at end of migration: {buffer.strip()[:80]}")
    return tuple(statements)


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def load_migrations(package: str = "soulsync_core.db.migrations") -> list[Migration]:
    """Return the migrations shipped in ``package``, sorted by version; versions must be unique."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}")
        found[version] = Migration(version, match.group(2), split_statements(entry.read_text()))
    return [found[v] for v in sorted(found)]


async def current_version(conn: aiosqlite.Connection) -> int:
    """Return the highest applied migration version (0 for a new database)."""
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def applied_versions(conn: aiosqlite.Connection) -> set[int]:
    """Return the versions recorded in ``schema_version``."""
    async with conn.execute("SELECT version FROM schema_version") as cursor:
        return {int(row[0]) for row in await cursor.fetchall()}


# Called with the current schema version before migrations are applied to a database that
# has one (not a brand-new empty one); an exception from it stops the migration.
BeforeUpgrade = Callable[[int], Awaitable[object]]


async def migrate(conn: aiosqlite.Connection, migrations: list[Migration] | None = None,
                  before_upgrade: BeforeUpgrade | None = None) -> int:
    """Apply every migration not yet recorded on ``conn`` (autocommit mode), in version order;
    return the resulting (highest) version.

    Running it again on an up-to-date database changes nothing. A database whose version is
    above the newest known migration raises :class:`SchemaTooNewError` before anything is
    touched. When a database that has a schema is about to get migrations, ``before_upgrade``
    is awaited first (the automatic backup); if it raises, nothing is migrated.
    """
    migrations = load_migrations() if migrations is None else migrations
    latest = migrations[-1].version if migrations else 0
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    version = await current_version(conn)
    if version > latest:
        raise SchemaTooNewError(
            f"this database is at schema version {version}, but this SoulSync only knows up to "
            f"version {latest}: it was written by a newer SoulSync. Install that version again, "
            "or start with another --data-dir."
        )
    applied = await applied_versions(conn)
    pending = [m for m in migrations if m.version not in applied]
    if pending and applied and before_upgrade is not None:
        await before_upgrade(version)
    for migration in pending:
        # Every migration not recorded yet, in order, also one numbered below the newest
        # applied: two branches developed side by side may land in either order.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have applied it while we waited for the write lock.
            if migration.version in await applied_versions(conn):
                await conn.execute("ROLLBACK")
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, utc_now_iso()),
            )
            await conn.execute("COMMIT")
        except sqlite3.Error as exc:
            await conn.execute("ROLLBACK")
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed and was rolled back: {exc}"
            ) from exc
    return await current_version(conn)
