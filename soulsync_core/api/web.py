"""The web UI: ``/`` (the page) and ``/assets/<version>/<name>`` (its scripts and styles).

The files live in :mod:`soulsync_core.web` and are read once, in a worker thread, on the first
request. ``<version>`` is a hash of every file, so an asset URL names exactly one content and
is cached for a year; the page itself is never cached, so a new install is seen at once. The
ES modules import each other by relative name, which resolves inside the same version.
Everything is sent gzip-compressed when the browser accepts it.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

from soulsync_core.api.endpoints import Routes

routes = Routes("web", prefix="")

# Strict: no inline script or style, nothing from another origin, never framed.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache, no-store, must-revalidate"
# The media types of the files in soulsync_core.web, as the OpenAPI document lists them.
ASSET_TYPES = ("text/javascript", "text/css", "image/svg+xml")
VERSION_PLACEHOLDER = "{{version}}"
PAGE = "index.html"


@dataclass(frozen=True)
class Asset:
    """One file: its bytes, their gzip, and its media type."""

    body: bytes
    gzipped: bytes
    content_type: str


@dataclass(frozen=True)
class WebFiles:
    """Every file of the UI, by name, and the version their URLs carry."""

    version: str
    assets: dict[str, Asset]
    page: Asset


def load_web_files(folder: Traversable | None = None) -> WebFiles:
    """Read and compress the files of ``folder`` (default :mod:`soulsync_core.web`).

    Blocking: run it in a thread.
    """
    folder = folder or resources.files("soulsync_core.web")
    raw = {entry.name: entry.read_bytes() for entry in folder.iterdir()
           if entry.is_file() and not entry.name.startswith(("_", "."))
           and not entry.name.endswith((".py", ".pyc"))}
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode() + b"\0" + raw[name] + b"\0")
    version = digest.hexdigest()[:12]
    assets = {name: _asset(name, body) for name, body in raw.items() if name != PAGE}
    page = _asset(PAGE, raw[PAGE].replace(VERSION_PLACEHOLDER.encode(), version.encode()))
    return WebFiles(version, assets, page)


def _asset(name: str, body: bytes) -> Asset:
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith(".js"):
        content_type = "text/javascript"
    return Asset(body, gzip.compress(body, compresslevel=9, mtime=0), content_type)


class WebUi:
    """The UI files of one app, loaded on the first request for them."""

    def __init__(self) -> None:
        self._files: WebFiles | None = None
        self._lock = asyncio.Lock()

    async def files(self) -> WebFiles:
        """Return the loaded files (the same object on every call)."""
        async with self._lock:
            if self._files is None:
                self._files = await asyncio.to_thread(load_web_files)
        return self._files


WEB_UI = web.AppKey("web_ui", WebUi)


def _respond(request: web.Request, asset: Asset, cache: str) -> web.Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    body = asset.body
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(body=body, headers=headers, content_type=asset.content_type,
                        charset=charset)


@routes.get("/", "The web UI (HTML; a client of /api/v1/ only). Needs no key: it asks for one.",
            auth=False, enveloped=False, response=str, content_type="text/html")
async def web_page(request: web.Request) -> web.Response:
    files = await request.app[WEB_UI].files()
    return _respond(request, files.page, PAGE_CACHE)


@routes.get("/assets/{version}/{name}", "A script or style of the web UI; the version in the "
            "path makes it cacheable for a year.", auth=False, enveloped=False, response=str,
            errors=(404,), content_type=ASSET_TYPES, error_type="text/plain")
async def web_asset(request: web.Request) -> web.Response:
    files = await request.app[WEB_UI].files()
    asset = files.assets.get(request.match_info["name"])
    if asset is None or request.match_info["version"] != files.version:
        # A page from an older install asks for files that are gone: it must reload, not cache.
        raise web.HTTPNotFound(text="No such asset in this version of SoulSync; reload the page.",
                               headers={"Cache-Control": PAGE_CACHE})
    return _respond(request, asset, ASSET_CACHE)
