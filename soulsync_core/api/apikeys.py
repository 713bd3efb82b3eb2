"""``/api-keys``: list, create, revoke, and bootstrap the first key.

A key bound to a profile sees, creates and revokes only keys bound to that profile, so it can
never make itself a key that acts as another profile.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, not_found, ok
from soulsync_core.api.middlewares import BOUND_PROFILE
from soulsync_core.apikeys import LABEL_PATTERN, ApiKeyInfo, NewApiKey

routes = Routes("api-keys")

Label = Annotated[str, msgspec.Meta(max_length=200, pattern=LABEL_PATTERN,
                                    description="At most 200 characters, no control characters "
                                                "(newlines, tabs, NUL).")]


class CreateKey(msgspec.Struct):
    """``profile_id`` binds the key to that profile: it then acts only as that profile."""

    label: Label = ""
    profile_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None


class BootstrapKey(msgspec.Struct):
    label: Label = "Default"


class KeyList(msgspec.Struct):
    keys: list[ApiKeyInfo]


class Message(msgspec.Struct):
    message: str


class BootstrapState(msgspec.Struct):
    """``available``: true while no key exists, so ``POST /api-keys/bootstrap`` would work."""

    available: bool


@routes.get("/api-keys", "List keys (prefix and label, never the key or its hash).",
            response=KeyList)
async def list_keys(request: web.Request) -> web.Response:
    return ok(KeyList(await core_of(request).keys.list(request.get(BOUND_PROFILE))))


@routes.post("/api-keys", "Create a key; the raw key is in this answer only.", body=CreateKey,
             response=NewApiKey, status=201, errors=(403, 404))
async def create_key(request: web.Request, body: CreateKey) -> web.Response:
    core = core_of(request)
    bound = request.get(BOUND_PROFILE)
    profile_id = body.profile_id if bound is None else bound
    if bound is not None and body.profile_id not in (None, bound):
        raise ApiError(403, "FORBIDDEN", f"This API key is bound to profile {bound}; it can "
                       f"only create keys bound to profile {bound}.")
    if profile_id is not None and not await core.profiles.exists(profile_id):
        # A missing referenced profile is a 404, as for X-Profile-Id (docs/api.md, Profiles).
        raise ApiError(404, "NOT_FOUND", f"Profile {profile_id} not found; the profiles are "
                       "listed at GET /api/v1/profiles.")
    return ok(await core.keys.create(body.label, profile_id), status=201)


@routes.delete("/api-keys/{key_id}", "Revoke a key (a key may revoke itself).", response=Message,
               errors=(404,))
async def revoke_key(request: web.Request) -> web.Response:
    if await core_of(request).keys.revoke(request.match_info["key_id"],
                                          request.get(BOUND_PROFILE)) is None:
        raise not_found("API key not found.")
    return ok(Message("API key revoked."))


def refuse_cross_site(request: web.Request) -> None:
    """Raise a 403 when a browser says the request comes from another web site.

    The bootstrap needs no key, so on a fresh install any page a user visits could otherwise
    ask their browser to create the first key. Browsers mark such requests with
    ``Sec-Fetch-Site`` (``same-site`` too: another port of the same host is another origin)
    and ``Origin``; curl, scripts and this server's own pages are unaffected.

    A browser's ``Sec-Fetch-Site`` is decisive when sent (no page can set it): behind a
    reverse proxy that rewrites ``Host``, the ``Origin`` of SoulSync's own page no longer
    equals ``Host``, yet the browser still says ``same-origin``. Only browsers too old to send
    it are judged by ``Origin`` against ``Host`` (or the proxy's ``X-Forwarded-Host``, a
    header a cross-site page cannot send without a preflight this server never grants).
    """
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    origin = request.headers.get("Origin")
    if site:
        foreign = site in ("cross-site", "same-site")
    elif origin is not None:
        hosts = {request.headers.get("Host", "").lower(),
                 request.headers.get("X-Forwarded-Host", "").split(",")[0].strip().lower()}
        foreign = origin == "null" or urlsplit(origin).netloc.lower() not in hosts - {""}
    else:
        foreign = False
    if foreign:
        raise ApiError(403, "FORBIDDEN",
                       "The first API key cannot be created from another web site. Run the "
                       "bootstrap from the box (curl, `soulsync keys create`) or from "
                       "SoulSync's own address.")


@routes.get("/system/bootstrap", "Whether the first key can still be created (no key exists "
            "yet); needs no key and tells nothing else.", response=BootstrapState, auth=False)
async def bootstrap_state(request: web.Request) -> web.Response:
    return ok(BootstrapState(available=await core_of(request).keys.count() == 0))


@routes.post("/api-keys/bootstrap", "Create the first key; needs no key, 403 once any exists "
             "or when a browser sends it from another web site.",
             body=BootstrapKey, response=NewApiKey, status=201, auth=False, errors=(403,))
async def bootstrap_key(request: web.Request, body: BootstrapKey) -> web.Response:
    refuse_cross_site(request)
    new = await core_of(request).keys.bootstrap(body.label)
    if new is None:
        raise ApiError(403, "FORBIDDEN",
                       "API keys already exist. Use an authenticated request to create more.")
    return ok(new, status=201)
