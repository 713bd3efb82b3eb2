"""/ping, /system/status, /system/activity, /system/stats."""

from __future__ import annotations

import re

from soulsync_core.core import Core
from soulsync_core.paths import data_dir_id
from soulsync_core.timefmt import format_uptime


async def test_ping_needs_no_key(api, core: Core):
    response = await api.client.get("/ping")
    assert response.status == 200
    pong = await response.json()
    assert pong["status"] == "ok"
    # The data dir's identity, never its path.
    assert pong["data_dir_id"] == data_dir_id(core.data_dir)
    assert str(core.data_dir) not in await response.text()


def test_uptime_format_does_not_wrap_hours():
    assert format_uptime(8130) == "2h 15m 30s"
    assert format_uptime(50 * 3600 + 182) == "50h 3m 2s"
    assert format_uptime(0.9) == "0h 0m 0s"


async def test_status_shape_and_services_not_installed_without_plugins(api, key):
    reply = await api.get("/api/v1/system/status")
    assert reply.status == 200
    data = reply.data
    assert re.match(r"^\d+h \d+m \d+s$", data["uptime"])
    assert isinstance(data["uptime_seconds"], int)
    # A service whose plugin is not installed is not "down": it is listed apart.
    assert data["services"] == {}
    assert data["service_details"] == {}
    assert data["not_installed"] == ["hydrabase", "soulseek", "spotify"]
    assert reply.json["pagination"] is None


async def test_status_lists_an_installed_service_and_not_the_missing_ones(api, key, core: Core):
    async def down() -> bool:
        return False

    core.health.register("soulseek", down)
    data = (await api.get("/api/v1/system/status")).data
    assert data["services"] == {"soulseek": False}
    assert data["not_installed"] == ["hydrabase", "spotify"]


async def test_status_reports_cached_health_checks(api, key, core: Core):
    calls = []

    async def healthy() -> bool:
        calls.append(1)
        return True

    async def broken() -> bool:
        raise ConnectionError("refused")

    core.health.register("spotify", healthy)
    core.health.register("soulseek", broken)
    assert (await api.get("/api/v1/system/status")).data["services"]["spotify"] is False
    await core.health.check_all()
    services = (await api.get("/api/v1/system/status")).data["services"]
    assert services == {"soulseek": False, "spotify": True}
    await api.get("/api/v1/system/status")
    assert len(calls) == 1  # answered from the cache, not probed per request
    assert core.health.state("soulseek").error == "refused"


async def test_health_check_timeout_marks_service_down():
    import asyncio

    from soulsync_core.health import ServiceHealth

    health = ServiceHealth(timeout=0.05)

    async def slow() -> bool:
        await asyncio.sleep(1)
        return True

    health.register("hydrabase", slow)
    await health.check_all()
    assert health.snapshot()["hydrabase"] is False
    assert "no answer" in (health.state("hydrabase").error or "")


async def test_activity_records_start_newest_first_and_pages(api, key, core: Core):
    for i in range(4):
        await core.activity.record("test.event", f"Event {i}", "details")
    reply = await api.get("/api/v1/system/activity", params={"limit": "2"})
    assert reply.status == 200
    items = reply.data["activities"]
    assert [i["title"] for i in items] == ["Event 3", "Event 2"]
    assert set(items[0]) == {"id", "type", "title", "message", "timestamp"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", items[0]["timestamp"])
    assert reply.json["pagination"] == {"page": 1, "limit": 2, "total": 6, "total_pages": 3,
                                        "has_next": True, "has_prev": False}
    last = await api.get("/api/v1/system/activity", params={"page": "3", "limit": "2"})
    assert [i["type"] for i in last.data["activities"]] == ["api_key.created", "system.started"]


async def test_activity_paging_is_clamped_and_validated(api, key):
    reply = await api.get("/api/v1/system/activity", params={"limit": "1000", "page": "0"})
    assert reply.json["pagination"]["limit"] == 200 and reply.json["pagination"]["page"] == 1
    reply = await api.get("/api/v1/system/activity", params={"limit": "lots"})
    assert reply.status == 400
    assert reply.error["message"] == "limit must be an integer, not a string."


async def test_activity_survives_restart(data_dir):
    core = await Core.open(data_dir, environ={}, entry_points=False)
    await core.activity.record("test.event", "Persisted")
    await core.close()
    core = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        items, total = await core.activity.page(0, 10)
        assert total == 1 and items[0].title == "Persisted"
    finally:
        await core.close()


async def test_activity_is_pruned(core: Core, monkeypatch):
    from soulsync_core import activity

    monkeypatch.setattr(activity, "MAX_ITEMS", 5)
    monkeypatch.setattr(activity, "PRUNE_EVERY", 3)
    for i in range(12):
        await core.activity.record("test.event", f"E{i}")
    items, total = await core.activity.page(0, 100)
    assert total <= 5 + 3 and items[0].title == "E11"


async def test_stats_zeros_and_database_size(api, key):
    reply = await api.get("/api/v1/system/stats")
    assert reply.status == 200
    data = reply.data
    assert data["library"] == {"artists": 0, "albums": 0, "tracks": 0}
    assert data["downloads"] == {"active": 0, "failed": 0}
    assert data["wishlist"] == {"total": 0, "downloading": 0, "failed": 0}
    assert data["watchlist"] == {"artists": 0}
    assert data["database"]["size_mb"] > 0
    assert data["database"]["last_update"] is None


async def test_stats_take_feature_contributions(api, key, core: Core):
    async def library(stats) -> None:
        stats.library.tracks = 42

    core.stats_contributors.append(library)
    assert (await api.get("/api/v1/system/stats")).data["library"]["tracks"] == 42


async def test_status_details_carry_check_errors_and_figures(api, key, core: Core):
    from soulsync_core.models import Health

    async def hydrabase() -> Health:
        return Health(ok=True, details={"peers": 3})

    async def soulseek() -> Health:
        return Health(ok=False, message="slskd refused the API key")

    core.health.register("hydrabase", hydrabase)
    core.health.register("soulseek", soulseek)
    await core.health.check_all()
    data = (await api.get("/api/v1/system/status")).data
    assert data["services"]["hydrabase"] is True and data["services"]["soulseek"] is False
    assert data["service_details"]["hydrabase"]["details"] == {"peers": 3}
    assert data["service_details"]["soulseek"]["error"] == "slskd refused the API key"
    assert "spotify" not in data["service_details"] and data["not_installed"] == ["spotify"]
