"""Benchmark playlist matching: 1,000 wanted tracks against the 500,000-track library.

What it does:

1. Opens the benchmark library of ``benchmarks/library.py`` (``--data-dir`` holding a
   ``soulsync.db`` is reused; otherwise the library is generated there, about 2 minutes) the
   way the daemon does: :class:`~soulsync_core.db.Database`,
   :class:`~soulsync_core.settings.Settings` with the core schema.
2. Builds a deterministic (seeded) playlist of 1,000 wanted tracks: 80 % are library tracks
   described the way streaming services differ from file tags (case changed, diacritics
   dropped, " - Remastered 2011" or "(feat. X)" added, a featured artist credited first,
   length 1-3 s off); 20 % are absent (titles made of words the library never uses, by
   library artists and by unknown ones).
3. Times :meth:`LibraryMatcher.match_many` over the whole playlist (``--rounds`` times; the
   first round reads pages from disk, the later ones mostly from the caches), then
   :meth:`LibraryMatcher.match` one track at a time for the per-track latencies.
4. Prints a table: seconds for the playlist, per-track p50/p99, tracks matched, and
   correctness against the known truth: right track (or an equal duplicate: same folded title
   and artist), wrong track, missed, and false matches among the absent tracks.

Goal: the 1,000 tracks in under 2 s on a 2-core machine. Run from the repository root:
``.venv/bin/python benchmarks/playlist_match.py --data-dir /tmp/libbench`` (the database is
migrated to the current schema when opened). Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import library as library_bench
from unidecode import unidecode

from soulsync_core.config import core_schema
from soulsync_core.db import Database
from soulsync_core.downloads.models import Wanted
from soulsync_core.library.folding import fold
from soulsync_core.library.matcher import LibraryMatch, LibraryMatcher
from soulsync_core.settings import Settings

SEED = 20260727
PLAYLIST = 1000
PRESENT_SHARE = 0.8
GOAL_SECONDS = 2.0
# Words the generated library never uses, so that an "absent" track is really absent.
ABSENT_WORDS = ("Zephyrine Quillon Marrowby Tessaly Vantorre Oblique Pellucid Kestrelmoor "
                "Sarabande Ulterior Gossamer Halcyonic Perihelion Solstitial Verdigris").split()


@dataclass
class Entry:
    """One playlist track and the library track it should find (None: absent)."""

    wanted: Wanted
    truth: int | None
    truth_key: tuple[str, str] | None  # folded title and artist, to accept an equal duplicate


def _recase(rng: random.Random, text: str) -> str:
    return rng.choice((text.upper(), text.lower(), text.title(), text))


async def build_playlist(db: Database, seed: int = SEED) -> list[Entry]:
    """Return the deterministic playlist (see the module docstring)."""
    rng = random.Random(seed)
    last_id = int(await db.fetchval("SELECT max(id) FROM tracks") or 0)
    artist_names = [row[0] for row in await db.fetchall(
        "SELECT name FROM artists WHERE id IN (SELECT value FROM json_each(?))",
        (str([rng.randint(1, 10_000) for _ in range(300)]),))]
    entries: list[Entry] = []
    present = round(PLAYLIST * PRESENT_SHARE)
    while len(entries) < present:
        row = await db.fetchone(
            "SELECT t.id, t.title, ar.name, t.track_artist, al.title, t.duration, t.title_fold "
            "FROM tracks t JOIN albums al ON al.id = t.album_id JOIN artists ar ON ar.id = t.artist_id "
            "WHERE t.id = ?", (rng.randint(1, last_id),))
        if row is None:
            continue
        track_id, title, artist, _track_artist, album, duration, title_fold = row
        artists = [artist]
        kind = rng.random()
        if kind < 0.25:
            title += " - Remastered 2011"
        elif kind < 0.5:
            guest = rng.choice(artist_names)
            title += f" (feat. {guest})"
            artists = [guest, artist] if rng.random() < 0.5 else [artist, guest]
        if rng.random() < 0.5:
            title, artists = unidecode(title), [unidecode(a) for a in artists]
        if rng.random() < 0.5:
            title = _recase(rng, title)
        delta = rng.choice((-1, 1)) * rng.randint(1000, 3000)
        wanted = Wanted(title=title, artists=artists, album=album, duration_ms=(duration or 0) + delta,
                        source="spotify", track_id=f"bench{len(entries)}")
        entries.append(Entry(wanted, track_id, (title_fold, fold(artist))))
    while len(entries) < PLAYLIST:
        title = " ".join(rng.sample(ABSENT_WORDS, rng.randint(1, 3)))
        artist = rng.choice(artist_names) if rng.random() < 0.7 else f"{rng.choice(ABSENT_WORDS)} Collective"
        wanted = Wanted(title=title, artists=[artist], album="Nowhere",
                        duration_ms=rng.randint(90, 480) * 1000,
                        source="spotify", track_id=f"bench{len(entries)}")
        entries.append(Entry(wanted, None, None))
    rng.shuffle(entries)
    return entries


async def verdicts(db: Database, entries: list[Entry], found: list[LibraryMatch | None]) -> dict[str, int]:
    """Return counts of right, duplicate, wrong, missed and false matches."""
    ids = [m.track_id for m in found if m is not None]
    keys = {row[0]: (row[1], row[2]) for row in await db.fetchall(
        "SELECT t.id, t.title_fold, ar.name_fold FROM tracks t JOIN artists ar ON ar.id = t.artist_id "
        "WHERE t.id IN (SELECT value FROM json_each(?))", (str(ids),))}
    counts = dict.fromkeys(("right", "duplicate", "wrong", "missed", "false"), 0)
    for entry, match in zip(entries, found, strict=True):
        if entry.truth is None:
            counts["false"] += match is not None
        elif match is None:
            counts["missed"] += 1
        elif match.track_id == entry.truth:
            counts["right"] += 1
        elif keys.get(match.track_id) == entry.truth_key:
            counts["duplicate"] += 1
        else:
            counts["wrong"] += 1
    return counts


async def run(data_dir: Path, rounds: int) -> list[str]:
    db = await Database.open(data_dir)
    try:
        settings = await Settings.load(core_schema([]), db, environ={})
        matcher = LibraryMatcher(db, settings)
        entries = await build_playlist(db)
        wanted = [e.wanted for e in entries]
        totals, found = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            found = await matcher.match_many(wanted)
            totals.append(time.perf_counter() - started)
        singles = []
        for w in wanted:
            started = time.perf_counter()
            await matcher.match(w)
            singles.append((time.perf_counter() - started) * 1000)
        counts = await verdicts(db, entries, found)
    finally:
        await db.close()
    quantiles = statistics.quantiles(singles, n=100)
    present = sum(e.truth is not None for e in entries)
    matched = sum(m is not None for m in found)
    best = min(totals)
    return [
        f"playlist of {len(entries):,} tracks ({present} in the library, {len(entries) - present} absent)",
        f"| {'measure':44} | {'value':>14} |",
        f"|{'-' * 46}|{'-' * 16}|",
        f"| {'match_many, first round (s)':44} | {totals[0]:14.3f} |",
        f"| {'match_many, best of ' + str(rounds) + ' rounds (s)':44} | {best:14.3f} |",
        f"| {'match() one track at a time, p50 (ms)':44} | {quantiles[49]:14.2f} |",
        f"| {'match() one track at a time, p99 (ms)':44} | {quantiles[98]:14.2f} |",
        f"| {'matched':44} | {matched:14d} |",
        f"| {'right track':44} | {counts['right']:14d} |",
        f"| {'an equal duplicate (same title and artist)':44} | {counts['duplicate']:14d} |",
        f"| {'wrong track':44} | {counts['wrong']:14d} |",
        f"| {'missed (in the library, not found)':44} | {counts['missed']:14d} |",
        f"| {'false match (absent, yet matched)':44} | {counts['false']:14d} |",
        f"goal: the playlist in under {GOAL_SECONDS:g} s (first round): "
        f"{'ok' if totals[0] < GOAL_SECONDS else 'MISSED'}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory holding (or to receive) the benchmark library's soulsync.db")
    parser.add_argument("--rounds", type=int, default=3, help="timed match_many rounds (3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if (data_dir / "soulsync.db").exists():
            print(f"reusing the library in {data_dir}", flush=True)
        else:
            print(f"generating the 500,000-track library in {data_dir}", flush=True)
            asyncio.run(library_bench.load_library(data_dir))
        report = asyncio.run(run(data_dir, max(1, args.rounds)))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
