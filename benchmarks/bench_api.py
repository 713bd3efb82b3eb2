"""Benchmark the SoulSync daemon's HTTP API against a bare aiohttp handler.

What it measures, on the real daemon started as ``python -m soulsync_core serve``:

* start-up time: wall time from ``Popen`` to the first 200 answer of ``GET /ping`` (median of
  three fresh processes, each with its own empty data dir). The project's sources are
  byte-compiled first, as ``pip install`` does for an installed package: with
  ``PYTHONDONTWRITEBYTECODE`` set (some sandboxes set it) an editable checkout would otherwise
  recompile every module at every start, which no installed daemon does;
* idle memory: the daemon's resident set (``VmRSS``) about a second after the first API key
  was bootstrapped;
* throughput and latency (requests/s, p50, p99) at a fixed concurrency of authenticated
  ``GET /api/v1/system/status`` and ``GET /api/v1/api-keys``, compared with a bare aiohttp
  "hello" handler loaded the same way.

Why: SoulSync is meant to run on a small NAS next to other services, so it must start fast,
stay small when idle, and the cost of its request pipeline (middlewares, rate limiting, key
lookup in SQLite, envelope encoding, access log) must stay a modest multiple of what aiohttp
itself costs. The goals checked are: idle RSS <= 60 MB, start-up <= 1000 ms, and the status
endpoint at >= 50 % of the bare handler's requests/s.

The load generator runs in its own process (``--loadgen``: wrk when it is on PATH, else this
file re-invoked with an internal flag), so it never shares an event loop or the GIL with the
server under test. Per-IP rate limits are
raised to their maximum through the environment; every other setting keeps its default (the
access log stays on and goes to /dev/null). Only loopback addresses are used.

Run it from the repository root: ``.venv/bin/python benchmarks/bench_api.py [--seconds 5]
[--rounds 3]``; with ``--rounds N`` the targets are loaded N times, alternating, and each
target's best round counts (a shared or virtual machine only ever makes a round slower).
It is not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
WRK_REPORT = Path(__file__).resolve().parent / "wrk_report.lua"
LOADGEN_FLAG = "--_loadgen"
RATE_LIMIT_MAX = "1000000"
POLL_INTERVAL = 0.005
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# No proxy from the environment: every request goes straight to the loopback address.
_URLOPEN = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

GOAL_IDLE_RSS_MB = 60.0
GOAL_STARTUP_MS = 1000.0
GOAL_STATUS_RATIO = 0.5

HELLO_SERVER = """
import sys
from aiohttp import web

async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")

app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), access_log=None, print=None)
"""


# --------------------------------------------------------------------------- load generator


def process_tree(pid: int) -> list[int]:
    """Return ``pid`` and its descendants (the daemon's database reader processes among them)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def _process_cpu_seconds(pid: int) -> float | None:
    """Return user+system CPU seconds used so far by ``pid`` and its descendants (None when
    not readable)."""
    total = 0
    try:
        for member in process_tree(pid):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            # After the ")" closing the command name, utime and stime are the 12th and 13th.
            total += int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


async def _load(config: dict[str, Any]) -> dict[str, Any]:
    """Hit one URL with ``concurrency`` workers; return counts and latencies of the window."""
    url: str = config["url"]
    method: str = config.get("method", "GET")
    body: bytes | None = config["body"].encode() if config.get("body") else None
    headers: dict[str, str] = config["headers"]
    concurrency: int = config["concurrency"]
    server_pid: int = config["server_pid"]
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    begin = loop.time()
    window_start = begin + config["warmup"]
    window_end = window_start + config["seconds"]
    seconds: float = config["seconds"]

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            sent = loop.time()
            if sent >= window_end:
                return
            async with session.request(method, url, headers=headers, data=body) as response:
                answer = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{method} {url} answered {response.status}: {answer[:300]!r}")
            done = loop.time()
            if window_start <= done < window_end:
                latencies.append(done - sent)

    async def sample_cpu() -> tuple[float | None, float]:
        """Return the CPU shares of the server and of this process during the window."""
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        server0, own0 = _process_cpu_seconds(server_pid), time.process_time()
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        server1, own1 = _process_cpu_seconds(server_pid), time.process_time()
        server = None if server0 is None or server1 is None else (server1 - server0) / seconds
        return server, (own1 - own0) / seconds

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with asyncio.TaskGroup() as group:
            sampler = group.create_task(sample_cpu())
            for _ in range(concurrency):
                group.create_task(worker(session))
    server_cpu, own_cpu = sampler.result()
    return {"latencies": latencies, "seconds": seconds, "server_cpu": server_cpu,
            "loadgen_cpu": own_cpu}


def loadgen_main(raw_config: str) -> int:
    """Entry point of the load generator process: config JSON in argv, result JSON on stdout."""
    try:
        result = asyncio.run(_load(json.loads(raw_config)))
    except BaseException as exc:
        # TaskGroup wraps the first failure; report the innermost one.
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        print(f"load generator failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    return 0


# --------------------------------------------------------------------------- orchestration


@dataclass
class LoadResult:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    server_cpu: float | None
    loadgen_cpu: float


class Processes:
    """Every subprocess started by the benchmark, so that all of them are stopped on exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Terminate ``proc`` (SIGTERM, a graceful stop), kill it if it lingers, and reap it."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self._procs):
            self.stop(proc)


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def compile_sources() -> None:
    """Byte-compile the core and the plugins (``__pycache__``), as an installed package has."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "soulsync_core", "plugins"],
                   cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)


def daemon_env() -> dict[str, str]:
    """Return the environment of the daemon: defaults, except the per-IP rate limits."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOULSYNC_") and k != "JOURNAL_STREAM"}
    for category in ("SYSTEM", "READ", "WRITE"):
        env[f"SOULSYNC_API__RATE_LIMITS__{category}"] = RATE_LIMIT_MAX
    return env


def http_status(url: str, timeout: float = 0.2) -> int | None:
    """Return the status of ``GET url``, or None when nothing answers (yet)."""
    try:
        with _URLOPEN(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, TimeoutError):
        return None


def wait_for_200(proc: subprocess.Popen[bytes], url: str, started: float) -> float:
    """Poll ``url`` every few ms until it answers 200; return seconds since ``started``."""
    while True:
        if http_status(url) == 200:
            return time.perf_counter() - started
        if proc.poll() is not None:
            raise RuntimeError(f"server {proc.args!r} exited with code {proc.returncode} "
                               "before answering")
        if time.perf_counter() - started > START_TIMEOUT:
            raise RuntimeError(f"{url} gave no 200 within {START_TIMEOUT:g} s")
        time.sleep(POLL_INTERVAL)


def start_daemon(procs: Processes, data_dir: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start the daemon on a free port; return it, its base URL and its start-up seconds."""
    port = free_port()
    args = [sys.executable, "-m", "soulsync_core", "serve", "--data-dir", str(data_dir),
            "--host", HOST, "--port", str(port)]
    env = daemon_env()
    started = time.perf_counter()
    proc = procs.start(args, env)
    base = f"http://{HOST}:{port}"
    return proc, base, wait_for_200(proc, base + "/ping", started)


def bootstrap_key(base: str) -> str:
    """Create the first API key through the API and return it."""
    request = urllib.request.Request(
        base + "/api/v1/api-keys/bootstrap", data=json.dumps({"label": "bench"}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with _URLOPEN(request, timeout=5) as response:
        answer = json.load(response)
    if not answer.get("success"):
        raise RuntimeError(f"bootstrap failed: {answer}")
    return str(answer["data"]["key"])


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """Return a memory figure of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) in MB (MiB),
    summed over ``pid`` and its descendants (each reader process is a Python of its own)."""
    total = 0.0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) / 1024
                break
        else:
            raise RuntimeError(f"no {field} for pid {member}")
    return total


def rss_mb(pid: int) -> float:
    """Return the resident set size of ``pid`` and its descendants in MB."""
    return status_mb(pid, "VmRSS")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


def add_loadgen_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--loadgen`` (the load generator of :func:`run_load`) to a benchmark's parser."""
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk (C, ~10x cheaper per request, so on a small "
                        "machine less of the server's CPU goes to the client) or this file's "
                        "aiohttp one; auto takes wrk when it is on PATH (auto)")


def loadgen_name(args: argparse.Namespace) -> str:
    """Return the load generator that :func:`run_load` uses for ``args``: "wrk" or "python"."""
    choice = getattr(args, "loadgen", "python")
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--loadgen wrk: wrk is not on PATH (Debian: apt-get install wrk)")
    return choice


def run_load(name: str, url: str, headers: dict[str, str], server_pid: int,
             args: argparse.Namespace, method: str = "GET", body: str | None = None) -> LoadResult:
    """Load ``url`` (``method``, JSON ``body``) from a separate process; return what it measured."""
    if loadgen_name(args) == "wrk":
        return _run_wrk(name, url, headers, server_pid, args, method, body)
    config = {"url": url, "headers": headers, "concurrency": args.concurrency,
              "warmup": args.warmup, "seconds": args.seconds, "server_pid": server_pid,
              "method": method, "body": body}
    timeout = args.warmup + args.seconds + 60
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), LOADGEN_FLAG,
                           json.dumps(config)], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    result = json.loads(done.stdout)
    latencies = sorted(result["latencies"])
    if not latencies:
        raise RuntimeError(f"{name}: no request completed in the measuring window")
    return LoadResult(name, len(latencies) / result["seconds"], percentile(latencies, 0.50) * 1000,
                      percentile(latencies, 0.99) * 1000, len(latencies), result["server_cpu"],
                      result["loadgen_cpu"])


def _run_wrk(name: str, url: str, headers: dict[str, str], server_pid: int,
             args: argparse.Namespace, method: str, body: str | None) -> LoadResult:
    """:func:`run_load` with wrk: a warm-up run, then the measured one with the server's CPU
    sampled around it. wrk keeps ``concurrency`` connections busy from one thread; a request
    that is not answered 2xx/3xx fails the run, as in the aiohttp load generator."""
    command = ["wrk", "-t1", f"-c{args.concurrency}", "-s", str(WRK_REPORT), "--timeout", "10s"]
    for header, value in headers.items():
        command += ["-H", f"{header}: {value}"]
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": body or ""}

    def wrk(seconds: float) -> dict[str, Any]:
        done = subprocess.run([*command, f"-d{max(1, round(seconds))}s", url], capture_output=True,
                              text=True, timeout=seconds + 60, check=False, env=env)
        report = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
        if not report or not report[0].startswith("{"):
            raise RuntimeError(f"{name}: wrk failed: {(done.stderr or done.stdout).strip()}")
        figures = json.loads(report[0])
        if figures["status_errors"] or figures["socket_errors"]:
            raise RuntimeError(f"{name}: {method} {url}: {figures['status_errors']} answers not "
                               f"2xx/3xx, {figures['socket_errors']} socket errors")
        return figures

    if args.warmup > 0:
        wrk(args.warmup)
    server0, children0 = _process_cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = wrk(args.seconds)
    server1, children1 = _process_cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = figures["duration_us"] / 1e6
    server_cpu = None if server0 is None or server1 is None else (server1 - server0) / seconds
    own = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime)
    if not figures["requests"]:
        raise RuntimeError(f"{name}: no request completed in the measuring window")
    return LoadResult(name, figures["requests"] / seconds, figures["p50_us"] / 1000,
                      figures["p99_us"] / 1000, figures["requests"], server_cpu, own / seconds)


def print_report(rows: list[LoadResult], startups: list[float], idle_rss: float,
                 args: argparse.Namespace) -> None:
    """Print the results table and the goal lines."""
    bare = rows[0].requests_per_second
    header = ("target", "req/s", "p50 ms", "p99 ms", "vs bare", "srv CPU", "gen CPU",
              "srv CPU us/req")
    table = [header]
    for row in rows:
        cpu_per_request = (None if row.server_cpu is None
                           else row.server_cpu / row.requests_per_second * 1e6)
        table.append((row.name, f"{row.requests_per_second:.0f}", f"{row.p50_ms:.2f}",
                      f"{row.p99_ms:.2f}", f"{row.requests_per_second / bare:.2f}",
                      "n/a" if row.server_cpu is None else f"{row.server_cpu:.0%}",
                      f"{row.loadgen_cpu:.0%}",
                      "n/a" if cpu_per_request is None else f"{cpu_per_request:.0f}"))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    print(f"concurrency {args.concurrency}, warm-up {args.warmup:g} s, measured {args.seconds:g} s "
          f"per target, best of {args.rounds} round(s), load generator {loadgen_name(args)}")
    print("srv CPU / gen CPU: share of one core used by the server / the load generator; "
          "srv CPU us/req: server CPU time per request")
    for number, line in enumerate(table):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:],
                                                                          strict=True)]
        print("  ".join(cells))
        if number == 0:
            print("  ".join("-" * w for w in widths))
    if rows[0].loadgen_cpu >= 0.9:
        print(f"note: the load generator used {rows[0].loadgen_cpu:.0%} of a core on the bare "
              "handler, so that row is probably limited by the client, not the server, and the "
              "'vs bare' ratios are then upper bounds.")
    print()

    status_ratio = rows[1].requests_per_second / bare
    startup_ms = statistics.median(startups) * 1000
    runs = ", ".join(f"{s * 1000:.0f}" for s in startups)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"idle RSS: {idle_rss:.1f} MB (goal <= {GOAL_IDLE_RSS_MB:g}): "
          f"{verdict(idle_rss <= GOAL_IDLE_RSS_MB)}")
    print(f"start-up to first 200: {startup_ms:.0f} ms median of [{runs}] ms "
          f"(goal <= {GOAL_STARTUP_MS:g}): {verdict(startup_ms <= GOAL_STARTUP_MS)}")
    print(f"status endpoint throughput: {status_ratio:.0%} of bare aiohttp "
          f"(goal >= {GOAL_STATUS_RATIO:.0%}): {verdict(status_ratio >= GOAL_STATUS_RATIO)}")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(f"CPUs: {os.cpu_count()} (usable by this process: {affinity}); "
          f"Python {platform.python_version()} ({platform.python_implementation()}) "
          f"on {platform.machine()}")


def run(args: argparse.Namespace) -> int:
    """Run every measurement; all subprocesses are stopped whatever happens."""
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="soulsync-bench-") as tmp:
        try:
            compile_sources()
            startups: list[float] = []
            daemon = None
            base = ""
            for run_number in range(args.startup_runs):
                if daemon is not None:
                    procs.stop(daemon)
                daemon, base, seconds = start_daemon(procs, Path(tmp) / f"data{run_number}")
                startups.append(seconds)
                print(f"start-up {run_number + 1}: {seconds * 1000:.0f} ms", flush=True)
            assert daemon is not None

            key = bootstrap_key(base)
            time.sleep(1.0)
            idle_rss = rss_mb(daemon.pid)
            print(f"idle RSS: {idle_rss:.1f} MB", flush=True)

            port = free_port()
            hello_url = f"http://{HOST}:{port}/"
            started = time.perf_counter()
            hello = procs.start([sys.executable, "-c", HELLO_SERVER, HOST, str(port)])
            wait_for_200(hello, hello_url, started)

            auth = {"Authorization": f"Bearer {key}"}
            targets = [("bare aiohttp hello", hello_url, {}, hello.pid),
                       ("GET /api/v1/system/status (auth)", base + "/api/v1/system/status", auth,
                        daemon.pid),
                       ("GET /api/v1/api-keys (auth)", base + "/api/v1/api-keys", auth, daemon.pid)]
            # Rounds alternate the targets; the best round of each counts, since noise from the
            # machine (other load, a host stealing CPU) only ever makes a round slower.
            best: dict[str, LoadResult] = {}
            for round_number in range(args.rounds):
                for name, url, headers, pid in targets:
                    result = run_load(name, url, headers, pid, args)
                    print(f"round {round_number + 1}, {name}: "
                          f"{result.requests_per_second:.0f} req/s", flush=True)
                    previous = best.get(name)
                    if previous is None or result.requests_per_second > previous.requests_per_second:
                        best[name] = result
        finally:
            procs.stop_all()

    print_report([best[name] for name, *_ in targets], startups, idle_rss, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [LOADGEN_FLAG]:
        return loadgen_main(argv[1])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="measuring time per load target (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="warm-up time per load target before measuring (default 1)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="concurrent connections and workers (default 16)")
    add_loadgen_argument(parser)
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each target is loaded, alternating; the best counts (default 1)")
    parser.add_argument("--startup-runs", type=int, default=3,
                        help="fresh daemons whose start-up is timed (default 3)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.concurrency < 1 or args.startup_runs < 1 \
            or args.rounds < 1:
        parser.error("--seconds, --concurrency, --rounds and --startup-runs must be positive")
    try:
        return run(args)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench_api: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
