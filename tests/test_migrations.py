"""Numbered migrations: applied once each, in transactions, newer databases refused."""

from __future__ import annotations

import sqlite3

import aiosqlite
import pytest

from soulsync_core.db import DB_FILENAME, Database
from soulsync_core.db.migrate import (
    Migration,
    MigrationError,
    SchemaTooNewError,
    load_migrations,
    migrate,
    split_statements,
)


async def _connect(path) -> aiosqlite.Connection:
    return await aiosqlite.connect(path, isolation_level=None)


async def test_open_creates_schema_in_wal_mode_with_foreign_keys(data_dir):
    db = await Database.open(data_dir)
    try:
        assert await db.fetchval("PRAGMA journal_mode") == "wal"
        assert await db.fetchval("PRAGMA foreign_keys") == 1
        assert await db.fetchval("PRAGMA busy_timeout") == 5000
        versions = await db.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in versions] == [m.version for m in load_migrations()]
    finally:
        await db.close()


async def test_running_migrations_twice_is_a_no_op(tmp_path):
    conn = await _connect(tmp_path / DB_FILENAME)
    try:
        first = await migrate(conn)
        async with conn.execute("SELECT COUNT(*) FROM schema_version") as cur:
            count = (await cur.fetchone())[0]
        assert await migrate(conn) == first
        async with conn.execute("SELECT COUNT(*) FROM schema_version") as cur:
            assert (await cur.fetchone())[0] == count
    finally:
        await conn.close()


async def test_newer_database_is_refused_untouched(data_dir):
    db = await Database.open(data_dir)
    await db.execute("INSERT INTO schema_version VALUES (9999, 'future', 'x')")
    await db.close()
    with pytest.raises(SchemaTooNewError, match="newer SoulSync"):
        await Database.open(data_dir)
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 9999


async def test_failed_migration_rolls_back_whole(tmp_path):
    good = Migration(1, "good", ("CREATE TABLE a (x INTEGER)",))
    bad = Migration(2, "bad", ("CREATE TABLE b (x INTEGER)", "INSERT INTO nowhere VALUES (1)"))
    conn = await _connect(tmp_path / "t.db")
    try:
        with pytest.raises(MigrationError, match="0002_bad failed and was rolled back"):
            await migrate(conn, [good, bad])
        async with conn.execute("SELECT name FROM sqlite_master WHERE type='table'") as cur:
            tables = {r[0] for r in await cur.fetchall()}
        assert "a" in tables and "b" not in tables
        async with conn.execute("SELECT MAX(version) FROM schema_version") as cur:
            assert (await cur.fetchone())[0] == 1
    finally:
        await conn.close()


async def test_new_migration_is_applied_on_next_open(tmp_path):
    conn = await _connect(tmp_path / "t.db")
    try:
        one = Migration(1, "one", ("CREATE TABLE a (x INTEGER)",))
        assert await migrate(conn, [one]) == 1
        two = Migration(2, "two", ("ALTER TABLE a ADD COLUMN y TEXT",))
        assert await migrate(conn, [one, two]) == 2
    finally:
        await conn.close()


async def test_a_migration_numbered_below_the_newest_applied_is_still_applied(tmp_path):
    """Branches developed side by side land in either order: 3 arrives after 4 was applied."""
    conn = await _connect(tmp_path / "t.db")
    try:
        ms = [Migration(v, f"m{v}", (f"CREATE TABLE t{v} (x INTEGER)",)) for v in (1, 2, 3, 4)]
        assert await migrate(conn, [ms[0], ms[1], ms[3]]) == 4
        assert await migrate(conn, ms) == 4
        async with conn.execute("SELECT version FROM schema_version ORDER BY version") as cur:
            assert [r[0] for r in await cur.fetchall()] == [1, 2, 3, 4]
        async with conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't3'") as cur:
            assert (await cur.fetchone())[0] == 1
    finally:
        await conn.close()


def test_split_keeps_triggers_whole_and_drops_comments():
    script = """-- a comment
CREATE TABLE t (x INTEGER);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN
    UPDATE t SET x = 1;
END;
-- trailing comment
"""
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_profiles_migration_puts_every_existing_row_in_profile_1(tmp_path):
    """0010 on a database that has lived without profiles: nothing lost, all profile 1's."""
    conn = await _connect(tmp_path / DB_FILENAME)
    try:
        await migrate(conn, [m for m in load_migrations() if m.version < 10])
        now = "2026-03-03T12:00:00+00:00"
        for sql, params in [
            ("INSERT INTO wishlist_tracks (track_id, track_data, track_name, artist_name, "
             "match_key, date_added) VALUES ('t1', '{}', 'One More Time', 'Daft Punk', 'k', ?)",
             (now,)),
            ("INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, "
             "date_added, updated_at) VALUES ('spotify', 'a1', 'Daft Punk', 'daft punk', ?, ?)",
             (now, now)),
            ("INSERT INTO playlists (id, name, mode, tracks_hash, library_state) "
             "VALUES ('p1', 'Gym', 'replace', 'h', 's')", ()),
            ("INSERT INTO account_data (account, key, value, updated_at) "
             "VALUES ('spotify', 'token', '{\"refresh_token\": \"r\"}', ?)", (now,)),
            ("INSERT INTO api_keys (id, label, key_hash, key_prefix, created_at) "
             "VALUES ('k1', 'bot', 'hash', 'sk_abcdefgh', ?)", (now,)),
        ]:
            await conn.execute(sql, params)
        await migrate(conn)
        async with conn.execute("SELECT id, name, is_admin FROM profiles") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [(1, "Admin", 1)]
        for table, column in [("wishlist_tracks", "track_id"), ("watchlist_artists", "artist_id"),
                              ("playlists", "id"), ("account_data", "value")]:
            async with conn.execute(f"SELECT {column}, profile_id FROM {table}") as cur:
                rows = [tuple(r) for r in await cur.fetchall()]
            assert len(rows) == 1 and rows[0][1] == 1, (table, rows)
        async with conn.execute("SELECT value FROM account_data WHERE account = 'spotify'") as cur:
            assert (await cur.fetchone())[0] == '{"refresh_token": "r"}'
        # A key made before profiles stays unbound: it acts as profile 1 unless told otherwise.
        async with conn.execute("SELECT label, profile_id FROM api_keys") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [("bot", None)]
    finally:
        await conn.close()


async def test_artist_letters_migration_counts_the_existing_artists(tmp_path):
    """0025 on a library that has artists: the per-letter counts start right."""
    conn = await _connect(tmp_path / DB_FILENAME)
    try:
        await migrate(conn, [m for m in load_migrations() if m.version < 25])
        for name, letter in [("Abba", "a"), ("Air", "a"), ("Björk", "b"), ("2Pac", "#")]:
            await conn.execute(
                "INSERT INTO artists (name, name_key, name_fold, letter, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 0, 0)", (name, name.lower(), name.lower(), letter))
        await migrate(conn)
        async with conn.execute("SELECT letter, artists FROM artist_letters ORDER BY letter") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [("#", 1), ("a", 2), ("b", 1)]
    finally:
        await conn.close()
