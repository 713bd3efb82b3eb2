"""Benchmark metadata search through the API against the fake services (no added latency).

What it measures, on the real daemon (``python -m soulsync_core serve``) with the real iTunes,
Spotify and Hydrabase plugins pointed at the fakes of ``tests/fakes`` (each its own process):

* requests/s, p50 and p99 at a fixed concurrency of ``POST /api/v1/search/tracks`` with an
  explicit ``"source": "spotify"`` (one provider, no chain) and with ``"source": "auto"``
  whose first choice is Spotify (the chain in front of the same provider), with
  ``GET /api/v1/system/status`` as the cost of the API pipeline alone;
* the chain's own overhead in-process: ``MetadataSearch.search(..., "auto")`` against calling
  the provider directly, with an instant stub provider, in microseconds per call.

The API's per-IP search limit is raised through the environment; Spotify's outbound limit is
set to its maximum (6,000/min, whose bucket holds a whole run). Hydrabase is configured but
last in the order: it sends at most 10 requests/s to a P2P network by design, which would
measure that limit rather than SoulSync.

Run from the repository root: ``.venv/bin/python benchmarks/bench_search.py [--seconds 5]``.
It is not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.fakes
sys.path.insert(0, str(HERE))  # the sibling bench_api script

import bench_api

from soulsync_core.health import ServiceHealth
from soulsync_core.models import Track
from soulsync_core.search import MetadataSearch
from tests.fakes.spotify import CLIENT_ID, CLIENT_SECRET

HOST = bench_api.HOST
QUERY = "daft punk"
MICRO_CALLS = 20_000


def start_fakes(procs: bench_api.Processes) -> dict[str, str]:
    """Start the three fakes; return their base URLs once each answers."""
    urls: dict[str, str] = {}
    for name in ("itunes", "spotify", "hydrabase"):
        port = bench_api.free_port()
        proc = procs.start([sys.executable, "-m", f"tests.fakes.{name}", "--host", HOST,
                            "--port", str(port)])
        base = f"http://{HOST}:{port}"
        bench_api.wait_for_200(proc, base + "/_fake/faults", time.perf_counter())
        urls[name] = base
    return urls


def daemon_env(urls: dict[str, str]) -> dict[str, str]:
    env = bench_api.daemon_env()
    env.update({
        "SOULSYNC_API__RATE_LIMITS__SEARCH": bench_api.RATE_LIMIT_MAX,
        "SOULSYNC_SEARCH__AUTO_ORDER": "spotify,itunes,hydrabase",
        "SOULSYNC_SPOTIFY__CLIENT_ID": CLIENT_ID,
        "SOULSYNC_SPOTIFY__CLIENT_SECRET": CLIENT_SECRET,
        "SOULSYNC_SPOTIFY__API_URL": urls["spotify"],
        "SOULSYNC_SPOTIFY__ACCOUNTS_URL": urls["spotify"],
        "SOULSYNC_SPOTIFY__REQUESTS_PER_MINUTE": "6000",
        "SOULSYNC_ITUNES__BASE_URL": urls["itunes"],
        "SOULSYNC_HYDRABASE__URL": urls["hydrabase"].replace("http://", "ws://") + "/",
        "SOULSYNC_HYDRABASE__API_KEY": "test-key",
    })
    return env


def start_daemon(procs: bench_api.Processes, data_dir: Path,
                 env: dict[str, str]) -> tuple[Any, str]:
    port = bench_api.free_port()
    proc = procs.start([sys.executable, "-m", "soulsync_core", "serve", "--data-dir", str(data_dir),
                        "--host", HOST, "--port", str(port)], env)
    base = f"http://{HOST}:{port}"
    bench_api.wait_for_200(proc, base + "/ping", time.perf_counter())
    return proc, base


class InstantProvider:
    """A provider that answers at once, so only the chain's own work is timed."""

    name = "instant"
    configured = True
    result = [Track("1", "x", ["a"], "b")]

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        return self.result


class Settings:
    def get(self, key: str) -> Any:
        return {"search.auto_order": ["instant"], "search.timeout_seconds": 10.0}[key]


async def chain_overhead() -> tuple[float, float]:
    """Return (µs per direct provider call, µs per call through the auto chain)."""
    provider = InstantProvider()
    search = MetadataSearch([provider], Settings(), ServiceHealth())  # type: ignore[list-item]
    results = []
    for call in (lambda: provider.search_tracks(QUERY, 5),
                 lambda: search.search("tracks", QUERY, 5, "auto")):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(MICRO_CALLS):
                await call()
            best = min(best, time.perf_counter() - started)
        results.append(best / MICRO_CALLS * 1e6)
    return results[0], results[1]


def run(args: argparse.Namespace) -> int:
    procs = bench_api.Processes()
    rows: list[bench_api.LoadResult] = []
    try:
        urls = start_fakes(procs)
        with tempfile.TemporaryDirectory(prefix="soulsync-bench-search-") as tmp:
            proc, base = start_daemon(procs, Path(tmp), daemon_env(urls))
            key = bench_api.bootstrap_key(base)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            targets = [
                ("GET /api/v1/system/status", "GET", "/api/v1/system/status", None),
                ("search tracks, source=spotify", "POST", "/api/v1/search/tracks",
                 {"query": QUERY, "limit": 5, "source": "spotify"}),
                ("search tracks, source=auto", "POST", "/api/v1/search/tracks",
                 {"query": QUERY, "limit": 5}),
            ]
            for name, method, path, body in targets:
                rows.append(bench_api.run_load(name, base + path, headers, proc.pid, args, method,
                                               None if body is None else json.dumps(body)))
            rss = bench_api.rss_mb(proc.pid)
    finally:
        procs.stop_all()
    direct_us, chain_us = asyncio.run(chain_overhead())

    print(f"\nconcurrency {args.concurrency}, warm-up {args.warmup:g} s, measured {args.seconds:g} s "
          "per target; fakes answer with no added latency")
    print(f"{'target':32}  {'req/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}  {'srv CPU us/req':>14}")
    print(f"{'-' * 32}  {'-' * 7}  {'-' * 7}  {'-' * 7}  {'-' * 14}")
    for row in rows:
        per_request = ("n/a" if row.server_cpu is None
                       else f"{row.server_cpu / row.requests_per_second * 1e6:.0f}")
        print(f"{row.name:32}  {row.requests_per_second:7.0f}  {row.p50_ms:7.2f}  {row.p99_ms:7.2f}"
              f"  {per_request:>14}")
    direct, auto = rows[1], rows[2]
    print(f"\nauto vs direct over HTTP: {auto.requests_per_second / direct.requests_per_second:.2f}x "
          f"throughput, p50 {auto.p50_ms - direct.p50_ms:+.2f} ms")
    print(f"chain overhead in-process: direct call {direct_us:.2f} us, through auto {chain_us:.2f} us "
          f"(+{chain_us - direct_us:.2f} us per search; best of 3 x {MICRO_CALLS} calls)")
    print(f"daemon RSS after the run: {rss:.1f} MB")
    print(f"CPUs: {bench_api.os.cpu_count()}; Python {sys.version.split()[0]}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    bench_api.add_loadgen_argument(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
