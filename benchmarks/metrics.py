"""Benchmark the cost of the HTTP metrics: ``GET /api/v1/system/status`` with and without the
middleware that counts and times every request, and the cost of a ``GET /metrics`` scrape.

Two servers run side by side in the same run, each the daemon's own app (``create_app`` on a
``Core`` in a fresh data dir, no plugins) in its own process: one as built, one with
:func:`soulsync_core.api.metrics.measure_requests` taken out of its middleware list before it
starts. Both run with the access log off, so the difference between them is the
instrumentation alone. The load generator is the one of ``bench_api.py`` (its own process, 16
concurrent connections, a warm-up then a measuring window); rounds alternate the targets and
each target's best round counts, as there.

Run it from the repository root: ``.venv/bin/python benchmarks/metrics.py [--seconds 5]
[--rounds 3]``. It is not part of the pytest run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import bench_api
from aiohttp import web

from soulsync_core.api.app import create_app
from soulsync_core.api.metrics import measure_requests
from soulsync_core.core import Core

SERVE_FLAG = "--_serve"


def serve_main(data_dir: str, port: str, variant: str) -> int:
    """Entry point of a server process: the daemon's app, with or without the metrics middleware."""

    async def build() -> web.Application:
        core = await Core.open(Path(data_dir), environ=bench_api.daemon_env(), entry_points=False)
        app = create_app(core)
        if variant == "without":
            app.middlewares.remove(measure_requests)
        return app

    web.run_app(build(), host=bench_api.HOST, port=int(port), access_log=None, print=None)
    return 0


def start_server(procs: bench_api.Processes, data_dir: Path, variant: str) -> tuple[int, str]:
    """Start a server process; return its pid and base URL once ``/ping`` answers."""
    port = bench_api.free_port()
    started = time.perf_counter()
    proc = procs.start([sys.executable, str(Path(__file__).resolve()), SERVE_FLAG, str(data_dir),
                        str(port), variant], bench_api.daemon_env())
    base = f"http://{bench_api.HOST}:{port}"
    bench_api.wait_for_200(proc, base + "/ping", started)
    return proc.pid, base


def print_report(rows: list[bench_api.LoadResult], args: argparse.Namespace) -> None:
    header = ("target", "req/s", "p50 ms", "p99 ms", "srv CPU", "srv CPU us/req")
    table = [header]
    per_request: dict[str, float | None] = {}
    for row in rows:
        cpu = None if row.server_cpu is None else row.server_cpu / row.requests_per_second * 1e6
        per_request[row.name] = cpu
        table.append((row.name, f"{row.requests_per_second:.0f}", f"{row.p50_ms:.2f}",
                      f"{row.p99_ms:.2f}",
                      "n/a" if row.server_cpu is None else f"{row.server_cpu:.0%}",
                      "n/a" if cpu is None else f"{cpu:.0f}"))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    print(f"concurrency {args.concurrency}, warm-up {args.warmup:g} s, measured {args.seconds:g} s "
          f"per target, best of {args.rounds} round(s)")
    for number, line in enumerate(table):
        print("  ".join([line[0].ljust(widths[0])]
                        + [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]))
        if number == 0:
            print("  ".join("-" * w for w in widths))
    with_row, without_row = rows[0], rows[1]
    ratio = with_row.requests_per_second / without_row.requests_per_second
    print()
    print(f"status req/s with the metrics middleware: {ratio:.1%} of without "
          f"({1 - ratio:+.1%} overhead)")
    with_cpu, without_cpu = per_request[with_row.name], per_request[without_row.name]
    if with_cpu is not None and without_cpu is not None:
        print(f"server CPU per request: {with_cpu - without_cpu:+.0f} us with the middleware")


def run(args: argparse.Namespace) -> int:
    procs = bench_api.Processes()
    with tempfile.TemporaryDirectory(prefix="soulsync-metrics-bench-") as tmp:
        try:
            bench_api.compile_sources()
            servers = {}
            for variant in ("with", "without"):
                pid, base = start_server(procs, Path(tmp) / variant, variant)
                servers[variant] = (pid, base, {"Authorization": f"Bearer {bench_api.bootstrap_key(base)}"})
            targets = [(f"GET /api/v1/system/status, {variant} metrics middleware",
                        base + "/api/v1/system/status", auth, pid)
                       for variant, (pid, base, auth) in servers.items()]
            pid, base, auth = servers["with"]
            targets.append(("GET /metrics (auth)", base + "/metrics", auth, pid))
            best: dict[str, bench_api.LoadResult] = {}
            for round_number in range(args.rounds):
                for name, url, headers, pid in targets:
                    result = bench_api.run_load(name, url, headers, pid, args)
                    print(f"round {round_number + 1}, {name}: "
                          f"{result.requests_per_second:.0f} req/s", flush=True)
                    previous = best.get(name)
                    if previous is None or result.requests_per_second > previous.requests_per_second:
                        best[name] = result
        finally:
            procs.stop_all()
    print_report([best[name] for name, *_ in targets], args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [SERVE_FLAG]:
        return serve_main(*argv[1:4])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="measuring time per load target (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="warm-up time per load target before measuring (default 1)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="concurrent connections of the load generator (default 16)")
    bench_api.add_loadgen_argument(parser)
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternating rounds; each target's best round counts (default 1)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
