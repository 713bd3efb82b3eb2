"""Shared machinery of the fake services: fault switches and the standalone runner.

Every fake is an aiohttp app built by a ``make_app()`` function. :func:`with_faults` adds a
middleware driven by :class:`Faults`, which tests flip directly (``app[FAULTS]``) and a person
flips over HTTP (``POST /_fake/faults`` with a JSON object of the fields below), so each fake
can be slow, fail with 5xx, rate-limit with 429 + Retry-After, drop the connection, answer a
200 whose body is not what the service sends (malformed JSON, the wrong shape) or one far too
large to be read whole.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web

WIRE = Path(__file__).resolve().parent / "wire"


@dataclass
class Faults:
    """What the next requests suffer. Counts go down by one per affected request; -1 = always."""

    latency: float = 0.0          # seconds added before every answer
    status: int = 0               # answer this HTTP status (e.g. 500, 503) …
    status_count: int = 0         # … for this many requests
    retry_after: int | None = 0   # answer 429 with this Retry-After (None: no header) …
    rate_limit_count: int = 0     # … for this many requests
    drop_count: int = 0           # close the connection without answering, this many times
    body: str = ""                # answer 200 with this body (as JSON: malformed, wrong shape) …
    body_count: int = 0           # … for this many requests
    huge_count: int = 0           # answer 200 with HUGE_BYTES streamed (chunked), this many times
    clock_skew: float = 0.0       # seconds every answer's Date header is off (real services
    #                               send Date; aiohttp stamps it with this machine's clock)
    requests: int = 0             # requests seen (read-only, for tests)

    def take(self, name: str) -> bool:
        left = getattr(self, name)
        if left == 0:
            return False
        if left > 0:
            setattr(self, name, left - 1)
        return True


FAULTS = web.AppKey("faults", Faults)
# More than any client may read (soulsync_core.http_body.MAX_BODY_BYTES is 16 MiB).
HUGE_BYTES = 17 * 1024 * 1024
HUGE_CHUNK = b"[" + b"0," * (64 * 1024)


def load_wire(service: str, name: str) -> Any:
    """Return the parsed JSON sample ``tests/fakes/wire/<service>/<name>``."""
    return json.loads((WIRE / service / name).read_text())


@web.middleware
async def _fault_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    if request.path.startswith("/_fake/"):
        return await handler(request)
    faults = request.app[FAULTS]
    faults.requests += 1
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if faults.take("drop_count"):
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # the client sees a dropped connection
    if faults.take("rate_limit_count"):
        headers = {} if faults.retry_after is None else {"Retry-After": str(faults.retry_after)}
        return web.json_response({"error": {"status": 429, "message": "API rate limit exceeded"}},
                                 status=429, headers=headers)
    if faults.take("status_count"):
        return web.json_response({"error": {"status": faults.status, "message": "Server error"}},
                                 status=faults.status)
    if faults.take("body_count"):
        return web.Response(text=faults.body, content_type="application/json")
    if faults.take("huge_count"):
        return await _huge(request)
    response = await handler(request)
    if faults.clock_skew and not response.prepared:
        response.headers["Date"] = formatdate(time.time() + faults.clock_skew, usegmt=True)
    return response


async def _huge(request: web.Request) -> web.StreamResponse:
    """Stream HUGE_BYTES without a Content-Length, so only counting while reading can stop it."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    try:
        while sent < HUGE_BYTES:
            await response.write(HUGE_CHUNK)
            sent += len(HUGE_CHUNK)
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client hung up once it had read enough, as it should
    return response


async def _set_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    changes = await request.json()
    known = {f.name for f in fields(Faults)}
    for key, value in changes.items():
        if key not in known:
            return web.json_response({"error": f"unknown fault {key!r}; known: {sorted(known)}"},
                                     status=400)
        setattr(faults, key, value)
    return web.json_response(asdict(faults))


async def _get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[FAULTS]))


def with_faults(app: web.Application) -> web.Application:
    """Install the fault middleware and ``/_fake/faults`` on ``app`` and return it."""
    app[FAULTS] = Faults()
    app.middlewares.insert(0, _fault_middleware)
    app.router.add_post("/_fake/faults", _set_faults)
    app.router.add_get("/_fake/faults", _get_faults)
    return app


def run_standalone(make_app: Callable[..., web.Application], name: str, default_port: int) -> None:
    """``python -m tests.fakes.<name> --port N [--latency S]``: serve the fake until Ctrl-C."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{name}",
                                     description=f"Local fake of {name} for trying SoulSync by hand.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args()
    app = make_app()
    app[FAULTS].latency = args.latency
    print(f"fake {name} on http://{args.host}:{args.port} (faults: POST /_fake/faults)")
    web.run_app(app, host=args.host, port=args.port, print=None)
