"""Benchmark the quality upgrades' cutoff list (``GET /library/upgrades``) at 50,000+ tracks.

What it does:

1. Generates, with a fixed seed, a library of ``--tracks`` tracks (default 50,000; the
   artist/album/title generator of ``library.py``) with a mix of files: FLAC 24-bit, FLAC
   16-bit, MP3 320/256/192/128, AAC, Opus; loads it through the project's storage layer.
2. Opens a core on that data directory (no server, no plugins) with
   ``downloads.upgrade_until = flac`` and times, in the same run:

   * **baseline** — the cutoff list as it was computed before migration 0023: every library
     row read and ranked per request, then sliced (first page and a deep page);
   * **stored ranks** — :meth:`UpgradeService.cutoff_unmet`: the paged indexed query on
     ``track_quality`` (first page, deep page), after the ranks are stored;
   * the one-off costs: ranking the whole library the first time (and again after a new
     quality profile), and a request after 100 files changed their stream figures.

   Each request figure is the median of ``--rounds`` requests; the ratio column is the
   baseline's time over the row's.

Run from the repository root: ``.venv/bin/python benchmarks/upgrades.py`` (about a minute).
Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import library as library_bench

from soulsync_core.core import Core
from soulsync_core.db import Database
from soulsync_core.downloads.upgrades import UpgradeService, file_rank
from soulsync_core.library.store import LibraryStore

SEED = 20261207
PAGE = 50
# (format, bitrate, bit depth, sample rate) and how often each appears.
KINDS = [(("FLAC", None, 24, 96000), 10), (("FLAC", 900, 16, 44100), 40),
         (("MP3", 320, None, 44100), 20), (("MP3", 256, None, 44100), 10),
         (("MP3", 192, None, 44100), 8), (("MP3", 128, None, 44100), 4),
         (("AAC", 256, None, 44100), 5), (("OPUS", 128, None, 48000), 3)]


async def load(data_dir: Path, tracks: int) -> None:
    rng = random.Random(SEED)
    kinds = [k for k, _w in KINDS]
    weights = [w for _k, w in KINDS]
    per_artist = library_bench.ALBUMS_PER_ARTIST * library_bench.TRACKS_PER_ALBUM
    batches = library_bench.generate(artist_count=max(1, tracks // per_artist))
    db = await Database.open(data_dir)
    try:
        store = LibraryStore(db)
        for batch in batches:
            for record in batch:
                fmt, kbps, depth, rate = rng.choices(kinds, weights)[0]
                record.format, record.bitrate, record.bit_depth, record.sample_rate = (
                    fmt, kbps, depth, rate)
                record.file_name = record.file_name.rsplit(".", 1)[0] + "." + fmt.lower()
            await store.save(batch)
    finally:
        await db.close()


async def baseline(upgrades: UpgradeService, offset: int) -> int:
    """The cutoff list before migration 0023: every row read and ranked, then sliced."""
    profile, cutoff = upgrades.profile(), upgrades.cutoff()
    files = await upgrades.store.library_files()
    unmet = await asyncio.to_thread(
        lambda: [f for f in files if file_rank(profile, f).rule > (cutoff or 0)])
    return len(unmet[offset:offset + PAGE])


async def stored(upgrades: UpgradeService, offset: int) -> int:
    page, _total = await upgrades.cutoff_unmet(offset, PAGE)
    return len(page)


async def median_ms(call: Callable[[], Awaitable[Any]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def once_ms(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def measure(data_dir: Path, tracks: int, rounds: int) -> list[tuple[str, float, float | None]]:
    core = await Core.open(data_dir, environ={"SOULSYNC_DOWNLOADS__UPGRADE_UNTIL": "flac"},
                           entry_points=False)
    try:
        upgrades = core.upgrades
        first_rank = await once_ms(upgrades.refresh_ranks)
        deep = max(0, (await upgrades.cutoff_unmet(0, 1))[1] - PAGE * 2)
        base_first = await median_ms(lambda: baseline(upgrades, 0), rounds)
        base_deep = await median_ms(lambda: baseline(upgrades, deep), rounds)
        new_first = await median_ms(lambda: stored(upgrades, 0), rounds)
        new_deep = await median_ms(lambda: stored(upgrades, deep), rounds)
        await core.db.execute(
            "UPDATE tracks SET bitrate = 128, format = 'MP3', bit_depth = NULL "
            "WHERE id IN (SELECT id FROM tracks ORDER BY id LIMIT 100)")
        changed = await once_ms(lambda: stored(upgrades, 0))
        await core.settings.apply({"downloads.quality_profile": ["flac>=24bit", "flac",
                                                                 "mp3>=320", "mp3>=256"]})
        new_profile = await once_ms(lambda: stored(upgrades, 0))
    finally:
        await core.close()
    return [
        ("baseline: rank every row, page 1", base_first, base_first / base_first),
        (f"baseline: rank every row, offset {deep:,}", base_deep, base_first / base_deep),
        ("stored ranks: page 1", new_first, base_first / new_first),
        (f"stored ranks: offset {deep:,}", new_deep, base_first / new_deep),
        ("stored ranks: page 1 after 100 files changed", changed, base_first / changed),
        (f"one-off: rank all {tracks:,} files (first request)", first_rank, None),
        ("one-off: page 1 after a new quality profile", new_profile, None),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=9, help="requests per median")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soulsync-bench-upgrades-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        asyncio.run(load(data_dir, args.tracks))
        print(f"loaded {args.tracks:,} tracks in {time.perf_counter() - started:.1f} s")
        rows = asyncio.run(measure(data_dir, args.tracks, args.rounds))
    print(f"\nGET /library/upgrades at {args.tracks:,} tracks (limit {PAGE}, median of "
          f"{args.rounds}; ratio = baseline page 1 / row)\n")
    print(f"| {'case':<52} | {'ms':>9} | {'ratio':>7} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 9}|")
    for name, ms, ratio in rows:
        shown = f"{ratio:.1f}x" if ratio is not None else "-"
        print(f"| {name:<52} | {ms:>9.2f} | {shown:>7} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
