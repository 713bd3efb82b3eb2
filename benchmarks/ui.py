"""Benchmark the web UI: Dashboard and Library on a large library, in Debian's Chromium.

What it does:

1. Generates the library of ``library.py`` (10,000 artists x 5 albums x 10 tracks = 500,000
   tracks; ``--artists 1000`` makes it 50,000) and loads it through the project's store, or
   reuses ``--data-dir`` when it already holds one.
2. Starts the real daemon on it (``python -m soulsync_core serve``, rate limits raised as in
   ``bench_api.py``) and opens ``/#/dashboard`` and ``/#/library`` in a headless Chromium driven
   by Playwright, each ``--runs`` times in a fresh browser context (cold cache) and as many
   times reloaded in the same context (warm cache: the hashed assets come from the cache).
3. Reports the median of: first render (the browser's first-contentful-paint), interactive
   (the page's ``soulsync:<page>`` User Timing mark, set once its data is on screen and its
   handlers are attached), bytes transferred (headers included, from the Resource Timing
   entries) and the number of requests.

Goals (issue 13): first page under 150 KB transferred; Library first render under 300 ms.

Run from the repository root: ``.venv/bin/python benchmarks/ui.py`` (needs /usr/bin/chromium
and the ``playwright`` package of the test extras). Only loopback addresses are used; the
daemon is stopped when the run ends or fails. Not part of the pytest run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]

import bench_api
import library
from playwright.async_api import Browser, async_playwright

from tests.web_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP

PAGES = ("dashboard", "library")
GOAL_FIRST_PAGE_BYTES = 150 * 1024
GOAL_LIBRARY_RENDER_MS = 300.0
KEY_STORAGE = "soulsync.api_key"
MEASURE = """(page) => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const ready = performance.getEntriesByName(`soulsync:${page}`)[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  return {
    first_render: paint ? paint.startTime : null,
    interactive: ready ? ready.startTime : null,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    requests: 1 + resources.length,
  };
}"""


async def measure(browser: Browser, base: str, key: str, page_name: str, runs: int) -> dict[str, Any]:
    """Return the medians of the cold and the warm loads of ``page_name``."""
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    for _ in range(runs):
        context = await browser.new_context(viewport=DESKTOP)
        # The key is stored as a login would store it; the benchmark times the page, not typing.
        await context.add_init_script(f"localStorage.setItem('{KEY_STORAGE}', '{key}')")
        page = await context.new_page()
        for sample in (cold, warm):
            if sample is cold:
                await page.goto(f"{base}/#/{page_name}")
            else:
                await page.reload()
            await page.wait_for_function(
                "(name) => performance.getEntriesByName(`soulsync:${name}`).length > 0", arg=page_name)
            sample.append(await page.evaluate(MEASURE, page_name))
        await context.close()
    return {"cold": _medians(cold), "warm": _medians(warm)}


def _medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(s[name] for s in samples) for name in samples[0]}


async def browse(base: str, key: str, runs: int) -> dict[str, dict[str, Any]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            return {name: await measure(browser, base, key, name, runs) for name in PAGES}
        finally:
            await browser.close()


def table(results: dict[str, dict[str, Any]], tracks: int, runs: int) -> list[str]:
    lines = [f"Web UI in headless Chromium, {tracks:,} tracks, median of {runs} loads per row",
             f"| {'page':10} | {'cache':5} | {'first render ms':>15} | {'interactive ms':>14} "
             f"| {'bytes':>7} | {'requests':>8} | goals |",
             f"|{'-' * 12}|{'-' * 7}|{'-' * 17}|{'-' * 16}|{'-' * 9}|{'-' * 10}|-------|"]
    for name, modes in results.items():
        for mode, m in modes.items():
            ok = m["bytes"] < GOAL_FIRST_PAGE_BYTES
            if name == "library":
                ok = ok and m["first_render"] < GOAL_LIBRARY_RENDER_MS
            lines.append(f"| {name:10} | {mode:5} | {m['first_render']:15.0f} | {m['interactive']:14.0f} "
                         f"| {m['bytes']:7.0f} | {m['requests']:8.0f} | {'ok' if ok else 'MISSED'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artists", type=int, default=library.ARTISTS,
                        help=f"artists of the generated library, 50 tracks each ({library.ARTISTS})")
    parser.add_argument("--runs", type=int, default=5, help="loads per page and cache state (5)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="reuse (or create) the library here instead of a temp dir")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    library.ARTISTS = args.artists
    tracks = args.artists * library.ALBUMS_PER_ARTIST * library.TRACKS_PER_ALBUM
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if not (data_dir / "soulsync.db").exists():
            print(f"loading {tracks:,} tracks …", flush=True)
            seconds = asyncio.run(library.load_library(data_dir))
            print(f"  loaded in {seconds:.0f} s", flush=True)
        key = asyncio.run(library.create_key(data_dir))
        procs = bench_api.Processes()
        try:
            _daemon, base, _startup = bench_api.start_daemon(procs, data_dir)
            results = asyncio.run(browse(base, key, args.runs))
        finally:
            procs.stop_all()
    print("\n".join(table(results, tracks, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
