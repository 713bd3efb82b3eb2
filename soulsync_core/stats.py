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
    """``active``: not finished yet; ``failed``: ended failed or not found."""

    active: int = 0
    failed: int = 0


class WishlistCounts(msgspec.Struct):
    """``total`` wanted tracks; ``downloading`` now; ``failed`` at least once so far."""

    total: int = 0
    downloading: int = 0
    failed: int = 0


class WatchlistCounts(msgspec.Struct):
    artists: int = 0


class SystemStats(msgspec.Struct):
    library: LibraryCounts = msgspec.field(default_factory=LibraryCounts)
    database: DatabaseStats = msgspec.field(default_factory=DatabaseStats)
    downloads: DownloadCounts = msgspec.field(default_factory=DownloadCounts)
    wishlist: WishlistCounts = msgspec.field(default_factory=WishlistCounts)
    watchlist: WatchlistCounts = msgspec.field(default_factory=WatchlistCounts)


# A contributor fills in its part of the stats (the library its counts, downloads its active count).
StatsContributor = Callable[[SystemStats], Awaitable[None]]
