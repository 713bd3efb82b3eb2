"""The one response envelope: ``{success, data, error, pagination}`` and the errors that use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

from soulsync_core.api.paging import Pagination


class ErrorBody(msgspec.Struct):
    code: str
    message: str


class ApiError(Exception):
    """Raise from a handler or middleware to answer with an error envelope."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


_encoder = msgspec.json.Encoder()


def envelope(success: bool, data: Any, error: ErrorBody | None,
             pagination: Pagination | None) -> bytes:
    """Return the JSON bytes of an envelope (always exactly the four keys)."""
    return _encoder.encode({"success": success, "data": data, "error": error,
                            "pagination": pagination})


def ok(data: Any, *, status: int = 200, pagination: Pagination | None = None) -> web.Response:
    """Return a success envelope carrying ``data`` (a msgspec Struct, dict or list)."""
    return web.Response(body=envelope(True, data, None, pagination), status=status,
                        content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    """Return the error envelope of ``error`` with its status and headers."""
    return web.Response(body=envelope(False, None, ErrorBody(error.code, error.message), None),
                        status=error.status, headers=error.headers,
                        content_type="application/json")
