"""``/system/*`` and ``/ping``: liveness, status, activity feed, stats."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from soulsync_core import __version__
from soulsync_core.activity import ActivityItem
from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ok
from soulsync_core.api.paging import clamp_page
from soulsync_core.paths import data_dir_id
from soulsync_core.plugins import PluginInfo
from soulsync_core.stats import SystemStats
from soulsync_core.timefmt import format_uptime, iso_from_epoch

routes = Routes("system")
liveness = Routes("system", prefix="")


class ServiceDetail(msgspec.Struct):
    """Why a service is up or down: the last background check, never a live probe."""

    ok: bool
    error: str | None
    checked_at: str | None
    details: dict[str, Any]


class Status(msgspec.Struct):
    """``services`` holds the services a loaded plugin provides; the ones clients expect
    (``spotify``, ``soulseek``, ``hydrabase``) whose plugin is not installed are listed in
    ``not_installed`` instead of showing as down."""

    uptime: str
    uptime_seconds: int
    services: dict[str, bool]
    service_details: dict[str, ServiceDetail]
    version: str
    not_installed: list[str]


class ActivityPage(msgspec.Struct):
    activities: list[ActivityItem]


class PageQuery(msgspec.Struct):
    page: int = 1
    limit: int = 50


class PluginList(msgspec.Struct):
    plugins: list[PluginInfo]


class Pong(msgspec.Struct):
    """``data_dir_id`` identifies the daemon's data directory (a hash, not its path), so
    ``soulsync`` commands can warn when they use another one."""

    status: str
    version: str
    data_dir_id: str


@liveness.get("/ping", "Liveness check; needs no key and is not rate limited.", response=Pong,
              auth=False, enveloped=False)
async def ping(request: web.Request) -> web.Response:
    pong = Pong("ok", __version__, data_dir_id(core_of(request).data_dir))
    return web.Response(body=msgspec.json.encode(pong),
                        content_type="application/json")


@routes.get("/system/status", "Uptime and the cached health of each outside service.",
            response=Status)
async def status(request: web.Request) -> web.Response:
    core = core_of(request)
    seconds = core.uptime_seconds()
    installed = core.health.registered()
    states = core.health.states()
    details = {
        name: ServiceDetail(state.ok, state.error,
                            None if state.checked_at is None else iso_from_epoch(state.checked_at),
                            state.details)
        for name, state in states.items() if name in installed
    }
    services = {name: up for name, up in core.health.snapshot().items() if name in installed}
    missing = sorted(name for name in states if name not in installed)
    return ok(Status(format_uptime(seconds), int(seconds), services, details, __version__,
                     missing))


@routes.get("/system/activity", "The activity feed, newest first.", response=ActivityPage,
            query=PageQuery, paginated=True)
async def activity(request: web.Request, query: PageQuery) -> web.Response:
    page = clamp_page(query.page, query.limit)
    items, total = await core_of(request).activity.page(page.offset, page.limit)
    return ok(ActivityPage(items), pagination=page.pagination(total))


@routes.get("/system/stats", "Library, database and download counts.", response=SystemStats)
async def stats(request: web.Request) -> web.Response:
    return ok(await core_of(request).stats())


@routes.get("/system/plugins", "Installed plugins: version, hooks, providers, load errors.",
            response=PluginList)
async def plugins(request: web.Request) -> web.Response:
    return ok(PluginList(core_of(request).plugins.report()))
