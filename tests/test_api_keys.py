"""API keys over the API: shapes, hashing, bootstrap, revocation, last_used_at."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from soulsync_core.apikeys import InvalidLabel
from soulsync_core.core import Core

KEY_RE = re.compile(r"^sk_[A-Za-z0-9_-]{43}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


async def test_bootstrap_creates_first_key_with_documented_shape(api):
    reply = await api.post("/api/v1/api-keys/bootstrap", {"label": "My First Key"})
    assert reply.status == 201
    data = reply.data
    assert KEY_RE.match(data["key"])
    assert data["key_prefix"] == data["key"][:11]
    assert data["label"] == "My First Key"
    assert ISO_UTC.match(data["created_at"])
    assert re.match(r"^[0-9a-f-]{36}$", data["id"])


async def test_bootstrap_default_label_and_second_call_forbidden(api):
    first = await api.post("/api/v1/api-keys/bootstrap")
    assert first.status == 201 and first.data["label"] == "Default"
    second = await api.post("/api/v1/api-keys/bootstrap", {"label": "again"})
    assert second.status == 403
    assert second.error["code"] == "FORBIDDEN"
    assert "already exist" in second.error["message"]


async def test_fifty_concurrent_bootstraps_make_exactly_one_key(api, core: Core):
    core.limiter.set_limit("write", 1000)  # 50 writes from one IP would otherwise hit 30/min
    replies = await asyncio.gather(*(api.post("/api/v1/api-keys/bootstrap", {"label": f"b{i}"})
                                     for i in range(50)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(201) == 1
    assert statuses.count(403) == 49
    assert await core.keys.count() == 1


async def test_fifty_concurrent_bootstraps_from_two_processes_worth_of_connections(data_dir, api):
    # A second Core on the same file is what `soulsync keys create` is to the daemon: another
    # connection. The single INSERT … WHERE NOT EXISTS decides across connections too.
    other = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        results = await asyncio.gather(
            *(api.post("/api/v1/api-keys/bootstrap") for _ in range(25)),
            *(other.keys.bootstrap("other") for _ in range(25)),
        )
    finally:
        await other.close()
    created = [r for r in results[:25] if r.status == 201] + [r for r in results[25:] if r is not None]
    assert len(created) == 1


async def test_only_the_hash_is_stored(api, key, core: Core):
    rows = await core.db.fetchall("SELECT * FROM api_keys")
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in [str(v) for v in row.values()]


async def test_key_lookup_uses_the_hash_index(core: Core):
    plan = await core.db.fetchall(
        "EXPLAIN QUERY PLAN SELECT id FROM api_keys WHERE key_hash = ?", ("x",))
    detail = " ".join(r["detail"] for r in plan)
    assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, detail


async def test_create_list_and_never_show_key_or_hash(api, key):
    created = await api.post("/api/v1/api-keys", {"label": "Discord Bot"})
    assert created.status == 201
    raw = created.data["key"]
    listing = await api.get("/api/v1/api-keys")
    assert listing.status == 200
    keys = listing.data["keys"]
    assert [k["label"] for k in keys] == ["tests", "Discord Bot"]
    for item in keys:
        assert set(item) == {"id", "label", "key_prefix", "created_at", "last_used_at",
                             "profile_id"}
    text = str(listing.json)
    assert raw not in text and key not in text
    assert not re.search(r"[0-9a-f]{64}", text)


async def test_create_key_default_label_is_empty(api, key):
    reply = await api.post("/api/v1/api-keys")
    assert reply.status == 201 and reply.data["label"] == ""


async def test_create_key_label_must_be_a_string(api, key):
    reply = await api.post("/api/v1/api-keys", {"label": 5})
    assert reply.status == 400
    assert reply.error["code"] == "BAD_REQUEST"
    assert reply.error["message"] == "label must be a string, not an integer."
    listing = await api.get("/api/v1/api-keys")
    assert len(listing.data["keys"]) == 1


async def test_create_key_label_length_is_bounded(api, key):
    reply = await api.post("/api/v1/api-keys", {"label": "x" * 201})
    assert reply.status == 400
    assert "label" in reply.error["message"] and "200" in reply.error["message"]


async def test_revoke_then_key_is_refused_and_bootstrap_reopens(api, key):
    listing = await api.get("/api/v1/api-keys")
    key_id = listing.data["keys"][0]["id"]
    revoked = await api.delete(f"/api/v1/api-keys/{key_id}")
    assert revoked.status == 200
    assert revoked.data == {"message": "API key revoked."}
    after = await api.get("/api/v1/system/status")
    assert after.status == 403 and after.error["code"] == "INVALID_KEY"
    again = await api.post("/api/v1/api-keys/bootstrap")
    assert again.status == 201


async def test_revoke_unknown_key_is_404(api, key):
    reply = await api.delete("/api/v1/api-keys/00000000-0000-0000-0000-000000000000")
    assert reply.status == 404
    assert reply.error == {"code": "NOT_FOUND", "message": "API key not found."}
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1


async def test_last_used_at_is_current_without_a_write_per_request(api, key, core: Core):
    before = (await api.get("/api/v1/api-keys")).data["keys"][0]
    # The listing request itself used the key, so the answer already shows a time.
    assert before["last_used_at"] is not None and ISO_UTC.match(before["last_used_at"])
    stored = await core.db.fetchval("SELECT last_used_at FROM api_keys")
    assert stored is None  # not written on the request path
    await core.keys.flush_last_used()
    assert await core.db.fetchval("SELECT last_used_at FROM api_keys") is not None


async def test_key_events_are_in_the_activity_feed(api, key):
    created = await api.post("/api/v1/api-keys", {"label": "bot"})
    await api.delete(f"/api/v1/api-keys/{created.data['id']}")
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    types = [item["type"] for item in feed]
    assert types[:3] == ["api_key.revoked", "api_key.created", "api_key.created"]
    assert created.data["key"] not in str(feed)


async def test_a_verified_key_is_trusted_until_the_database_changes(core, monkeypatch):
    import sqlite3

    from soulsync_core.db import DB_FILENAME

    new = await core.keys.create("cached")
    lookups: list[str] = []
    real = core.db.fetchone

    async def counting(sql, params=()):
        lookups.append(sql)
        return await real(sql, params)

    monkeypatch.setattr(core.db, "fetchone", counting)
    assert await core.keys.authenticate(new.key) == new.id
    assert await core.keys.authenticate(new.key) == new.id
    assert len(lookups) == 1  # the second request needed no database round trip
    assert await core.keys.authenticate("sk_" + "x" * 43) is None
    assert await core.keys.authenticate("sk_" + "x" * 43) is None
    assert len(lookups) == 3  # unknown keys are looked up every time, never remembered

    # Revoked behind the daemon's back (another process): refused at the next request.
    other = sqlite3.connect(core.data_dir / DB_FILENAME)
    other.execute("DELETE FROM api_keys WHERE id = ?", (new.id,))
    other.commit()
    other.close()
    assert await core.keys.authenticate(new.key) is None


@pytest.mark.parametrize("label", ["two\nlines", "nul\x00", "cr\r", "esc\x1b[31m", "tab\t",
                                   "line\u2028separator", "c1\x85"])
async def test_key_labels_with_control_characters_are_refused(api, key, label):
    reply = await api.post("/api/v1/api-keys", {"label": label})
    assert reply.status == 400 and reply.error["code"] == "BAD_REQUEST"
    assert reply.error["message"].startswith("label must be a string matching")
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1  # nothing stored


async def test_bootstrap_label_with_a_newline_is_refused(api):
    reply = await api.post("/api/v1/api-keys/bootstrap", {"label": "a\nb"}, auth=False)
    assert reply.status == 400
    assert (await api.post("/api/v1/api-keys/bootstrap", {"label": "a b é"})).status == 201


async def test_the_key_store_refuses_control_characters_too(core: Core):
    with pytest.raises(InvalidLabel, match="control characters"):
        await core.keys.create("forged\n2026-01-01 INFO soulsync: all good")
    assert await core.keys.count() == 0


async def test_cli_refuses_a_label_with_a_newline(tmp_path):
    from tests.daemon_process import run_cli

    created = await run_cli(["keys", "create", "--data-dir", tmp_path / "data",
                             "--label", "bad\nlabel"], tmp_path / "home")
    assert created.returncode == 2, created
    assert "control characters" in created.stderr and created.stdout == ""


async def test_keys_list_keeps_one_line_per_key_for_labels_stored_before_the_check(tmp_path):
    import sqlite3

    from tests.daemon_process import run_cli

    data_dir, home = tmp_path / "data", tmp_path / "home"
    assert (await run_cli(["keys", "create", "--data-dir", data_dir], home)).returncode == 0
    with sqlite3.connect(data_dir / "soulsync.db") as db:  # written by an older SoulSync
        db.execute("UPDATE api_keys SET label = ?", ("old\nlabel\x00",))
    listed = await run_cli(["keys", "list", "--data-dir", data_dir], home)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.startswith("ID")
    assert row.endswith("old\\nlabel\\x00")
