"""Soak the real daemon: many concurrent clients for minutes, with a scan and downloads running.

What it does (loopback only):

1. Writes a music folder of ``--tracks`` small tagged FLAC files (for the library scans) and
   starts the fake slskd (peers sharing real FLACs, so downloads move real files) and the fake
   iTunes in a thread of this process.
2. Starts the real daemon (``python -m soulsync_core serve``) on a fresh data dir, pointed at
   the fakes, every per-IP rate limit raised to its maximum (one loopback address stands for
   all clients here), and bootstraps a key.
3. Runs ``--clients`` (default 200) concurrent clients for ``--minutes`` (default 10). Nine in
   ten loop over a weighted mix of library reads, iTunes searches, download listings and
   requests, status and scan requests; one in ten holds the SSE stream (``GET /api/v1/events``)
   open for up to 30 s, reads it, and reconnects. A scan is started at the beginning and then
   asked for again by the mix (a 409 while one runs is an answer, not an error).
4. Samples the daemon's resident set (``VmRSS``) and open file descriptors
   (``/proc/<pid>/fd``) at start, after the warm-up (a fifth of the run, at most 60 s) and at
   the end, and prints one table per endpoint: requests, 2xx/4xx/5xx, client-side errors
   (refused, reset, timed out), p50 and p99 latency (for SSE: time to the response headers).

The goals: 0 answers 5xx and 0 client errors; RSS at the end within 25 MB of the warm-up
figure; open descriptors at the end within 20 of the warm-up figure (the clients' own
connections come and go, so a small difference is noise, a leak grows with the run).

The load generator shares this process with the fakes (the daemon runs alone in its own), so
on a small machine the latencies include this process's own waiting; on a shared machine run
it shorter and say so. Not part of the pytest run.

Run from the repository root: ``.venv/bin/python benchmarks/soak.py [--minutes 10]
[--clients 200] [--tracks 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT)]

import aiohttp
import mutagen.flac
from aiohttp import web
from aiolimiter import AsyncLimiter

from soulsync_core.config import RATE_LIMIT_CATEGORIES
from soulsync_core.downloads.models import STATUSES
from tests.audio import write_flac
from tests.daemon_process import clean_env, command, free_port
from tests.fakes import itunes, slskd
from tests.fakes.slskd import DEFAULT_API_KEY, Peer, SharedFile

HOST = "127.0.0.1"
T = TypeVar("T")
SSE_SHARE = 10          # one client in this many holds the event stream
SSE_HOLD_SECONDS = 30.0
REQUEST_TIMEOUT = 60.0  # a client waiting longer counts an error
DOWNLOADABLE = 40       # distinct tracks the fake peers share
RSS_GROWTH_MB = 25.0
# Searches the clients send per minute at most (another request is drawn instead): past
# itunes.requests_per_minute (at most 1000) the daemon holds searches back for iTunes' sake
# and answers 503 after the search timeout, by design, which is not what is soaked here.
SEARCHES_PER_MINUTE = 600
FD_GROWTH = 20


SEARCH_BUDGET = AsyncLimiter(SEARCHES_PER_MINUTE / 6, 10)


@dataclass
class Endpoint:
    name: str
    weight: float
    method: str
    path: str
    body: Any = None


def mix() -> list[Endpoint]:
    """The weighted request mix of the non-SSE clients (bodies drawn per request)."""
    return [
        Endpoint("GET /library/artists", 18, "GET", "/api/v1/library/artists?limit=50"),
        Endpoint("GET /library/albums", 10, "GET", "/api/v1/library/albums?limit=50"),
        Endpoint("GET /library/tracks", 14, "GET", "/api/v1/library/tracks?title=Track%200{page}&limit=50"),
        Endpoint("GET /library/stats", 4, "GET", "/api/v1/library/stats"),
        Endpoint("POST /search/tracks", 10, "POST", "/api/v1/search/tracks",
                 lambda: {"query": random.choice(["daft punk", "one more time", "discovery"]),
                          "source": "itunes", "limit": 10}),
        Endpoint("GET /downloads", 10, "GET", "/api/v1/downloads?limit=50"),
        Endpoint("POST /downloads", 1.5, "POST", "/api/v1/downloads", lambda: _download_body()),
        Endpoint("GET /system/status", 8, "GET", "/api/v1/system/status"),
        Endpoint("POST /library/scan", 0.3, "POST", "/api/v1/library/scan"),
    ]


def _download_body() -> dict[str, Any]:
    k = random.randrange(DOWNLOADABLE)
    return {"name": f"Soak Song {k:03d}", "artists": [f"Soak Band {k:03d}"],
            "album": f"Soak Album {k:03d}", "duration_ms": 3000, "force": True}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def failed(self, text: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 3:
            self.first_errors.append(text)


class FakesThread:
    """The fake slskd and iTunes served from one thread with its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def serve(self, app: web.Application) -> int:
        async def start() -> int:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, HOST, 0)
            await site.start()
            self.runners.append(runner)
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        return await self.call(start())

    async def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self.runners:
                await runner.cleanup()

        await self.call(cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def write_music(folder: Path, count: int) -> None:
    """``count`` tagged 1-second FLACs, 10 per album, 5 albums per artist."""
    for k in range(count):
        artist, album = k // 50, k // 10
        name = f"{k % 10 + 1:02d} - Track {k:05d}.flac"
        path = folder / f"Artist {artist:03d}" / f"Album {album:04d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_flac(path, seconds=1.0)
        tags = mutagen.flac.FLAC(path)
        tags.update({"artist": f"Artist {artist:03d}", "albumartist": f"Artist {artist:03d}",
                     "album": f"Album {album:04d}", "title": f"Track {k:05d}",
                     "tracknumber": str(k % 10 + 1), "date": "2001"})
        tags.save()


def peers() -> list[Peer]:
    shared = [Peer(f"soakpeer{p}", upload_speed=5_000_000) for p in range(4)]
    for k in range(DOWNLOADABLE):
        path = (rf"@@share\Music\Soak Band {k:03d}\Soak Album {k:03d}"
                rf"\01 - Soak Song {k:03d}.flac")
        shared[k % len(shared)].files.append(SharedFile(path, 3, 400_000, bit_depth=16,
                                                        sample_rate=44100))
    return shared


def daemon_env(slskd_port: int, itunes_port: int, downloads: Path, music: Path) -> dict[str, str]:
    env = {f"SOULSYNC_API__RATE_LIMITS__{name.upper()}": "1000000"
           for name, _default, _what in RATE_LIMIT_CATEGORIES}
    return env | {
        "SOULSYNC_PLUGINS": "slskd,itunes",
        "SOULSYNC_SOULSEEK__SLSKD_URL": f"http://{HOST}:{slskd_port}",
        "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
        "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads),
        "SOULSYNC_SOULSEEK__SEARCHES_PER_WINDOW": "1000",
        "SOULSYNC_SOULSEEK__SEARCH_WINDOW_SECONDS": "1",
        "SOULSYNC_ITUNES__BASE_URL": f"http://{HOST}:{itunes_port}",
        "SOULSYNC_ITUNES__REQUESTS_PER_MINUTE": "1000",
        "SOULSYNC_SEARCH__AUTO_ORDER": "itunes",
        "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
        "SOULSYNC_DOWNLOADS__MAX_CONCURRENT": "5",
        "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "0.5",
        "SOULSYNC_EVENTS__MAX_STREAMS_PER_KEY": "1000",
        "SOULSYNC_LOGGING__LEVEL": "WARNING",
        "SOULSYNC_LOGGING__ACCESS_LOG": "false",
    }


def start_daemon(root: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``soulsync serve`` on ``port`` with a data dir under ``root``; its output goes to
    ``root/daemon.log``."""
    with open(root / "daemon.log", "wb") as log:
        return subprocess.Popen(command("serve", "--data-dir", root / "data", "--host", HOST,
                                        "--port", str(port)),
                                env=clean_env(root / "home") | env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)


def sample(pid: int) -> tuple[float, int]:
    """Return (RSS in MB, open file descriptors) of process ``pid``."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))] if ordered else 0.0


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"soulsync serve exited with code {proc.returncode}")
            try:
                async with session.get(f"{base}/ping") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("soulsync serve did not answer /ping within 30 s")


async def request_loop(session: aiohttp.ClientSession, base: str, endpoints: list[Endpoint],
                       tallies: dict[str, Tally], stop_at: float) -> None:
    weights = [e.weight for e in endpoints]
    while time.monotonic() < stop_at:
        endpoint = random.choices(endpoints, weights)[0]
        if endpoint.name.startswith("POST /search"):
            if not SEARCH_BUDGET.has_capacity():
                continue
            await SEARCH_BUDGET.acquire()
        tally = tallies[endpoint.name]
        body = endpoint.body() if callable(endpoint.body) else endpoint.body
        path = endpoint.path.format(page=random.randint(1, 5))
        started = time.perf_counter()
        try:
            async with session.request(endpoint.method, base + path, json=body) as response:
                await response.read()
                tally.statuses[response.status] += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            tally.failed(f"{type(exc).__name__}: {exc}")
            continue
        tally.latencies.append(time.perf_counter() - started)


async def sse_loop(session: aiohttp.ClientSession, base: str, tally: Tally, stop_at: float) -> None:
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            async with session.get(f"{base}/api/v1/events") as response:
                tally.statuses[response.status] += 1
                tally.latencies.append(time.perf_counter() - started)
                until = min(stop_at, time.monotonic() + random.uniform(5, SSE_HOLD_SECONDS))
                while time.monotonic() < until:
                    try:
                        async with asyncio.timeout(max(0.1, until - time.monotonic())):
                            if not await response.content.readany():
                                break
                    except TimeoutError:
                        break
        except (aiohttp.ClientError, OSError) as exc:
            tally.failed(f"{type(exc).__name__}: {exc}")


async def soak(args: argparse.Namespace, root: Path) -> int:
    music, downloads = root / "music", root / "slskd-downloads"
    music.mkdir()
    print(f"writing {args.tracks} FLAC files …", flush=True)
    await asyncio.to_thread(write_music, music, args.tracks)
    fakes = FakesThread()
    slskd_port = await fakes.serve(slskd.make_app(downloads, peers=peers(), search_seconds=0.05,
                                                  tick_seconds=0.05))
    itunes_port = await fakes.serve(itunes.make_app())
    port = free_port()
    proc = start_daemon(root, port, daemon_env(slskd_port, itunes_port, downloads, music))
    base = f"http://{HOST}:{port}"
    try:
        await wait_ready(base, proc)
        async with aiohttp.ClientSession() as boot:
            async with boot.post(f"{base}/api/v1/api-keys/bootstrap", json={"label": "soak"}) as r:
                key = (await r.json())["data"]["key"]
            headers = {"Authorization": f"Bearer {key}"}
            async with boot.post(f"{base}/api/v1/library/scan", headers=headers) as r:
                assert r.status == 202, await r.text()
        samples = {"start": sample(proc.pid)}
        duration = args.minutes * 60
        warmup = min(60.0, duration / 5)
        stop_at = time.monotonic() + duration
        endpoints = mix()
        tallies: dict[str, Tally] = {e.name: Tally() for e in endpoints}
        tallies["GET /events (SSE)"] = Tally()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT,
                                        sock_read=REQUEST_TIMEOUT)
        print(f"{args.clients} clients for {args.minutes:g} min against {base} …", flush=True)
        async with aiohttp.ClientSession(connector=connector, headers=headers,
                                         timeout=timeout) as session:
            tasks = [asyncio.create_task(
                sse_loop(session, base, tallies["GET /events (SSE)"], stop_at) if i % SSE_SHARE == 0
                else request_loop(session, base, endpoints, tallies, stop_at))
                for i in range(args.clients)]
            await asyncio.sleep(warmup)
            samples["after warm-up"] = sample(proc.pid)
            await asyncio.gather(*tasks)
        await asyncio.sleep(1)  # let the daemon close the clients' connections
        samples["end"] = sample(proc.pid)
        async with aiohttp.ClientSession(headers=headers) as check:
            completed = {}
            for status in STATUSES:
                async with check.get(f"{base}/api/v1/downloads?status={status}&limit=1") as r:
                    completed[status] = (await r.json())["pagination"]["total"]
            async with check.get(f"{base}/api/v1/library/stats") as r:
                library = (await r.json())["data"]
        return report(args, tallies, samples, completed, library)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        await fakes.stop()


def report(args: argparse.Namespace, tallies: dict[str, Tally],
           samples: dict[str, tuple[float, int]], downloads: dict[str, int], library: Any) -> int:
    print()
    print(f"soak: {args.clients} clients, {args.minutes:g} min, {args.tracks} library files, "
          f"{os.cpu_count()} CPUs (shared machine: figures are upper bounds)")
    print(f"{'endpoint':<24} {'requests':>9} {'2xx':>8} {'4xx':>6} {'5xx':>5} {'errors':>6} "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    fives = errors = 0
    for name, tally in tallies.items():
        count = sum(tally.statuses.values())
        ok = sum(n for s, n in tally.statuses.items() if 200 <= s < 300)
        four = sum(n for s, n in tally.statuses.items() if 400 <= s < 500)
        five = sum(n for s, n in tally.statuses.items() if s >= 500)
        fives, errors = fives + five, errors + tally.errors
        print(f"{name:<24} {count:>9} {ok:>8} {four:>6} {five:>5} {tally.errors:>6} "
              f"{percentile(tally.latencies, 0.5) * 1000:>8.1f} "
              f"{percentile(tally.latencies, 0.99) * 1000:>8.1f}")
        for text in tally.first_errors:
            print(f"    error: {text}")
    print()
    print(f"{'daemon':<16} {'RSS MB':>8} {'open fds':>9}")
    for when, (rss, fds) in samples.items():
        print(f"{when:<16} {rss:>8.1f} {fds:>9}")
    print()
    states = ", ".join(f"{status} {count}" for status, count in downloads.items() if count)
    print(f"downloads by state: {states or 'none'}")
    print(f"library: {json.dumps(library)}")
    rss_growth = samples["end"][0] - samples["after warm-up"][0]
    fd_growth = samples["end"][1] - samples["after warm-up"][1]
    verdict = fives == 0 and errors == 0 and rss_growth <= RSS_GROWTH_MB and fd_growth <= FD_GROWTH
    print(f"5xx: {fives}, client errors: {errors}, RSS growth after warm-up: {rss_growth:+.1f} MB "
          f"(bound {RSS_GROWTH_MB:g}), fd growth: {fd_growth:+d} (bound {FD_GROWTH}) -> "
          f"{'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--tracks", type=int, default=300, help="FLAC files in the music folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soulsync-soak-") as root:
        return asyncio.run(soak(args, Path(root)))


if __name__ == "__main__":
    sys.exit(main())
