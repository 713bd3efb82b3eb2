"""Reads run in reader processes (soulsync_core.db.readers): batched, isolated, restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from soulsync_core.db import Database
from soulsync_core.db import readers as readers_module

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path)
    await database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    await database.execute("INSERT INTO t (id, name, data) VALUES (1, 'one', x'00ff'), "
                           "(2, 'two', NULL)")
    yield database
    await database.close()


def _processes(db: Database) -> list[subprocess.Popen[bytes]]:
    return [reader.process for reader in db._readers._readers]


async def test_rows_are_indexed_by_position_and_by_column_name(db):
    rows = await db.fetchall("SELECT id, name AS label, data FROM t ORDER BY id")
    assert [tuple(row) for row in rows] == [(1, "one", b"\x00\xff"), (2, "two", None)]
    first = rows[0]
    assert (first[0], first["label"], first["data"], first[-1]) == (1, "one", b"\x00\xff",
                                                                     b"\x00\xff")
    assert dict(first) == {"id": 1, "label": "one", "data": b"\x00\xff"}
    assert first.keys() == ["id", "label", "data"] and len(first) == 3
    with pytest.raises(KeyError):
        first["nope"]
    assert await db.fetchone("SELECT id FROM t WHERE id = ?", (3,)) is None
    assert await db.fetchval("SELECT count(*) FROM t WHERE name IN (?, ?)", ["one", "two"]) == 2


async def test_reads_asked_together_go_to_the_readers_together(db, monkeypatch):
    """200 reads asked in one turn of the loop cost one send per reader, not one per read."""
    sends: list[int] = []
    flush = readers_module._Reader._flush

    def counted(reader: readers_module._Reader) -> None:
        sends.append(len(reader._outgoing))
        flush(reader)

    monkeypatch.setattr(readers_module._Reader, "_flush", counted)
    values = await asyncio.gather(*(db.fetchval("SELECT ? + 1", (n,)) for n in range(200)))
    assert values == [n + 1 for n in range(200)]
    # One reader takes them all: spreading quick reads over the readers cost more wake-ups.
    assert sends == [200]


def _count_to(n: int) -> str:
    """Return a read that counts to ``n``: its run time grows with ``n``."""
    return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
            "SELECT count(*) FROM n")


async def test_a_burst_of_slower_reads_is_shared_by_the_readers(db, monkeypatch):
    """Reads take turns on a reader while the ones waiting on it should take under _QUEUE_S
    by the mean time of a read, learnt from the answers; beyond, the next reader takes them."""
    pool = db._readers
    for _ in range(3):
        await db.fetchval(_count_to(50_000))
    assert pool._cost.seconds > 0  # the readers report how long each read ran
    sends: list[tuple[int, int]] = []
    flush = readers_module._Reader._flush

    def counted(reader: readers_module._Reader) -> None:
        sends.append((pool._readers.index(reader), len(reader._outgoing)))
        flush(reader)

    monkeypatch.setattr(readers_module._Reader, "_flush", counted)
    pool._cost.seconds = readers_module._QUEUE_S / 2  # two reads fill a reader
    assert await asyncio.gather(*(db.fetchval("SELECT ?", (n,)) for n in range(6))) == list(range(6))
    assert sorted(sends) == [(0, 3), (1, 3)]  # 2 each by the bound, then the least waited on


async def test_a_reader_sends_the_first_answers_of_a_slow_burst_before_the_rest(db, monkeypatch):
    """Answers that take over FLUSH_S together go back as they come: the daemon answers the
    first requests of a slow burst while the reader runs the others."""
    monkeypatch.setattr(readers_module, "_QUEUE_S", 3600.0)  # all to the first reader
    reads = [asyncio.ensure_future(db.fetchval(_count_to(n))) for n in (1_000_000, 6_000_000, 3)]
    assert await reads[0] == 1_000_000
    assert not reads[1].done() and not reads[2].done()  # still running in the same reader
    assert await asyncio.gather(*reads[1:]) == [6_000_000, 3]
    assert {len(reader.waiting) for reader in db._readers._readers} == {0}


async def test_a_slow_statement_does_not_hold_up_the_quick_reads_after_it(db):
    slow = asyncio.ensure_future(db.fetchall(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) "
        "SELECT count(*) FROM n"))
    await asyncio.sleep(0.02)  # the first reader is busy with it for a second or so
    assert not slow.done()
    assert await asyncio.gather(*(db.fetchval("SELECT ?", (n,)) for n in range(5))) == \
        list(range(5))
    assert not slow.done()  # the quick reads were answered by the other reader meanwhile
    assert (await slow)[0][0] == 5000000


async def test_a_failing_read_fails_only_its_caller_with_the_sqlite3_class(db):
    results = await asyncio.gather(
        db.fetchval("SELECT name FROM t WHERE id = 1"),
        db.fetchall("SELECT nope FROM t"),
        db.fetchall("INSERT INTO t (name) VALUES ('sneaky')"),
        db.fetchval("SELECT name FROM t WHERE id = 2"),
        return_exceptions=True)
    assert results[0] == "one" and results[3] == "two"
    assert type(results[1]) is sqlite3.OperationalError and "no such column" in str(results[1])
    # The readers are read-only: a write sent as a read is refused, and nothing is written.
    assert isinstance(results[2], sqlite3.OperationalError) and "readonly" in str(results[2])
    assert await db.fetchval("SELECT count(*) FROM t") == 2


async def test_a_parameter_the_reader_cannot_take_is_refused_at_once(db):
    with pytest.raises(sqlite3.ProgrammingError, match="parameter"):
        await db.fetchall("SELECT ?", (object(),))
    assert await db.fetchval("SELECT 7") == 7


async def test_a_cancelled_read_loses_no_other_answer(db):
    slow = asyncio.ensure_future(db.fetchall(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
        "SELECT count(*) FROM n"))
    others = [asyncio.ensure_future(db.fetchval("SELECT ?", (n,))) for n in range(20)]
    await asyncio.sleep(0)
    slow.cancel()
    assert await asyncio.gather(*others) == list(range(20))
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await db.fetchval("SELECT name FROM t WHERE id = 1") == "one"


async def test_a_killed_reader_fails_its_reads_and_the_next_read_starts_another(db, caplog):
    killed = _processes(db)[0]
    os.kill(killed.pid, signal.SIGKILL)
    await asyncio.to_thread(killed.wait, 10)
    for _ in range(200):  # the loop learns of the closed socket
        if db._readers._readers[0].lost:
            break
        await asyncio.sleep(0.01)
    assert db._readers._readers[0].lost
    with pytest.raises(sqlite3.OperationalError, match="reader process ended"):
        await db._readers._readers[0].send("SELECT 1", ())  # refused at once, never left waiting
    # Every later read is answered: the lost reader is replaced first.
    assert await asyncio.gather(*(db.fetchval("SELECT ?", (n,)) for n in range(10))) == \
        list(range(10))
    assert killed not in _processes(db)
    assert all(process.poll() is None for process in _processes(db))
    assert "database reader process ended" in caplog.text


async def test_closing_the_database_answers_the_reads_asked_and_ends_the_readers(tmp_path):
    db = await Database.open(tmp_path)
    processes = _processes(db)
    assert len(processes) == 2 and all(p.poll() is None for p in processes)
    for process in processes:  # systemd's stop signals every process of the service
        os.kill(process.pid, signal.SIGTERM)
    asked = [asyncio.ensure_future(db.fetchval("SELECT ?", (n,))) for n in range(10)]
    await asyncio.sleep(0)
    await db.close()
    assert [await read for read in asked] == list(range(10))
    assert all(p.poll() == 0 for p in processes)  # ended and reaped, no zombie
    with pytest.raises(sqlite3.ProgrammingError):
        await db.fetchall("SELECT 1")


async def test_a_database_the_readers_cannot_open_fails_the_open(tmp_path, monkeypatch):
    monkeypatch.setattr(readers_module, "_WORKER", tmp_path / "missing_worker.py")
    with pytest.raises(sqlite3.OperationalError):
        await Database.open(tmp_path)


def test_readers_end_when_their_daemon_is_killed(tmp_path):
    """A SIGKILLed daemon cannot stop its readers; they end on their own (no orphans on a NAS)."""
    script = textwrap.dedent(f"""
        import asyncio, pathlib, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from soulsync_core.db import Database
        async def main():
            db = await Database.open(pathlib.Path({str(tmp_path)!r}))
            print(*(r.process.pid for r in db._readers._readers), flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    daemon = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        pids = [int(pid) for pid in daemon.stdout.readline().split()]
        assert len(pids) == 2
        daemon.kill()
        daemon.wait(10)
        deadline = time.monotonic() + 10
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in pids if _running(pid)]
            time.sleep(0.05)
        assert alive == []
    finally:
        daemon.kill()
        daemon.wait()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; init reaps it
