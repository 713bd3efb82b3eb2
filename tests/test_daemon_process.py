"""End-to-end tests of the real daemon: ``python -m soulsync_core serve`` in a subprocess,
driven over HTTP (and raw TCP, and the ``keys`` command line) like a new user would.

Each test uses its own temp data dir, HOME and free port, so they run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from soulsync_core import testing
from tests.daemon_process import DaemonProcess, run_cli

KEY_SHAPE = re.compile(r"^sk_[A-Za-z0-9_-]{43}$")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
UPTIME = re.compile(r"^\d+h \d+m \d+s$")
PREFIX = 11
ACCESS_LINE = re.compile(r' soulsync\.access: \S+ "[A-Z]+ /\S*" \d{3} \d+ [\d.]+ms$')

Spawn = Callable[..., Awaitable[DaemonProcess]]


class Reply(testing.Reply):
    """A decoded answer of the daemon, with its raw text for failure messages."""

    def __init__(self, status: int, body: Any, text: str):
        super().__init__(status, body, None)
        self.text = text

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.text[:500]}>"


class Client:
    """Talks to one daemon over HTTP with aiohttp."""

    def __init__(self, session: aiohttp.ClientSession, daemon: DaemonProcess):
        self.session = session
        self.daemon = daemon

    async def request(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                      query_key: str | None = None) -> Reply:
        """Send a request; ``key`` goes in ``Authorization: Bearer``, ``query_key`` in ``?api_key=``."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        params = {"api_key": query_key} if query_key else None
        async with self.session.request(method, self.daemon.base_url + path, json=body,
                                        headers=headers, params=params) as response:
            text = await response.text()
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            return Reply(response.status, decoded, text)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def spawn(tmp_path: Path, home: Path, data_dir: Path) -> Any:
    """``await spawn()`` starts a daemon on ``data_dir`` (or ``data_dir=``) and waits for /ping.

    Every process started is killed at teardown if it still runs; each start logs to its own
    ``tmp_path/daemon-N.log``.
    """
    started: list[DaemonProcess] = []

    async def start(*, data_dir: Path = data_dir, ready: bool = True) -> DaemonProcess:
        daemon = DaemonProcess(data_dir, tmp_path / f"daemon-{len(started) + 1}.log", home)
        started.append(daemon)
        if ready:
            await daemon.start()
        else:
            daemon.spawn()
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def bootstrap(client: Client, label: str = "first") -> str:
    reply = await client.post("/api/v1/api-keys/bootstrap", {"label": label})
    assert reply.status == 201, reply
    return reply.data["key"]


def assert_no_secret(key_object: dict[str, Any], raw_keys: list[str]) -> None:
    """A listed key shows neither a raw key nor anything shaped like a SHA-256 hex digest."""
    assert "key" not in key_object and "key_hash" not in key_object, key_object
    for name, value in key_object.items():
        text = json.dumps(value)
        assert not SHA256_HEX.search(text), (name, value)
        for raw in raw_keys:
            assert raw not in text and raw[PREFIX:] not in text, (name, value)


# --- 1. the new-user journey, across a restart --------------------------------------------

async def test_new_user_journey_survives_restart(spawn: Spawn, session: aiohttp.ClientSession,
                                                 data_dir: Path) -> None:
    daemon = await spawn()
    api = Client(session, daemon)

    # The first key, without a key.
    reply = await api.post("/api/v1/api-keys/bootstrap", {"label": "first"})
    assert reply.status == 201, reply
    assert reply.json["success"] is True and reply.json["error"] is None
    first = reply.data["key"]
    first_id = reply.data["id"]
    assert first.startswith("sk_") and len(first) == 46 and KEY_SHAPE.match(first), first
    assert reply.data["key_prefix"] == first[:PREFIX]
    assert reply.data["label"] == "first"

    # Bootstrap is closed once a key exists.
    reply = await api.post("/api/v1/api-keys/bootstrap", {"label": "again"})
    assert reply.status == 403, reply
    assert reply.json["success"] is False and reply.error["code"] == "FORBIDDEN"

    # More keys need a key.
    reply = await api.post("/api/v1/api-keys", {"label": "second"}, key=first)
    assert reply.status == 201, reply
    second = reply.data["key"]
    second_id = reply.data["id"]
    assert KEY_SHAPE.match(second) and second != first
    assert reply.data["key_prefix"] == second[:PREFIX]

    reply = await api.get("/api/v1/system/status", key=first)
    assert reply.status == 200, reply
    status = reply.data
    assert UPTIME.match(status["uptime"]), status
    assert type(status["uptime_seconds"]) is int and status["uptime_seconds"] >= 0
    for service in ("spotify", "soulseek", "hydrabase"):
        assert status["services"][service] is False, status

    # The key list, once through ?api_key=: never a key nor a hash.
    reply = await api.get("/api/v1/api-keys", query_key=first)
    assert reply.status == 200, reply
    keys = reply.data["keys"]
    assert [k["id"] for k in keys] == [first_id, second_id]
    assert [k["label"] for k in keys] == ["first", "second"]
    assert [k["key_prefix"] for k in keys] == [first[:PREFIX], second[:PREFIX]]
    for key_object in keys:
        assert_no_secret(key_object, [first, second])
    for raw in (first, second):
        assert hashlib.sha256(raw.encode()).hexdigest() not in reply.text

    reply = await api.patch("/api/v1/settings", {"logging.level": "DEBUG", "api.rate_limits.read": 100},
                            key=first)
    assert reply.status == 200, reply
    assert sorted(reply.data["updated_keys"]) == ["api.rate_limits.read", "logging.level"]

    # Revoke the second key; it stops working at once.
    reply = await api.delete(f"/api/v1/api-keys/{second_id}", key=first)
    assert reply.status == 200, reply
    reply = await api.get("/api/v1/system/status", key=second)
    assert reply.status == 403, reply
    assert reply.error["code"] == "INVALID_KEY"

    # systemd stops it: SIGTERM, clean exit within 10 s.
    started = time.monotonic()
    assert await daemon.stop(seconds=10) == 0, daemon.log_text()
    assert time.monotonic() - started < 10

    # last_used_at is only in memory while running: it must have been written at shutdown.
    with contextlib.closing(sqlite3.connect(data_dir / "soulsync.db")) as db:
        rows = dict(db.execute("SELECT id, last_used_at FROM api_keys").fetchall())
    assert set(rows) == {first_id}
    assert rows[first_id] is not None, "last_used_at of the first key was not flushed at shutdown"
    flushed_last_used = rows[first_id]

    # Same data dir, new process: the state is all there.
    daemon = await spawn()
    api = Client(session, daemon)
    reply = await api.get("/api/v1/system/status", key=first)
    assert reply.status == 200, reply
    reply = await api.get("/api/v1/system/status", key=second)
    assert reply.status == 403, reply

    reply = await api.get("/api/v1/api-keys", key=first)
    assert reply.status == 200, reply
    keys = reply.data["keys"]
    assert [k["id"] for k in keys] == [first_id], keys
    assert keys[0]["last_used_at"] is not None
    assert keys[0]["last_used_at"] >= flushed_last_used
    assert_no_secret(keys[0], [first, second])

    reply = await api.get("/api/v1/settings", key=first)
    assert reply.status == 200, reply
    assert reply.data["settings"]["logging"]["level"] == "DEBUG"
    assert reply.data["settings"]["api"]["rate_limits"]["read"] == 100
    assert reply.data["sources"]["logging.level"] == "api"
    assert reply.data["sources"]["api.rate_limits.read"] == "api"

    assert await daemon.stop() == 0, daemon.log_text()


# --- 2. raw keys never reach the disk or the log ----------------------------------------

async def test_raw_keys_never_reach_disk_or_log(spawn: Spawn, session: aiohttp.ClientSession,
                                                data_dir: Path, tmp_path: Path) -> None:
    daemon = await spawn()
    api = Client(session, daemon)
    created: list[str] = []

    first = await bootstrap(api, "first")
    created.append(first)
    # DEBUG logs the most, so that is where a leak would show.
    reply = await api.patch("/api/v1/settings", {"logging.level": "DEBUG"}, key=first)
    assert reply.status == 200, reply

    for label in ("header", "query", "revoked"):
        reply = await api.post("/api/v1/api-keys", {"label": label}, query_key=first)
        assert reply.status == 201, reply
        created.append(reply.data["key"])
    _, by_header, by_query, revoked = created
    revoked_id = (await api.get("/api/v1/api-keys", key=first)).data["keys"][-1]["id"]

    assert (await api.get("/api/v1/system/status", key=by_header)).status == 200
    assert (await api.get("/api/v1/api-keys", key=by_header)).status == 200
    assert (await api.get("/api/v1/system/status", query_key=by_query)).status == 200
    assert (await api.get("/api/v1/system/activity", query_key=by_query)).status == 200
    assert (await api.get("/api/v1/settings", query_key=by_query)).status == 200
    # Answers other than 200 with a key in the query are logged too.
    assert (await api.get("/api/v1/no-such-endpoint", query_key=by_query)).status == 404
    assert (await api.delete(f"/api/v1/api-keys/{revoked_id}", query_key=revoked)).status == 200
    assert (await api.get("/api/v1/system/status", query_key=revoked)).status == 403
    assert (await api.get("/api/v1/system/status", key=revoked)).status == 403
    reply = await api.request("PATCH", "/api/v1/settings", {"logging.level": "NOPE"}, query_key=by_query)
    assert reply.status == 400, reply

    # While it runs (a -wal file holds the latest pages) and after it stopped (all in the db).
    assert_secrets_absent(data_dir, tmp_path, created)
    assert await daemon.stop() == 0, daemon.log_text()

    # The access log did record the query-string requests (with the key hidden).
    log = daemon.log_text()
    assert "api_key=" in log and "/api/v1/system/status?api_key=" in log, log

    assert_secrets_absent(data_dir, tmp_path, created)

    # Hiding the key must not break the documented line format `<client> "<METHOD> <path?query>" ...`.
    access = [line for line in log.splitlines() if " soulsync.access: " in line]
    assert len(access) >= 14, log
    broken = [line for line in access if not ACCESS_LINE.search(line)]
    assert not broken, (
        "BUG: access log lines of ?api_key= requests lose their closing quote: ScrubbingFormatter "
        "scrubs the formatted line again and logs._QUERY_SECRET ([^&#\\s]*) eats the '\"':\n"
        + "\n".join(broken))


def assert_secrets_absent(data_dir: Path, log_dir: Path, raw_keys: list[str]) -> None:
    """No file of ``data_dir`` (the db, its -wal/-shm) nor any daemon log holds a raw key."""
    files = sorted(p for p in data_dir.iterdir() if p.is_file())
    assert data_dir / "soulsync.db" in files, files
    logs = sorted(log_dir.glob("daemon-*.log"))
    assert logs
    for path in [*files, *logs]:
        content = path.read_bytes()
        for raw in raw_keys:
            assert raw.encode() not in content, f"raw key {raw[:PREFIX]}… written to {path.name}"
            assert raw[PREFIX:].encode() not in content, f"secret part of {raw[:PREFIX]}… in {path.name}"


# --- 3. SIGTERM with a request in flight ------------------------------------------------

async def test_sigterm_finishes_request_in_flight(spawn: Spawn, session: aiohttp.ClientSession) -> None:
    daemon = await spawn()
    key = await bootstrap(Client(session, daemon))

    body = json.dumps({"api.rate_limits.read": 90}).encode()
    head = (f"PATCH /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1:{daemon.port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    split = len(body) // 2
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    try:
        writer.write(head + body[:split])
        await writer.drain()
        await asyncio.sleep(0.3)

        daemon.terminate()
        await asyncio.sleep(0.5)

        # The listener is closed: nobody new gets in while the old request finishes.
        with pytest.raises(ConnectionRefusedError):
            _, late = await asyncio.open_connection("127.0.0.1", daemon.port)
            late.close()
        assert daemon.proc is not None and daemon.proc.poll() is None, "exited with a request in flight"

        writer.write(body[split:])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=9)  # until the server closes
    finally:
        writer.close()

    head_bytes, sep, payload = raw.partition(b"\r\n\r\n")
    assert sep, (
        f"BUG: the request in flight got no answer (server sent {raw!r} then closed). After SIGTERM "
        "daemon.serve() calls AppRunner.cleanup(), whose Server.pre_shutdown() marks every "
        "connection closing, and aiohttp's RequestHandler.data_received() then drops the rest of "
        "the body; the handler waits for it until the 7 s grace ends and is cancelled.")
    lines = head_bytes.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), raw
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    assert int(headers["content-length"]) == len(payload), raw
    envelope = json.loads(payload)
    assert envelope["success"] is True, envelope
    assert envelope["data"]["updated_keys"] == ["api.rate_limits.read"]

    assert daemon.sigterm_at is not None
    code = await daemon.wait(max(0.1, 10 - (time.monotonic() - daemon.sigterm_at)))
    assert code == 0, daemon.log_text()
    assert time.monotonic() - daemon.sigterm_at < 10


# --- 4. the keys command line against a running daemon ----------------------------------

async def test_cli_keys_against_running_daemon(spawn: Spawn, session: aiohttp.ClientSession,
                                               data_dir: Path, home: Path) -> None:
    daemon = await spawn()
    api = Client(session, daemon)

    created = await run_cli(["keys", "create", "--data-dir", data_dir, "--label", "cli"], home)
    assert created.returncode == 0, created
    # Take the key from its own line so the rest is checked even while stdout carries more
    # (the one-line check is the last assert below).
    printed = [line for line in created.stdout.splitlines() if KEY_SHAPE.match(line)]
    assert len(printed) == 1, created.stdout
    key = printed[0]

    reply = await api.get("/api/v1/system/status", key=key)
    assert reply.status == 200, reply
    reply = await api.get("/api/v1/api-keys", key=key)
    assert reply.status == 200, reply
    [listed] = reply.data["keys"]
    key_id = listed["id"]
    assert listed["label"] == "cli" and listed["key_prefix"] == key[:PREFIX]
    assert key_id in created.stderr

    listing = await run_cli(["keys", "list", "--data-dir", data_dir], home)
    assert listing.returncode == 0, listing
    assert key_id in listing.stdout and "cli" in listing.stdout, listing.stdout
    assert key not in listing.stdout + listing.stderr
    assert key[PREFIX:] not in listing.stdout + listing.stderr

    revoked = await run_cli(["keys", "revoke", key_id, "--data-dir", data_dir], home)
    assert revoked.returncode == 0, revoked

    # The running daemon must not keep accepting a key revoked behind its back.
    reply = await api.get("/api/v1/system/status", key=key)
    assert reply.status == 403, reply
    assert reply.error["code"] == "INVALID_KEY"

    unknown = await run_cli(["keys", "revoke", "00000000-0000-0000-0000-000000000000",
                             "--data-dir", data_dir], home)
    assert unknown.returncode == 1, unknown
    assert "no API key" in unknown.stderr

    assert await daemon.stop() == 0, daemon.log_text()

    # `KEY=$(soulsync keys create)` must capture the key and nothing else.
    assert created.stdout == key + "\n", (
        "BUG: `soulsync keys create` must print only the key on stdout, but stdout was:\n"
        f"{created.stdout}(Core.open() resets the root logger to logging.level=INFO after the CLI "
        "set WARNING, and log records go to stdout)")


# --- 5. a database from a newer SoulSync -----------------------------------------------

async def test_refuses_database_from_newer_version(spawn: Spawn, data_dir: Path) -> None:
    daemon = await spawn()
    assert await daemon.stop() == 0, daemon.log_text()
    db_path = data_dir / "soulsync.db"
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("INSERT INTO schema_version(version, name, applied_at) VALUES (9999, 'future', 'x')")
        db.commit()
    tables_before = _schema(db_path)

    started = time.monotonic()
    daemon = await spawn(ready=False)
    code = await daemon.wait(10)
    elapsed = time.monotonic() - started
    log = daemon.log_text()
    assert code == 2, log
    assert elapsed < 10, elapsed
    assert "newer" in log, log
    assert "Traceback" not in log, log
    # Nothing was touched.
    assert _schema(db_path) == tables_before
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 9999


def _schema(db_path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    return rows
