"""Endpoint declarations: each route states its body, query, response and errors once.

The same :class:`Endpoint` objects register the aiohttp routes, decode and validate requests
(a wrong type is a 400 naming the field) and produce the OpenAPI document, so the document
cannot drift from what the server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from soulsync_core.api.envelope import ApiError, bad_request
from soulsync_core.core import Core

API_PREFIX = "/api/v1"
CORE = web.AppKey("core", Core)

Handler = Callable[..., Awaitable[web.StreamResponse]]


def core_of(request: web.Request) -> Core:
    """Return the :class:`Core` of the app serving ``request``."""
    return request.app[CORE]


@dataclass(frozen=True)
class Endpoint:
    """One route. ``path`` is the full path in aiohttp/OpenAPI syntax (``/api/v1/x/{id}``).

    ``body`` and ``query`` are msgspec types the request is converted to and passed to the
    handler as ``body=`` and ``query=``; ``response`` is the type of the envelope's ``data``.
    ``errors`` lists the statuses the handler itself may answer besides the common ones;
    ``also`` other success statuses answered with the same ``response`` (201 created / 200
    updated).
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: Any = None
    status: int = 200
    body: Any = None
    query: type[msgspec.Struct] | None = None
    path_types: Mapping[str, type] = field(default_factory=dict)
    auth: bool = True
    paginated: bool = False
    enveloped: bool = True
    errors: tuple[int, ...] = ()
    also: tuple[int, ...] = ()
    # Acts as a profile (``X-Profile-Id`` / ``?profile_id=``, see api/middlewares.py).
    profiled: bool = False
    # The media type of the success answer (``/metrics`` is Prometheus text).
    content_type: str = "application/json"
    # A boolean setting that, when true, lets anyone call this ``auth`` endpoint without a key.
    public_setting: str | None = None
    # The rate-limit category of a route outside /api/v1/ (those are not limited without one).
    limit_category: str | None = None

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


class Routes:
    """The endpoints of one API module; decorate handlers with :meth:`get`, :meth:`post` …"""

    def __init__(self, tag: str, prefix: str = API_PREFIX):
        self.tag = tag
        self.prefix = prefix
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, self.prefix + path, handler, summary, self.tag,
                                           **options))
            return handler
        return register

    def get(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **options)

    def post(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **options)

    def patch(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **options)

    def delete(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **options)


def aiohttp_handler(endpoint: Endpoint) -> Handler:
    """Return the aiohttp handler that decodes the request and calls ``endpoint.handler``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if endpoint.body is not None:
            limit = core_of(request).settings.get("server.max_body_kb") * 1024
            kwargs["body"] = convert(await read_json_object(request, limit), endpoint.body)
        if endpoint.query is not None:
            kwargs["query"] = convert(dict(request.query), endpoint.query, strict=False)
        return await endpoint.handler(request, **kwargs)

    handle.endpoint = endpoint  # type: ignore[attr-defined]
    return handle


_INTEGER = re.compile(r"-?[0-9]+")
_MAX_ID = 2**63 - 1


def path_id(request: web.Request, name: str, what: str) -> int:
    """Return the integer path parameter ``name`` (CONTRACT decision 5).

    Raises a 400 ``"<name> must be an integer."`` when it is not one, and a 404
    ``"<what> <id> not found."`` when it is beyond any SQLite id.
    """
    raw = request.match_info[name]
    if not _INTEGER.fullmatch(raw):
        raise bad_request(f"{name} must be an integer.")
    value = int(raw)
    if abs(value) > _MAX_ID:
        raise ApiError(404, "NOT_FOUND", f"{what} {raw} not found.")
    return value


def endpoint_of(request: web.Request) -> Endpoint | None:
    """Return the endpoint a request was routed to, or None for an unmatched request."""
    return getattr(request.match_info.handler, "endpoint", None)


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "PAYLOAD_TOO_LARGE",
                    f"Request body is larger than {limit // 1024} KiB "
                    "(the server.max_body_kb setting).")


async def read_body(request: web.Request, limit: int) -> bytes:
    """Return the request body; raise 413 as soon as it exceeds ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise payload_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise payload_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """Return the body as a JSON object; an empty body is ``{}``; anything else is a 400."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise bad_request(f"Request body is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise bad_request(f"Request body must be a JSON object, not {_json_kind(value)}.")
    return value


def convert(value: Any, model: Any, *, strict: bool = True) -> Any:
    """Convert decoded JSON (or query strings with ``strict=False``) to ``model``; 400 if it fails."""
    try:
        return msgspec.convert(value, model, strict=strict)
    except msgspec.ValidationError as exc:
        raise bad_request(explain(str(exc))) from None


_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`(?P<bound>[^`,]*?)(?:, got `(?P<got>[^`]+)`)?"
                       r"(?: - at `\$\.?(?P<at>[^`]*)`)?$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`(?: - at `\$\.?(?P<at>[^`]*)`)?$")
_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
          "object": "an object", "array": "a list", "null": "null"}


def explain(message: str) -> str:
    """Turn a msgspec validation message into one that names the field and what it must be.

    ``Expected `int`, got `str` - at `$.limit``` becomes ``limit must be an integer, not a
    string.``; a missing field becomes ``id is required.``
    """
    if match := _MISSING.match(message):
        at = match["at"]
        name = f"{at}.{match['name']}" if at else match["name"]
        return f"{name} is required."
    if match := _EXPECTED.match(message):
        want = " or ".join(_WORDS.get(part.strip(), part.strip()) for part in match["want"].split("|"))
        field_name = match["at"] or "request body"
        got = f", not {_WORDS.get(match['got'], match['got'])}" if match["got"] else ""
        return f"{field_name} must be {want}{match['bound']}{got}."
    return message.rstrip(".") + "."


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
