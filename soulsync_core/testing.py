"""pytest plugin for SoulSync and its plugins (registered as the ``pytest11`` entry point).

A plugin author gets a running daemon app with their plugin registered and an API client that
checks every answer against the OpenAPI document::

    async def test_my_source(soulsync_factory):
        api = await soulsync_factory(plugins=[("mysource", my_plugin_module)])
        reply = await api.post("/api/v1/search/tracks", {"query": "x", "source": "mysource"})
        assert reply.status == 200

Needs ``pytest-aiohttp`` (for ``aiohttp_client``) and ``jsonschema``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.config import Section
from soulsync_core.core import Core


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OpenApiChecker:
    """Checks that a (method, path, status, body) is documented and matches its schema."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        # Literal paths before templated ones, as the router resolves them.
        self._routes = sorted(
            ((re.compile("^" + re.sub(r"{\w+}", r"[^/]+", template) + "$"), template)
             for template in document["paths"]),
            key=lambda route: route[1].count("{"),
        )

    def operation_for(self, method: str, path: str) -> tuple[str | None, dict[str, Any] | None]:
        for pattern, template in self._routes:
            if not pattern.match(path):
                continue
            if method.lower() in self.document["paths"][template]:
                return template, self.document["paths"][template][method.lower()]
            if "{" not in template:
                break  # a fixed path answers every method itself (405 for the others)
        return None, None

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any]:
        template, operation = self.operation_for(method, path)
        if operation is None:
            # Unknown routes and wrong methods still answer with the error envelope.
            assert status in (404, 405), f"{method} {path} is not documented but answered {status}"
            return {"$ref": "#/components/schemas/ErrorEnvelope"}
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which is not documented "
            f"(documented: {sorted(responses)})")
        # An answer outside the API (the login callback's HTML page) has no JSON to check.
        return responses[str(status)]["content"].get("application/json", {}).get("schema", {})

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        """Raise when ``body`` does not match what the document promises for this answer."""
        import jsonschema

        schema = dict(self.schema_for(method, path, status))
        schema["components"] = self.document["components"]
        jsonschema.Draft202012Validator(schema).validate(body)


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


class ApiClient:
    """Talks to the app like a client would; validates each answer against the OpenAPI doc."""

    def __init__(self, client: TestClient, checker: OpenApiChecker):
        self.client = client
        self.checker = checker
        self.key: str | None = None

    @property
    def core(self) -> Core:
        from soulsync_core.api.endpoints import CORE

        return self.client.app[CORE]

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      raw: bytes | None = None, key: str | None = None, auth: bool = True,
                      headers: dict[str, str] | None = None,
                      params: dict[str, str] | None = None) -> Reply:
        headers = dict(headers or {})
        use_key = key if key is not None else self.key
        if auth and use_key:
            headers["Authorization"] = f"Bearer {use_key}"
        data = raw if raw is not None else (None if json_body is None else json.dumps(json_body))
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

    async def bootstrap(self) -> str:
        """Create the first key and make it this client's default; return it."""
        reply = await self.post("/api/v1/api-keys/bootstrap", {"label": "tests"})
        assert reply.status == 201, reply.json
        self.key = reply.data["key"]
        return self.key


SoulsyncFactory = Callable[..., Awaitable[ApiClient]]


@pytest.fixture
async def soulsync_factory(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[SoulsyncFactory]:
    """Return ``make(plugins=(), environ=None, sections=(), bootstrap=True) -> ApiClient``.

    Each call starts an app on a new data dir under ``tmp_path`` (installed entry-point plugins
    are not loaded; pass ``plugins=[(name, module)]``). Everything is stopped at teardown.
    """
    clients: list[TestClient] = []

    async def make(*, plugins: Iterable[tuple[str, object]] = (),
                   environ: Mapping[str, str] | None = None, sections: Iterable[Section] = (),
                   config_path: Path | None = None, bootstrap: bool = True) -> ApiClient:
        data_dir = tmp_path / f"soulsync-{len(clients)}"
        core = await Core.open(data_dir, environ=environ or {}, entry_points=False,
                               plugins=plugins, sections=sections, config_path=config_path)
        client = await aiohttp_client(create_app(core))
        clients.append(client)
        api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
        if bootstrap:
            await api.bootstrap()
        return api

    yield make
    for client in clients:
        await client.close()
