"""Posting to user-given URLs: which addresses are refused, delivery, retries and give-ups."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from soulsync_core.outbound import (
    UrlRefused,
    address_problem,
    check_destination,
    check_url,
    guarded_session,
    post_json,
)


class Receiver:
    """A local webhook receiver: answers with ``statuses`` in turn (then 200), records bodies."""

    def __init__(self, *statuses: int, hang: bool = False, retry_after: str | None = None):
        self.statuses = list(statuses)
        self.hang = hang
        self.retry_after = retry_after
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        if self.hang:
            await asyncio.sleep(3600)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
        return web.Response(status=status, text="nope" if status >= 300 else "ok", headers=headers)


async def moved(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/hook")


@pytest.fixture
def receiver(aiohttp_server: Any) -> Any:
    async def start(*statuses: int, **options: Any) -> tuple[Receiver, str]:
        receiver = Receiver(*statuses, **options)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        app.router.add_post("/moved", moved)
        server = await aiohttp_server(app)
        return receiver, f"http://127.0.0.1:{server.port}"

    return start


class StaticResolver(AbstractResolver):
    """Resolves the names of ``table``, as a DNS server answering for a test domain would."""

    def __init__(self, table: dict[str, str]):
        self.table = table

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        address = self.table[host]
        return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


DNS = StaticResolver({"hooks.example.net": "127.0.0.1", "router.example.net": "192.168.1.1",
                      "public.example.net": "93.184.215.14"})


class Sleeps:
    """Records the back-off waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize("url, why", [
    ("file:///etc/passwd", "must start with http:// or https://, not file:"),
    ("ftp://example.com/x", "not ftp:"),
    ("gopher://example.com", "not gopher:"),
    ("example.com/hook", "not no scheme"),
    ("http:///hook", "names no host"),
    ("http://example.com:port/", "is not a valid URL"),
])
def test_only_http_and_https_urls_with_a_host_pass(url, why):
    for allow_private in (False, True):
        with pytest.raises(UrlRefused, match=why):
            check_url(url, allow_private=allow_private)


@pytest.mark.parametrize("url, kind", [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.1.20/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://100.64.0.1/hook", "not publicly routable"),
])
def test_non_public_addresses_are_refused_unless_allowed(url, kind):
    with pytest.raises(UrlRefused, match=f"is a {kind} address.*request.notify_allow_private"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


def test_public_addresses_and_names_pass():
    check_url("https://93.184.215.14/hook", allow_private=False)
    check_url("https://bot.example.com:8443/hook?token=x", allow_private=False)
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None


async def test_names_are_judged_by_the_addresses_they_resolve_to():
    with pytest.raises(UrlRefused, match=r"hooks\.example\.net \(127\.0\.0\.1\) is a loopback"):
        await check_destination("http://hooks.example.net/hook", allow_private=False, resolver=DNS)
    with pytest.raises(UrlRefused, match=r"router\.example\.net \(192\.168\.1\.1\) is a private"):
        await check_destination("https://router.example.net/", allow_private=False, resolver=DNS)
    await check_destination("https://public.example.net/hook", allow_private=False, resolver=DNS)
    await check_destination("http://hooks.example.net/hook", allow_private=True, resolver=DNS)


async def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(UrlRefused, match=r"no-such-host\.example\.net could not be resolved"):
        await check_destination("http://no-such-host.example.net/hook", allow_private=False,
                                resolver=DNS)


async def test_delivered_with_json_body_and_headers(receiver):
    hook, base = await receiver()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"{base}/hook", {"status": "completed"},
                                 allow_private=True, headers={"X-Test": "1"})
    assert (result.delivered, result.attempts, result.status, result.error) == (True, 1, 200, None)
    assert hook.bodies == [{"status": "completed"}]
    assert hook.headers[0]["X-Test"] == "1"
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert hook.headers[0]["User-Agent"].startswith("SoulSync/")


async def test_5xx_and_429_are_retried_with_backoff(receiver):
    hook, base = await receiver(500, 503, 429)
    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"{base}/hook", {"n": 1}, allow_private=True,
                                 retries=3, backoff=0.5, sleep=sleeps)
    assert (result.delivered, result.attempts) == (True, 4)
    assert sleeps.waits == [0.5, 1.0, 2.0]
    assert len(hook.bodies) == 4


async def test_retry_after_of_a_429_is_obeyed_when_short(receiver):
    _hook, base = await receiver(429, retry_after="7")
    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"{base}/hook", {}, allow_private=True, sleep=sleeps)
    assert result.delivered and sleeps.waits == [7.0]


async def test_retries_run_out_and_the_last_error_is_kept(receiver):
    _hook, base = await receiver(500, 500, 500)
    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"{base}/hook", {}, allow_private=True, retries=2,
                                 sleep=sleeps)
    assert (result.delivered, result.attempts, result.status) == (False, 3, 500)
    assert result.error == "the receiver answered HTTP 500: nope"


async def test_4xx_and_redirects_are_final(receiver):
    hook, base = await receiver(404)
    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        missing = await post_json(session, f"{base}/hook", {}, allow_private=True, sleep=sleeps)
        moved = await post_json(session, f"{base}/moved", {}, allow_private=True, sleep=sleeps)
    assert (missing.delivered, missing.attempts, missing.status) == (False, 1, 404)
    assert (moved.delivered, moved.attempts, moved.status) == (False, 1, 302)
    assert sleeps.waits == [] and len(hook.bodies) == 1


async def test_a_receiver_that_never_answers_times_out(receiver):
    _hook, base = await receiver(hang=True)
    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"{base}/hook", {}, allow_private=True, timeout_seconds=0.2,
                                 retries=1, sleep=sleeps)
    assert (result.delivered, result.attempts, result.status) == (False, 2, None)
    assert result.error == "no answer within 0.2 s"


async def test_nothing_listening_is_a_connection_error():
    from soulsync_core.testing import free_port

    sleeps = Sleeps()
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, f"http://127.0.0.1:{free_port()}/hook", {},
                                 allow_private=True, retries=1, sleep=sleeps)
    assert (result.delivered, result.attempts) == (False, 2)
    assert result.error.startswith("could not be reached")


async def test_refused_urls_are_never_posted_to(receiver):
    hook, base = await receiver()
    port = base.rsplit(":", 1)[1]
    async with guarded_session(allow_private=False, resolver=DNS) as session:
        literal = await post_json(session, f"{base}/hook", {}, allow_private=False)
        scheme = await post_json(session, "file:///etc/passwd", {}, allow_private=False)
        # A name passes check_url; the session's resolver refuses its address when connecting
        # (so a name that resolved to a public address when it was given cannot rebind).
        named = await post_json(session, f"http://hooks.example.net:{port}/hook", {},
                                allow_private=False)
    allowed = {"value": False}
    async with guarded_session(allow_private=lambda: allowed["value"], resolver=DNS) as session:
        allowed["value"] = True  # the setting changed: the next connection may go there
        by_name = await post_json(session, f"http://hooks.example.net:{port}/hook", {"n": 1},
                                  allow_private=True)
    assert (literal.delivered, literal.attempts) == (False, 0)
    assert "127.0.0.1 is a loopback address" in literal.error
    assert (scheme.delivered, scheme.attempts) == (False, 0)
    assert (named.delivered, named.attempts, named.status) == (False, 1, None)
    assert "hooks.example.net (127.0.0.1) is a loopback address" in named.error
    assert by_name.delivered
    assert hook.bodies == [{"n": 1}]


@pytest.mark.parametrize("url", [
    "http://[::1/hook?token=sekret123",          # refused by check_url (quotes the URL)
    "http://host:99999/hook?token=sekret123",    # refused by check_url (quotes the URL)
    "http://a..b/hook?token=sekret123",          # IDNA refuses the name inside aiohttp
    "http://exa mple.com/hook/sekret123",        # aiohttp's InvalidURL is the URL itself
])
async def test_a_token_in_the_url_never_reaches_the_error(url):
    async with guarded_session(allow_private=True) as session:
        result = await post_json(session, url, {}, allow_private=True, retries=0)
    assert not result.delivered and result.error
    assert "sekret123" not in result.error
