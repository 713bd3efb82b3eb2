"""Request bodies must be JSON, and the key-less bootstrap refuses other web sites."""

from __future__ import annotations

import aiohttp
import pytest

BOOTSTRAP = "/api/v1/api-keys/bootstrap"


async def _raw(api, method: str, path: str, data, headers: dict[str, str]):
    async with api.client.request(method, path, data=data, headers=headers) as response:
        body = await response.json(content_type=None)
        api.checker.check(method, response.url.path, response.status, body)
        return response.status, body


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    None, "application/json; charset=latin-1"])
async def test_a_cross_site_simple_post_cannot_bootstrap(api, core, content_type):
    # What a web page can make a browser send without a preflight: not JSON, so refused.
    headers = {"Content-Type": content_type} if content_type else {}
    status, body = await _raw(api, "POST", BOOTSTRAP, b'{"label": "evil"}', headers)
    assert status == 415, body
    assert body["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "Content-Type: application/json" in body["error"]["message"]
    assert await core.keys.count() == 0


async def test_json_bodies_with_charset_and_bodiless_requests_are_fine(api, key):
    status, body = await _raw(api, "POST", "/api/v1/api-keys", b'{"label": "x"}',
                              {"Authorization": f"Bearer {key}",
                               "Content-Type": "application/json; charset=utf-8"})
    assert status == 201, body
    # No body, no Content-Type: as before.
    assert (await api.get("/api/v1/api-keys")).status == 200
    assert (await api.post("/api/v1/api-keys/bootstrap", auth=False)).status == 403


async def test_other_endpoints_refuse_form_bodies_too(api, key):
    status, body = await _raw(api, "PATCH", "/api/v1/settings",
                              aiohttp.FormData({"logging.level": "DEBUG"}),
                              {"Authorization": f"Bearer {key}"})
    assert status == 415, body
    assert api.core.settings.get("logging.level") == "INFO"


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of the same host is another origin
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
])
async def test_bootstrap_refuses_requests_a_browser_marks_as_from_another_site(api, core,
                                                                               headers):
    reply = await api.post(BOOTSTRAP, {"label": "x"}, auth=False, headers=headers)
    assert reply.status == 403 and reply.error["code"] == "FORBIDDEN"
    assert "another web site" in reply.error["message"]
    assert await core.keys.count() == 0


async def test_bootstrap_from_its_own_origin_or_without_browser_headers_works(api):
    host = f"{api.client.server.host}:{api.client.server.port}"
    reply = await api.post(BOOTSTRAP, {"label": "x"}, auth=False,
                           headers={"Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"})
    assert reply.status == 201, reply.json


async def test_bootstrap_through_a_proxy_that_rewrites_host_works_from_its_own_page(api, core):
    # nginx's default proxy_set_header Host $proxy_host: Host is the upstream, Origin the site.
    proxied = await api.post(BOOTSTRAP, {"label": "x"}, auth=False,
                             headers={"Origin": "https://music.example.net",
                                      "Sec-Fetch-Site": "same-origin"})
    assert proxied.status == 201, proxied.json


@pytest.mark.parametrize("headers,status", [
    ({"Origin": "https://music.example.net", "X-Forwarded-Host": "music.example.net"}, 201),
    ({"Origin": "https://evil.example", "X-Forwarded-Host": "music.example.net"}, 403),
])
async def test_an_old_browser_through_a_proxy_is_judged_by_the_forwarded_host(api, core,
                                                                             headers, status):
    reply = await api.post(BOOTSTRAP, {"label": "x"}, auth=False, headers=headers)
    assert reply.status == status, reply.json
    assert await core.keys.count() == (1 if status == 201 else 0)


def test_every_documented_curl_with_a_body_sends_json():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *(root / "docs").glob("*.md"), *root.glob("plugins/*/README.md")]
    for page in pages:
        # A command continues on the next line after a trailing backslash.
        text = page.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.lstrip().startswith("curl") and (" -d " in line or "--data" in line):
                assert "Content-Type: application/json" in line, f"{page.name}: {line}"
