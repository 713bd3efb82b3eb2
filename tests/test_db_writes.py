"""Single write statements that arrive while the writer is busy run together in one trip to
the writer's thread, each still its own transaction: a failing one fails only its caller."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from soulsync_core.db import Database


@pytest.fixture
async def db(data_dir: Path):
    db = await Database.open(data_dir)
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    yield db
    await db.close()


def count_trips(db: Database) -> list[int]:
    trips: list[int] = []
    original = db._writer._execute

    async def counted(fn, *args, **kwargs):
        trips.append(1)
        return await original(fn, *args, **kwargs)

    db._writer._execute = counted  # type: ignore[method-assign]
    return trips


async def test_concurrent_statements_share_trips_and_each_gets_its_own_answer(db: Database):
    trips = count_trips(db)
    changed = await asyncio.gather(*(db.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}",))
                                     for i in range(200)))
    assert changed == [1] * 200
    assert await db.fetchval("SELECT count(*) FROM t") == 200
    assert len(trips) <= 3, len(trips)  # was one trip per statement
    returned = await asyncio.gather(*(db.execute_returning(
        "UPDATE t SET v = v || '!' WHERE id = ? RETURNING id, v", (i,)) for i in (1, 2, 3)))
    assert [[tuple(r) for r in rows] for rows in returned] == [[(1, "v0!")], [(2, "v1!")],
                                                               [(3, "v2!")]]


async def test_a_failing_statement_fails_only_its_caller(db: Database):
    good = db.execute("INSERT INTO t (v) VALUES ('kept')")
    bad = db.execute("INSERT INTO t (v) VALUES (NULL)")
    after = db.execute("INSERT INTO t (v) VALUES ('also kept')")
    results = await asyncio.gather(good, bad, after, return_exceptions=True)
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [r["v"] for r in await db.fetchall("SELECT v FROM t ORDER BY id")] == ["kept", "also kept"]


async def test_a_cancelled_caller_does_not_lose_the_others_or_hang_the_writer(db: Database):
    first = asyncio.ensure_future(db.execute("INSERT INTO t (v) VALUES ('a')"))
    second = asyncio.ensure_future(db.execute("INSERT INTO t (v) VALUES ('b')"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 1
    assert await db.execute("INSERT INTO t (v) VALUES ('c')") == 1
    assert {r["v"] for r in await db.fetchall("SELECT v FROM t")} >= {"b", "c"}
