"""The slskd client's folder enqueue: one batch from 0.26 on, the legacy enqueue before."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import soulsync_slskd.plugin
from soulsync_core.hooks import ProviderError, RateLimited
from soulsync_core.models import Candidate
from soulsync_slskd.client import SlskdClient
from tests.fakes.slskd import DEFAULT_API_KEY, SLSKD, SlskdFake, album_peer, make_app

TITLES = ["One More Time", "Aerodynamic", "Digital Love"]
BATCH = ("POST", "/api/v0/transfers/downloads/batches")
LEGACY = ("POST", "/api/v0/transfers/downloads/{username}")
APPLICATION = ("GET", "/api/v0/application")


@pytest.fixture
async def server(aiohttp_server: Any, tmp_path: Path) -> TestServer:
    peers = [album_peer("flacfan", "Daft Punk\\Discovery", TITLES),
             album_peer("gone", "Daft Punk\\Discovery", TITLES, fault="offline")]
    return await aiohttp_server(make_app(tmp_path / "downloads", peers=peers, search_seconds=0.05))


@pytest.fixture
def fake(server: TestServer) -> SlskdFake:
    return server.app[SLSKD]


@pytest.fixture
async def client(soulsync_factory: Any, server: TestServer, tmp_path: Path) -> SlskdClient:
    environ = {"SOULSYNC_SOULSEEK__SLSKD_URL": str(server.make_url("/")),
               "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
               "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(tmp_path / "downloads")}
    api = await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)], environ=environ)
    found = api.core.download_clients[0]
    assert isinstance(found, SlskdClient)
    return found


def folder(fake: SlskdFake, username: str = "flacfan") -> list[Candidate]:
    peer = fake.peer(username)
    assert peer is not None
    return [Candidate(username, f.filename, f.stated_size()) for f in peer.files]


async def test_026_enqueues_the_folder_in_one_batch(client, fake):
    fake.version = "0.26.2"
    files = folder(fake)
    batch_id = str(uuid.uuid4())
    transfers, failures = await client.enqueue_folder("flacfan", files, batch_id)
    assert failures == []
    assert sorted(t.filename for t in transfers) == sorted(c.filename for c in files)
    assert fake.count(*BATCH) == 1 and fake.count(*LEGACY) == 0
    assert {t.batch_id for t in fake.transfers.values()} == {batch_id}
    # Asked again (a restart in between): 409 for the batch id, the existing transfers back.
    again, failures = await client.enqueue_folder("flacfan", files, batch_id)
    assert failures == [] and {t.id for t in again} == {t.id for t in transfers}
    assert fake.count(*APPLICATION) == 1   # the version is asked once


async def test_026_partial_batch_lists_the_failures(client, fake):
    fake.version = "0.26.0"
    files = folder(fake)
    await client.enqueue_folder("flacfan", files[:1], str(uuid.uuid4()))
    fake.transfers[next(iter(fake.transfers))].state = "InProgress"
    transfers, failures = await client.enqueue_folder("flacfan", files, str(uuid.uuid4()))
    # The file already running is slskd's failure (207) and comes back as its transfer.
    assert sorted(t.filename for t in transfers) == sorted(c.filename for c in files)
    assert failures == []


async def test_026_offline_peer_and_busy_slskd(client, fake):
    fake.version = "0.26.0"
    with pytest.raises(ProviderError, match="User gone appears to be offline"):
        await client.enqueue_folder("gone", folder(fake, "gone"), str(uuid.uuid4()))
    fake.busy_enqueues = 1
    with pytest.raises(RateLimited):
        await client.enqueue_folder("flacfan", folder(fake), str(uuid.uuid4()))


async def test_older_slskd_gets_one_legacy_enqueue_of_the_folder(client, fake):
    files = folder(fake)   # the fake reports the wire sample's 0.24.5
    transfers, failures = await client.enqueue_folder("flacfan", files, str(uuid.uuid4()))
    assert failures == [] and len(transfers) == len(files)
    assert fake.count(*BATCH) == 0 and fake.count(*LEGACY) == 1


async def test_fake_batch_answers_as_slskd_026(server, fake):
    fake.version = "0.26.0"
    session_url = server.make_url("/api/v0/transfers/downloads/batches")
    headers = {"X-API-Key": DEFAULT_API_KEY}
    files = [{"filename": c.filename, "size": c.size} for c in folder(fake)]
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(session_url, json={"username": "flacfan", "files": files * 2}) as r:
            assert r.status == 400
        batch_id = str(uuid.uuid4())
        body = {"id": batch_id, "username": "flacfan", "files": files}
        async with session.post(session_url, json=body) as r:
            assert r.status == 201
            answer = await r.json()
        assert answer["failures"] == [] and answer["batch"]["id"] == batch_id
        row = answer["batch"]["transfers"][0]
        assert row["batchId"] == batch_id and "stateDescription" not in row
        async with session.post(session_url, json=body) as r:
            assert r.status == 409
        async with session.post(session_url, json={**body, "id": str(uuid.uuid4())}) as r:
            assert r.status == 200   # every file is queued already: all failed
            assert len((await r.json())["failures"]) == len(files)
        fake.version = "0.24.5"
        async with session.post(session_url, json={**body, "id": str(uuid.uuid4())}) as r:
            assert r.status == 404
