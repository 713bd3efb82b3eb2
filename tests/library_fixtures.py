"""Helpers shared by the library tests: a core on a music folder, scans, synthetic rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soulsync_core.core import Core
from soulsync_core.jobs import JobInfo
from soulsync_core.library.service import JOB_KIND
from soulsync_core.library.tags import TrackRecord


async def open_core(data_dir: Path, music: Path, **settings: str) -> Core:
    """Open a core whose ``library.music_dir`` is ``music`` (plus other library settings)."""
    environ = {"SOULSYNC_LIBRARY__MUSIC_DIR": str(music)}
    environ.update({f"SOULSYNC_LIBRARY__{k.upper()}": v for k, v in settings.items()})
    return await Core.open(data_dir, environ=environ, entry_points=False)


async def scan(core: Core) -> JobInfo:
    """Run one scan job to its end and return its final row."""
    info = await core.library.start_scan("test")
    await core.jobs.wait(JOB_KIND)
    final = await core.jobs.get(info.id)
    assert final is not None
    return final


def record(artist: str, album: str, title: str, *, folder: str | None = None, number: int = 1,
           **fields: Any) -> TrackRecord:
    """Return a finished record of a file that need not exist (for query and API tests)."""
    folder = folder or f"/music/{artist}/{album}"
    values: dict[str, Any] = {"file_size": 1000 + number, "file_mtime": 1, "format": "FLAC",
                              "track_artist": artist, "track_number": number}
    values.update(fields)
    return TrackRecord(folder=folder, file_name=f"{number:02d} - {title}.flac", title=title,
                       artist=artist, album=album, **values).finish()
