"""The aiohttp application: routes from every endpoint module, middlewares, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from soulsync_core.api import apikeys, openapi, search, settings, system
from soulsync_core.api.endpoints import CORE, Endpoint, aiohttp_handler
from soulsync_core.api.middlewares import authenticate, error_envelope, rate_limit
from soulsync_core.api.openapi import OPENAPI_DOC, build_openapi
from soulsync_core.core import Core

ROUTE_MODULES = (system, apikeys, settings, search, openapi)


def all_endpoints() -> list[Endpoint]:
    """Return every declared endpoint of the API modules (and ``/ping``)."""
    endpoints = list(system.liveness.endpoints)
    for module in ROUTE_MODULES:
        endpoints.extend(module.routes.endpoints)
    return endpoints


def create_app(core: Core, *, manage_core: bool = True) -> web.Application:
    """Return the application serving ``core``.

    With ``manage_core`` the app starts the core's background work on startup and stops and
    closes it on cleanup, so running the app is all a caller has to do.
    """
    app = web.Application(middlewares=[error_envelope, rate_limit, authenticate])
    app[CORE] = core
    endpoints = all_endpoints()
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, aiohttp_handler(endpoint))
    app[OPENAPI_DOC] = msgspec.json.encode(build_openapi(endpoints))
    if manage_core:
        app.cleanup_ctx.append(_core_lifecycle)
    return app


async def _core_lifecycle(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    await core.start()
    yield
    await core.stop()
    await core.close()
