"""Benchmark the event stream: many SSE clients while downloads complete against the fake slskd.

What it measures:

1. **Delivery latency**: for every event every client receives, the time from
   ``EventBus.publish`` in the daemon to the moment the client has read the whole SSE message
   (both stamp ``time.time()``; the clients run in another process on the same machine).
2. **Daemon CPU** (``time.process_time()`` of the daemon's process: the event loop, the SQLite
   thread, and the fake slskd's thread, which does the same work in both rounds) and
   **RSS** (``VmRSS``) while ``--downloads`` downloads run from request to the library,
   first without clients, then with ``--clients`` SSE clients connected
   (``GET /api/v1/events?types=download.*``).

Set-up: one daemon (Core + the aiohttp app on a loopback port) in this process, the fake
slskd in a thread (as in ``benchmarks/downloads.py``, whose helpers this reuses), the clients
in a subprocess (this script with ``--worker``): one aiohttp session, one connection each.

Run from the repository root: ``.venv/bin/python benchmarks/events.py`` (about 30 s).
Only loopback addresses are used. Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import aiohttp
from aiohttp import web
from downloads import HOST, FakeThread, catalogue, environ, percentile, wanted

import soulsync_slskd.plugin
from soulsync_core.api.app import create_app
from soulsync_core.api.events import EVENT_STREAMS
from soulsync_core.core import Core
from soulsync_core.events import EventBus

TICKS = 23  # queued, initializing, 20 in-progress steps, completed (as benchmarks/downloads.py)

# When each event was published (time.time()), and its type, by id.
PUBLISHED_AT: dict[int, float] = {}
TYPES: dict[int, str] = {}
SIZES: dict[str, list[int]] = {}
_publish = EventBus.publish


def _timed_publish(self: EventBus, type: str, data: Any, *, key: object = None) -> Any:
    event = _publish(self, type, data, key=key)
    if event is not None:
        PUBLISHED_AT[event.id] = time.time()
        TYPES[event.id] = event.type
        SIZES.setdefault(event.type, []).append(len(event.json()))
    return event


EventBus.publish = _timed_publish  # type: ignore[method-assign]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run_downloads(core: Core, server: FakeThread, first: int, count: int) -> dict[str, float]:
    """Request ``count`` downloads and drive them into the library; return CPU and wall time."""
    service = core.downloads
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(first, first + count):
        await service.request(wanted(k))
    await service.settle()
    for _ in range(TICKS):
        await server.call(server.fake.tick())
        await service.poll()
    await service.settle()
    done = await service.store.count(("completed",))
    assert done >= first + count, f"only {done} downloads completed"
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


async def run(clients: int, downloads: int, processes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="soulsync-bench-events-") as folder:
        root = Path(folder)
        music = root / "music"
        music.mkdir()
        server = FakeThread(root / "slskd", catalogue(2 * downloads))
        await server.start()
        env = environ(server.port, root / "slskd", music, downloads)
        env.update({"SOULSYNC_API__RATE_LIMITS__SYSTEM": str(10 * clients),
                    "SOULSYNC_EVENTS__MAX_STREAMS_PER_KEY": str(2 * clients)})
        core = await Core.open(root / "data", environ=env, entry_points=False,
                               plugins=[("slskd", soulsync_slskd.plugin)])
        app = create_app(core)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        key = (await core.keys.create("benchmark")).key
        try:
            rss_idle = rss_mb()
            alone = await run_downloads(core, server, 0, downloads)
            rss_alone = rss_mb()

            # The clients are spread over processes, so that reading does not lag behind.
            outputs = [root / f"received-{n}.json" for n in range(processes)]
            shares = [clients // processes + (n < clients % processes) for n in range(processes)]
            workers = [await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", "--clients", str(share), "--port", str(port),
                "--key", key, "--expect", str(downloads), "--out", str(out))
                for share, out in zip(shares, outputs, strict=True)]
            streams = app[EVENT_STREAMS]
            for _ in range(3000):
                if len(streams.open_streams()) >= clients:
                    break
                await asyncio.sleep(0.01)
            assert len(streams.open_streams()) >= clients, "the clients did not all connect"
            rss_connected = rss_mb()
            subscriptions = streams.open_streams()
            PUBLISHED_AT.clear()
            with_clients = await run_downloads(core, server, downloads, downloads)
            rss_with = rss_mb()
            for worker in workers:
                code = await asyncio.wait_for(worker.wait(), 120)
                assert code == 0, f"a client worker exited with {code}"
            lost = sum(s.dropped for s in subscriptions)
        finally:
            await runner.cleanup()
            await server.stop()
        got: dict[str, list[Any]] = {"received": [], "ids": []}
        for out in outputs:
            part = json.loads(out.read_text())
            got["received"] += part["received"]
            got["ids"] = sorted(set(got["ids"]) | set(part["ids"]))
        by_type: dict[str, list[float]] = {}
        for i, t in got["received"]:
            if i in PUBLISHED_AT:
                by_type.setdefault(TYPES[i], []).append((t - PUBLISHED_AT[i]) * 1000)
        latencies = [ms for values in by_type.values() for ms in values]
    print()
    print(f"{downloads} downloads, request -> in the library, against the fake slskd")
    print(f"{'round':<22} {'CPU s':>7} {'wall s':>7} {'RSS MB before':>14} {'after':>7}")
    print(f"{'no SSE clients':<22} {alone['cpu_s']:>7.2f} {alone['wall_s']:>7.2f} "
          f"{rss_idle:>14.1f} {rss_alone:>7.1f}")
    print(f"{f'{clients} SSE clients':<22} {with_clients['cpu_s']:>7.2f} "
          f"{with_clients['wall_s']:>7.2f} {rss_connected:>14.1f} {rss_with:>7.1f}")
    print()
    print(f"RSS growth from connecting {clients} clients: {rss_connected - rss_alone:.1f} MB; "
          f"after their round: {rss_with - rss_alone:.1f} MB")
    print()
    print("Delivery latency, publish -> client has read the message (ms)")
    print(f"{'messages':>9} {'events':>7} {'p50':>7} {'p99':>7} {'max':>7} {'lost':>5}   "
          f"type (mean JSON bytes)")
    print(f"{len(latencies):>9} {len(got['ids']):>7} {percentile(latencies, 0.5):>7.1f} "
          f"{percentile(latencies, 0.99):>7.1f} {max(latencies):>7.1f} {lost:>5}   all")
    for kind, values in sorted(by_type.items()):
        print(f"{len(values):>9} {len(values) // clients:>7} {percentile(values, 0.5):>7.1f} "
              f"{percentile(values, 0.99):>7.1f} {max(values):>7.1f} {'':>5}   {kind} "
              f"({statistics.fmean(SIZES[kind]):.0f})")
    print(f"(mean {statistics.fmean(latencies):.1f} ms; CPU counts the daemon's whole process, "
          "the fake slskd thread included)")


async def worker(clients: int, port: int, key: str, expect: int, out: Path) -> None:
    """Hold ``clients`` streams; stamp each message; end when each saw ``expect`` completions."""
    received: list[tuple[int, float]] = []
    url = f"http://{HOST}:{port}/api/v1/events"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        async def client() -> None:
            completed = 0
            async with session.get(url, params={"types": "download.*"},
                                   headers={"Authorization": f"Bearer {key}"}) as response:
                assert response.status == 200, response.status
                # Whole chunks, split at the blank line that ends each message: the clients
                # must cost little, since their delay counts in the latency.
                pending = b""
                async for chunk in response.content.iter_any():
                    now = time.time()
                    pending += chunk
                    *messages, pending = pending.split(b"\r\n\r\n")
                    for message in messages:
                        if message.startswith(b"id: "):
                            received.append((int(message[4:message.index(b"\r")]), now))
                            completed += b"event: download.completed\r" in message
                    if completed >= expect:
                        return

        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 110)
    report = json.dumps({"received": received, "ids": sorted({i for i, _ in received})})
    await asyncio.to_thread(out.write_text, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="SSE clients (default 200)")
    parser.add_argument("--downloads", type=int, default=50, help="downloads per round (default 50)")
    parser.add_argument("--processes", type=int, default=2,
                        help="client processes the clients are spread over (default 2)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args.clients, args.port, args.key, args.expect, args.out))
    else:
        os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        asyncio.run(run(args.clients, args.downloads, args.processes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
