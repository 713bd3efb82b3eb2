"""The music folder filling up during an import, on a real 2 MiB tmpfs (root only).

A real ``soulsync serve`` downloads a FLAC from the fake slskd into a music folder with less
room than the file: the copy hits ENOSPC, the download fails saying the disk is full, nothing
half-written stays in the library, and the database stays consistent (integrity check, rows
equal to a fresh scan of the folder). After space is freed, asking again succeeds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import audio
from tests.crash_harness import CrashSite, fresh_scan, library_rows
from tests.download_fixtures import FLAC_SIZE

TMPFS_BYTES = 2 * 1024 * 1024
# Left free once the filler is written: room for the tags, not for the 400 kB FLAC.
FREE_BYTES = FLAC_SIZE // 2


def mount_tmpfs(folder: Path) -> None:
    """Mount a 2 MiB tmpfs on ``folder``; skip the test where that is not possible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[CrashSite]:
    opened = await CrashSite.open(tmp_path / "site")
    mount_tmpfs(opened.music)
    try:
        yield opened
    finally:
        await opened.close()
        await asyncio.to_thread(subprocess.run, ["umount", "-l", str(opened.music)], check=False)


def fill(music: Path) -> Path:
    """Write a non-audio filler leaving :data:`FREE_BYTES` free; return it."""
    filler = music / "filler.bin"
    stats = os.statvfs(music)
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - FREE_BYTES))
    return filler


async def test_a_full_music_folder_fails_the_download_and_leaves_nothing_behind(
        site: CrashSite) -> None:
    kept = audio.make(site.music / "Old Artist" / "Old Album" / "01 - Old.mp3", "mp3",
                      seconds=0.1, title="Old", artist="Old Artist", album="Old Album")
    filler = fill(site.music)
    daemon = await site.start()
    status, body = await site.call(daemon, "POST", "/api/v1/library/scan")
    assert status == 202, body
    download_id = await site.request_download(daemon)
    await site.finish_downloads(daemon)

    [(state, error, final_path)] = site.rows(
        "SELECT status, error, final_path FROM downloads WHERE id = ?", (download_id,))
    assert state == "failed", (state, error)
    assert error.startswith("the music folder's disk is full (No space left on device)"), error
    assert final_path is None
    assert sorted(p for p in site.music.rglob("*") if p.is_file()) == sorted([kept, filler])
    assert not [p for p in site.music.rglob("*") if p.is_dir() and not any(p.iterdir())], \
        "folders made for the import were left behind"
    # The daemon keeps serving, and says why on the download.
    status, body = await site.call(daemon, "GET", f"/api/v1/downloads/{download_id}")
    assert status == 200 and "disk is full" in body["data"]["download"]["error"], body

    # Room again: the same request now ends in the library.
    filler.unlink()
    second = await site.request_download(daemon)
    await site.finish_downloads(daemon)
    assert site.rows("SELECT status FROM downloads WHERE id = ?", (second,)) == [("completed",)]
    assert await daemon.stop() == 0, daemon.log_text()

    assert site.rows("PRAGMA integrity_check") == [("ok",)]
    files = sorted(p for p in site.music.rglob("*") if p.is_file())
    assert len(files) == 2 and kept in files and not [p for p in files if p.name.startswith(".")]
    assert library_rows(site.data_dir / "soulsync.db") == await fresh_scan(site.music,
                                                                           site.root / "fresh")
