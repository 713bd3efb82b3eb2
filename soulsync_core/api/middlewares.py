"""Middlewares, outermost first: error envelope, rate limit, authentication, JSON bodies.

Rate limiting runs before authentication so that guessing keys is throttled like anything else.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from soulsync_core.api.endpoints import API_PREFIX, MAX_INT, MIN_INT, Endpoint, core_of, endpoint_of
from soulsync_core.api.envelope import ApiError, error_response
from soulsync_core.profiles import DEFAULT_PROFILE
from soulsync_core.ratelimit import categorize, client_address

log = logging.getLogger(__name__)

_INTEGER = re.compile(r"-?[0-9]+")

API_KEY_ID = web.RequestKey("api_key_id", str)
# The profile a request acts as (endpoints declared ``profiled``), resolved once here.
PROFILE_ID = web.RequestKey("profile_id", int)
# The profile the request's key is bound to; absent for an unbound key.
BOUND_PROFILE = web.RequestKey("bound_profile", int)

_HTTP_CODES = {400: "BAD_REQUEST", 401: "AUTH_REQUIRED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
               413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED"}


def is_api(request: web.Request) -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


@web.middleware
async def error_envelope(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Answer every failure under /api/v1/ with the envelope; never leak a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if not is_api(request) or exc.status < 400:
            raise
        return error_response(_from_http_exception(request, exc))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(ApiError(500, "INTERNAL_ERROR", "An internal server error occurred."))


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        # Each fixed path has a catch-all route (api/app.py add_fixed_path_fallbacks) that
        # raises this with that path's own methods only.
        allowed = ", ".join(sorted(exc.allowed_methods))
        return ApiError(405, "METHOD_NOT_ALLOWED",
                        f"{request.method} is not allowed on {request.path}; use {allowed}.",
                        {"Allow": allowed})
    if exc.status == 404:
        return ApiError(404, "NOT_FOUND",
                        f"No endpoint {request.method} {request.path}. "
                        f"The endpoints are listed in {API_PREFIX}/openapi.json.")
    code = _HTTP_CODES.get(exc.status, "BAD_REQUEST" if exc.status < 500 else "INTERNAL_ERROR")
    message = exc.reason if exc.status < 500 else "An internal server error occurred."
    return ApiError(exc.status, code, message)


@web.middleware
async def rate_limit(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Refuse a request over its (client, category) limit with 429 and Retry-After."""
    category = _limit_category(request)
    if category is None:
        return await handler(request)
    core = core_of(request)
    client = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                            core.trusted_proxies)
    retry_after = await core.limiter.check(client, category)
    if retry_after is not None:
        limit = core.settings.get(f"api.rate_limits.{category}")
        raise ApiError(429, "RATE_LIMITED",
                       f"Too many requests: at most {limit} per minute for this kind of request. "
                       f"Retry after {retry_after} s.",
                       {"Retry-After": str(retry_after)})
    return await handler(request)


@web.middleware
async def require_json(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Refuse an API request body that is not ``application/json`` (UTF-8) with a 415.

    A browser sends ``text/plain``, form and multipart bodies cross-site without asking
    (a "simple" request); a JSON body needs a CORS preflight, which this server never grants.
    So only JSON bodies are read, and no other web page can make a browser post to the API.
    A request without a body needs no Content-Type; an endpoint that takes no body ignores one.
    """
    endpoint = endpoint_of(request)
    if endpoint is not None and endpoint.body is not None and request.body_exists:
        charset = (request.charset or "utf-8").lower()
        if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
            sent = request.headers.get("Content-Type")
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                           "Send the request body as JSON with the header Content-Type: "
                           f"application/json (this request sent {_quoted(sent)}).")
    return await handler(request)


def _quoted(content_type: str | None) -> str:
    if not content_type:
        return "no Content-Type"
    return repr(content_type[:100])


def _limit_category(request: web.Request) -> str | None:
    """Return the rate-limit category of a request; None for one outside the API whose
    endpoint names none (``/ping``, the OAuth callbacks)."""
    if is_api(request):
        return categorize(request.method, request.path)
    endpoint = endpoint_of(request)
    return None if endpoint is None else endpoint.limit_category


def presented_key(request: web.Request) -> str | None:
    """Return the key from ``Authorization: Bearer …``, else from ``?api_key=``, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.query.get("api_key") or None


@web.middleware
async def authenticate(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Require a valid key on every endpoint declared with ``auth=True``."""
    endpoint = endpoint_of(request)
    if endpoint is None or not endpoint.auth or _made_public(request, endpoint):
        return await handler(request)
    raw = presented_key(request)
    header = request.headers.get("Authorization", "").strip()
    if raw is None and header:
        raise ApiError(401, "AUTH_REQUIRED",
                       "The Authorization header must be 'Bearer <key>' (the word Bearer, a "
                       "space, then the key); it has no Bearer scheme. Or pass ?api_key=<key>.")
    if raw is None:
        raise ApiError(401, "AUTH_REQUIRED",
                       "API key is required. Pass via Authorization: Bearer <key> header "
                       "or ?api_key= query parameter.")
    key_id = await core_of(request).keys.authenticate(raw)
    if key_id is None:
        raise ApiError(403, "INVALID_KEY", "Invalid API key.")
    request[API_KEY_ID] = key_id
    bound = core_of(request).keys.binding(key_id)
    if bound is not None:
        request[BOUND_PROFILE] = bound
    if endpoint.profiled:
        request[PROFILE_ID] = await _resolve_profile(request, bound)
    return await handler(request)


def _made_public(request: web.Request, endpoint: Endpoint) -> bool:
    return endpoint.public_setting is not None and bool(
        core_of(request).settings.get(endpoint.public_setting))


def named_profile(request: web.Request) -> int | None:
    """Return the profile a request names by ``X-Profile-Id``, else ``?profile_id=`` (values
    below 1 mean profile 1, as the public server reads them), or None when it names none.
    Raises a 400 for a value that is not a 64-bit integer."""
    for where, raw in (("X-Profile-Id header", request.headers.get("X-Profile-Id", "")),
                       ("profile_id", request.query.get("profile_id", ""))):
        text = raw.strip()
        if not text:
            continue
        if not _INTEGER.fullmatch(text) or not MIN_INT <= int(text) <= MAX_INT:
            raise ApiError(400, "BAD_REQUEST", f"{where} must be a profile id (an integer, see "
                           f"GET {API_PREFIX}/profiles), not {text[:40]!r}.")
        return max(DEFAULT_PROFILE, int(text))
    return None


async def _resolve_profile(request: web.Request, bound: int | None) -> int:
    named = named_profile(request)
    if bound is not None:
        if named is not None and named != bound:
            raise ApiError(403, "FORBIDDEN", f"This API key is bound to profile {bound}; it "
                           f"cannot act as profile {named}.")
        return bound
    if named is None or named == DEFAULT_PROFILE:
        return DEFAULT_PROFILE
    if not await core_of(request).profiles.exists(named):
        raise ApiError(404, "NOT_FOUND", f"Profile {named} not found; the profiles are listed "
                       f"at GET {API_PREFIX}/profiles.")
    return named


def profile_of(request: web.Request) -> int:
    """Return the profile the request acts as (1 unless its key or ``X-Profile-Id`` says)."""
    return request.get(PROFILE_ID, request.get(BOUND_PROFILE, DEFAULT_PROFILE))
