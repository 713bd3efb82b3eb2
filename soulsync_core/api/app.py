"""The aiohttp application: routes from every endpoint module, middlewares, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import hdrs, web

from soulsync_core.api import (
    apikeys,
    auth,
    downloads,
    events,
    jobs,
    library,
    metrics,
    notifications,
    openapi,
    operations,
    playlists,
    profiles,
    requests,
    search,
    settings,
    system,
    watchlist,
    wishlist,
)
from soulsync_core.api import web as web_ui
from soulsync_core.api.endpoints import CORE, Endpoint, aiohttp_handler
from soulsync_core.api.middlewares import authenticate, error_envelope, rate_limit, require_json
from soulsync_core.api.openapi import OPENAPI_DOC, OpenApiDocument, document_names
from soulsync_core.core import Core


class InFlight:
    """Counts requests being handled, so shutdown can wait for them to finish.

    aiohttp's own shutdown stops reading from open connections at once, which drops a request
    whose body is still arriving; the daemon instead closes the listener, waits for this count
    to reach zero (within its grace period), and only then runs aiohttp's cleanup.
    """

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.stopping = False

    @web.middleware
    async def middleware(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        self.count += 1
        self.idle.clear()
        try:
            response = await handler(request)
            if self.stopping:
                response.force_close()  # no keep-alive: the next request would find us gone
            return response
        finally:
            self.count -= 1
            if self.count == 0:
                self.idle.set()


IN_FLIGHT = web.AppKey("in_flight", InFlight)

ROUTE_MODULES = (system, jobs, apikeys, settings, search, library, downloads, wishlist,
                 watchlist, playlists, auth, openapi, profiles, requests, events,
                 notifications, web_ui, operations, metrics)


def all_endpoints() -> list[Endpoint]:
    """Return every declared endpoint of the API modules (and ``/ping``)."""
    endpoints = [*system.liveness.endpoints, *auth.callback_routes.endpoints]
    for module in ROUTE_MODULES:
        endpoints.extend(module.routes.endpoints)
    return endpoints


def add_fixed_path_fallbacks(router: web.UrlDispatcher, endpoints: list[Endpoint]) -> None:
    """Make every fixed path answer all methods itself: its own, or 405 listing only those.

    aiohttp tries the next resource when a path matches but the method does not, so
    ``DELETE /api-keys/bootstrap`` reached ``DELETE /api-keys/{key_id}`` and the 405 of
    ``OPTIONS /api-keys/bootstrap`` listed both paths' methods. A catch-all route on each fixed
    path (tried after its own methods) ends the search there.
    """
    methods: dict[str, set[str]] = {}
    for endpoint in endpoints:
        if not endpoint.path_params:
            methods.setdefault(endpoint.path, set()).add(endpoint.method)
    for path, allowed in methods.items():
        router.add_route(hdrs.METH_ANY, path, _method_not_allowed(frozenset(allowed)))


def _method_not_allowed(allowed: frozenset[str]) -> web.Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    return refuse


def create_app(core: Core, *, manage_core: bool = True) -> web.Application:
    """Return the application serving ``core``.

    With ``manage_core`` the app starts the core's background work on startup and stops and
    closes it on cleanup, so running the app is all a caller has to do.
    """
    in_flight = InFlight()
    app = web.Application(middlewares=[in_flight.middleware, metrics.measure_requests,
                                       error_envelope, rate_limit, authenticate, require_json])
    app[CORE] = core
    app[IN_FLIGHT] = in_flight
    endpoints = all_endpoints()
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, aiohttp_handler(endpoint))
    add_fixed_path_fallbacks(app.router, endpoints)
    app[OPENAPI_DOC] = OpenApiDocument(endpoints, lambda: document_names(
        core.search.names(), core.playlists.source_names(), core.settings.schema))
    app[events.EVENT_STREAMS] = events.EventStreams(core.events)
    app.on_shutdown.append(events.close_event_streams)
    app[web_ui.WEB_UI] = web_ui.WebUi()
    if manage_core:
        app.cleanup_ctx.append(_core_lifecycle)
    return app


async def _core_lifecycle(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    await core.start()
    yield
    await core.stop()
    await core.close()
