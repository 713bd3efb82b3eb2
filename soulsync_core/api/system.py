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
    uptime: str
    uptime_seconds: int
    services: dict[str, bool]
    service_details: dict[str, ServiceDetail]
    version: str


class ActivityPage(msgspec.Struct):
    activities: list[ActivityItem]


class PageQuery(msgspec.Struct):
    page: int = 1
    limit: int = 50


class PluginList(msgspec.Struct):
    plugins: list[PluginInfo]


class Pong(msgspec.Struct):
    status: str
    version: str


@liveness.get("/ping", "Liveness check; needs no key and is not rate limited.", response=Pong,
              auth=False, enveloped=False)
async def ping(request: web.Request) -> web.Response:
    return web.Response(body=msgspec.json.encode(Pong("ok", __version__)),
                        content_type="application/json")


@routes.get("/system/status", "Uptime and the cached health of each outside service.",
            response=Status)
async def status(request: web.Request) -> web.Response:
    core = core_of(request)
    seconds = core.uptime_seconds()
    details = {
        name: ServiceDetail(state.ok, state.error,
                            None if state.checked_at is None else iso_from_epoch(state.checked_at),
                            state.details)
        for name, state in core.health.states().items()
    }
    return ok(Status(format_uptime(seconds), int(seconds), core.health.snapshot(), details,
                     __version__))


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
