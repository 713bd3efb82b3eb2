"""Serving the web UI: the page and its assets, security and cache headers, compression, size."""

from __future__ import annotations

import fnmatch
import gzip
import re
import tomllib
from importlib import resources
from pathlib import Path

from soulsync_core.api.web import ASSET_TYPES, CONTENT_SECURITY_POLICY, load_web_files

ROOT = Path(__file__).resolve().parent.parent
FIRST_PAGE_BUDGET = 150 * 1024
# What the browser loads for the login page and the dashboard (app.js imports the rest lazily).
FIRST_PAGE = ("app.css", "icon.svg", "app.js", "api.js", "ui.js", "live.js", "page_dashboard.js")


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)


async def test_the_page_needs_no_key_and_carries_the_security_headers(api):
    response = await api.client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    html = await response.text()
    version = load_web_files().version
    assert asset_urls(html) and all(url.startswith(f"/assets/{version}/") for url in asset_urls(html))


async def test_assets_are_versioned_cached_for_a_year_and_gzipped(api):
    html = await (await api.client.get("/")).text()
    for url in asset_urls(html):
        response = await api.client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        assert response.status == 200, url
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        name = url.rsplit("/", 1)[1]
        original = resources.files("soulsync_core.web").joinpath(name).read_bytes()
        assert gzip.decompress(await response.read()) == original
    script = await api.client.get(f"/assets/{load_web_files().version}/app.js",
                                  headers={"Accept-Encoding": "identity"})
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "Content-Encoding" not in script.headers  # not asked for gzip


async def test_an_asset_of_another_version_or_unknown_is_404_and_not_cached(api):
    version = load_web_files().version
    for path in ("/assets/0123456789ab/app.js", f"/assets/{version}/nope.js",
                 f"/assets/{version}/__init__.py"):
        response = await api.client.get(path)
        assert response.status == 404, path
        assert response.headers["Cache-Control"] == "no-cache, no-store, must-revalidate"


def test_the_version_changes_with_any_file(tmp_path):
    package = resources.files("soulsync_core.web")
    copy = tmp_path / "web"
    copy.mkdir()
    for entry in package.iterdir():
        if entry.is_file():
            (copy / entry.name).write_bytes(entry.read_bytes())
    first = load_web_files(copy)
    assert first.version == load_web_files().version and re.fullmatch(r"[0-9a-f]{12}", first.version)
    assert b"{{version}}" not in first.page.body and first.version.encode() in first.page.body
    (copy / "ui.js").write_bytes((copy / "ui.js").read_bytes() + b"\n")
    assert load_web_files(copy).version != first.version


def test_no_inline_script_or_style_anywhere():
    files = resources.files("soulsync_core.web")
    html = files.joinpath("index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html and " style=" not in html and re.search(r"\son\w+=", html) is None
    for entry in files.iterdir():
        if entry.name.endswith(".js"):
            text = entry.read_text()
            # No HTML parsing of strings (innerHTML) and no style attributes: CSP and escaping.
            assert ".innerHTML" not in text and "setAttribute('style'" not in text, entry.name
            assert "eval(" not in text and "new Function" not in text, entry.name
            assert "http://" not in text and "https://" not in text, entry.name  # nothing from a CDN


def test_the_first_page_is_under_150_kb_compressed():
    files = load_web_files()
    total = len(gzip.compress(files.page.body)) + sum(len(files.assets[name].gzipped) for name in FIRST_PAGE)
    assert total < FIRST_PAGE_BUDGET, f"the first page transfers {total} bytes"


def test_every_file_is_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["soulsync_core.web"]
    for entry in resources.files("soulsync_core.web").iterdir():
        if entry.is_file() and not entry.name.endswith(".py"):
            assert any(fnmatch.fnmatch(entry.name, p) for p in patterns), entry.name


def test_every_asset_has_a_media_type_the_openapi_document_lists():
    for name, asset in load_web_files().assets.items():
        assert asset.content_type in ASSET_TYPES, name


async def test_the_bootstrap_state_says_whether_the_first_key_can_be_made_without_a_key(api):
    before = await api.client.get("/api/v1/system/bootstrap")
    assert before.status == 200
    assert (await before.json())["data"] == {"available": True}
    key = await api.bootstrap()
    after = await api.client.get("/api/v1/system/bootstrap")
    assert (await after.json())["data"] == {"available": False}
    [listed] = (await api.get("/api/v1/api-keys", key=key)).data["keys"]
    assert listed["key_prefix"] not in await after.text()
