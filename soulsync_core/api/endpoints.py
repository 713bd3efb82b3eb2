"""Endpoint declarations: each route states its body, query, response and errors once.

The same :class:`Endpoint` objects register the aiohttp routes, decode and validate requests
(a wrong type is a 400 naming the field) and produce the OpenAPI document, so the document
cannot drift from what the server accepts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import msgspec.inspect
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
    updated). ``content_type`` is that of the answers of an endpoint that is not ``enveloped``
    (an HTML page, say); its own ``errors`` are answered in it too, or in ``error_type``.
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
    # Of the success answer (the event stream's and ``/metrics``' differ); several when it
    # varies (web assets).
    content_type: str | tuple[str, ...] = "application/json"
    # Outside /api/v1/, of the endpoint's own errors (None: the same as its success answer).
    error_type: str | None = None
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
            kwargs["query"] = convert(query_values(request, endpoint.query), endpoint.query,
                                      strict=False)
        return await endpoint.handler(request, **kwargs)

    handle.endpoint = endpoint  # type: ignore[attr-defined]
    return handle


_INTEGER = re.compile(r"-?[0-9]+")
# Every integer the API takes is stored in or compared against SQLite, whose integers are 64-bit.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
_MAX_ID = MAX_INT
# Deeper JSON is refused before any handler walks it (settings flattening, track objects and
# the encoder are recursive); no body the API takes nests more than a handful of levels.
MAX_JSON_DEPTH = 64
# Control characters have no meaning in any query parameter, and a NUL ends a string early
# in SQLite's full-text query parser.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


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
    if len(raw) > INLINE_BODY_BYTES:
        return await asyncio.to_thread(decode_json_object, raw)
    return decode_json_object(raw)


# Decoding and walking a body takes about 0.2 ms per KiB: larger ones are read in a thread,
# so a 1 MiB playlist does not hold up every other request.
INLINE_BODY_BYTES = 64 * 1024


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Return ``raw`` decoded as a JSON object, checked and prepared by :func:`prepare_json`;
    raise a 400 for anything else."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise bad_request(f"Request body is not valid JSON ({exc}).") from None
    except RecursionError:
        raise too_deep() from None
    if not isinstance(value, dict):
        raise bad_request(f"Request body must be a JSON object, not {_json_kind(value)}.")
    prepare_json(value)
    return value


def too_deep() -> ApiError:
    return bad_request(f"Request body nests deeper than {MAX_JSON_DEPTH} levels of objects "
                       "and lists.")


def out_of_range(name: str) -> ApiError:
    return bad_request(f"{name} must be an integer between {MIN_INT} and {MAX_INT}.")


def prepare_json(value: dict[str, Any] | list[Any]) -> None:
    """Raise a 400 when decoded JSON nests deeper than :data:`MAX_JSON_DEPTH`; turn integral
    numbers written with a fraction or exponent (``2.0``, ``1e3``) into integers, as JSON Schema
    counts them (in place). Returns None.

    Walked with a stack, not recursion, so no depth of input can exhaust Python's stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        keys = item.keys() if isinstance(item, dict) else range(len(item))
        for key in keys:
            child = item[key]
            if isinstance(child, dict | list):
                if depth + 1 >= MAX_JSON_DEPTH:
                    raise too_deep()
                stack.append((child, depth + 1))
            elif isinstance(child, float) and child.is_integer() and MIN_INT <= child <= MAX_INT:
                item[key] = int(child)


def query_values(request: web.Request, model: type[msgspec.Struct]) -> dict[str, str]:
    """Return the query parameters ``model`` declares (the last of repeated ones).

    A control character in one of them is a 400; others (``api_key``, unknown names) are left
    to whoever reads them.
    """
    values = {name: request.query.getall(name)[-1] for name in model.__struct_fields__
              if name in request.query}
    for name, value in values.items():
        if match := CONTROL_CHARACTERS.search(value):
            raise bad_request(f"{name} must not contain control characters "
                              f"(U+{ord(match.group()):04X} at position {match.start() + 1}).")
    return values


def text(pattern: str, must: str, *, echo: bool = False) -> Any:
    """Return a ``str`` type that must match ``pattern`` (searched, as JSON Schema does).

    msgspec enforces it and the OpenAPI document states it, from this one declaration; a
    value that does not match is a 400 ``"<field> <must>."`` (with the value sent when
    ``echo``).
    """
    return Annotated[str, msgspec.Meta(pattern=pattern, description=f"Must {must.removeprefix('must ')}.",
                                       extra={"must": must, "echo": echo})]


def _choice_pattern(choices: tuple[str, ...]) -> str:
    return "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c)
                            for c in choice) for choice in choices)


def one_of(*choices: str, blank: bool = False, must: str | None = None) -> Any:
    """Return a ``str`` type accepting any of ``choices`` in any letter case, spaces around
    allowed (and the empty string when ``blank``); the handler folds it to one of them."""
    return text(rf"^ *(?:{_choice_pattern(choices)}){'?' if blank else ''} *$",
                must or f"must be one of {', '.join(choices)}", echo=True)


def comma_list_of(*choices: str) -> Any:
    """Return a ``str`` type holding a comma-separated list of ``choices`` (any letter case,
    spaces and empty items allowed, as the handler splits it)."""
    item = rf" *(?:(?:{_choice_pattern(choices)}) *)?"
    return text(rf"^{item}(?:,{item})*$",
                f"must be a comma-separated list of {', '.join(choices)}", echo=True)


# A character str.strip() keeps, read the same by Python's re (msgspec) and by the ECMA regex of
# JSON Schema: their \s differ by U+001C-U+001F and U+0085 (Python's) and U+FEFF (ECMA's).
NON_BLANK_PATTERN = r"[^\s\x1c-\x1f\x85]"
NonBlank = text(NON_BLANK_PATTERN, "must be a non-empty string")


def registered(kind: str) -> Any:
    """Return a ``str`` type naming something plugins register (``metadata_source``,
    ``playlist_source``): the handler checks it; the served OpenAPI document lists the names
    this daemon has as the ``enum`` (see :class:`~soulsync_core.api.openapi.OpenApiDocument`)."""
    return Annotated[str, msgspec.Meta(extra_json_schema={"x-registered": kind})]


def convert(value: Any, model: Any, *, strict: bool = True) -> Any:
    """Convert decoded JSON (or query strings with ``strict=False``) to ``model``; 400 if it fails.

    An integer beyond 64 bits in a field the model declares is a 400 naming it.
    """
    try:
        converted = msgspec.convert(value, model, strict=strict)
    except msgspec.ValidationError as exc:
        raise bad_request(_rule_message(value, model, str(exc)) or explain(str(exc))) from None
    except RecursionError:
        raise too_deep() from None
    _check_integers(converted)
    return converted


def _check_integers(value: Any) -> None:
    """Raise a 400 for an integer beyond 64 bits in a declared field of ``value``.

    Walks Structs and the lists they hold; dicts are free-form (``Any``) data the handler
    validates itself.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, at = stack.pop()
        if isinstance(item, msgspec.Struct):
            stack.extend((getattr(item, name), f"{at}.{name}" if at else name)
                         for name in item.__struct_fields__)
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and not MIN_INT <= item <= MAX_INT:
            raise out_of_range(at or "request body")


_FIELD_AT = re.compile(r" - at `\$\.(?P<at>\w+)`$")


def _rule_message(value: Any, model: Any, message: str) -> str | None:
    """Return the 400 message of a top-level field declared with :func:`text`, else None."""
    match = _FIELD_AT.search(message)
    if match is None or "` matching regex " not in message:
        return None
    info = msgspec.inspect.type_info(model)
    if isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if not isinstance(info, msgspec.inspect.StructType):
        return None
    field_type = next((f.type for f in info.fields if f.encode_name == match["at"]), None)
    candidates = field_type.types if isinstance(field_type, msgspec.inspect.UnionType) else (field_type,)
    for candidate in candidates:
        if isinstance(candidate, msgspec.inspect.Metadata) and "must" in (candidate.extra or {}):
            sent = value.get(match["at"]) if isinstance(value, dict) else None
            shown = f", not {sent!r}" if candidate.extra["echo"] and isinstance(sent, str) else ""
            return f"{match['at']} {candidate.extra['must']}{shown}."
    return None


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
