"""``GET /system/stats``: counts contributed by each feature, zeros until a feature exists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec


class LibraryCounts(msgspec.Struct):
    artists: int = 0
    albums: int = 0
    tracks: int = 0


class DatabaseStats(msgspec.Struct):
    size_mb: float = 0.0
    last_update: str | None = None


class DownloadCounts(msgspec.Struct):
    active: int = 0


class SystemStats(msgspec.Struct):
    library: LibraryCounts = msgspec.field(default_factory=LibraryCounts)
    database: DatabaseStats = msgspec.field(default_factory=DatabaseStats)
    downloads: DownloadCounts = msgspec.field(default_factory=DownloadCounts)


# A contributor fills in its part of the stats (the library its counts, downloads its active count).
StatsContributor = Callable[[SystemStats], Awaitable[None]]
