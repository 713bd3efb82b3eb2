"""The OpenAPI 3.1 document, generated from the :class:`Endpoint` declarations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from aiohttp import web

from soulsync_core import __version__
from soulsync_core.api.endpoints import API_PREFIX, MAX_INT, MIN_INT, Endpoint, Routes
from soulsync_core.api.envelope import ErrorBody
from soulsync_core.api.paging import Pagination
from soulsync_core.config import Schema, Setting
from soulsync_core.search import AUTO

routes = Routes("meta")
class OpenApiDocument:
    """The encoded document of an app's endpoints, built on the first request for it.

    Building it takes tens of milliseconds that start-up does not need to spend; it is built
    once, in a worker thread, and kept.
    """

    def __init__(self, endpoints: list[Endpoint],
                 registered: Callable[[], Mapping[str, Any]] | None = None):
        self._endpoints = endpoints
        self._registered = registered
        self._body: bytes | None = None
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        """Return the JSON document (the same bytes on every call)."""
        async with self._lock:
            if self._body is None:
                names = self._registered() if self._registered is not None else None
                self._body = await asyncio.to_thread(
                    lambda: msgspec.json.encode(build_openapi(self._endpoints, names)))
        return self._body


OPENAPI_DOC = web.AppKey("openapi_doc", OpenApiDocument)
REF = "#/components/schemas/{name}"

_ERROR_TEXT = {400: "Bad request: the message names the field and what it must be.",
               401: "No API key was given.", 403: "The API key is wrong or revoked.",
               404: "Not found.", 409: "Conflict with the current state.",
               413: "The request body is too large.", 429: "Rate limited; see Retry-After.",
               415: "The body is not JSON: send Content-Type: application/json.",
               500: "Unexpected server error (no internals in the message).",
               503: "An outside service the request needs is not set up or not answering."}
# What the server refuses in every query parameter (endpoints.query_values) and every declared
# integer (endpoints.convert), stated in each schema so a client can know it beforehand.
NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f]*$"


def build_openapi(endpoints: Sequence[Endpoint],
                  registered: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document describing ``endpoints``.

    ``registered`` (see :func:`document_names`) maps each kind of thing plugins register (see
    :func:`~soulsync_core.api.endpoints.registered`) to what a daemon has; it becomes the
    ``enum`` (or ``properties``) of the fields declared with that kind. Without it (or with
    nothing of a kind) such a field is any string (or object).
    """
    types: list[Any] = [ErrorBody, Pagination]
    for endpoint in endpoints:
        types.extend(t for t in (endpoint.response, endpoint.body, endpoint.query) if t is not None)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    _list_registered([schemas, components], registered or {})
    _bound_integers([schemas, components])
    schema_of = dict(zip(map(id, types), schemas, strict=True))
    components["ErrorEnvelope"] = _envelope(False, {"type": "null"}, {"$ref": REF.format(name="ErrorBody")},
                                            {"type": "null"})

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.handler.__name__,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "parameters": _parameters(endpoint, components),
            "responses": _responses(endpoint, schema_of),
        }
        if not endpoint.auth:
            operation["security"] = []
        if endpoint.body is not None:
            body = schema_of[id(endpoint.body)]
            operation["requestBody"] = {"required": _needs_body(body, components), "content": {
                "application/json": {"schema": body}}}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": "SoulSync API", "version": __version__,
                 "description": "Every /api/v1/ response is the envelope "
                                "{success, data, error, pagination}."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
        },
        "security": [{"bearer": []}, {"apiKeyQuery": []}],
    }


def _envelope(success: bool, data: dict[str, Any], error: dict[str, Any],
              pagination: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "error", "pagination"],
        "additionalProperties": False,
        "properties": {"success": {"const": success}, "data": data, "error": error,
                       "pagination": pagination},
    }


def _parameters(endpoint: Endpoint, components: dict[str, Any]) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True,
               "schema": msgspec.json.schema(endpoint.path_types.get(name, str))}
              for name in endpoint.path_params]
    _bound_integers(params)
    if endpoint.query is not None:
        query_schema = components[endpoint.query.__name__]
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            if schema.get("type") == "string" and "enum" not in schema:
                schema = ({**schema, "pattern": NO_CONTROL_CHARACTERS} if "pattern" not in schema
                          else {**schema, "allOf": [{"pattern": NO_CONTROL_CHARACTERS}]})
            params.append({"name": name, "in": "query", "required": name in required,
                           "schema": schema})
    if endpoint.profiled:
        described = "The profile to act as (default 1, or the key's own profile)."
        params.append({"name": "X-Profile-Id", "in": "header", "required": False,
                       "description": described, "schema": {"type": "integer"}})
        if not any(p["name"] == "profile_id" for p in params):
            params.append({"name": "profile_id", "in": "query", "required": False,
                           "description": described + " The header wins.",
                           "schema": {"type": "integer"}})
        _bound_integers(params)
    return params


def _needs_body(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Return whether a body of ``schema`` must be sent: an absent body reads as ``{}``, which
    is refused when the schema requires a field or any property."""
    ref = schema.get("$ref", "")
    target = components.get(ref.rpartition("/")[2], {}) if ref else {}
    return any(s.get(k) for s in (schema, target) for k in ("required", "minProperties", "anyOf"))


def document_names(metadata_providers: Sequence[str], playlist_sources: Sequence[str],
                   settings: Schema) -> dict[str, Any]:
    """Return what a daemon registered, by kind, for :func:`build_openapi`: the names of its
    metadata providers and playlist sources, and the JSON Schema of each of its settings."""
    return {"metadata_source": [AUTO, *metadata_providers], "metadata_provider": list(metadata_providers),
            "playlist_source": list(playlist_sources),
            "setting": {key: setting_schema(settings[key]) for key in settings.keys()}}


_SETTING_TYPES = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                  bool: {"type": "boolean"}, list: {"type": "array", "items": {"type": "string"}}}


def setting_schema(setting: Setting) -> dict[str, Any]:
    """Return the JSON Schema of a value ``PATCH /settings`` takes for ``setting`` (null resets
    it). A setting with a ``check`` is marked ``x-checked``: the check's rule is in words only."""
    value: dict[str, Any] = dict(_SETTING_TYPES[setting.type])
    if setting.choices is not None:
        value["enum"] = list(setting.choices)
    if setting.minimum is not None:
        value["minimum"] = setting.minimum
    if setting.maximum is not None:
        value["maximum"] = setting.maximum
    schema: dict[str, Any] = {"anyOf": [value, {"type": "null"}], "description": setting.description}
    if setting.check is not None:
        schema["x-checked"] = True
    return schema


def _list_registered(schemas: Any, registered: Mapping[str, Any]) -> None:
    """Give every field declared with a registered kind what that kind holds (in place): a list
    of names becomes its ``enum``, a mapping the ``properties`` of an object that has no others."""
    stack = [schemas]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("x-registered")
            names = registered.get(kind) if kind is not None else None
            if isinstance(names, Mapping):
                item["properties"] = dict(names)
                item["additionalProperties"] = False
            elif names is not None and item.get("default", names[0] if names else None) in (
                    *names, None):
                # Empty when none is installed: no value is valid. A field whose default is not
                # installed is left open (its handler answers 503, or 400 listing the names).
                item["enum"] = list(names)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _bound_integers(schemas: Any) -> None:
    """Give every integer schema without bounds the 64-bit range the server accepts (in place)."""
    stack = [schemas]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "integer":
                if "minimum" not in item and "exclusiveMinimum" not in item:
                    item["minimum"] = MIN_INT
                if "maximum" not in item and "exclusiveMaximum" not in item:
                    item["maximum"] = MAX_INT
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _responses(endpoint: Endpoint, schema_of: dict[int, dict[str, Any]]) -> dict[str, Any]:
    data = schema_of[id(endpoint.response)] if endpoint.response is not None else {"type": "null"}
    if endpoint.enveloped:
        pagination = ({"$ref": REF.format(name="Pagination")} if endpoint.paginated
                      else {"type": "null"})
        data = _envelope(True, data, {"type": "null"}, pagination)
    types = ((endpoint.content_type,) if isinstance(endpoint.content_type, str)
             else endpoint.content_type)
    responses: dict[str, Any] = {
        str(status): {"description": "Success.",
                      "content": {media_type: {"schema": data} for media_type in types}}
        for status in (endpoint.status, *endpoint.also)
    }
    errors = set(endpoint.errors) | {500}
    if endpoint.enveloped or endpoint.limit_category:
        errors.add(429)
    if endpoint.auth:
        errors |= {401, 403}
    if endpoint.body is not None:
        errors |= {400, 413, 415}
    if endpoint.query is not None or endpoint.path_types:
        errors.add(400)
    if endpoint.profiled:
        errors |= {400, 403, 404}
    error_content = {"application/json": {"schema": {"$ref": REF.format(name="ErrorEnvelope")}}}
    if not endpoint.path.startswith(API_PREFIX + "/"):
        # Outside the API there is no envelope: the endpoint's own errors are in its content
        # type (or error_type), and an unexpected failure is aiohttp's plain-text 500.
        error_content = {endpoint.error_type or types[0]: {"schema": {"type": "string"}}}
    for status in sorted(errors):
        content = error_content
        if status == 500 and not endpoint.path.startswith(API_PREFIX + "/"):
            content = {"text/plain": {"schema": {"type": "string"}}}
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error."),
                                  "content": content}
    return responses


@routes.get("/openapi.json", "This OpenAPI 3.1 document (served as is, not in an envelope).",
            response=dict[str, Any], enveloped=False)
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=await request.app[OPENAPI_DOC].body(), content_type="application/json")

