"""Property-based test of the whole API against its own OpenAPI document (schemathesis).

Schemathesis generates schema-valid requests for every operation of the document the app
serves and sends them, with a valid key, to a daemon with no outside service configured (no
plugin is loaded, so no request leaves the machine). Every answer must be documented for its
operation (status, content type, body schema), no answer may be a 5xx, and no schema-valid
request may be refused with a 400.

The run is bounded (``MAX_EXAMPLES`` per operation) and derandomized, so it takes the same
cases on every run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, assume, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi, document_names
from soulsync_core.config import core_schema
from soulsync_core.core import Core

MAX_EXAMPLES = 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, positive_data_acceptance]
# High enough that the generated requests never meet the rate limit (its 429 is tested elsewhere).
NO_RATE_LIMITS = {f"SOULSYNC_API__RATE_LIMITS__{kind}": "100000"
                  for kind in ("SYSTEM", "SEARCH", "DOWNLOADS", "WRITE", "READ")}


class Daemon:
    """The app on a free port of 127.0.0.1, served by its own event loop in a thread."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.core: Core | None = None
        self.base_url = ""
        self.key = ""

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        reply = requests.post(f"{self.base_url}/api/v1/api-keys/bootstrap", json={"label": "property"},
                              timeout=10)
        assert reply.status_code == 201, reply.text
        self.key = reply.json()["data"]["key"]

    async def _start(self) -> None:
        self.core = core = await Core.open(self.data_dir, environ=dict(NO_RATE_LIMITS),
                                           entry_points=False)
        self.runner = web.AppRunner(create_app(core), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    def reset_settings(self, keys: list[str]) -> None:
        """Put ``keys`` back to their defaults, in the daemon's own loop (not over HTTP, which
        a rate limit the case just set could refuse)."""
        async def reset() -> None:
            assert self.core is not None
            await self.core.settings.apply(self.core.settings.validate_patch(dict.fromkeys(keys)))
        asyncio.run_coroutine_threadsafe(reset(), self.loop).result(30)

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = Daemon(tmp_path_factory.mktemp("property") / "data")
    running.start()
    yield running
    running.stop()


CONFIG = SchemathesisConfig.from_dict({
    "generation": {"mode": "positive", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "database": "none"},
    # 503 is the documented answer of a request that needs an outside service none of which is
    # set up here; every other 5xx is a failure.
    "checks": {"not_a_server_error": {"expected-statuses": ["1xx", "2xx", "3xx", "4xx", "503"]}},
})


# The names a daemon without plugins registers: the document it serves lists only these
# (test_the_document_tested_is_the_one_served checks that this is that document).
NO_PLUGINS = document_names([], [], core_schema())
DOCUMENT = build_openapi(all_endpoints(), NO_PLUGINS)
# The event stream never ends (a heartbeat keeps it open), so a generated request would read
# it forever; its statuses, filters and frames are tested in test_events.py.
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path="/api/v1/events")


def _blank(value: Any) -> bool:
    return not str(value or "").strip()


def _outside_the_document(case: Any) -> bool:
    """Return whether a case breaks a rule on two query parameters together, which OpenAPI
    cannot state (those 400s are tested in test_library_api.py), names a notify_url (whose
    host must resolve to public addresses), or changes a setting whose value a check function
    judges (its rule is in words only; see test_settings.py)."""
    query = case.query or {}
    if case.path == "/api/v1/library/tracks":
        return _blank(query.get("title")) and _blank(query.get("artist"))
    if case.path == "/api/v1/library/lookup":
        return (str(query.get("provider", "")).strip().lower() == "isrc"
                and str(query.get("type", "")).strip().lower() != "track")
    if case.path == "/api/v1/request" and isinstance(case.body, dict):
        # A notify_url is refused unless its host resolves to public addresses (test_track_requests.py).
        return not _blank(case.body.get("notify_url"))
    if case.path == "/api/v1/settings" and isinstance(case.body, dict):
        return any(NO_PLUGINS["setting"].get(key, {}).get("x-checked") for key in case.body)
    return False


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, daemon: Daemon) -> None:
    assume(not _outside_the_document(case))
    response = case.call(base_url=daemon.base_url,
                         headers={"Authorization": f"Bearer {daemon.key}"}, timeout=30)
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        if case.path == "/api/v1/settings" and case.method == "PATCH" and response.status_code == 200:
            # What one case set (a rate limit of 1, a body limit of 1 KiB) must not decide
            # the answers of the next ones.
            daemon.reset_settings(response.json()["data"]["updated_keys"])

def test_the_document_tested_is_the_one_served(daemon: Daemon) -> None:
    served = requests.get(f"{daemon.base_url}/api/v1/openapi.json",
                          headers={"Authorization": f"Bearer {daemon.key}"}, timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT
