"""The daemon's Prometheus metrics: one private registry per :class:`~soulsync_core.core.Core`.

Counters and histograms that code increments as things happen live on :class:`Metrics`
(``core.metrics``); figures that live in the database (downloads by state, library counts,
wishlist and watchlist sizes, active transfers) are read by :class:`DatabaseFigures`, a
custom collector, at scrape time. prometheus-client calls collectors synchronously, so the
scrape handler first awaits :meth:`Metrics.refresh` (the queries go through the async
database, off the event loop) and the collector then only yields what was read. The reads
are cached for :data:`DATABASE_FIGURES_TTL_SECONDS`, so a storm of scrapes costs the database
one round of queries every few seconds.

No label ever carries a value from outside that could be a secret or unbounded: routes are
the router's templates, methods a fixed set, providers and clients the plugins' names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from soulsync_core.db import Database
from soulsync_core.downloads.models import Status

DATABASE_FIGURES_TTL_SECONDS = 5.0
# Request latencies of a NAS daemon: from a cached status answer to a slow library page.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DOWNLOAD_STATES: tuple[str, ...] = get_args(Status)
DELIVERY_OUTCOMES = ("delivered", "failed")


class Metrics:
    """The metrics of one daemon; ``registry`` is what ``GET /metrics`` exposes.

    The event stream and notifications (issue 15's "Metrics and health", built in a parallel
    branch) report through :attr:`event_stream_clients` (``inc()`` when a client connects,
    ``dec()`` when it leaves) and :attr:`notification_deliveries`
    (``.labels(outcome="delivered"|"failed").inc()``); until they do, both stay at 0.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.http_requests = Counter(
            "soulsync_http_requests", "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"], registry=registry)
        self.http_latency = Histogram(
            "soulsync_http_request_duration_seconds",
            "Time from receiving a request to its answer, by method and route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.bytes_downloaded = Counter(
            "soulsync_downloaded_bytes", "Bytes of files that finished transferring from a download client.",
            registry=registry)
        self.download_searches = Counter(
            "soulsync_soulseek_searches", "Searches sent to a download client (Soulseek: client=soulseek).",
            ["client"], registry=registry)
        self.provider_calls = Counter(
            "soulsync_provider_calls", "Calls to a metadata provider.", ["provider"], registry=registry)
        self.provider_errors = Counter(
            "soulsync_provider_errors",
            "Metadata provider calls that failed (errors, timeouts and 429s alike).",
            ["provider"], registry=registry)
        self.provider_rate_limited = Counter(
            "soulsync_provider_rate_limited",
            "Metadata provider calls answered with a rate limit (HTTP 429).", ["provider"],
            registry=registry)
        self.scan_files = Counter(
            "soulsync_library_scan_files", "Audio files gone through by finished library scans.",
            registry=registry)
        self.scan_files_per_second = Gauge(
            "soulsync_library_scan_files_per_second", "Files per second of the last finished library scan.",
            registry=registry)
        self.event_stream_clients = Gauge(
            "soulsync_event_stream_clients", "Clients connected to the event stream.", registry=registry)
        self.notification_deliveries = Counter(
            "soulsync_notification_deliveries", "Notifications sent, by outcome.", ["outcome"],
            registry=registry)
        for outcome in DELIVERY_OUTCOMES:
            self.notification_deliveries.labels(outcome)
        self._database: DatabaseFigures | None = None
        # The labelled children by (method, route, status): looking them up by labels costs
        # about as much as counting, on every request. Bounded like the labels themselves.
        self._request_series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def watch_database(self, db: Database, *, ttl: float = DATABASE_FIGURES_TTL_SECONDS,
                       clock: Callable[[], float] = time.monotonic) -> None:
        """Expose the figures kept in ``db`` (once; the core calls this when it opens)."""
        self._database = DatabaseFigures(db, ttl, clock)
        self.registry.register(self._database)

    def request_answered(self, method: str, route: str, status: str, seconds: float) -> None:
        """Count one HTTP request and its latency (``method`` one of :data:`HTTP_METHODS` or
        ``other``, ``route`` a route template)."""
        series = self._request_series.get((method, route, status))
        if series is None:
            series = (self.http_requests.labels(method, route, status),
                      self.http_latency.labels(method, route))
            self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def provider_known(self, name: str) -> None:
        """Show the provider's counters at 0 before its first call."""
        for counter in (self.provider_calls, self.provider_errors, self.provider_rate_limited):
            counter.labels(name)

    def provider_failed(self, name: str, *, rate_limited: bool = False) -> None:
        """Count a failed call of provider ``name``; ``rate_limited`` when it was a 429."""
        self.provider_errors.labels(name).inc()
        if rate_limited:
            self.provider_rate_limited.labels(name).inc()

    def scan_finished(self, files: int, seconds: float) -> None:
        """Count a finished library scan of ``files`` files that took ``seconds``."""
        self.scan_files.inc(files)
        if seconds > 0:
            self.scan_files_per_second.set(files / seconds)

    async def refresh(self) -> None:
        """Read the database figures unless the last read is fresh enough (call before a scrape)."""
        if self._database is not None:
            await self._database.refresh()


# Each figure is one query on an index or a one-row table.
_DOWNLOADS_BY_STATE = "SELECT status, COUNT(*) FROM downloads GROUP BY status"
_ACTIVE_TRANSFERS = ("SELECT COUNT(*) FROM downloads "
                     "WHERE status = 'downloading' AND transfer_id IS NOT NULL")
_LIBRARY_COUNTS = "SELECT artists, albums, tracks FROM library_stats WHERE id = 1"
_WISHLIST_SIZE = "SELECT COUNT(*) FROM wishlist_tracks"
_WATCHLIST_SIZE = "SELECT COUNT(*) FROM watchlist_artists"


class DatabaseFigures(Collector):
    """A collector of figures read from the database by :meth:`refresh`, at most once per ``ttl``."""

    def __init__(self, db: Database, ttl: float, clock: Callable[[], float]):
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._read_at: float | None = None
        self._downloads: dict[str, int] = {}
        self._active_transfers = 0
        self._library = (0, 0, 0)
        self._wishlist = 0
        self._watchlist = 0
        self.reads = 0  # rounds of queries so far (the benchmark and tests read it)

    async def refresh(self) -> None:
        """Run the queries unless they ran less than ``ttl`` seconds ago; concurrent callers
        share one round."""
        async with self._lock:
            if self._read_at is not None and self._clock() - self._read_at < self._ttl:
                return
            rows = await self._db.fetchall(_DOWNLOADS_BY_STATE)
            self._downloads = {row[0]: row[1] for row in rows}
            self._active_transfers = await self._db.fetchval(_ACTIVE_TRANSFERS) or 0
            library = await self._db.fetchone(_LIBRARY_COUNTS)
            self._library = (library[0], library[1], library[2]) if library else (0, 0, 0)
            self._wishlist = await self._db.fetchval(_WISHLIST_SIZE) or 0
            self._watchlist = await self._db.fetchval(_WATCHLIST_SIZE) or 0
            self._read_at = self._clock()
            self.reads += 1

    def describe(self) -> list[Metric]:
        """Return no descriptions, so registering does not run :meth:`collect` early."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the figures of the last :meth:`refresh` (zeros before the first)."""
        downloads = GaugeMetricFamily("soulsync_downloads", "Downloads by state.", labels=["state"])
        for state in DOWNLOAD_STATES:
            downloads.add_metric([state], self._downloads.get(state, 0))
        yield downloads
        yield GaugeMetricFamily("soulsync_active_transfers",
                                "Downloads whose file is being transferred by the download client.",
                                value=self._active_transfers)
        library = GaugeMetricFamily("soulsync_library_items", "Items in the library, by kind.",
                                    labels=["kind"])
        for kind, count in zip(("artists", "albums", "tracks"), self._library, strict=True):
            library.add_metric([kind], count)
        yield library
        yield GaugeMetricFamily("soulsync_wishlist_tracks", "Tracks on the wishlist.",
                                value=self._wishlist)
        yield GaugeMetricFamily("soulsync_watchlist_artists", "Artists on the watchlist.",
                                value=self._watchlist)
