"""Each outside service failing in each way: the daemon keeps serving, the affected feature
answers a clear 4xx/503 envelope (never a 500), status and the health list say why, and the
service is taken back by the background health checks alone once it recovers.

One matrix of (service, fault). The real plugins talk to the fakes of tests/fakes/; the health
loop's intervals are settings, shortened here so recovery is seen without sleeping through the
default 15 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import soulsync_slskd.plugin
from soulsync_core.testing import ApiClient, free_port
from soulsync_hydrabase import plugin as hydrabase_plugin
from soulsync_itunes import plugin as itunes_plugin
from soulsync_spotify import plugin as spotify_plugin
from soulsync_tidal import plugin as tidal_plugin
from tests.fakes import hydrabase, itunes, slskd, spotify, tidal
from tests.fakes.base import FAULTS

HYDRABASE_KEY = "hb-faults-key"
QUERY = "daft punk one more time"
FAULT_KINDS = ("down", "unauthorized", "rate_limited", "timeout", "dropped", "malformed",
               "wrong_shape", "huge")
# Valid JSON in which every field a client looks for is missing or of the wrong type.
WRONG_SHAPE = json.dumps({"results": "none", "tracks": {"items": 5}, "albums": [1],
                          "data": "x", "access_token": 7, "expires_in": "soon",
                          "isConnected": "yes", "state": [], "errors": {"detail": 3}})
HUGE_FRAME = "[" + "0," * (5 * 1024 * 1024) + "0]"  # past aiohttp's 4 MiB WebSocket frame limit
# Endpoints that need no outside service: each must keep answering 200 whatever fails.
OTHERS = ("/api/v1/system/stats", "/api/v1/library/artists", "/api/v1/settings",
          "/api/v1/downloads", "/api/v1/wishlist", "/api/v1/watchlist", "/api/v1/system/activity")
DEADLINE = 20.0  # seconds a state change may take to show (it takes well under one)


@dataclass
class Service:
    """How to run one service's fake and point the daemon at it."""

    name: str            # the service's name in /system/status
    plugin: Any
    make_app: Callable[[Path], web.Application]
    environ: Callable[[str], dict[str, str]]  # base URL of the fake -> settings
    scheme: str = "http"


def _spotify_env(base: str) -> dict[str, str]:
    return {"SOULSYNC_SPOTIFY__CLIENT_ID": spotify.CLIENT_ID,
            "SOULSYNC_SPOTIFY__CLIENT_SECRET": spotify.CLIENT_SECRET,
            "SOULSYNC_SPOTIFY__API_URL": base, "SOULSYNC_SPOTIFY__ACCOUNTS_URL": base,
            "SOULSYNC_SPOTIFY__TIMEOUT_SECONDS": "0.5"}


def _tidal_env(base: str) -> dict[str, str]:
    return {"SOULSYNC_TIDAL__CLIENT_ID": tidal.CLIENT_ID,
            "SOULSYNC_TIDAL__CLIENT_SECRET": tidal.CLIENT_SECRET,
            "SOULSYNC_TIDAL__API_URL": f"{base}/v2", "SOULSYNC_TIDAL__AUTH_URL": f"{base}/v1/oauth2",
            "SOULSYNC_TIDAL__LOGIN_URL": base, "SOULSYNC_TIDAL__TIMEOUT_SECONDS": "0.5"}


def _slskd_env(base: str) -> dict[str, str]:
    return {"SOULSYNC_SOULSEEK__SLSKD_URL": base, "SOULSYNC_SOULSEEK__API_KEY": slskd.DEFAULT_API_KEY,
            "SOULSYNC_SOULSEEK__TIMEOUT_SECONDS": "0.5"}


SERVICES = {
    "itunes": Service("itunes", itunes_plugin, lambda _dir: itunes.make_app(), lambda base: {
        "SOULSYNC_ITUNES__BASE_URL": base, "SOULSYNC_ITUNES__TIMEOUT_SECONDS": "0.5"}),
    "spotify": Service("spotify", spotify_plugin, lambda _dir: spotify.make_app(), _spotify_env),
    "tidal": Service("tidal", tidal_plugin, lambda _dir: tidal.make_app(), _tidal_env),
    "hydrabase": Service("hydrabase", hydrabase_plugin,
                         lambda _dir: hydrabase.make_app(api_key=HYDRABASE_KEY), lambda base: {
                             "SOULSYNC_HYDRABASE__URL": base, "SOULSYNC_HYDRABASE__API_KEY": HYDRABASE_KEY,
                             "SOULSYNC_HYDRABASE__TIMEOUT_SECONDS": "0.5"}, scheme="ws"),
    "soulseek": Service("soulseek", soulsync_slskd.plugin,
                        lambda folder: slskd.make_app(folder, search_seconds=0.05), _slskd_env),
}


class Outage:
    """One fake on a fixed port that a test can take down, fault, and bring back."""

    def __init__(self, service: Service, aiohttp_server: Any, folder: Path):
        self.service = service
        self._serve = aiohttp_server
        self._folder = folder
        self.port = free_port()
        self.server: Any = None

    @property
    def base(self) -> str:
        return f"{self.service.scheme}://127.0.0.1:{self.port}" + ("/" if self.service.scheme == "ws" else "")

    @property
    def app(self) -> web.Application:
        return self.server.app

    async def up(self) -> None:
        self.server = await self._serve(self.service.make_app(self._folder), port=self.port)

    async def down(self) -> None:
        await self.server.close()

    def apply(self, fault: str) -> Callable[[], Awaitable[None]]:
        """Start ``fault`` (``down`` is handled by the caller); return what ends it."""
        faults = self.app[FAULTS]
        node = self.app.get(hydrabase.HYDRABASE)

        async def clear() -> None:
            faults.status_count = faults.rate_limit_count = faults.drop_count = 0
            faults.body_count = faults.huge_count = 0
            faults.latency = 0.0
            if node is not None:
                node.api_key, node.silent, node.drop_after_frames = HYDRABASE_KEY, False, 0
                node.reply_text, node.reply_response = "", None
                node.drop()  # the daemon reconnects to the healed node by itself

        if fault == "unauthorized":
            if node is not None:
                node.api_key = "another key"  # the node answers HTTP 500 "Invalid API Key"
                node.drop()
            else:
                faults.status, faults.status_count = 401, -1
        elif fault == "rate_limited":
            faults.retry_after, faults.rate_limit_count = 1, -1
            if node is not None:
                node.drop()
        elif fault == "timeout":
            if node is not None:
                node.silent = True
            else:
                faults.latency = 1.5
        elif fault == "dropped":
            if node is not None:
                node.drop_after_frames = 1
            else:
                faults.drop_count = -1
        elif fault == "malformed":
            if node is not None:
                node.reply_text = "{this is not json"
            else:
                faults.body, faults.body_count = "{this is not json", -1
        elif fault == "wrong_shape":
            if node is not None:
                node.reply_response = 5
            else:
                faults.body, faults.body_count = WRONG_SHAPE, -1
        elif fault == "huge":
            if node is not None:
                node.reply_text = HUGE_FRAME
            else:
                faults.huge_count = -1
        return clear


async def _feature(api: ApiClient, service: str) -> Any:
    """Use the feature the service serves: a search for the metadata sources, a download
    for Soulseek (which answers 202 at once: its search runs in the background)."""
    if service == "soulseek":
        return await api.post("/api/v1/downloads", {"name": "One More Time", "artists": ["Daft Punk"],
                                                    "album": "Discovery", "duration_ms": 320000})
    return await api.post("/api/v1/search/tracks", {"query": QUERY, "source": service, "limit": 5})


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (polling, never a fixed sleep) until ``condition()`` holds; fail after DEADLINE."""
    try:
        async with asyncio.timeout(DEADLINE):
            while True:
                if await condition():
                    return
                await asyncio.sleep(0.02)  # polling the API: there is no event to wait on
    except TimeoutError:
        raise AssertionError(f"not within {DEADLINE:g} s: {what}") from None


def _service_state(status: dict[str, Any], name: str) -> tuple[bool, str | None]:
    detail = status["service_details"][name]
    return status["services"][name], detail["error"]


@pytest.mark.parametrize("fault", FAULT_KINDS)
@pytest.mark.parametrize("name", list(SERVICES))
async def test_a_failing_service_degrades_one_feature_and_recovers_by_itself(
        soulsync_factory: Any, aiohttp_server: Any, tmp_path: Path, name: str, fault: str) -> None:
    service = SERVICES[name]
    outage = Outage(service, aiohttp_server, tmp_path / "slskd-downloads")
    await outage.up()
    api: ApiClient = await soulsync_factory(plugins=[(name, service.plugin)], environ={
        **service.environ(outage.base),
        "SOULSYNC_SEARCH__TIMEOUT_SECONDS": "1",
        "SOULSYNC_API__RATE_LIMITS__SYSTEM": "100000", "SOULSYNC_API__RATE_LIMITS__SEARCH": "100000",
        "SOULSYNC_ITUNES__REQUESTS_PER_MINUTE": "1000",
        # Checks ten times a second, so a fault and a recovery show at once (the iTunes
        # limit above lets these checks through).
        "SOULSYNC_HEALTH__CHECK_INTERVAL_SECONDS": "0.1",
        "SOULSYNC_HEALTH__RETRY_INTERVAL_SECONDS": "0.1"})

    async def status() -> dict[str, Any]:
        reply = await api.get("/api/v1/system/status")
        assert reply.status == 200, reply.json
        return reply.data

    async def up() -> bool:
        return _service_state(await status(), name)[0]

    await _until(up, f"{name} is up before the fault")
    if fault == "down":
        await outage.down()
        clear = outage.up
    else:
        clear = outage.apply(fault)

    reply = await _feature(api, name)
    assert reply.status != 500, reply.json
    assert set(reply.json) == {"success", "data", "error", "pagination"}
    if name == "soulseek":
        assert reply.status == 202  # stored, to be searched for when slskd answers again
        download_id = reply.data["download"]["id"]
    else:
        assert reply.status == 503 and reply.error["code"] == "SOURCE_UNAVAILABLE", reply.json
        assert reply.error["message"] and "Traceback" not in reply.error["message"]
    # After a failed call at the latest (a Hydrabase socket stays open to a node that
    # answers garbage), status says why.
    async def down_with_reason() -> bool:
        ok, error = _service_state(await status(), name)
        return not ok and bool(error)

    await _until(down_with_reason, f"status shows {name} down with a reason")
    _, reason = _service_state(await status(), name)
    assert reason is not None and "Traceback" not in reason
    if fault == "huge" and name != "hydrabase":
        # Refused after 16 MiB, not read whole (aiohttp bounds WebSocket frames itself).
        assert "more than 16 MiB" in reason, reason

    for path in OTHERS:
        other = await api.get(path)
        assert other.status == 200, (path, other.json)
    health = await api.get("/api/v1/system/health")
    assert health.status == 200
    check = next(c for c in health.data["checks"] if c["check"] == f"service:{name}")
    # A metadata source down is a warning (searches use the others), slskd down an error.
    assert check["level"] == ("error" if name == "soulseek" else "warning") and check["hint"], check

    await clear()
    await _until(up, f"{name} is taken back once it recovered")

    async def served() -> bool:  # once a 429's cool-down (1 s here) has passed too
        return (await _feature(api, name)).status in (200, 202)

    await _until(served, f"{name} serves again")
    again = await _feature(api, name)
    if name == "soulseek":
        assert again.status in (200, 202), again.json
        kept = await api.get(f"/api/v1/downloads/{download_id}")
        assert kept.status == 200  # the download asked for during the outage is still there
    else:
        assert again.status == 200, again.json
        assert again.data["source"] == name and again.data["tracks"]
