"""Benchmark album requests against the fake slskd: searches, wall time, folder scoring.

What it measures:

1. **A 12-track album as one album request vs as 12 track requests.** A fresh daemon (data
   dir, music folder) each time, on the fake slskd served from its own thread; every Soulseek
   search takes ``--search-seconds`` (default 2 s: real ones take 5 to 15 s) and the fake
   moves transfers by itself every 50 ms. The catalogue: 20 peers sharing the album — 6
   complete FLAC folders, 6 with a track missing, 4 mixed-bitrate MP3 folders, 4 live
   editions. Counted: ``POST /api/v0/searches`` and enqueue requests the fake saw, and the
   wall time from the request(s) to the last track indexed in the library. Settings are the
   defaults (``downloads.max_concurrent`` 3, slskd's search pacing of 30 per 220 s), except
   the monitor interval (0.2 s) so that polling does not dominate either figure.
2. **Folder scoring time for 500 responses**: ``score_folders`` (grouping, the optimal
   assignment per folder, the verdicts) on 500 peers' folders of 11 to 14 files for a 12-track
   tracklist: the first run (cold title-similarity cache) and the median of 4 more.

Run from the repository root: ``.venv/bin/python benchmarks/albums.py`` (about a minute).
Only loopback addresses are used. Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
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
from soulsync_core.downloads.album_store import AlbumWanted
from soulsync_core.downloads.folder_scoring import score_folders
from soulsync_core.downloads.models import Download, Wanted
from soulsync_core.matching import parse_quality_profile
from soulsync_core.models import Candidate
from tests.fakes import slskd as fake_slskd
from tests.fakes.slskd import DEFAULT_API_KEY, Peer, SlskdFake, album_peer

HOST = "127.0.0.1"
ARTIST = "Radiohead"
ALBUM = "OK Computer"
TITLES = ["Airbag", "Paranoid Android", "Subterranean Homesick Alien", "Exit Music for a Film",
          "Let Down", "Karma Police", "Fitter Happier", "Electioneering", "Climbing Up the Walls",
          "No Surprises", "Lucky", "The Tourist"]
SECONDS = 3
SEARCHES = ("POST", "/api/v0/searches")
ENQUEUES = (("POST", "/api/v0/transfers/downloads/batches"),
            ("POST", "/api/v0/transfers/downloads/{username}"))

T = TypeVar("T")


def catalogue() -> list[Peer]:
    peers = []
    for i in range(6):
        peers.append(album_peer(f"flac{i}", f"{ARTIST}\\1997 - {ALBUM}", TITLES,
                                upload_speed=500_000 + i * 100_000))
        peers.append(album_peer(f"gap{i}", f"{ARTIST}\\{ALBUM}", TITLES[:i] + TITLES[i + 1:],
                                numbers=[n for n in range(1, 13) if n != i + 1],
                                upload_speed=5_000_000))
    for i in range(4):
        peers.append(album_peer(f"mixed{i}", f"{ARTIST}\\{ALBUM} [MP3]", TITLES, extension="mp3",
                                bit_rates=[320] * 6 + [192] * 6, upload_speed=9_000_000))
        peers.append(album_peer(f"live{i}", f"{ARTIST}\\{ALBUM} (Live)", TITLES,
                                upload_speed=9_000_000))
    return peers


def tracklist() -> list[Wanted]:
    return [Wanted(t, [ARTIST], ALBUM, ARTIST, SECONDS * 1000, i + 1, len(TITLES), 1, "1997-05-21",
                   track_id=f"rh{i}", album_id="okc", source="itunes")
            for i, t in enumerate(TITLES)]


class FakeThread:
    """The fake slskd served from its own thread and event loop, on a loopback port."""

    def __init__(self, downloads: Path, peers: list[Peer], search_seconds: float):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = fake_slskd.make_app(downloads, peers=peers, search_seconds=search_seconds,
                                       tick_seconds=0.05)
        self.fake: SlskdFake = self.app[fake_slskd.SLSKD]
        self.fake.version = "0.26.2"
        self.runner = web.AppRunner(self.app, access_log=None)
        self.port = 0

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
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

    def count(self, *routes: tuple[str, str]) -> int:
        seen = Counter(list(self.fake.requests))
        return sum(seen[route] for route in routes)


def environ(port: int, downloads: Path, music: Path) -> dict[str, str]:
    return {
        "SOULSYNC_SOULSEEK__SLSKD_URL": f"http://{HOST}:{port}",
        "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
        "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads),
        "SOULSYNC_SOULSEEK__POLL_INTERVAL_SECONDS": "0.1",
        "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
        "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "0.2",
        "SOULSYNC_LOGGING__LEVEL": "WARNING",
        "SOULSYNC_LOGGING__ACCESS_LOG": "false",
        "SOULSYNC_WISHLIST__INTERVAL_MINUTES": "0",
        "SOULSYNC_WATCHLIST__INTERVAL_HOURS": "0",
    }


async def run_case(as_album: bool, root: Path, search_seconds: float) -> dict[str, Any]:
    downloads, music, data = root / "slskd", root / "music", root / "data"
    music.mkdir(parents=True)
    server = FakeThread(downloads, catalogue(), search_seconds)
    await server.start()
    core = await Core.open(data, environ=environ(server.port, downloads, music),
                           entry_points=False, plugins=[("slskd", soulsync_slskd.plugin)])
    await core.start()
    done = asyncio.Event()
    completed: list[Download] = []

    def on_completed(download: Download) -> None:
        completed.append(download)
        if len(completed) == len(TITLES):
            done.set()

    core.downloads.on_completed(on_completed)
    try:
        started = time.perf_counter()
        tracks = tracklist()
        if as_album:
            await core.albums.request(AlbumWanted(ALBUM, [ARTIST], tracks, ARTIST, "1997-05-21",
                                                  "okc", "itunes"))
        else:
            for wanted in tracks:
                await core.downloads.request(wanted)
        await asyncio.wait_for(done.wait(), 600)
        wall = time.perf_counter() - started
        peers = {d.username for d in completed}
        albums = await core.db.fetchval("SELECT COUNT(DISTINCT album_id) FROM tracks")
        return {"case": "1 album request" if as_album else "12 track requests",
                "searches": server.count(SEARCHES), "enqueues": server.count(*ENQUEUES),
                "wall_s": wall, "peers": len(peers), "albums": albums}
    finally:
        await core.stop()
        await core.close()
        await server.stop()


def scoring_input(count: int, seed: int = 7) -> list[Candidate]:
    rng = random.Random(seed)
    found = []
    for p in range(count):
        ext = rng.choice(["flac", "flac", "mp3"])
        titles = list(enumerate(TITLES, start=1))
        if rng.random() < 0.3:
            titles.pop(rng.randrange(len(titles)))
        extra = rng.randrange(3)
        titles += [(13 + e, f"Bonus {e}") for e in range(extra)]
        folder = rng.choice([f"{ARTIST}\\1997 - {ALBUM}", f"{ALBUM} [{ext.upper()}]",
                             f"{ARTIST} - {ALBUM} (Live)", f"Music\\{ARTIST}\\{ALBUM}"])
        for number, title in titles:
            found.append(Candidate(f"peer{p}", f"@@p{p}\\{folder}\\{number:02d} - {title}.{ext}",
                                   3_000_000, ext, 320 if ext == "mp3" else None,
                                   16 if ext == "flac" else None, 44100,
                                   SECONDS + rng.choice([0, 0, 1]), rng.random() < 0.7,
                                   rng.randrange(5), rng.randrange(100_000, 9_000_000)))
    return found


def time_scoring(count: int) -> tuple[float, float, int, int]:
    """Return (first run ms, median ms of 4 more, folders, files); the first run fills the
    title-similarity cache, as the first album of a daemon does."""
    found = scoring_input(count)
    profile = parse_quality_profile(["flac", "mp3>=320"])
    runs = []
    verdicts: list[Any] = []
    for _ in range(5):
        started = time.perf_counter()
        verdicts = score_folders(found, tracklist(), ALBUM, profile, min_coverage=1.0,
                                 tolerance_s=5.0)
        runs.append(time.perf_counter() - started)
    return runs[0] * 1000, statistics.median(runs[1:]) * 1000, len(verdicts), len(found)


async def run(search_seconds: float, responses: int) -> None:
    results = []
    for as_album in (True, False):
        with tempfile.TemporaryDirectory(prefix="soulsync-bench-albums-") as folder:
            print(f"{'album request' if as_album else 'track requests'} ...", flush=True)
            results.append(await run_case(as_album, Path(folder), search_seconds))
    first_ms, scoring_ms, folders, files = time_scoring(responses)
    print()
    print(f"A {len(TITLES)}-track album, Soulseek searches taking {search_seconds:g} s each")
    print(f"{'case':<18} {'searches':>8} {'enqueue requests':>16} {'wall s':>7} "
          f"{'peers used':>10} {'library albums':>14}")
    for r in results:
        print(f"{r['case']:<18} {r['searches']:>8} {r['enqueues']:>16} {r['wall_s']:>7.1f} "
              f"{r['peers']:>10} {r['albums']:>14}")
    print()
    print("Folder scoring (score_folders: grouping, optimal assignment, verdicts)")
    print(f"{'responses':>9} {'folders':>7} {'files':>6} {'first run ms':>12} {'median ms':>9}")
    print(f"{responses:>9} {folders:>7} {files:>6} {first_ms:>12.1f} {scoring_ms:>9.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--search-seconds", type=float, default=2.0,
                        help="how long each fake Soulseek search takes (default 2)")
    parser.add_argument("--responses", type=int, default=500,
                        help="peer responses for the scoring timing (default 500)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.search_seconds, args.responses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
