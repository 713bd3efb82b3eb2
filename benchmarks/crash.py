"""Random SIGKILLs of a real daemon in the middle of downloads, library scans and wishlist
runs, over N runs (not in CI).

Each run makes a fresh data dir, music folder and fake slskd (tests/fakes/slskd.py, in this
process), starts ``soulsync serve``, asks for one download, and kills the daemon with SIGKILL
1 to ``--max-kills`` times: each kill either at a named pause point of
:mod:`soulsync_core.faultpoints` (a random one) or after a random delay of up to
``--max-delay`` seconds while the fake's transfers move (a point nobody chose). After the last
kill it restarts the daemon, lets the download end and checks it as tests/crash_harness.py
:func:`check` does. Prints a table: runs, kills (by point), downloads ended exactly once,
duplicates (a second transfer asked of slskd, or a second file), half-written files left in
the library, lost rows, corrupt databases, library differing from a fresh scan.

``--jobs`` adds, for each run, one more site of each: a library scan of ``--scan-files`` files
killed after a random delay (then a rescan must equal a fresh scan, nothing lost or doubled),
and a wishlist run killed after a random delay (then a new run must end the track's download
exactly once). Their results count in the same table, with their kill points as
``scan (killed mid-scan / after it)`` and ``wishlist (killed mid-run / after the run)``.

Run from the repository root: ``.venv/bin/python benchmarks/crash.py --runs 20`` (about 10 s a
run); ``--seed`` repeats a sequence.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from soulsync_core.library.service import JOB_KIND as SCAN_JOB
from soulsync_core.wishlist import JOB_KIND as WISHLIST_JOB
from tests.crash_harness import CrashSite, check
from tests.download_fixtures import TRACK
from tests.test_crash_jobs import fill_music, job_running

POINTS = ("download.searched", "download.enqueued", "import.before_rename", "import.renamed")
BEFORE = ("SELECT id FROM downloads", "SELECT id FROM api_keys")
# A finding of check() -> the column it counts in.
KINDS = {"transfers requested": "duplicates", "audio files in the library": "duplicates",
         "half-written": "half files", "rows lost": "lost rows", "integrity_check": "corrupt db",
         "differs from a fresh scan": "library != rescan", "did not complete": "not once",
         "download rows": "not once"}


async def kill_randomly(site: CrashSite, rng: random.Random, max_delay: float,
                        first: bool) -> str:
    """Start a daemon, kill it somewhere; return where."""
    if rng.random() < 0.5:
        point = rng.choice(POINTS)
        daemon = await site.start(pause_at=point)
        if first:
            await site.request_download(daemon)
        try:
            await asyncio.wait_for(site.kill_at(daemon, point), 8)
        except (TimeoutError, AssertionError):
            daemon.kill()  # the download was past that point already: a kill all the same
            return f"{point} (passed)"
        return point
    daemon = await site.start()
    if first:
        await site.request_download(daemon)
    deadline = time.monotonic() + rng.uniform(0, max_delay)
    while time.monotonic() < deadline:
        await site.fake.tick()
        await asyncio.sleep(0.05)
    daemon.kill()
    return "random delay"


async def one_run(root: Path, rng: random.Random, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Return (kill points, findings) of one run."""
    site = await CrashSite.open(root)
    try:
        kills = [await kill_randomly(site, rng, args.max_delay, first=index == 0)
                 for index in range(rng.randint(1, args.max_kills))]
        before = {sql: {row[0] for row in site.rows(sql)} for sql in BEFORE}
        daemon = await site.start()
        await site.finish_downloads(daemon)
        await daemon.stop()
        return kills, await check(site, before, downloads=1)
    finally:
        await site.close()


async def scan_run(root: Path, rng: random.Random, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """A library scan killed after a random delay, then a full rescan: (kill points, findings)."""
    site = await CrashSite.open(root)
    try:
        await asyncio.to_thread(fill_music, site.music, args.scan_files)
        daemon = await site.start()
        status, body = await site.call(daemon, "POST", "/api/v1/library/scan")
        if status != 202:
            return ["scan (refused)"], [f"scan refused: {status} {body}"]
        await asyncio.sleep(rng.uniform(0, args.max_delay))
        daemon.kill()
        point = "scan (killed mid-scan)" if job_running(site, SCAN_JOB) else "scan (killed after it)"
        before = {"SELECT id FROM tracks": {row[0] for row in site.rows("SELECT id FROM tracks")}}
        daemon = await site.start()
        status, body = await site.call(daemon, "POST", "/api/v1/library/scan")
        if status != 202:
            return [point], [f"rescan refused: {status} {body}"]
        await site.wait_until("the rescan to end", lambda: not job_running(site, SCAN_JOB),
                              daemon, tick=False)
        await daemon.stop()
        return [point], await check(site, before, downloads=0, library_files=args.scan_files)
    finally:
        await site.close()


async def wishlist_run(root: Path, rng: random.Random,
                       args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """A wishlist run killed after a random delay, then a new run: (kill points, findings)."""
    site = await CrashSite.open(root)
    try:
        daemon = await site.start()
        wanted = {key: TRACK[key] for key in ("id", "name", "artists", "album", "duration_ms")}
        await site.call(daemon, "POST", "/api/v1/wishlist",
                        {"spotify_track_data": wanted, "failure_reason": "crash benchmark"})
        await site.call(daemon, "POST", "/api/v1/wishlist/process")
        deadline = time.monotonic() + rng.uniform(0, args.max_delay)
        while time.monotonic() < deadline:
            await site.fake.tick()
            await asyncio.sleep(0.05)
        daemon.kill()
        point = ("wishlist (killed mid-run)" if job_running(site, WISHLIST_JOB)
                 else "wishlist (killed after the run, download going)")
        before = {sql: {row[0] for row in site.rows(sql)} for sql in BEFORE}
        daemon = await site.start()
        await site.call(daemon, "POST", "/api/v1/wishlist/process")
        await site.finish_downloads(daemon)
        await site.wait_until("the wishlist run to end",
                              lambda: not job_running(site, WISHLIST_JOB), daemon)
        await daemon.stop()
        findings = await check(site, before, downloads=1)
        if site.rows("SELECT id FROM wishlist_tracks"):
            findings.append("the track stayed on the wishlist (download rows or not once)")
        return [point], findings
    finally:
        await site.close()


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    points: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="soulsync-crash-") as tmp:
        sites = [one_run] + ([scan_run, wishlist_run] if args.jobs else [])
        for run in range(args.runs * len(sites)):
            site_run = sites[run % len(sites)]
            kills, findings = await site_run(Path(tmp) / f"run-{run}", rng, args)
            points.update(kills)
            kinds = {kind for finding in findings for text, kind in KINDS.items() if text in finding}
            counts.update(kinds)
            counts["exactly once"] += "not once" not in kinds
            examples += [f"run {run} (kills: {', '.join(kills)}): {f}" for f in findings]
            verdict = findings or "ok"
            print(f"run {run + 1}/{args.runs * len(sites)}: kills {kills}: {verdict}", flush=True)
    print()
    print("| runs | kills | ended exactly once | duplicates | half files | lost rows "
          "| corrupt db | library != rescan |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.runs * len(sites)} | {sum(points.values())} | {counts['exactly once']} | "
          f"{counts['duplicates']} | {counts['half files']} | {counts['lost rows']} | "
          f"{counts['corrupt db']} | {counts['library != rescan']} |")
    print()
    print("| kill point | kills |")
    print("|---|---|")
    for point, count in sorted(points.items()):
        print(f"| {point} | {count} |")
    for example in examples:
        print(example)
    return 1 if examples else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--max-kills", type=int, default=3, help="kills per run (1 to this)")
    parser.add_argument("--max-delay", type=float, default=3.0,
                        help="seconds before a random-delay kill (at most)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", action="store_true",
                        help="also kill library scans and wishlist runs at random moments")
    parser.add_argument("--scan-files", type=int, default=2000,
                        help="files in the music folder of a scan run (with --jobs)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
