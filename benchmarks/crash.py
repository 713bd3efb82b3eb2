"""Random SIGKILLs of a real daemon in the middle of downloads, over N runs (not in CI).

Each run makes a fresh data dir, music folder and fake slskd (tests/fakes/slskd.py, in this
process), starts ``soulsync serve``, asks for one download, and kills the daemon with SIGKILL
1 to ``--max-kills`` times: each kill either at a named pause point of
:mod:`soulsync_core.faultpoints` (a random one) or after a random delay of up to
``--max-delay`` seconds while the fake's transfers move (a point nobody chose). After the last
kill it restarts the daemon, lets the download end and checks it as tests/crash_harness.py
:func:`check` does. Prints a table: runs, kills (by point), downloads ended exactly once,
duplicates (a second transfer asked of slskd, or a second file), half-written files left in
the library, lost rows, corrupt databases, library differing from a fresh scan.

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

from tests.crash_harness import CrashSite, check

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


async def main_async(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    points: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="soulsync-crash-") as tmp:
        for run in range(args.runs):
            kills, findings = await one_run(Path(tmp) / f"run-{run}", rng, args)
            points.update(kills)
            kinds = {kind for finding in findings for text, kind in KINDS.items() if text in finding}
            counts.update(kinds)
            counts["exactly once"] += "not once" not in kinds
            examples += [f"run {run} (kills: {', '.join(kills)}): {f}" for f in findings]
            print(f"run {run + 1}/{args.runs}: kills {kills}: {'ok' if not findings else findings}",
                  flush=True)
    print()
    print("| runs | kills | downloads ended exactly once | duplicates | half files | lost rows "
          "| corrupt db | library != rescan |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.runs} | {sum(points.values())} | {counts['exactly once']} | "
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
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
