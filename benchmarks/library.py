"""Benchmark the library at 500,000 tracks: HTTP queries, memory, database size, scans.

What it does (each part can be skipped, see ``--help``):

1. Generates, with a fixed seed, a library of 10,000 artists x 5 albums x 10 tracks = 500,000
   tracks (``--tracks 1000000``: 20,000 artists, the same mix) with realistic names (several
   words, diacritics such as Björk, Motörhead, Dvořák,
   a leading "The", numbers, title suffixes such as "(Remastered 2011)", " - Radio Edit",
   "(Live)", "(feat. X)") and loads it through the project's storage layer
   (:class:`soulsync_core.library.store.LibraryStore`), as a scan would.
2. Starts the real daemon on that database (``python -m soulsync_core serve``, rate limits
   raised) and loads each library query over HTTP at concurrency 16 for 20 s (after 2 s of
   warm-up), with ``/system/status`` in the same run as the baseline: requests/s, p50, p99.
   The peak resident sets (``VmHWM``) of the daemon and its reader processes, summed, and the
   database size are reported; the server CPU counts the reader processes too. The library
   queries run twice (``--cache both``, the default): answered from the daemon's answer cache
   (repeated requests, database unchanged) and computed afresh (each request sent with
   ``Cache-Control: no-cache``, which bypasses the cache); ``/system/status`` runs once per round.
   ``--scale-check`` runs this part at 500,000 and at 1,000,000 tracks (two data directories,
   ``--data-dir`` and ``--scale-dir``) and prints, per query, the growth of the server CPU per
   request and of the p99 from the smaller library to the larger (goal: below 1.5x).
3. Writes 10,000 small real tagged audio files (half FLAC, half MP3, tagged with mutagen) and
   times a first scan of them and a rescan with nothing changed, in this process.

The load generator and the daemon helpers are those of ``bench_api.py``. Goals (this
machine): p99 under 20 ms for every library query; each library query at >= 80 % of the
``/system/status`` requests/s; peak RSS under load <= 100 MB; a rescan of 10,000 unchanged
files <= 2 s.

Run from the repository root: ``.venv/bin/python benchmarks/library.py`` (about 5 minutes;
``--seconds 5`` for a quicker look). Only loopback addresses are used; every subprocess is
stopped when the run ends or fails. Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import bench_api

from soulsync_core.db import Database
from soulsync_core.library.scanner import Scanner
from soulsync_core.library.store import LibraryStore
from soulsync_core.library.tags import TrackRecord

SEED = 20260303
ARTISTS, ALBUMS_PER_ARTIST, TRACKS_PER_ALBUM = 10_000, 5, 10
SCAN_FILES = 10_000
GOAL_P99_MS = 20.0
GOAL_RATIO = 0.8
GOAL_PEAK_RSS_MB = 100.0
GOAL_RESCAN_S = 2.0
GOAL_SCALE = 1.5

# Vocabulary: plain and accented words, so that folding and trigram search are exercised.
WORDS = ("Night Wave Harbor Harbour Black White Silver Golden Electric Velvet Midnight Summer "
         "Winter River Ocean Desert Crystal Shadow Fire Ice Stone Glass Neon Paper Iron Echo "
         "Dream Ghost Wild Lost Broken Burning Falling Rising Holy Sweet Bitter Blue Red Green "
         "Mountain Valley City Street Garden Forest Island Thunder Rain Storm Sun Moon Star Sky "
         "Heart Soul Mind Love Road Light Dark Fever Honey Sugar Diamond Rebel Lonely Happy "
         "Kings Queens Wolves Tigers Horses Birds Machines Angels Strangers Lovers Brothers").split()
ACCENTED = ("Björk Motörhead Dvořák Sigur Rós Mötley Crüe Beyoncé Céline Zoë Ångström Ñandú "
            "Ørjan Jóga Ísland Šárka Łódź Mañana Café Naïve Über Fjällräven Øresund Crème Ça "
            "Señor Éclair Déjà Vu Niño Fête Garçon").split()
FIRST = ("John Mary Anna Ludwig Antonín Frédéric Sergei Björn Agnetha Nina Miles Ella Billie "
         "Jean Pierre Jürgen Åsa Zoë Chloé José María Nils Ingrid Kurt Patti").split()
SUFFIXES = (" (Remastered 2011)", " - Radio Edit", " (Live)", " (feat. {x})", " (Acoustic)",
            " - 2009 Remaster", " (Demo)", " (Extended Mix)")
GENRES = ("Rock", "Pop", "Jazz", "Electronic", "Hip-Hop", "Classical", "Folk", "Metal", "Soul",
          "Blues", "Ambient", "Punk")


def _words(rng: random.Random, low: int, high: int) -> str:
    pool = WORDS if rng.random() < 0.8 else ACCENTED
    return " ".join(rng.choice(pool) for _ in range(rng.randint(low, high)))


def artist_name(rng: random.Random, index: int) -> str:
    kind = rng.random()
    if kind < 0.15:
        name = "The " + _words(rng, 1, 2)
    elif kind < 0.35:
        name = f"{rng.choice(FIRST)} {rng.choice(ACCENTED + WORDS)}"
    elif kind < 0.45:
        name = f"{rng.randint(2, 999)} {_words(rng, 1, 2)}"
    else:
        name = _words(rng, 1, 3)
    return f"{name} {index}" if rng.random() < 0.3 else name  # names repeat; keep most distinct


def title(rng: random.Random, artists: list[str]) -> str:
    text = _words(rng, 1, 4)
    if rng.random() < 0.25:
        text += rng.choice(SUFFIXES).format(x=rng.choice(artists))
    return text


def generate(seed: int = SEED, artist_count: int = ARTISTS) -> list[list[TrackRecord]]:
    """Return the library as one batch of records per 100 artists (deterministic for a seed)."""
    rng = random.Random(seed)
    names: dict[str, None] = {}
    while len(names) < artist_count:
        names.setdefault(artist_name(rng, len(names)), None)
    artists = list(names)
    batches, batch = [], []
    for a, artist in enumerate(artists):
        for b in range(ALBUMS_PER_ARTIST):
            album = f"{_words(rng, 1, 3)} {b + 1}" if rng.random() < 0.5 else _words(rng, 1, 3) + f" Vol. {b}"
            year = rng.randint(1960, 2025)
            genre = rng.sample(GENRES, rng.randint(1, 2))
            folder = f"/srv/music/{artist}/{artist} - {album}"
            for t in range(1, TRACKS_PER_ALBUM + 1):
                name = title(rng, artists)
                batch.append(TrackRecord(
                    folder=folder, file_name=f"{t:02d} - {name}.flac", file_size=rng.randint(2, 60) << 20,
                    file_mtime=1_700_000_000_000_000_000 + rng.randint(0, 10**15), title=name,
                    artist=artist, track_artist=artist, album=album, format="FLAC",
                    track_number=t, year=year, genres=genre, duration=rng.randint(90_000, 480_000),
                    bitrate=rng.randint(700, 1100), sample_rate=44100, bit_depth=16).finish())
        if (a + 1) % 100 == 0:
            batches.append(batch)
            batch = []
    return batches


async def load_library(data_dir: Path, tracks: int) -> float:
    """Write the generated library of ``tracks`` tracks into ``data_dir`` through the store.

    Returns the seconds it took.
    """
    batches = generate(artist_count=tracks // (ALBUMS_PER_ARTIST * TRACKS_PER_ALBUM))
    db = await Database.open(data_dir)
    started = time.perf_counter()
    try:
        store = LibraryStore(db)
        for number, batch in enumerate(batches, start=1):
            await store.save(batch)
            if number % 10 == 0:
                print(f"  loaded {number * len(batch):,} tracks", flush=True)
        merged = await store.merge_search_indexes()  # as the end of a scan does
        print(f"  merged the search indexes ({merged})", flush=True)
    finally:
        await db.close()
    return time.perf_counter() - started


async def merge_indexes(data_dir: Path) -> dict[str, int]:
    """Merge a reused library's search indexes as the daemon does at start-up, before it starts
    (so that no merge runs while a query is measured); return what was merged."""
    db = await Database.open(data_dir)
    try:
        return await LibraryStore(db).merge_search_indexes()
    finally:
        await db.close()


async def create_key(data_dir: Path) -> str:
    """Create an API key in the database directly (a reused database has one already)."""
    from soulsync_core.activity import Activity
    from soulsync_core.apikeys import ApiKeys

    db = await Database.open(data_dir)
    try:
        return (await ApiKeys(db, Activity(db)).create("library benchmark")).key
    finally:
        await db.close()


def get_json(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with bench_api._URLOPEN(request, timeout=10) as response:
        return json.load(response)


def peak_rss_mb(pid: int) -> float:
    """Return the peak resident sets (VmHWM) of the daemon and its reader processes, summed."""
    return bench_api.status_mb(pid, "VmHWM")


def http_part(data_dir: Path, args: argparse.Namespace, tracks: int,
              figures: dict[tuple[str, str], bench_api.LoadResult] | None = None) -> list[str]:
    """Load each query over HTTP; return the report's lines (``figures`` receives the results)."""
    procs = bench_api.Processes()
    lines = []
    try:
        key = asyncio.run(create_key(data_dir))
        daemon, base, _startup = bench_api.start_daemon(procs, data_dir)
        api = base + "/api/v1"
        some = get_json(f"{api}/library/artists?letter=m&page=3&limit=50", key)["data"]["artists"][7]
        album = get_json(f"{api}/library/artists/{some['id']}/albums", key)["data"]["albums"][0]
        targets = [
            ("/system/status (baseline)", f"{api}/system/status"),
            ("/library/artists?page=1&limit=50", f"{api}/library/artists?page=1&limit=50"),
            ("/library/artists?search=night&limit=50", f"{api}/library/artists?search=night&limit=50"),
            ("/library/artists?letter=m&page=3&limit=50",
             f"{api}/library/artists?letter=m&page=3&limit=50"),
            ("/library/tracks?title=harbor&artist=wave&limit=50",
             f"{api}/library/tracks?title=harbor&artist=wave&limit=50"),
            ("/library/artists/<id>", f"{api}/library/artists/{some['id']}"),
            ("/library/albums/<id>/tracks", f"{api}/library/albums/{album['id']}/tracks"),
            ("/library/stats", f"{api}/library/stats"),
        ]
        hits = get_json(f"{api}/library/tracks?title=harbor&artist=wave&limit=50", key)["data"]["tracks"]
        total = get_json(f"{api}/library/artists?search=night&limit=50", key)["pagination"]["total"]
        print(f"  sample answers: {len(hits)} tracks for harbor/wave, {total} artists for 'night'")
        auth = {"Authorization": f"Bearer {key}"}
        modes = {"both": ("cached", "uncached"), "on": ("cached",), "off": ("uncached",)}[args.cache]
        runs = [(name, url, "") for name, url in targets[:1]]
        runs += [(name, url, mode) for mode in modes for name, url in targets[1:]]
        results: dict[tuple[str, str], bench_api.LoadResult] = {}
        for round_number in range(args.rounds):
            for name, url, mode in runs:
                headers = {**auth, "Cache-Control": "no-cache"} if mode == "uncached" else auth
                result = bench_api.run_load(name, url, headers, daemon.pid, args)
                print(f"  round {round_number + 1}, {name} {mode}: {result.requests_per_second:.0f} "
                      f"req/s, p99 {result.p99_ms:.1f} ms", flush=True)
                best = results.get((name, mode))
                if best is None or result.requests_per_second > best.requests_per_second:
                    results[(name, mode)] = result
        peak = peak_rss_mb(daemon.pid)
    finally:
        procs.stop_all()
    size_mb = sum(p.stat().st_size for p in data_dir.glob("soulsync.db*")) / 2**20
    baseline = results[(targets[0][0], "")].requests_per_second
    lines.append(f"HTTP at concurrency {args.concurrency}, {args.seconds:g} s per target "
                 f"(best of {args.rounds}), {tracks:,} tracks, load generator "
                 f"{bench_api.loadgen_name(args)}")
    lines.append(f"| {'query':50} | {'answer':8} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} "
                 f"| {'vs status':>9} | {'srv us/req':>10} | goals |")
    lines.append(f"|{'-' * 52}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 12}|-------|")
    for name, _url, mode in runs:
        r = results[(name, mode)]
        ratio = r.requests_per_second / baseline
        ok = not mode or (r.p99_ms < GOAL_P99_MS and ratio >= GOAL_RATIO)
        # Server CPU per request: the steadiest measure on a shared machine (see README).
        cpu_us = cpu_per_request_us(r)
        lines.append(f"| {name:50} | {mode or '-':8} | {r.requests_per_second:7.0f} | {r.p50_ms:7.2f} "
                     f"| {r.p99_ms:7.2f} | {ratio:8.0%} | {cpu_us:10.0f} | {'ok' if ok else 'MISSED'} |")
    lines.append(f"peak RSS of the daemon and its readers (VmHWM, summed): {peak:.1f} MB "
                 f"(goal <= {GOAL_PEAK_RSS_MB:g}): "
                 f"{'ok' if peak <= GOAL_PEAK_RSS_MB else 'MISSED'}")
    lines.append(f"database size: {size_mb:.1f} MB")
    if figures is not None:
        figures.update(results)
    return lines


def cpu_per_request_us(result: bench_api.LoadResult) -> float:
    return (result.server_cpu or 0.0) * 1e6 / result.requests_per_second


def scale_lines(small: dict[tuple[str, str], bench_api.LoadResult],
                large: dict[tuple[str, str], bench_api.LoadResult], tracks: tuple[int, int]) -> list[str]:
    """Return the scale table: per query, the larger library's figures over the smaller's."""
    lines = [f"scale check, {tracks[0]:,} -> {tracks[1]:,} tracks (goal: each growth < "
             f"{GOAL_SCALE:g}x)",
             f"| {'query':50} | {'answer':8} | {'us/req':>13} | {'growth':>6} | {'p99 ms':>13} "
             f"| {'growth':>6} | goals |",
             f"|{'-' * 52}|{'-' * 10}|{'-' * 15}|{'-' * 8}|{'-' * 15}|{'-' * 8}|-------|"]
    for (name, mode), before in small.items():
        after = large[(name, mode)]
        cpu = (cpu_per_request_us(before), cpu_per_request_us(after))
        p99 = (before.p99_ms, after.p99_ms)
        cpu_growth, p99_growth = cpu[1] / cpu[0], p99[1] / p99[0]
        ok = cpu_growth < GOAL_SCALE and p99_growth < GOAL_SCALE
        lines.append(f"| {name:50} | {mode or '-':8} | {cpu[0]:5.0f} -> {cpu[1]:5.0f} | "
                     f"{cpu_growth:5.2f}x | {p99[0]:5.1f} -> {p99[1]:5.1f} | {p99_growth:5.2f}x | "
                     f"{'ok' if ok else 'MISSED'} |")
    return lines


def write_scan_files(root: Path, count: int) -> None:
    """Write ``count`` tiny tagged files: half FLAC, half MP3, 20 per album folder."""
    from tests.audio import make

    rng = random.Random(SEED + 1)
    for index in range(count):
        kind = "flac" if index % 2 == 0 else "mp3"
        artist = f"{rng.choice(WORDS)} {rng.choice(ACCENTED)} {index // 200}"
        album = f"Album {index // 20}"
        name = _words(rng, 1, 3)
        make(root / artist / album / f"{index % 20 + 1:02d} - {name}.{kind}", kind, seconds=0.1,
             title=name, artist=artist, album=album, tracknumber=f"{index % 20 + 1}/20",
             date=str(rng.randint(1960, 2025)), genre=rng.choice(GENRES))


async def scan_part(tmp: Path, workers: int) -> list[str]:
    music = tmp / "scan-music"
    started = time.perf_counter()
    print(f"  writing {SCAN_FILES:,} tagged files...", flush=True)
    await asyncio.to_thread(write_scan_files, music, SCAN_FILES)
    print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    db = await Database.open(tmp / "scan-data")
    try:
        scanner = Scanner(LibraryStore(db), music, workers)
        started = time.perf_counter()
        first = await scanner.run()
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        again = await scanner.run()
        rescan_s = time.perf_counter() - started
    finally:
        await db.close()
    assert first.files_read == SCAN_FILES and again.files_unchanged == SCAN_FILES, (first, again)
    return [f"scan of {SCAN_FILES:,} real files (FLAC + MP3, {workers} workers): first scan "
            f"{first_s:.1f} s = {SCAN_FILES / first_s:.0f} files/s; rescan with nothing changed "
            f"{rescan_s:.2f} s (goal <= {GOAL_RESCAN_S:g} s): "
            f"{'ok' if rescan_s <= GOAL_RESCAN_S else 'MISSED'}"]


def library_http(data_dir: Path, tracks: int, args: argparse.Namespace,
                 figures: dict[tuple[str, str], bench_api.LoadResult] | None = None) -> list[str]:
    """Generate (or reuse) the library of ``tracks`` tracks in ``data_dir`` and run part 2 on it."""
    lines = []
    if (data_dir / "soulsync.db").exists():
        print(f"reusing the library in {data_dir}", flush=True)
        if merged := asyncio.run(merge_indexes(data_dir)):
            print(f"  merged its search indexes first ({merged})", flush=True)
    else:
        print(f"generating and loading {tracks:,} tracks...", flush=True)
        seconds = asyncio.run(load_library(data_dir, tracks))
        lines.append(f"load of {tracks:,} generated tracks through LibraryStore: "
                     f"{seconds:.1f} s ({tracks / seconds:,.0f} tracks/s)")
    print(f"loading the daemon over HTTP ({tracks:,} tracks)...", flush=True)
    return lines + http_part(data_dir, args, tracks, figures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per query (20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up per query (2)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests (16)")
    bench_api.add_loadgen_argument(parser)
    parser.add_argument("--rounds", type=int, default=1, help="rounds per query, best counts (1)")
    parser.add_argument("--workers", type=int, default=4, help="tag-reading threads of the scan (4)")
    parser.add_argument("--cache", choices=("both", "on", "off"), default="both",
                        help="library answers from the answer cache, computed afresh, or both (both)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the generated library here, and reuse it when it exists")
    parser.add_argument("--tracks", type=int, choices=(500_000, 1_000_000), default=500_000,
                        help="size of the generated library (500000)")
    parser.add_argument("--scale-check", action="store_true",
                        help="run part 2 at 500,000 and at 1,000,000 tracks and compare")
    parser.add_argument("--scale-dir", type=Path, default=None,
                        help="with --scale-check: keep the 1,000,000-track library here")
    parser.add_argument("--skip-http", action="store_true", help="skip parts 1 and 2")
    parser.add_argument("--skip-scan", action="store_true", help="skip part 3")
    args = parser.parse_args(argv)
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="soulsync-library-bench-") as tmp:
        if not args.skip_http:
            if args.scale_check:
                small: dict[tuple[str, str], bench_api.LoadResult] = {}
                large: dict[tuple[str, str], bench_api.LoadResult] = {}
                report += library_http(args.data_dir or Path(tmp) / "data", 500_000, args, small)
                report += library_http(args.scale_dir or Path(tmp) / "data-1m", 1_000_000, args,
                                       large)
                report += scale_lines(small, large, (500_000, 1_000_000))
            else:
                report += library_http(args.data_dir or Path(tmp) / "data", args.tracks, args)
        if not args.skip_scan:
            print("scan benchmark...", flush=True)
            report += asyncio.run(scan_part(Path(tmp), args.workers))
    print()
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
