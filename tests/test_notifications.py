"""Notifications against local HTTP receivers: Apprise's json:// and jsons:// targets and the
signed webhook; retries, giving up, the delivery log, validation and redaction of the URLs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from soulsync_core.config import SettingError
from soulsync_core.events import Event
from soulsync_core.notifications.messages import describe
from soulsync_core.notifications.service import TARGET_QUEUE
from soulsync_core.notifications.targets import redact_url

N = "/api/v1/notifications"
TOKEN = "tok3n-s3cr3t-path"  # stands for the token a real target URL holds


class Receiver:
    """A local HTTP endpoint that records each request and answers the next queued status."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "broken")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app


@pytest.fixture
def settings_env() -> dict[str, str]:
    # No pause between retries: the tests count attempts, they do not wait for them.
    return {"SOULSYNC_NOTIFICATIONS__RETRY_BACKOFF_SECONDS": "0",
            "SOULSYNC_NOTIFICATIONS__TIMEOUT_SECONDS": "5"}


async def configure(api: Any, **settings: Any) -> None:
    reply = await api.patch("/api/v1/settings", settings)
    assert reply.status == 200, reply.json


async def logged(api: Any, count: int) -> list[dict[str, Any]]:
    """Wait until the delivery log holds ``count`` entries; return them, oldest first."""
    recent: list[dict[str, Any]] = []
    for _ in range(1500):  # read directly: polling GET /notifications would hit the rate limit
        recent = msgspec.to_builtins(await api.core.notifier.log.recent(count))
        if len(recent) >= count:
            return list(reversed(recent))
        await asyncio.sleep(0.01)
    raise AssertionError(f"the delivery log never reached {count} entries: {recent}")


async def test_json_target_gets_the_event_and_the_url_is_redacted_everywhere(
        soulsync_factory, aiohttp_server, settings_env, caplog):
    receiver = Receiver()
    server = await aiohttp_server(receiver.app())
    caplog.set_level(logging.DEBUG)
    api = await soulsync_factory(environ=settings_env)
    url = f"json://127.0.0.1:{server.port}/{TOKEN}"
    await configure(api, **{"notifications.targets": [{"url": url, "name": "ha"}]})
    api.core.events.publish("download.failed", {"track_name": "One More Time",
                                                "artist_name": "Daft Punk", "error": "no file"})
    api.core.events.publish("download.completed", {"track_name": "x"})  # not in the defaults
    [entry] = await logged(api, 1)
    assert (entry["target"], entry["event_type"], entry["ok"], entry["attempts"]) == (
        "ha", "download.failed", True, 1)
    [(_headers, body)] = receiver.requests
    payload = json.loads(body)
    assert payload["title"] == "SoulSync: Download failed"
    assert payload["message"] == "Daft Punk - One More Time: no file"
    view = await api.get(N)
    assert view.data["recent"] == [entry]
    [target] = view.data["targets"]
    assert target["url"] == f"json://127.0.0.1:{server.port}/…"
    assert target["events"] == ["download.failed", "watchlist.release_found", "service.down",
                                "playlist.sync.finished"]
    assert target["last_success_at"] and target["delivered"] == 1 and target["failed"] == 0
    settings = (await api.get("/api/v1/settings")).data["settings"]
    assert settings["notifications"]["targets"] == "***REDACTED***"
    # The receiver's own access log shows its path, of course; nothing else may.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert TOKEN not in json.dumps(view.json) + json.dumps(settings) + ours


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_jsons_target_over_tls_retries_after_a_500(soulsync_factory, aiohttp_server,
                                                         settings_env, tmp_path):
    receiver = Receiver([500])
    server = await aiohttp_server(receiver.app(), ssl=self_signed(tmp_path))
    api = await soulsync_factory(environ=settings_env)
    # verify=no: the receiver's certificate is self-signed (a NAS's Home Assistant often is).
    url = f"jsons://127.0.0.1:{server.port}/{TOKEN}?verify=no"
    await configure(api, **{"notifications.targets": [{"url": url, "events": ["service.*"]}]})
    api.core.events.publish("service.down", {"service": "soulseek", "ok": False,
                                             "reason": "connection refused"})
    [entry] = await logged(api, 1)
    assert (entry["target"], entry["ok"], entry["attempts"]) == ("target 1", True, 2)
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[1][1])["message"] == "soulseek is down: connection refused"


async def test_signed_webhook_body_and_signature_verify(soulsync_factory, aiohttp_server,
                                                        settings_env):
    receiver = Receiver()
    server = await aiohttp_server(receiver.app())
    api = await soulsync_factory(environ=settings_env)
    secret = "shared-secret-for-hmac"
    await configure(api, **{"notifications.webhooks": [
        {"url": str(server.make_url(f"/hook/{TOKEN}")), "secret": secret, "name": "scripts",
         "events": ["wishlist.*"]}]})
    event = api.core.events.publish("wishlist.removed", {"track_id": "spotify:1"})
    assert event is not None
    [entry] = await logged(api, 1)
    assert entry["ok"] and entry["target"] == "scripts"
    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-SoulSync-Signature"], expected)
    assert headers["X-SoulSync-Event"] == "wishlist.removed"
    assert json.loads(body) == {"id": event.id, "type": "wishlist.removed", "at": event.at,
                                "data": {"track_id": "spotify:1"}}


async def test_a_target_that_keeps_failing_is_given_up_after_the_retries_and_logged(
        soulsync_factory, aiohttp_server, settings_env, caplog):
    receiver = Receiver([500] * 10)
    server = await aiohttp_server(receiver.app())
    api = await soulsync_factory(environ={**settings_env, "SOULSYNC_NOTIFICATIONS__RETRIES": "2"})
    await configure(api, **{"notifications.webhooks": [
        {"url": str(server.make_url(f"/{TOKEN}")), "secret": "s", "name": "broken"}]})
    with caplog.at_level(logging.WARNING):
        api.core.events.publish("download.failed", {"track_name": "x"})
        [entry] = await logged(api, 1)
    assert (entry["ok"], entry["attempts"], entry["error"]) == (
        False, 3, "the receiver answered HTTP 500: broken")
    assert len(receiver.requests) == 3
    [target] = (await api.get(N)).data["targets"]
    assert target["failed"] == 1 and target["last_failure_at"] and target["last_success_at"] is None
    assert target["last_error"] == "the receiver answered HTTP 500: broken"
    assert "broken" in caplog.text and TOKEN not in caplog.text


async def test_apprise_failure_reason_is_logged_without_the_url(soulsync_factory, aiohttp_server,
                                                                settings_env):
    receiver = Receiver([503] * 5)
    server = await aiohttp_server(receiver.app())
    api = await soulsync_factory(environ={**settings_env, "SOULSYNC_NOTIFICATIONS__RETRIES": "0"})
    await configure(api, **{"notifications.targets": [
        {"url": f"json://127.0.0.1:{server.port}/{TOKEN}", "events": ["library.*"]}]})
    api.core.events.publish("library.changed", {"source": "import", "track_id": 1})
    [entry] = await logged(api, 1)
    assert entry["ok"] is False and entry["attempts"] == 1
    assert "503" in entry["error"] and TOKEN not in entry["error"]


async def test_test_send_answers_what_each_target_said(soulsync_factory, aiohttp_server,
                                                       settings_env):
    good, bad = Receiver(), Receiver([500])
    good_server, bad_server = await aiohttp_server(good.app()), await aiohttp_server(bad.app())
    api = await soulsync_factory(environ=settings_env)
    none = await api.post(f"{N}/test", {})
    assert (none.status, none.error["code"]) == (409, "CONFLICT")
    await configure(api, **{
        "notifications.targets": [{"url": f"json://127.0.0.1:{good_server.port}/x", "name": "ha"}],
        "notifications.webhooks": [{"url": str(bad_server.make_url("/y")), "secret": "s",
                                    "name": "hook"}]})
    reply = await api.post(f"{N}/test", {})
    assert reply.status == 200
    results = {r["target"]: r for r in reply.data["results"]}
    assert results["ha"]["ok"] is True and results["ha"]["event_type"] == "test"
    assert (results["hook"]["ok"], results["hook"]["error"]) == (
        False, "the receiver answered HTTP 500: broken")
    assert json.loads(good.requests[0][1])["message"].startswith("A test notification")
    one = await api.post(f"{N}/test", {"target": "ha"})
    assert [r["target"] for r in one.data["results"]] == ["ha"]
    unknown = await api.post(f"{N}/test", {"target": "nope"})
    assert unknown.status == 404 and "'ha', 'hook'" in unknown.error["message"]


@pytest.mark.parametrize(("setting", "entries", "message"), [
    ("notifications.targets", [{"url": "json://127.0.0.1/ok"}, {"url": f"nosuch://{TOKEN}/x",
                                                                "name": "bad"}],
     "notifications.targets: entry 2 ('bad'): url (nosuch://…) is not a notification URL"),
    ("notifications.targets", [{"url": "json://h/a", "colour": "red"}],
     "entry 1: unknown field(s) colour"),
    ("notifications.targets", [{"name": "a"}], "entry 1 ('a'): url is required"),
    ("notifications.targets", [{"url": "json://h/a", "events": "download.*"}],
     "entry 1: events must be a list"),
    ("notifications.targets", [{"url": "json://h/a", "name": "x"}, {"url": "json://h/b", "name": "x"}],
     "entry 2 ('x'): the name 'x' is used twice"),
    ("notifications.webhooks", [{"url": f"ftp://h/{TOKEN}", "secret": "s"}],
     "entry 1: url (ftp://…) must be an http:// or https:// address"),
    ("notifications.webhooks", [{"url": "https://h/x"}], "entry 1: secret is required"),
    ("notifications.targets", ["json://h/a"], "must be a list of objects"),
])
async def test_bad_targets_are_a_400_naming_the_entry_and_nothing_is_applied(
        soulsync_factory, setting, entries, message):
    api = await soulsync_factory()
    reply = await api.patch("/api/v1/settings", {setting: entries, "logging.level": "DEBUG"})
    assert reply.status == 400, reply.json
    assert message in reply.error["message"]
    assert TOKEN not in reply.error["message"]
    assert api.core.settings.get("logging.level") == "INFO"
    assert (await api.get(N)).data["targets"] == []


def test_redacted_url_keeps_scheme_and_host_only():
    assert redact_url(f"tgram://{TOKEN}/12345") == "tgram://…"  # the host is the bot token
    assert redact_url(f"https://user:{TOKEN}@ha.local:8123/api/webhook/{TOKEN}") == "https://ha.local:8123/…"
    assert redact_url("json://[bad") == "…"


async def test_targets_from_the_environment_are_json_and_a_bad_value_hides_it(soulsync_factory):
    targets = json.dumps([{"url": f"ntfy://{TOKEN}", "name": "phone"}])
    api = await soulsync_factory(environ={"SOULSYNC_NOTIFICATIONS__TARGETS": targets})
    [target] = (await api.get(N)).data["targets"]
    assert (target["name"], target["kind"], target["url"]) == ("phone", "apprise", "ntfy://…")
    with pytest.raises(SettingError) as raised:
        await soulsync_factory(environ={"SOULSYNC_NOTIFICATIONS__TARGETS": f"[{{'url': '{TOKEN}'"})
    assert "SOULSYNC_NOTIFICATIONS__TARGETS must be a JSON list of objects" in str(raised.value)
    assert TOKEN not in str(raised.value)


async def test_a_target_that_cannot_keep_up_loses_its_oldest_notifications_and_says_so(
        soulsync_factory, aiohttp_server, settings_env):
    receiver = Receiver()
    server = await aiohttp_server(receiver.app())
    api = await soulsync_factory(environ=settings_env)
    await configure(api, **{"notifications.webhooks": [
        {"url": str(server.make_url("/in")), "secret": "s", "name": "slow", "events": ["wishlist.*"]}]})
    published = [api.core.events.publish("wishlist.removed", {"n": n}) for n in range(TARGET_QUEUE + 50)]
    assert all(published)  # publishing never waited for the target
    entries = await logged(api, TARGET_QUEUE + 1)
    assert (entries[0]["event_type"], entries[0]["ok"], entries[0]["error"]) == (
        "lost", False, "50 notification(s) dropped: the target was too slow to keep up")
    delivered = [json.loads(body)["data"]["n"] for _headers, body in receiver.requests]
    assert delivered == list(range(50, TARGET_QUEUE + 50))  # the newest ones, in order


async def test_targets_from_the_config_file_as_arrays_of_tables(soulsync_factory, tmp_path):
    config = tmp_path / "soulsync.toml"
    config.write_text('[[notifications.targets]]\nname = "phone"\nurl = "ntfy://my-topic"\n'
                      'events = ["download.*"]\n\n[[notifications.webhooks]]\n'
                      'url = "https://ha.local:8123/api/webhook/abc"\nsecret = "s"\n')
    api = await soulsync_factory(config_path=config)
    targets = (await api.get(N)).data["targets"]
    assert [(t["name"], t["kind"], t["url"], t["events"]) for t in targets] == [
        ("phone", "apprise", "ntfy://…", ["download.*"]),
        ("webhook 1", "webhook", "https://ha.local:8123/…", ["download.failed",
         "watchlist.release_found", "service.down", "playlist.sync.finished"])]


def test_a_failed_playlist_sync_is_told_as_a_failure_with_its_reason():
    failed = Event(1, "playlist.sync.finished", "2026-03-04T08:00:00+00:00",
                   {"playlist_id": "road", "state": "failed", "playlist_name": "Road",
                    "error": "The music folder /music does not exist or is not a folder."})
    _, body = describe(failed)
    assert body == "Road: sync failed: The music folder /music does not exist or is not a folder."
