"""The slskd plugin against the fake slskd: health, searches, pacing, transfers, files, secrets."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

import mutagen
import pytest
from aiohttp.test_utils import TestServer

import soulsync_slskd.plugin
from soulsync_core.config import SettingError, core_schema
from soulsync_core.hooks import AuthFailed, DownloadClient, NotConfigured, ProviderError, RateLimited
from soulsync_core.models import Candidate, Transfer
from soulsync_core.testing import ApiClient, free_port
from soulsync_slskd import layout, mapping
from soulsync_slskd.client import SlskdClient
from soulsync_slskd.transport import AUTH_MESSAGE
from tests.fakes.base import FAULTS, load_wire
from tests.fakes.slskd import DEFAULT_API_KEY, SLSKD, Peer, SharedFile, SlskdFake, make_app

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins" / "soulsync_slskd"
DISCOVERY = "@@qkxvb\\Music\\Daft Punk\\2001 - Discovery"
ONE_MORE_TIME = f"{DISCOVERY}\\01 - One More Time.flac"
AERODYNAMIC = f"{DISCOVERY}\\02 - Aerodynamic.flac"
MP3 = "@@mp3s\\Daft Punk - Discovery (2001) [320]\\01. Daft Punk - One More Time.mp3"
SEARCH_STATE = ("GET", "/api/v0/searches/{id}")
RESPONSES = ("GET", "/api/v0/searches/{id}/responses")
ALL_DOWNLOADS = ("GET", "/api/v0/transfers/downloads")


def small_peers() -> list[Peer]:
    """Two peers with a few seconds of audio each, so downloads write tiny real files."""
    return [
        Peer("flacfan", [SharedFile(ONE_MORE_TIME, 3, bit_depth=16, sample_rate=44100),
                         SharedFile(AERODYNAMIC, 2, bit_depth=16, sample_rate=44100)],
             upload_speed=4_718_592),
        Peer("speedy mp3", [SharedFile(MP3, 3, 150_000, bit_rate=320, variable_bit_rate=False)],
             has_free_upload_slot=False, queue_length=2, upload_speed=12_582_912),
    ]


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


@pytest.fixture
async def server(aiohttp_server: Any, downloads: Path) -> TestServer:
    """The fake slskd with the wire sample's four peers; searches take 0.1 s."""
    return await aiohttp_server(make_app(downloads, search_seconds=0.1))


@pytest.fixture
def fake(server: TestServer) -> SlskdFake:
    return server.app[SLSKD]


@pytest.fixture
def make_api(soulsync_factory: Any, server: TestServer, fake: SlskdFake, downloads: Path) -> Any:
    """Start the daemon with the plugin pointed at the fake; wait for its start-up health check,
    so that it does not eat a fault a test sets up afterwards."""

    async def make(**settings: str) -> ApiClient:
        environ = {"SOULSYNC_SOULSEEK__SLSKD_URL": str(server.make_url("/")),
                   "SOULSYNC_SOULSEEK__API_KEY": DEFAULT_API_KEY,
                   "SOULSYNC_SOULSEEK__DOWNLOAD_PATH": str(downloads),
                   "SOULSYNC_SOULSEEK__POLL_INTERVAL_SECONDS": "0.02"}
        environ.update({f"SOULSYNC_SOULSEEK__{key.upper()}": value for key, value in settings.items()})
        api = await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)], environ=environ)
        if environ["SOULSYNC_SOULSEEK__SLSKD_URL"] == str(server.make_url("/")):
            await asyncio.wait_for(fake.server_asked.wait(), 5)
        return api

    return make


@pytest.fixture
async def api(make_api: Any) -> ApiClient:
    return await make_api()


@pytest.fixture
def client(api: ApiClient) -> SlskdClient:
    """The started client, as the core holds it."""
    found = api.core.download_clients[0]
    assert isinstance(found, SlskdClient)
    return found


@pytest.fixture
def small(fake: SlskdFake) -> SlskdFake:
    fake.peers = small_peers()
    return fake


async def download(client: SlskdClient, fake: SlskdFake, filename: str,
                   username: str = "flacfan") -> Transfer:
    """Enqueue ``filename`` from ``username``, let the fake finish, return the final transfer."""
    size = next(f for p in fake.peers for f in p.files if f.filename == filename).stated_size()
    queued = await client.enqueue(Candidate(username, filename, size))
    await fake.settle()
    return next(t for t in await client.transfers() if t.id == queued.id)


# --- health and status -------------------------------------------------------------------------


async def test_health_ok_and_status_true(api, client):
    health = await client.health()
    assert health.ok
    # server_date: slskd's Date header, for the health list's clock check.
    assert health.details.pop("server_date").endswith(" GMT")
    assert health.details == {"state": "Connected, LoggedIn", "server": "vps.slsknet.org:2271"}
    await api.core.health.check_all()
    reply = await api.get("/api/v1/system/status")
    assert reply.data["services"]["soulseek"] is True


async def test_health_not_ok_while_disconnected(api, client, fake):
    fake.connected = False
    health = await client.health()
    assert not health.ok
    assert health.message == "slskd is not connected to the Soulseek network (state: Disconnected)"
    await api.core.health.check_all()
    reply = await api.get("/api/v1/system/status")
    assert reply.data["services"]["soulseek"] is False
    assert "not connected" in reply.data["service_details"]["soulseek"]["error"]


async def test_health_says_the_api_key_was_refused(make_api):
    api = await make_api(api_key="not-the-key-of-this-slskd")
    health = await api.core.download_clients[0].health()
    assert (health.ok, health.message) == (False, AUTH_MESSAGE)
    await api.core.health.check_all()
    reply = await api.get("/api/v1/system/status")
    assert reply.data["service_details"]["soulseek"]["error"] == AUTH_MESSAGE


async def test_health_says_when_slskd_is_not_running(make_api):
    api = await make_api(slskd_url=f"http://127.0.0.1:{free_port()}")
    health = await api.core.download_clients[0].health()
    assert not health.ok
    assert "slskd could not be reached" in health.message and "connection refused" in health.message


async def test_unconfigured_client_is_off_and_says_what_to_set(soulsync_factory):
    api = await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)])
    client = api.core.download_clients[0]
    assert not client.configured
    await api.core.health.check_all()
    assert (await api.get("/api/v1/system/status")).data["services"]["soulseek"] is False
    with pytest.raises(NotConfigured, match=r"soulseek\.slskd_url and soulseek\.api_key"):
        await client.search("daft punk")


# --- searches ----------------------------------------------------------------------------------


async def test_search_waits_for_completion_then_reads_responses_once(client, fake):
    found = await client.search("daft punk one more time")
    assert {c.username for c in found} == {"flacfan", "speedy_mp3", "nicotine user", "hires_hoarder"}
    assert fake.count(*SEARCH_STATE) >= 2  # it was still running when first asked
    assert fake.count(*RESPONSES) == 1
    assert fake.early_reads == 0
    order = [route for route in fake.requests if route[1].startswith("/api/v0/searches")]
    assert order[0] == ("POST", "/api/v0/searches")
    assert order[-2:] == [RESPONSES, ("DELETE", "/api/v0/searches/{id}")]
    assert fake.searches == {}


async def test_search_request_carries_timeout_limits_and_filters(make_api, fake):
    api = await make_api(search_timeout="7", response_limit="40", min_peer_upload_speed="1000000",
                         max_peer_queue="2")
    await api.core.download_clients[0].search("daft punk")
    body = fake.search_bodies[-1]
    uuid.UUID(body["id"])
    assert {k: v for k, v in body.items() if k != "id"} == {
        "searchText": "daft punk", "searchTimeout": 7000, "responseLimit": 40,
        "filterResponses": True, "minimumResponseFileCount": 1, "minimumPeerUploadSpeed": 1000000,
        "maximumPeerQueueLength": 3}


async def test_search_maps_every_candidate_field(client):
    found = await client.search("daft punk")
    by_file = {c.filename: c for c in found}
    assert by_file[ONE_MORE_TIME] == Candidate(
        username="flacfan", filename=ONE_MORE_TIME, size=37741918, extension="flac", bitrate=None,
        bit_depth=16, sample_rate=44100, duration_s=320, has_free_slot=True, queue_length=0,
        upload_speed=4718592)
    assert by_file[MP3] == Candidate(
        username="speedy_mp3", filename=MP3, size=12830720, extension="mp3", bitrate=320,
        bit_depth=None, sample_rate=None, duration_s=320, has_free_slot=False, queue_length=14,
        upload_speed=12582912)
    nicotine = by_file["D:\\Shared\\Electronic\\Daft Punk\\Discovery\\01 One More Time.mp3"]
    assert nicotine.extension == "mp3"  # the peer sent "" as its extension
    assert not any("Buddies only" in c.filename for c in found)  # locked files are left out
    assert len(found) == 5


def test_peer_filters_drop_slow_peers_and_long_queues():
    responses = load_wire("slskd", "search_responses.GET_api_v0_searches_id_responses.json")
    everyone = {c.username for c in mapping.candidates(responses)}
    assert everyone == {"flacfan", "speedy_mp3", "nicotine user", "hires_hoarder"}
    fast = {c.username for c in mapping.candidates(responses, min_upload_speed=1_000_000)}
    assert fast == everyone - {"nicotine user"}
    short = {c.username for c in mapping.candidates(responses, max_queue=2)}
    assert short == everyone - {"speedy_mp3"}  # a queue of exactly 2 is kept


async def test_peer_filters_apply_to_searches(make_api):
    api = await make_api(min_peer_upload_speed="1000000", max_peer_queue="2")
    found = await api.core.download_clients[0].search("daft punk")
    assert {c.username for c in found} == {"flacfan", "hires_hoarder"}


async def test_overdue_search_is_stopped_and_read(client, fake, api):
    await api.patch("/api/v1/settings", {"soulseek.search_timeout": 1})
    client.searches.stop_grace = 0
    fake.search_seconds = 8  # peers answer at 0.8, 1.6, 2.4 and 3.2 s
    found = await asyncio.wait_for(client.search("daft punk"), 5)
    assert fake.count("PUT", "/api/v0/searches/{id}") == 1
    assert {c.username for c in found} == {"flacfan"}
    assert fake.early_reads == 0 and fake.searches == {}


async def test_abandoned_search_is_stopped_and_deleted(client, fake):
    fake.search_seconds = 30
    task = asyncio.create_task(client.search("daft punk"))
    await asyncio.wait_for(fake.search_started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.searches.close()
    assert fake.count("PUT", "/api/v0/searches/{id}") == 1
    assert fake.searches == {}


async def test_searches_run_one_at_a_time(client, fake):
    # The fake answers 429 to a search started while another runs: none may overlap.
    results = await asyncio.gather(*(client.search(q) for q in ("daft punk", "discovery", "one more")))
    assert all(results)
    assert fake.count("POST", "/api/v0/searches") == 3


async def test_search_pacing_holds_back_the_search_over_budget(make_api, fake):
    api = await make_api(searches_per_window="2", search_window_seconds="3600")
    client = api.core.download_clients[0]
    fake.search_seconds = 0.02
    await client.search("daft punk")
    await client.search("discovery")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.search("one more time"), 0.3)
    assert fake.count("POST", "/api/v0/searches") == 2


async def test_busy_slskd_raises_rate_limited(client, fake):
    fake.search_seconds = 30
    fake.new_search({"searchText": "someone else's search"})  # slskd's web UI, say
    with pytest.raises(RateLimited, match="Only one concurrent operation is permitted") as caught:
        await client.search("daft punk")
    assert caught.value.retry_after == 5


async def test_429_with_retry_after_is_honoured(client, server):
    server.app[FAULTS].retry_after, server.app[FAULTS].rate_limit_count = 7, 1
    with pytest.raises(RateLimited) as caught:
        await client.search("daft punk")
    assert caught.value.retry_after == 7


@pytest.mark.parametrize(("search_timeout", "obeyed"), [("20", 20), ("300", 120)])
async def test_retry_after_is_capped_by_the_search_timeout_and_the_cool_down_cap(
        make_api, server, search_timeout, obeyed):
    api = await make_api(search_timeout=search_timeout)
    server.app[FAULTS].retry_after, server.app[FAULTS].rate_limit_count = 100000, 1
    with pytest.raises(RateLimited) as caught:
        await api.core.download_clients[0].search("daft punk")
    assert caught.value.retry_after == obeyed
    assert str(caught.value).endswith(f"retry in {obeyed} s (it asked for 100000 s)")


async def test_search_while_disconnected_is_a_provider_error(client, fake):
    fake.connected = False
    with pytest.raises(ProviderError, match=r"^slskd is not connected to the Soulseek network"):
        await client.search("daft punk")
    assert fake.searches == {}  # slskd's record of the refused search was deleted


async def test_wrong_api_key_raises_auth_failed(make_api):
    api = await make_api(api_key="not-the-key-of-this-slskd")
    with pytest.raises(AuthFailed, match=re.escape(AUTH_MESSAGE)):
        await api.core.download_clients[0].search("daft punk")


async def test_query_slskd_refuses_is_a_provider_error(client):
    with pytest.raises(ProviderError, match="slskd refused the search 'a b'"):
        await client.search("a b")


async def test_server_errors_and_dropped_connections_are_provider_errors(client, server):
    server.app[FAULTS].status, server.app[FAULTS].status_count = 503, 1
    with pytest.raises(ProviderError, match="slskd answered HTTP 503"):
        await client.transfers()
    server.app[FAULTS].drop_count = -1
    with pytest.raises(ProviderError, match="connection was closed"):
        await client.transfers()


# --- transfers ---------------------------------------------------------------------------------


async def test_enqueue_then_download_to_a_real_file(client, small, downloads):
    candidate = next(c for c in await client.search("one more time") if c.filename == ONE_MORE_TIME)
    queued = await client.enqueue(candidate)
    uuid.UUID(queued.id)
    assert (queued.username, queued.filename, queued.state, queued.size) == (
        "flacfan", ONE_MORE_TIME, "queued", candidate.size)
    await small.tick(4)  # Requested -> Queued, Remotely -> Initializing -> InProgress -> 1/4
    [running] = await client.transfers()
    assert running.state == "downloading" and 0 < running.percent < 100
    await small.settle()
    [done] = await client.transfers()
    assert (done.state, done.percent, done.bytes_transferred, done.error) == (
        "completed", 100.0, candidate.size, None)
    assert done.average_speed == 4_718_592
    path = await client.local_file(done)
    assert path == downloads / "2001 - Discovery" / "01 - One More Time.flac"
    assert path.stat().st_size == done.size
    assert mutagen.File(path).info.length == pytest.approx(3, abs=0.05)


async def test_local_file_finds_the_renamed_copy_of_a_second_download(client, small, downloads):
    first = await download(client, small, MP3, "speedy mp3")
    await client.cancel(first)  # clears the finished transfer; its file stays
    second = await download(client, small, MP3, "speedy mp3")
    folder = downloads / "Daft Punk - Discovery (2001) [320]"
    assert (folder / "01. Daft Punk - One More Time.mp3").is_file()
    renamed = await client.local_file(second)
    assert re.fullmatch(r"01\. Daft Punk - One More Time_\d{18}\.mp3", renamed.name)
    assert renamed.parent == folder and renamed.stat().st_size == 150_000
    assert mutagen.File(renamed).info.length == pytest.approx(3, abs=0.05)


def test_local_file_prefers_the_transfer_size_then_the_newest(tmp_path):
    folder = tmp_path / "Album"
    folder.mkdir()
    for name, size, mtime in (("x.flac", 10, 1), ("x_1.flac", 20, 2), ("x_22.flac", 10, 3),
                              ("x_a.flac", 20, 4), ("y.flac", 20, 5)):
        (folder / name).write_bytes(b"\0" * size)
        os.utime(folder / name, (mtime, mtime))
    assert layout.find_download(tmp_path, "@@a\\Album\\x.flac", 20) == folder / "x_1.flac"
    assert layout.find_download(tmp_path, "@@a\\Album\\x.flac", 10) == folder / "x_22.flac"
    assert layout.find_download(tmp_path, "@@a\\Album\\x.flac") == folder / "x_22.flac"
    assert layout.find_download(tmp_path, "@@a\\Album\\z.flac") is None
    assert layout.find_download(tmp_path / "missing", "@@a\\Album\\x.flac") is None


@pytest.mark.parametrize("remote", [
    "..\\..\\etc\\passwd", "..\\passwd", "@@a\\..\\passwd", "@@a\\Album\\..", "/etc/passwd",
    "C:\\..\\..\\passwd", "@@a/../passwd"])
def test_local_file_never_leaves_the_download_folder(tmp_path, remote):
    downloads = tmp_path / "downloads"
    (downloads / "Album").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    for outside in (tmp_path / "passwd", tmp_path / "etc" / "passwd"):
        outside.write_text("root:x:0:0")
    (downloads / "link").symlink_to(tmp_path / "etc")
    found = layout.find_download(downloads, remote)
    assert found is None or found.resolve().is_relative_to(downloads.resolve())
    assert found is None


def test_a_file_behind_a_symbolic_link_out_of_the_folder_is_refused_saying_which(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0")
    (downloads / "link").symlink_to(tmp_path / "etc")
    with pytest.raises(layout.OutsideDownloads) as refused:
        layout.find_download(downloads, "@@a\\link\\passwd")
    assert str(refused.value) == (
        f"it was saved as {downloads / 'link' / 'passwd'}, and {downloads / 'link'} is a symbolic "
        f"link leading out of slskd's downloads folder {downloads} (to {tmp_path / 'etc'}); SoulSync "
        f"reads nothing outside that folder, so the file was left there: make {downloads / 'link'} "
        f"a real folder or file inside {downloads}")
    (downloads / "Album").mkdir()
    (downloads / "Album" / "track.flac").symlink_to(tmp_path / "etc" / "passwd")
    with pytest.raises(layout.OutsideDownloads, match=r"Album/track\.flac is a symbolic link"):
        layout.find_download(downloads, "@@a\\Album\\track.flac")


@pytest.mark.parametrize(("remote", "parts"), [
    (ONE_MORE_TIME, ("2001 - Discovery", "01 - One More Time.flac")),
    ("a/b/c.mp3", ("b", "c.mp3")), ("c.mp3", ("", "c.mp3")), ("\\c.mp3", ("", "c.mp3")),
    ("/etc/passwd", ("etc", "passwd")), ("..\\passwd", None), ("a\\..", None), ("a\\.\\x", None),
    ("a\\", None)])
def test_relative_parts_follow_slskd_and_refuse_dot_segments(remote, parts):
    assert layout.relative_parts(remote) == parts


async def test_local_file_of_an_escaping_transfer_is_none(client, tmp_path, downloads):
    downloads.mkdir()
    (tmp_path / "passwd").write_text("root:x:0:0")
    transfer = Transfer("b3a0c9a4-2f4e-4a2c-8d1f-5a7c9e1b2d30", "evil", "..\\passwd", "completed", 10)
    assert await client.local_file(transfer) is None


async def test_local_file_needs_the_download_path(make_api):
    api = await make_api(download_path="")
    with pytest.raises(NotConfigured, match=r"soulseek\.download_path"):
        await api.core.download_clients[0].local_file(Transfer("x", "u", "a\\b.flac", "completed"))


async def test_transfers_is_one_request_for_every_download(client, small):
    for filename, user in ((ONE_MORE_TIME, "flacfan"), (AERODYNAMIC, "flacfan"), (MP3, "speedy mp3")):
        await client.enqueue(Candidate(user, filename, 100))
    await small.tick()
    before = small.count(*ALL_DOWNLOADS)
    listed = await client.transfers()
    assert small.count(*ALL_DOWNLOADS) == before + 1
    assert sorted((t.username, t.filename) for t in listed) == sorted(
        [("flacfan", ONE_MORE_TIME), ("flacfan", AERODYNAMIC), ("speedy mp3", MP3)])
    assert {t.state for t in listed} == {"queued"}


@pytest.mark.parametrize(("fault", "error"), [
    ("Errored", "Errored: Remote connection closed"),
    ("Rejected", "Rejected: File not shared."),
    ("TimedOut", "TimedOut: Inactivity timeout of 15000 milliseconds was exceeded"),
])
async def test_failed_transfers_name_the_slskd_state(client, small, downloads, fault, error):
    small.peers[0].files[0].fault = fault
    done = await download(client, small, ONE_MORE_TIME)
    assert (done.state, done.error) == ("failed", error)
    assert await client.local_file(done) is None


async def test_a_file_the_peer_does_not_share_is_rejected(client, small):
    queued = await client.enqueue(Candidate("flacfan", f"{DISCOVERY}\\99 - Missing.flac", 5))
    await small.settle()
    [done] = [t for t in await client.transfers() if t.id == queued.id]
    assert (done.state, done.error) == ("failed", "Rejected: File not shared.")


async def test_stuck_stalled_and_vanished_transfers(client, small):
    small.peers[0].files[0].fault = "stuck"
    small.peers[0].files[1].fault = "stalled"
    small.peers[1].fault = "vanish"
    stuck = await client.enqueue(Candidate("flacfan", ONE_MORE_TIME, 5))
    stalled = await client.enqueue(Candidate("flacfan", AERODYNAMIC, 5))
    vanished = await client.enqueue(Candidate("speedy mp3", MP3, 5))
    await small.tick(10)
    listed = {t.id: t for t in await client.transfers()}
    assert listed[stuck.id].state == "queued"
    assert (listed[stalled.id].state, listed[stalled.id].percent) == ("downloading", 0.0)
    assert vanished.id not in listed


async def test_enqueue_from_an_offline_user_says_so(client, small):
    small.peers[1].fault = "offline"
    with pytest.raises(ProviderError, match="User speedy mp3 appears to be offline"):
        await client.enqueue(Candidate("speedy mp3", MP3, 5))
    with pytest.raises(ProviderError, match="User nobody appears to be offline"):
        await client.enqueue(Candidate("nobody", MP3, 5))


async def test_enqueueing_twice_returns_the_transfer_slskd_already_has(client, small):
    first = await client.enqueue(Candidate("flacfan", ONE_MORE_TIME, 5))
    again = await client.enqueue(Candidate("flacfan", ONE_MORE_TIME, 5))
    assert again.id == first.id
    assert len(await client.transfers()) == 1


async def test_cancel_removes_the_transfer(client, small):
    queued = await client.enqueue(Candidate("flacfan", ONE_MORE_TIME, 5))
    await small.tick(4)
    await client.cancel(queued)
    assert await client.transfers() == []
    assert small.count("DELETE", "/api/v0/transfers/downloads/{username}/{id}") == 1
    await client.cancel(queued)  # already gone: nothing to do


async def test_usernames_with_spaces_and_slashes_are_url_encoded(client, small):
    small.peers[1].username = "dj a/b"
    queued = await client.enqueue(Candidate("dj a/b", MP3, 5))
    assert queued.username == "dj a/b"
    await client.cancel(queued)
    assert await client.transfers() == []


@pytest.mark.parametrize(("state", "expected"), [
    ("Requested", ("queued", None)), ("Queued, Remotely", ("queued", None)),
    ("Queued, Locally", ("queued", None)), ("Initializing", ("queued", None)),
    ("InProgress", ("downloading", None)), ("Completed, Succeeded", ("completed", None)),
    ("Completed, Cancelled", ("cancelled", "Cancelled")), ("Completed, Errored", ("failed", "Errored")),
    ("Completed, Rejected", ("failed", "Rejected")), ("Completed, TimedOut", ("failed", "TimedOut")),
    ("Completed, Aborted", ("failed", "Aborted")), ("Completed", ("failed", "Failed")),
])
def test_transfer_state_mapping(state, expected):
    assert mapping.transfer_state(state) == expected


def test_transfer_list_sample_maps_to_transfers():
    listed = mapping.transfers(load_wire("slskd", "downloads.GET_api_v0_transfers_downloads.json"))
    assert [(t.username, t.state, t.error) for t in listed] == [
        ("flacfan", "completed", None), ("flacfan", "downloading", None),
        ("speedy_mp3", "queued", None), ("nicotine user", "failed", "Errored: Remote connection closed")]
    assert listed[1].percent == pytest.approx(42.538, abs=0.001)
    assert listed[1].average_speed == 3932160.0


# --- secrets, settings, packaging -----------------------------------------------------------------


async def test_api_key_is_never_logged_nor_shown(make_api, fake, small, caplog):
    caplog.set_level(logging.DEBUG)
    api = await make_api()
    client = api.core.download_clients[0]
    await client.health()
    found = await client.search("one more time")
    await client.enqueue(found[0])
    await client.transfers()
    fake.api_key = "another-key-entirely-0123"
    with pytest.raises(AuthFailed):
        await client.transfers()
    assert any("/api/v0/transfers/downloads" in r.getMessage() for r in caplog.records)
    assert DEFAULT_API_KEY not in caplog.text
    reply = await api.get("/api/v1/settings")
    assert reply.data["settings"]["soulseek"]["api_key"] == "***REDACTED***"
    assert DEFAULT_API_KEY not in str(reply.json)


async def test_settings_show_the_soulseek_section(api, downloads):
    reply = await api.get("/api/v1/settings")
    assert reply.data["settings"]["soulseek"] == {
        "slskd_url": reply.data["settings"]["soulseek"]["slskd_url"], "api_key": "***REDACTED***",
        "download_path": str(downloads), "search_timeout": 15, "response_limit": 100,
        "min_peer_upload_speed": 0, "max_peer_queue": 0, "searches_per_window": 30,
        "search_window_seconds": 220, "poll_interval_seconds": 0.02, "timeout_seconds": 10.0}
    bad = await api.patch("/api/v1/settings", {"soulseek.search_window_seconds": 0})
    assert bad.status == 400 and "soulseek.search_window_seconds" in bad.error["message"]


def test_slskd_url_must_be_http():
    schema = core_schema(soulsync_slskd.plugin.settings_sections())
    assert schema.coerce("soulseek.slskd_url", "") == ""
    with pytest.raises(SettingError, match="must start with http:// or https://"):
        schema.coerce("soulseek.slskd_url", "localhost:5030")


async def test_system_plugins_lists_the_plugin_and_its_client(api):
    reply = await api.get("/api/v1/system/plugins")
    assert {"name": "slskd", "version": None, "hooks": ["download_clients", "settings_sections"],
            "providers": ["soulseek"], "error": None} in reply.data["plugins"]
    assert isinstance(api.core.download_clients[0], DownloadClient)


def test_entry_point_names_the_plugin_module():
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["soulsync.plugins"]["slskd"]
    assert importlib.import_module(target) is soulsync_slskd.plugin
