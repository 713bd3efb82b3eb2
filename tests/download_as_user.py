"""Download tracks through the daemon's API in this process, as whichever user runs it.

The permission tests start ``python -m tests.download_as_user <plan.json>`` as ``nobody``
(root ignores file modes, a NAS user does not), with the fake slskd served by the test
process. The plan holds ``data_dir``, ``environ`` (the daemon's settings) and ``tracks``
(``POST /api/v1/downloads`` bodies). Each track is asked for, its transfer run to the end
through the fake's ``POST /_fake/slskd/settle``, one monitor tick looks, and the download's
detail is read. Then the first track is asked for again. Prints one JSON object:
``{"downloads": [detail, …], "again": <status and data of the second ask>, "status":
<GET /system/status data>}``.
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


async def run(plan: dict[str, Any]) -> dict[str, Any]:
    environ: dict[str, str] = plan["environ"]
    core = await Core.open(Path(plan["data_dir"]), environ=environ, entry_points=False,
                           plugins=[("slskd", soulsync_slskd.plugin)])
    client = TestClient(TestServer(create_app(core)))
    await client.start_server()
    settle_url = environ["SOULSYNC_SOULSEEK__SLSKD_URL"].rstrip("/") + "/_fake/slskd/settle"
    try:
        api = ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))
        await api.bootstrap()
        details = []
        async with aiohttp.ClientSession() as fake:
            for track in plan["tracks"]:
                queued = await api.post("/api/v1/downloads", track)
                assert queued.status == 202, queued.json
                await core.downloads.settle()
                async with fake.post(settle_url) as answer:
                    answer.raise_for_status()
                await core.downloads.poll()
                await core.downloads.settle()
                reply = await api.get(f"/api/v1/downloads/{queued.data['download']['id']}")
                details.append(reply.data["download"])
        again = await api.post("/api/v1/downloads", plan["tracks"][0])
        status = await api.get("/api/v1/system/status")
        return {"downloads": details, "again": {"status": again.status, "data": again.data},
                "status": status.data}
    finally:
        await client.close()
        await core.close()


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(plan))))


if __name__ == "__main__":
    main()
