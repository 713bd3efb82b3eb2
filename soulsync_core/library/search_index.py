"""Keeping the library's FTS5 search indexes in one segment each.

FTS5 writes each transaction's index entries as a new segment and merges segments only
when four pile up on one level. A library written by a scan, 5,000 tracks a transaction,
ends with tens of segments per index (23 in ``artists_fts`` at 500,000 tracks), and a
search then seeks every term in every segment: 'night' was counted in 115 us instead of 49 us
with one segment, and every search by name or title pays the same. After a scan that changed
anything, after imports and at start-up (a library written by an older SoulSync), each index
of more than :data:`MAX_SEGMENTS` segments is merged into one: FTS5's incremental "optimize",
in steps of :data:`MERGE_PAGES` written pages, each its own short write transaction, so
imports and other writes go on between the steps.
"""

from __future__ import annotations

import asyncio
import logging

from soulsync_core.db import Database

log = logging.getLogger(__name__)

# Every FTS5 index of the library (migrations 0003, 0005).
SEARCH_INDEXES = ("artists_fts", "albums_fts", "tracks_fts", "tracks_artist_fts")
# An index of more segments than this is merged. A merge rewrites the whole index (~1 s at
# 500,000 tracks), and single imports add a segment each that FTS5's own merging folds four
# at a time, so after a merge it takes ~50 imports to pass this again.
MAX_SEGMENTS = 8
# Pages written per merge step: ~20 ms of the writer at 500,000 tracks on a small machine.
MERGE_PAGES = 500
# The id of the structure record in an FTS5 table's ``_data`` table (fts5_index.c).
_STRUCTURE_ROWID = 10
# Newer FTS5 versions mark a structure record of the second format with these bytes.
_STRUCTURE_V2 = b"\xff\x00\x00\x01"


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """Return ``(value, next offset)`` of the SQLite varint at ``offset``."""
    value = 0
    for index in range(offset, min(offset + 8, len(data))):
        byte = data[index]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, index + 1
    if offset + 8 >= len(data):
        raise ValueError("truncated FTS5 structure record")
    return (value << 8) | data[offset + 8], offset + 9


def segment_count(structure: bytes) -> int:
    """Return the number of segments an FTS5 structure record lists (all levels).

    The record is a 4-byte cookie, optionally the second format's marker, then the number of
    levels and the number of segments as varints. Raises ValueError for a truncated record.
    """
    offset = 4
    if structure[offset:offset + 4] == _STRUCTURE_V2:
        offset += 4
    _levels, offset = _varint(structure, offset)
    segments, _offset = _varint(structure, offset)
    return segments


async def segments(db: Database, index: str) -> int:
    """Return the number of segments of the FTS5 table ``index`` (0 for an empty index)."""
    block = await db.fetchval(f"SELECT block FROM {index}_data WHERE id = ?", (_STRUCTURE_ROWID,))
    return segment_count(bytes(block)) if block else 0


async def merge_search_indexes(db: Database, above: int = MAX_SEGMENTS,
                               pages: int = MERGE_PAGES) -> dict[str, int]:
    """Merge each library search index of more than ``above`` segments into one segment.

    Returns the number of segments each merged index had (the others are left out).
    Each step is its own write transaction of about ``pages`` written pages; a write error
    (a full disk) propagates, with the steps before it kept: the index stays correct whatever
    step it stopped at, only less merged.
    """
    merged: dict[str, int] = {}
    for index in SEARCH_INDEXES:
        before = await segments(db, index)
        if before <= max(above, 1):
            continue
        # A negative page count starts an optimize (every segment, whatever its level, goes to
        # one new level); positive counts continue it. A step that changes fewer than two rows
        # found nothing left to merge (FTS5's documented test).
        step = -pages
        while True:
            async with db.write() as conn:
                total = conn.total_changes
                await conn.execute(f"INSERT INTO {index}({index}, rank) VALUES ('merge', ?)",
                                   (step,))
                done = conn.total_changes - total < 2
            if done:
                break
            step = pages
            await asyncio.sleep(0)  # let writes waiting for the writer go first
        merged[index] = before
    if merged:
        log.info("merged the library search indexes: %s",
                 ", ".join(f"{index} from {count} segments" for index, count in merged.items()))
    return merged
