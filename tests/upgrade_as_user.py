"""Run one quality upgrade through the daemon's API in this process, as whichever user runs it.

The permission tests start ``python -m tests.upgrade_as_user <plan.json>`` as ``nobody`` (root
ignores file modes, a NAS user does not), with the fake slskd served by the test process. The
plan holds ``data_dir``, ``environ`` (the daemon's settings) and ``file`` (a library file to
index first). The run is started with ``POST /api/v1/library/upgrades/run`` and the fake is
stepped (``POST /_fake/slskd/tick``) until the run ended. Prints one JSON object: ``{"run":
<GET /library/upgrades/run data>, "track": <GET /library/tracks/{id} data>}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

import soulsync_slskd.plugin
from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.testing import ApiClient, OpenApiChecker

RUN = "/api/v1/library/upgrades/run"


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, str] = plan["environ"]
    core = await Core.open(Path(plan["data_dir"]), environ=environ, entry_points=False,
                           plugins=[("slskd", soulsync_slskd.plugin)])
    client = TestClient(TestServer(create_app(core)))
    await client.start_server()
    tick_url = environ["SOULSYNC_SOULSEEK__SLSKD_URL"].rstrip("/") + "/_fake/slskd/tick"
    try:
        api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
        await api.bootstrap()
        track_id = await core.library.import_file(plan["file"])
        started = await api.post(RUN)
        assert started.status == 202, started.json
        async with aiohttp.ClientSession() as fake:
            while (status := await api.get(RUN)).data["state"] == "running":
                async with fake.post(tick_url) as answer:
                    answer.raise_for_status()
                await asyncio.sleep(0.01)
        track = await api.get(f"/api/v1/library/tracks/{track_id}")
        return {"run": status.data, "track": track.data["track"]}
    finally:
        await client.close()
        await core.close()


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(plan))))


if __name__ == "__main__":
    main()
