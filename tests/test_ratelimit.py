"""Per-IP, per-category rate limits (CONTRACT decision 3), checked before authentication."""

from __future__ import annotations

import asyncio

import pytest

from soulsync_core.config import RATE_LIMIT_CATEGORIES
from soulsync_core.ratelimit import RateLimiter, categorize, client_address, parse_networks


def test_default_limits_are_the_spec_table():
    assert {name: default for name, default, _ in RATE_LIMIT_CATEGORIES} == {
        "system": 120, "search": 20, "downloads": 10, "write": 30, "read": 60}


@pytest.mark.parametrize(("method", "path", "category"), [
    ("GET", "/api/v1/system/status", "system"),
    ("GET", "/api/v1/system/activity", "system"),
    ("POST", "/api/v1/search/tracks", "search"),
    ("POST", "/api/v1/downloads", "downloads"),
    ("POST", "/api/v1/downloads/12/cancel", "write"),
    ("GET", "/api/v1/downloads", "read"),
    ("DELETE", "/api/v1/api-keys/x", "write"),
    ("PATCH", "/api/v1/settings", "write"),
    ("POST", "/api/v1/api-keys/bootstrap", "write"),
    ("GET", "/api/v1/library/artists", "read"),
])
def test_categories(method, path, category):
    assert categorize(method, path) == category


async def test_n_plus_first_request_is_429_with_retry_after_other_category_unaffected(api, key):
    await api.patch("/api/v1/settings", {"api.rate_limits.system": 5})
    for _ in range(5):
        assert (await api.get("/api/v1/system/status")).status == 200
    limited = await api.get("/api/v1/system/status")
    assert limited.status == 429
    assert limited.error["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another category of the same client is unaffected…
    assert (await api.get("/api/v1/api-keys")).status == 200
    # …and so is another client in the same category.
    other = await api.get("/api/v1/system/status", headers={"X-Forwarded-For": "10.9.9.9"})
    assert other.status == 429  # X-Forwarded-For is not believed from an untrusted peer
    await api.patch("/api/v1/settings", {"server.trusted_proxies": ["127.0.0.1"]})
    other = await api.get("/api/v1/system/status", headers={"X-Forwarded-For": "10.9.9.9"})
    assert other.status == 200


async def test_limits_apply_before_authentication(api, key):
    await api.patch("/api/v1/settings", {"api.rate_limits.system": 3})
    for _ in range(3):
        assert (await api.get("/api/v1/system/status", key="sk_wrong")).status == 403
    reply = await api.get("/api/v1/system/status", key="sk_wrong")
    assert reply.status == 429
    assert (await api.get("/api/v1/system/status")).status == 429  # the good key shares the IP


async def test_retry_after_reflects_the_limit(api, key):
    await api.patch("/api/v1/settings", {"api.rate_limits.read": 2})
    for _ in range(2):
        await api.get("/api/v1/api-keys")
    reply = await api.get("/api/v1/api-keys")
    assert reply.status == 429 and reply.headers["Retry-After"] == "30"


async def test_bucket_refills_over_time():
    limiter = RateLimiter({"read": 2}, window=0.2)
    assert await limiter.check("a", "read") is None
    assert await limiter.check("a", "read") is None
    assert await limiter.check("a", "read") is not None
    await asyncio.sleep(0.12)  # one request drips out every 0.1 s
    assert await limiter.check("a", "read") is None


async def test_idle_buckets_are_evicted_and_memory_is_bounded():
    now = [0.0]
    limiter = RateLimiter({"read": 5}, window=60, max_buckets=1000, clock=lambda: now[0])
    for i in range(800):
        await limiter.check(f"10.0.{i // 256}.{i % 256}", "read")
    assert len(limiter) == 800
    now[0] = 59.0
    await limiter.check("192.0.2.1", "read")
    assert len(limiter) == 801  # not idle for a whole window yet
    now[0] = 60.5
    await limiter.check("192.0.2.2", "read")
    assert len(limiter) == 2  # the 800 drained to empty and were dropped
    for i in range(5000):
        await limiter.check(f"10.1.{i // 256}.{i % 256}", "read")
    assert len(limiter) == 1000  # the hard cap holds under a flood of new addresses


def test_forwarded_for_only_from_trusted_proxies():
    trusted = parse_networks(["10.0.0.0/8"])
    assert client_address("203.0.113.5", "1.2.3.4", trusted) == "203.0.113.5"
    assert client_address("10.0.0.2", "1.2.3.4", trusted) == "1.2.3.4"
    # The left part is client-supplied: the right-most untrusted hop is the client.
    assert client_address("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.7", trusted) == "1.2.3.4"
    assert client_address("10.0.0.2", None, trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", "1.2.3.4", []) == "10.0.0.2"
