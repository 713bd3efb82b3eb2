"""Per-client, per-category request limits for the API, on aiolimiter's leaky buckets.

Each (client IP, category) pair has its own ``AsyncLimiter(limit, 60)``: ``limit`` requests may
come at once, then one more each ``60 / limit`` seconds. A request that finds its bucket full is
refused at once: ``acquire`` is only awaited after ``has_capacity`` said yes, so it never
suspends and no request ever waits for capacity.

Memory stays bounded: a bucket idle for a whole window has drained to empty, which is the same
as a new bucket, so it is dropped; and the number of buckets has a hard cap, past which the
least recently used are dropped first.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from aiolimiter import AsyncLimiter

from soulsync_core.config import RATE_LIMIT_CATEGORIES

CATEGORIES = tuple(name for name, _default, _what in RATE_LIMIT_CATEGORIES)
API_PREFIX = "/api/v1/"
MAX_BUCKETS = 50_000

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def categorize(method: str, path: str) -> str:
    """Return the limit category of a request to ``path`` (which starts with ``/api/v1/``)."""
    rest = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else path.lstrip("/")
    if method in ("GET", "HEAD", "OPTIONS"):
        # The event stream is one request per connection, however many events it carries.
        return "system" if rest.startswith("system/") or rest == "events" else "read"
    if method == "POST" and rest.startswith("search/"):
        return "search"
    if method == "POST" and rest.rstrip("/") == "downloads":
        return "downloads"
    return "write"


class RateLimiter:
    """Decides whether a request may pass; ``check`` never waits and is O(1) amortised."""

    def __init__(self, limits: Mapping[str, int], window: float = 60.0,
                 max_buckets: int = MAX_BUCKETS, clock: Callable[[], float] = time.monotonic):
        self._limits = dict(limits)
        self._window = window
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[AsyncLimiter, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def set_limit(self, category: str, limit: int) -> None:
        """Change one category's limit; its existing buckets start afresh under the new limit."""
        self._limits[category] = limit
        for key in [k for k in self._buckets if k[1] == category]:
            del self._buckets[key]

    async def check(self, client: str, category: str) -> int | None:
        """Take one request from the bucket; return None if allowed, else Retry-After seconds."""
        now = self._clock()
        self._evict_idle(now)
        key = (client, category)
        entry = self._buckets.pop(key, None)
        limit = self._limits[category]
        limiter = entry[0] if entry else AsyncLimiter(limit, self._window)
        self._buckets[key] = (limiter, now)
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        if not limiter.has_capacity():
            # A full bucket frees one request every window/limit seconds.
            return max(1, math.ceil(self._window / limit))
        await limiter.acquire()
        return None

    def _evict_idle(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            _limiter, last_seen = next(iter(buckets.values()))
            if now - last_seen < self._window:
                break
            buckets.popitem(last=False)


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """Return the networks of ``server.trusted_proxies`` (entries are validated by the schema)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def client_address(remote: str | None, forwarded_for: str | None,
                   trusted: list[IPNetwork]) -> str:
    """Return the address a request is limited as.

    ``X-Forwarded-For`` is believed only when the peer is a trusted proxy; then the right-most
    address that is not itself a trusted proxy is the client (the left part is client-supplied
    and can be forged).
    """
    peer = remote or "unknown"
    if not forwarded_for or not trusted or not _is_trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(address: str, trusted: list[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
