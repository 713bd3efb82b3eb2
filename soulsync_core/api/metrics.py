"""``GET /metrics`` (Prometheus text) and the middleware that measures every HTTP request."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.metrics import HTTP_METHODS

routes = Routes("meta", prefix="")

UNMATCHED_ROUTE = "(unmatched)"
# nginx's code for a client that went away before the answer; not a server error.
CLIENT_GONE = "499"


@routes.get("/metrics", "Prometheus metrics in the text exposition format. Needs a key unless "
            "the metrics.public setting is on; counted as a GET /system/* request.",
            response=str, enveloped=False, content_type="text/plain",
            public_setting="metrics.public", limit_category="system")
async def metrics(request: web.Request) -> web.Response:
    core_metrics = core_of(request).metrics
    await core_metrics.refresh()
    # Formatting is CPU work of well under a millisecond for this registry's few hundred
    # series; the database figures were read above, so nothing here blocks on I/O.
    body = generate_latest(core_metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def route_template(request: web.Request) -> str:
    """Return the route a request matched as its template (``/api/v1/library/artists/{artist_id}``),
    or ``(unmatched)``: never the raw path, so the label has as many values as there are routes."""
    resource = getattr(request.match_info.route, "resource", None)
    return UNMATCHED_ROUTE if resource is None else resource.canonical


@web.middleware
async def measure_requests(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Count each request by method, route template and status, and time it.

    It sits outside the error envelope, so it sees the status the client gets.
    """
    started = time.perf_counter()
    status = "500"
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    except web.HTTPException as exc:
        status = str(exc.status)
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        method = request.method if request.method in HTTP_METHODS else "other"
        core_of(request).metrics.request_answered(method, route_template(request), status,
                                                  time.perf_counter() - started)
