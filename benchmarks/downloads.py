"""Benchmark the download monitor with many downloads in flight against the fake slskd.

What it measures, for 50, 100 and 200 downloads in flight (``--sizes``):

1. **slskd requests per monitoring tick**: the fake slskd's own request counters around each
   ``DownloadService.poll()`` (one tick). The monitor must ask for the whole transfer list
   once per tick, so the count must not grow with the number of downloads (O(1), not O(n)).
2. **CPU per tick**: ``time.process_time()`` (the whole process: the event loop, the SQLite
   thread that saves the progress of every download in one transaction) and
   ``time.thread_time()`` of the event loop's thread alone, around each tick. The fake slskd
   runs in its own thread with its own event loop and is *not* counted by the second figure
   (it is by the first: it answers the tick's request).
3. **Completed -> in the library**: for every download, the time from the moment the fake
   marks the transfer ``Completed, Succeeded`` (its real FLAC file written in the download
   folder) to the completion listener (``DownloadService.on_completed``) — located, checked
   with mutagen, copied, tagged, renamed into the music folder and indexed in the library.
   The monitor polls right after the completing tick here; with the default
   ``downloads.monitor_interval_seconds`` (2 s) up to one interval comes on top.

Set-up per size: a fresh data dir, music folder and fake slskd whose catalogue holds one
3-second FLAC (400 kB, padded) per wanted track, spread over 20 peers; every download is
requested through ``DownloadService.request`` with ``downloads.max_concurrent`` equal to the
size, searched and enqueued (the fake's searches take 10 ms), then the transfers are moved
step by step: 20 ``InProgress`` steps each, a monitoring tick measured after every step.

Run from the repository root: ``.venv/bin/python benchmarks/downloads.py`` (about a minute).
Only loopback addresses are used. Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

from aiohttp import web

import soulsync_slskd.plugin
from soulsync_core.core import Core
from soulsync_core.downloads.models import Download, Wanted
from tests.fakes import slskd as fake_slskd
from tests.fakes.slskd import DEFAULT_API_KEY, Peer, SharedFile, SlskdFake

HOST = "127.0.0.1"
PEERS = 20
SECONDS = 3
FLAC_SIZE = 400_000
IN_PROGRESS_STEPS = 20
TRANSFER_LIST = ("GET", "/api/v0/transfers/downloads")

T = TypeVar("T")

# When the fake marks a transfer finished (perf_counter, shared by both threads).
FINISHED_AT: dict[str, float] = {}
_finish = fake_slskd.FakeTransfer.finish


def _timed_finish(self: fake_slskd.FakeTransfer, outcome: str, exception: str | None = None) -> None:
    FINISHED_AT[self.id] = time.perf_counter()
    _finish(self, outcome, exception)


fake_slskd.FakeTransfer.finish = _timed_finish  # type: ignore[method-assign]


def catalogue(count: int) -> list[Peer]:
    peers = [Peer(f"peer{p:02d}", upload_speed=5_000_000) for p in range(PEERS)]
    for k in range(count):
        path = rf"@@share\Music\Band {k:03d}\Album {k:03d}\01 - Song Number {k:03d}.flac"
        peers[k % PEERS].files.append(SharedFile(path, SECONDS, FLAC_SIZE, bit_depth=16,
                                                 sample_rate=44100))
    return peers


def wanted(k: int) -> Wanted:
    return Wanted(f"Song Number {k:03d}", [f"Band {k:03d}"], album=f"Album {k:03d}",
                  duration_ms=SECONDS * 1000, track_number=1, track_id=f"{k}", source="itunes")


class FakeThread:
    """The fake slskd served from its own thread and event loop, on a loopback port."""

    def __init__(self, downloads: Path, peers: list[Peer]):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = fake_slskd.make_app(downloads, peers=peers, search_seconds=0.01)
        self.fake: SlskdFake = self.app[fake_slskd.SLSKD]
        self.fake.steps = IN_PROGRESS_STEPS
        self.runner = web.AppRunner(self.app, access_log=None)
        self.port = 0

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coro`` on the fake's loop; await the result from the benchmark's loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def start(self) -> None:
        async def serve() -> int:
            await self.runner.setup()
            site = web.TCPSite(self.runner, HOST, 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self.port = await self.call(serve())

    async def stop(self) -> None:
        await self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def count(self, method: str, route: str) -> int:
        return Counter(list(self.fake.requests))[(method, route)]

    def total(self) -> int:
        return len(self.fake.requests)


def environ(port: int, downloads: Path, music: Path, size: int) -> dict[str, str]:
    return {
        "SOULSYNC_SOULSEEK__SLSKD_URL": f"http://{HOST}:{port}",
        "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
        "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads),
        "SOULSYNC_SOULSEEK__POLL_INTERVAL_SECONDS": "0.01",
        "SOULSYNC_SOULSEEK__SEARCHES_PER_WINDOW": "1000",
        "SOULSYNC_SOULSEEK__SEARCH_WINDOW_SECONDS": "1",
        "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
        "SOULSYNC_DOWNLOADS__MAX_CONCURRENT": str(size),
        "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "300",  # ticks are the benchmark's
        "SOULSYNC_DOWNLOADS__FILE_WAIT_SECONDS": "5",
        "SOULSYNC_LOGGING__LEVEL": "WARNING",
        "SOULSYNC_LOGGING__ACCESS_LOG": "false",
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


async def run_size(size: int, root: Path) -> dict[str, Any]:
    downloads, music, data = root / "slskd", root / "music", root / "data"
    music.mkdir(parents=True)
    server = FakeThread(downloads, catalogue(size))
    await server.start()
    core = await Core.open(data, environ=environ(server.port, downloads, music, size),
                           entry_points=False, plugins=[("slskd", soulsync_slskd.plugin)])
    await core.start()
    service = core.downloads
    done_at: dict[str, float] = {}

    def completed(download: Download) -> None:
        done_at[download.transfer_id or ""] = time.perf_counter()

    service.on_completed(completed)
    try:
        started = time.perf_counter()
        for k in range(size):
            await service.request(wanted(k))
        await service.settle()
        setup_s = time.perf_counter() - started
        in_flight = await service.store.count(("downloading",))
        assert in_flight == size, f"{in_flight} of {size} downloads reached slskd"

        ticks: list[dict[str, float]] = []
        for _ in range(3 + IN_PROGRESS_STEPS - 1):  # queued, initializing, in progress
            await server.call(server.fake.tick())
            lists, total = server.count(*TRANSFER_LIST), server.total()
            cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
            await service.poll()
            ticks.append({"lists": server.count(*TRANSFER_LIST) - lists,
                          "requests": server.total() - total,
                          "cpu_ms": (time.process_time() - cpu) * 1000,
                          "loop_ms": (time.thread_time() - loop_cpu) * 1000,
                          "wall_ms": (time.perf_counter() - wall) * 1000})
        still = await service.store.count(("downloading",))
        assert still == size, f"only {still} downloads still in flight after the ticks"

        await server.call(server.fake.tick())  # the last step: every transfer completes
        await service.poll()
        await service.settle()
        latencies = [(done_at[tid] - FINISHED_AT[tid]) * 1000 for tid in done_at]
        files = sum(1 for p in music.rglob("*.flac"))
        tracks = await core.library.store.track_count()
        assert len(latencies) == size and files == size and tracks == size, (len(latencies), files, tracks)
        return {"size": size, "setup_s": setup_s, "ticks": ticks, "latencies": latencies}
    finally:
        await core.stop()
        await core.close()
        await server.stop()


def print_report(results: list[dict[str, Any]]) -> None:
    print()
    print("Monitoring ticks (one DownloadService.poll each; all downloads in flight)")
    print(f"{'in flight':>9} {'ticks':>5} {'slskd req/tick':>14} {'transfer lists/tick':>19} "
          f"{'CPU ms/tick p50':>15} {'max':>6} {'loop-thread ms p50':>18} {'wall ms p50':>11}")
    for r in results:
        t = r["ticks"]
        requests = sorted({int(x["requests"]) for x in t})
        lists = sorted({int(x["lists"]) for x in t})
        print(f"{r['size']:>9} {len(t):>5} {'/'.join(map(str, requests)):>14} "
              f"{'/'.join(map(str, lists)):>19} "
              f"{statistics.median(x['cpu_ms'] for x in t):>15.1f} "
              f"{max(x['cpu_ms'] for x in t):>6.1f} "
              f"{statistics.median(x['loop_ms'] for x in t):>18.1f} "
              f"{statistics.median(x['wall_ms'] for x in t):>11.1f}")
    print()
    print("Completed in slskd -> file tagged in the library and indexed (ms)")
    print(f"{'downloads':>9} {'p50':>8} {'p99':>8} {'max':>8}   (search + enqueue of all: s)")
    for r in results:
        lat = r["latencies"]
        print(f"{r['size']:>9} {percentile(lat, 0.5):>8.1f} {percentile(lat, 0.99):>8.1f} "
              f"{max(lat):>8.1f}   ({r['setup_s']:.1f})")
    print()
    print("All imports start together when one tick sees every transfer complete, so p99 is "
          "the queueing of the copy/tag/index work, not one file's cost.")


async def run(sizes: list[int]) -> None:
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="soulsync-bench-downloads-") as folder:
            print(f"{size} downloads ...", flush=True)
            results.append(await run_size(size, Path(folder)))
    print_report(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200",
                        help="downloads in flight per round, comma-separated (default 50,100,200)")
    args = parser.parse_args(argv)
    asyncio.run(run([int(s) for s in args.sizes.split(",")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
