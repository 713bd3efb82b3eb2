"""The OpenAPI 3.1 document, generated from the :class:`Endpoint` declarations."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from soulsync_core import __version__
from soulsync_core.api.endpoints import Endpoint, Routes
from soulsync_core.api.envelope import ErrorBody
from soulsync_core.api.paging import Pagination

routes = Routes("meta")
class OpenApiDocument:
    """The encoded document of an app's endpoints, built on the first request for it.

    Building it takes tens of milliseconds that start-up does not need to spend; it is built
    once, in a worker thread, and kept.
    """

    def __init__(self, endpoints: list[Endpoint]):
        self._endpoints = endpoints
        self._body: bytes | None = None
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        """Return the JSON document (the same bytes on every call)."""
        async with self._lock:
            if self._body is None:
                self._body = await asyncio.to_thread(
                    lambda: msgspec.json.encode(build_openapi(self._endpoints)))
        return self._body


OPENAPI_DOC = web.AppKey("openapi_doc", OpenApiDocument)
REF = "#/components/schemas/{name}"

_ERROR_TEXT = {400: "Bad request: the message names the field and what it must be.",
               401: "No API key was given.", 403: "The API key is wrong or revoked.",
               404: "Not found.", 409: "Conflict with the current state.",
               413: "The request body is too large.", 429: "Rate limited; see Retry-After.",
               500: "Unexpected server error (no internals in the message)."}


def build_openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document describing ``endpoints``."""
    types: list[Any] = [ErrorBody, Pagination]
    for endpoint in endpoints:
        types.extend(t for t in (endpoint.response, endpoint.body, endpoint.query) if t is not None)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
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
            operation["requestBody"] = {"required": False, "content": {
                "application/json": {"schema": schema_of[id(endpoint.body)]}}}
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
    if endpoint.query is not None:
        query_schema = components[endpoint.query.__name__]
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
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
    return params


def _responses(endpoint: Endpoint, schema_of: dict[int, dict[str, Any]]) -> dict[str, Any]:
    data = schema_of[id(endpoint.response)] if endpoint.response is not None else {"type": "null"}
    if endpoint.enveloped:
        pagination = ({"$ref": REF.format(name="Pagination")} if endpoint.paginated
                      else {"type": "null"})
        data = _envelope(True, data, {"type": "null"}, pagination)
    responses: dict[str, Any] = {
        str(status): {"description": "Success.",
                      "content": {endpoint.content_type: {"schema": data}}}
        for status in (endpoint.status, *endpoint.also)
    }
    errors = set(endpoint.errors) | {500}
    if endpoint.enveloped or endpoint.limit_category:
        errors.add(429)
    if endpoint.auth:
        errors |= {401, 403}
    if endpoint.body is not None:
        errors |= {400, 413}
    if endpoint.query is not None or endpoint.path_types:
        errors.add(400)
    if endpoint.profiled:
        errors |= {400, 403, 404}
    error_ref = {"$ref": REF.format(name="ErrorEnvelope")}
    for status in sorted(errors):
        responses[str(status)] = {"description": _ERROR_TEXT.get(status, "Error."),
                                  "content": {"application/json": {"schema": error_ref}}}
    return responses


@routes.get("/openapi.json", "This OpenAPI 3.1 document (served as is, not in an envelope).",
            response=dict[str, Any], enveloped=False)
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=await request.app[OPENAPI_DOC].body(), content_type="application/json")

