"""Helpers shared by the download tests: a catalogue, a stub metadata source, a manual clock,
and a daemon wired to the fake slskd whose monitor only ticks when a test says so.

The tests drive everything step by step: ``await downloads.settle()`` lets searches, enqueues
and imports finish, ``await fake.tick()``/``settle()`` moves the fake's transfers, ``await
downloads.poll()`` is one monitor tick, and ``clock.advance()`` makes the transfer timeouts
expire without waiting for them.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.downloads.service import DownloadService
from soulsync_core.hooks import hookimpl
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests.fakes.slskd import DEFAULT_API_KEY, Peer, SharedFile

ALBUM = "Discovery"
TITLE = "One More Time"
ARTIST = "Daft Punk"
SECONDS = 3
FLAC_SIZE = 400_000     # ~1070 kbps for 3 s: a believable FLAC
MP3_SIZE = 120_000      # 320 kbps for 3 s

FLAC_FAST = r"@@b\Daft Punk\2001 - Discovery\01 - One More Time.flac"
FLAC_SLOW = r"@@a\Music\Daft Punk\Discovery (2001)\01 - One More Time.flac"
MP3_FILE = r"@@c\Daft Punk - Discovery (2001) [320]\01. Daft Punk - One More Time.mp3"
LIVE = r"@@d\Daft Punk\Alive 2007\05 - One More Time (Live).flac"
TRIBUTE = r"@@e\Music\Daft Punk Tribute Band\Covers\01 - One More Time.flac"
VARIOUS = r"@@f\Various Artists\Now 45\05 - Daft Punk - One More Time.flac"
TOO_LONG = r"@@g\Daft Punk\Discovery\01 - One More Time.flac"

# The track as the search endpoints return it (iTunes ids: all digits).
TRACK: dict[str, Any] = {
    "id": "697195462", "name": TITLE, "artists": [ARTIST], "album": ALBUM,
    "duration_ms": SECONDS * 1000, "popularity": 0, "preview_url": None, "image_url": None,
    "release_date": "2001-03-12", "album_id": "697194953", "track_number": 1, "disc_number": 1,
    "isrc": "GBDUW0000053", "explicit": False,
}


def flac(filename: str, **changes: Any) -> SharedFile:
    values: dict[str, Any] = {"length": SECONDS, "size": FLAC_SIZE, "bit_depth": 16, "sample_rate": 44100}
    values.update(changes)
    return SharedFile(filename, **values)


def catalogue() -> list[Peer]:
    """The wanted track as FLAC from two peers and MP3 from a third, plus decoys (a live
    version, a tribute band, a Various Artists folder, a file 40 s too long)."""
    return [
        Peer("flac_fast", [flac(FLAC_FAST)], has_free_upload_slot=True, upload_speed=5_000_000),
        Peer("flac_slow", [flac(FLAC_SLOW)], has_free_upload_slot=False, queue_length=5,
             upload_speed=100_000),
        Peer("mp3_user", [SharedFile(MP3_FILE, SECONDS, MP3_SIZE, bit_rate=320)],
             upload_speed=9_000_000),
        Peer("live_user", [flac(LIVE)]),
        Peer("tribute", [flac(TRIBUTE)]),
        Peer("va_user", [flac(VARIOUS)]),
        Peer("long_user", [flac(TOO_LONG, length=SECONDS + 40, size=FLAC_SIZE * 15)]),
    ]


class ManualClock:
    """A monotonic clock that only moves when told (for the transfer timeouts)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StubMetadata:
    """A metadata source named ``itunes`` that knows one track (for ``{"query": …}``)."""

    name = "itunes"
    configured = True

    def __init__(self, tracks: list[Track]):
        self.tracks = tracks
        self.queries: list[str] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health(self) -> Health:
        return Health(ok=True)

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        self.queries.append(query)
        words = query.lower().replace(" - ", " ").split()
        return [t for t in self.tracks
                if all(w in f"{' '.join(t.artists)} {t.name}".lower() for w in words)][:limit]

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        return []

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        return []

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        return []

    async def album_tracks(self, album_id: str) -> list[Track]:
        return []


def metadata_plugin(source: StubMetadata) -> types.SimpleNamespace:
    @hookimpl
    def metadata_providers(settings: Any) -> list[StubMetadata]:
        return [source]

    return types.SimpleNamespace(metadata_providers=metadata_providers)


def live_version_first() -> StubMetadata:
    """iTunes-like results for "Daft Punk - One More Time": a live version listed first."""
    keys = ("id", "name", "artists", "album", "duration_ms", "release_date", "album_id",
            "track_number", "disc_number", "isrc")
    studio = Track(**{k: TRACK[k] for k in keys})
    live = Track("697195999", "One More Time (Live)", [ARTIST], "Alive 1997", 3000)
    return StubMetadata([live, studio])


def environ(server: TestServer, downloads: Path, music: Path, **settings: str) -> dict[str, str]:
    """Settings for a daemon on the fake slskd: monitor ticks only when a test polls."""
    values = {
        "SOULSYNC_SOULSEEK__SLSKD_URL": str(server.make_url("/")),
        "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
        "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads),
        "SOULSYNC_SOULSEEK__POLL_INTERVAL_SECONDS": "0.01",
        "SOULSYNC_LIBRARY__MUSIC_DIR": str(music),
        "SOULSYNC_SEARCH__AUTO_ORDER": "itunes",
        "SOULSYNC_DOWNLOADS__MONITOR_INTERVAL_SECONDS": "300",
        "SOULSYNC_DOWNLOADS__FILE_WAIT_SECONDS": "0.2",
        "SOULSYNC_DOWNLOADS__QUEUED_TIMEOUT_SECONDS": "60",
        "SOULSYNC_DOWNLOADS__STALLED_TIMEOUT_SECONDS": "60",
    }
    values.update({f"SOULSYNC_DOWNLOADS__{k.upper()}": v for k, v in settings.items()})
    return values


async def open_api(aiohttp_client: Any, data_dir: Path, env: dict[str, str],
                   plugins: list[tuple[str, object]], clock: ManualClock,
                   key: str | None = None) -> ApiClient:
    """Start a daemon app on ``data_dir``; bootstrap a key unless ``key`` is given."""
    core = await Core.open(data_dir, environ=env, entry_points=False, plugins=plugins)
    client = await aiohttp_client(create_app(core))
    core.downloads.clock = clock
    api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
    if key is None:
        await api.bootstrap()
    else:
        api.key = key
    return api


def service(api: ApiClient) -> DownloadService:
    return api.core.downloads


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden ones included, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file())
