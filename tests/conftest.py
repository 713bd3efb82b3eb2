"""Shared fixtures: a core in a temp data dir and an API client on it that checks every
answer against the OpenAPI document (the client classes come from soulsync_core.testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests.download_fixtures import catalogue
from tests.fakes.slskd import SLSKD, SlskdFake, make_app

Api = ApiClient


@pytest.fixture
def openapi_doc() -> dict[str, Any]:
    return build_openapi(all_endpoints())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """An empty music folder (``library.music_dir`` of the tests that scan or import)."""
    path = tmp_path / "music"
    path.mkdir()
    return path


@pytest.fixture
async def music_core(tmp_path: Path, music: Path) -> AsyncIterator[Core]:
    """A core whose ``library.music_dir`` is ``music``; stopped and closed after the test."""
    from tests.library_fixtures import open_core

    core = await open_core(tmp_path / "data", music)
    yield core
    await core.stop()
    await core.close()


@pytest.fixture
async def core(data_dir: Path) -> AsyncIterator[Core]:
    """A core in a temp data dir; an app built on it starts and stops it, this closes it."""
    core = await Core.open(data_dir, environ={}, entry_points=False)
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
    return await api.bootstrap()


# The fake slskd with the downloads tests' catalogue, its download folder in the test's temp
# dir (tests that need other peers define their own ``server``).
@pytest.fixture
def slskd_downloads(tmp_path: Path) -> Path:
    return tmp_path / "slskd" / "downloads"


@pytest.fixture
async def server(aiohttp_server: Any, slskd_downloads: Path) -> Any:
    return await aiohttp_server(make_app(slskd_downloads, peers=catalogue(), search_seconds=0.05))


@pytest.fixture
def fake(server: Any) -> SlskdFake:
    return server.app[SLSKD]
