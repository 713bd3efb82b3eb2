"""Benchmark a backup of a large library while the daemon serves: duration, sizes, latency.

What it does:

1. Generates the library of ``library.py`` (fixed seed), ``--artists`` x 5 albums x 10 tracks
   (default 2,000 artists = 100,000 tracks), and loads it through the storage layer.
2. Starts the real daemon on it (``python -m soulsync_core serve``, rate limits raised) and
   sends ``GET /api/v1/system/status`` and ``GET /api/v1/library/artists?search=night`` one
   after another (one client, a new connection each) for ``--seconds`` while idle.
3. Starts a backup (``POST /api/v1/system/backups``) and sends the same requests until the
   backup job has ended; the backup's wall time is from the POST to the first listing that
   shows it finished (polled between the requests).
4. Prints a table: database and backup sizes, the backup's duration, and p50 / p99 / max
   latency of the requests while idle and while the backup ran. The goal: the backup adds
   no request slower than 250 ms (the copy runs in a thread, so the event loop keeps serving).

Run from the repository root: ``.venv/bin/python benchmarks/backup.py`` (about a minute;
``--artists 10000`` for the 500,000 tracks of library.py). Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import bench_api
import library

GOAL_MAX_MS = 250.0
B = "/api/v1/system/backups"


def request(url: str, key: str, method: str = "GET") -> tuple[float, dict]:
    """Send one request; return its latency in ms and the decoded envelope."""
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {key}"},
                                 data=b"{}" if method == "POST" else None)
    started = time.perf_counter()
    with bench_api._URLOPEN(req, timeout=30) as response:
        body = json.load(response)
    return (time.perf_counter() - started) * 1000, body


def latencies_while(api: str, key: str, keep_going: Callable[[], bool]) -> list[float]:
    """Send the two requests in turn (at least once each) until ``keep_going()`` is false;
    return the latencies in ms, sorted."""
    urls = [f"{api}/system/status", f"{api}/library/artists?search=night&limit=50"]
    found: list[float] = []
    while True:
        for url in urls:
            found.append(request(url, key)[0])
        if not keep_going():
            return sorted(found)


def summary(values: list[float]) -> str:
    return (f"{len(values):>8} | {bench_api.percentile(values, 0.5):7.1f} | "
            f"{bench_api.percentile(values, 0.99):7.1f} | {values[-1]:7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artists", type=int, default=2000, help="artists (x 50 tracks)")
    parser.add_argument("--seconds", type=float, default=5.0, help="idle measuring window")
    args = parser.parse_args(argv)
    library.ARTISTS = args.artists
    bench_api.compile_sources()
    with tempfile.TemporaryDirectory(prefix="soulsync-bench-backup-") as tmp:
        data_dir = Path(tmp) / "data"
        print(f"loading {args.artists * 50:,} tracks ...", flush=True)
        asyncio.run(library.load_library(data_dir))
        key = asyncio.run(library.create_key(data_dir))
        db_mb = sum(p.stat().st_size for p in data_dir.glob("soulsync.db*")) / 2**20
        procs = bench_api.Processes()
        try:
            _daemon, base, _startup = bench_api.start_daemon(procs, data_dir)
            api = base + "/api/v1"
            deadline = time.perf_counter() + args.seconds
            idle = latencies_while(api, key, lambda: time.perf_counter() < deadline)

            started = time.perf_counter()
            request(base + B, key, "POST")
            state = {"running": True}

            def backup_running() -> bool:
                if state["running"]:
                    last = request(base + B, key)[1]["data"]["last"]
                    state["running"] = last["state"] == "running"
                    state["last"] = last
                    state["seconds"] = time.perf_counter() - started
                return state["running"]

            during = latencies_while(api, key, backup_running)
        finally:
            procs.stop_all()
    last = state["last"]
    if last["state"] != "completed":
        print(f"the backup {last['state']}: {last['error']}")
        return 1
    result = last["result"]
    print(f"\n{args.artists * 50:,} tracks; database {db_mb:.1f} MB, backup "
          f"{result['size_bytes'] / 2**20:.1f} MB, integrity {result['integrity']}; "
          f"backup took {state['seconds']:.2f} s (POST to finished, copy and integrity_check)")
    print(f"| {'requests (status, artist search)':34} | {'count':>8} | {'p50 ms':>7} | "
          f"{'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    print(f"| {'idle':34} | {summary(idle)} |")
    print(f"| {'while the backup ran':34} | {summary(during)} |")
    ok = during[-1] <= GOAL_MAX_MS
    print(f"slowest request during the backup: {during[-1]:.1f} ms (goal <= {GOAL_MAX_MS:g}): "
          f"{'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
