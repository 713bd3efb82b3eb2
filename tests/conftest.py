"""Shared fixtures: a core in a temp data dir, an API client that checks every answer
against the OpenAPI document, and a ready API key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from tests.openapi_check import OpenApiChecker


class Reply:
    """A decoded answer: ``status``, ``json`` (the envelope), ``headers``."""

    def __init__(self, status: int, body: Any, headers: Any):
        self.status = status
        self.json = body
        self.headers = headers

    @property
    def data(self) -> Any:
        return self.json["data"]

    @property
    def error(self) -> Any:
        return self.json["error"]


class Api:
    """Talks to the app like a client would; validates each answer against the OpenAPI doc."""

    def __init__(self, client: TestClient, checker: OpenApiChecker):
        self.client = client
        self.checker = checker
        self.key: str | None = None

    async def request(self, method: str, path: str, *, json_body: Any = None, raw: bytes | None = None,
                      key: str | None = None, auth: bool = True, headers: dict[str, str] | None = None,
                      params: dict[str, str] | None = None) -> Reply:
        headers = dict(headers or {})
        use_key = key if key is not None else self.key
        if auth and use_key:
            headers["Authorization"] = f"Bearer {use_key}"
        data = raw if raw is not None else (json.dumps(json_body) if json_body is not None else None)
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, headers=headers,
                                       params=params) as response:
            body = await response.json(content_type=None)
            self.checker.check(method, response.url.path, response.status, body)
            return Reply(response.status, body, response.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, json_body=body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)


@pytest.fixture
def openapi_doc() -> dict[str, Any]:
    return build_openapi(all_endpoints())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    """A core in a temp data dir; an app built on it starts and stops it, this closes it."""
    core = await Core.open(data_dir, environ={})
    yield core
    await core.close()


@pytest.fixture
async def api(aiohttp_client: Any, core: Core, openapi_doc: dict[str, Any]) -> AsyncIterator[Api]:
    client = await aiohttp_client(create_app(core))
    yield Api(client, OpenApiChecker(openapi_doc))
    await client.close()  # stops the app (and its core) before the core fixture closes it


@pytest.fixture
async def key(api: Api) -> str:
    """Bootstrap a key and make it the client's default."""
    reply = await api.post("/api/v1/api-keys/bootstrap", {"label": "tests"})
    assert reply.status == 201
    api.key = reply.data["key"]
    return api.key
