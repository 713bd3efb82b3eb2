"""The library's FTS5 search indexes are kept in one segment each (search_index.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from soulsync_core.library import scanner as scanner_module
from soulsync_core.library.search_index import MAX_SEGMENTS, SEARCH_INDEXES, segment_count, segments
from tests.audio import make
from tests.library_fixtures import record, scan


@pytest.fixture
def core(music_core):
    return music_core


async def _no_automerge(core) -> None:
    """Stop FTS5 folding segments four at a time, so each write transaction adds one."""
    for index in SEARCH_INDEXES:
        await core.db.execute(f"INSERT INTO {index}({index}, rank) VALUES ('automerge', 0)")


async def _segments(core) -> dict[str, int]:
    return {index: await segments(core.db, index) for index in SEARCH_INDEXES[:3]}


def test_segment_count_reads_what_fts5_writes():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'trigram')")
    conn.execute("INSERT INTO t(t, rank) VALUES ('automerge', 0)")
    conn.execute("INSERT INTO t(t, rank) VALUES ('crisismerge', 1000)")  # no merge at 16
    for number in range(130):  # past 127: the count takes a two-byte varint
        conn.execute("INSERT INTO t VALUES (?)", (f"name {number}",))
        conn.commit()
    structure = conn.execute("SELECT block FROM t_data WHERE id = 10").fetchone()[0]
    assert segment_count(structure) == 130
    # The second format of the record (newer SQLite) carries a marker after the cookie.
    assert segment_count(structure[:4] + b"\xff\x00\x00\x01" + structure[4:]) == 130
    with pytest.raises(ValueError):
        segment_count(structure[:4] + b"\x81")


async def test_a_scan_leaves_each_search_index_in_one_segment(core, music: Path, monkeypatch):
    monkeypatch.setattr(scanner_module, "CHUNK_FILES", 1)  # a write transaction per folder
    await _no_automerge(core)
    for number in range(MAX_SEGMENTS + 4):
        make(music / f"Night Artist {number}" / f"Album {number}" / "01.flac", "flac", seconds=0.1,
             title=f"Harbor Song {number}", artist=f"Night Artist {number}", album=f"Album {number}")
    phases = []
    monkeypatch.setattr(core.library.store, "merge_search_indexes",
                        _recording(core.library.store.merge_search_indexes, phases))
    await scan(core)
    assert phases == ["called"]
    assert await _segments(core) == {"artists_fts": 1, "albums_fts": 1, "tracks_fts": 1}
    # The merged indexes still find everything.
    artists, total = await core.library.queries.artists(search="night", letter="all",
                                                        watchlist="all", offset=0, limit=50)
    assert total == MAX_SEGMENTS + 4 and artists.count == MAX_SEGMENTS + 4
    assert (await core.library.queries.search_tracks("harbor song 3", "", 50)).count == 1


def _recording(merge, calls: list[str]):
    async def recorded():
        calls.append("called")
        return await merge()
    return recorded


async def test_the_daemon_merges_split_indexes_at_start_up_and_after_imports(core, music: Path):
    await _no_automerge(core)
    for number in range(MAX_SEGMENTS + 4):  # an older SoulSync's library: a segment per write
        await core.library.store.save([record(f"Wave {number}", "Album", "Harbor", number=number)])
    assert (await _segments(core))["tracks_fts"] == MAX_SEGMENTS + 4
    await core.start()
    await _wait_for(core, lambda found: found["tracks_fts"] == 1)
    assert await _segments(core) == {"artists_fts": 1, "albums_fts": 1, "tracks_fts": 1}

    for number in range(MAX_SEGMENTS + 1):
        path = make(music / "Imports" / f"Album {number}" / "01.flac", "flac", seconds=0.1,
                    title=f"Imported {number}", artist="Imports", album=f"Album {number}")
        await core.library.import_file(path)
    # The import that passed MAX_SEGMENTS had them merged again.
    await _wait_for(core, lambda found: found["tracks_fts"] <= 2)
    found = await core.library.queries.search_tracks("imported", "", 50)
    assert found.count == MAX_SEGMENTS + 1


async def _wait_for(core, done) -> None:
    """Wait (bounded) until ``done(segments per index)`` holds."""
    for _ in range(1000):
        if done(await _segments(core)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"search indexes not merged: {await _segments(core)}")
