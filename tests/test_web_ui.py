"""The web UI in a real Chromium against the daemon's app: login and first key, the dashboard,
settings, API keys. Every test fails on a console error, a CSP violation, or a request beyond
/api/v1/ and the UI's own files (see :mod:`tests.web_browser`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

import soulsync_slskd.plugin
from soulsync_core.api.app import all_endpoints, create_app
from soulsync_core.api.events import EVENT_STREAMS
from soulsync_core.api.openapi import build_openapi
from soulsync_core.core import Core
from soulsync_core.testing import ApiClient, OpenApiChecker
from tests import audio
from tests.web_browser import PHONE, UiSession, needs_chromium, open_browser

pytestmark = needs_chromium
KEY_STORAGE = "soulsync.api_key"
PAGES = ("dashboard", "library", "search", "downloads", "wishlist", "watchlist", "playlists",
         "settings", "keys", "plugins")
# A configured download client nobody listens on: the settings it brings are real, and it is
# simply reported down.
ENV = {"SOULSYNC_SOULSEEK__SLSKD_URL": "http://127.0.0.1:9",
       "SOULSYNC_SOULSEEK__API_KEY": "fake-slskd-api-key-0123456789"}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with open_browser() as chromium:
        yield chromium


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path) -> ApiClient:
    """The daemon's app on a free port, with no key yet."""
    core = await Core.open(tmp_path / "data", environ=ENV, entry_points=False,
                           plugins=[("slskd", soulsync_slskd.plugin)])
    client = await aiohttp_client(create_app(core))
    return ApiClient(client, OpenApiChecker(build_openapi(all_endpoints())))


def base_url(api: ApiClient) -> str:
    return str(api.client.make_url("/"))


async def ui(browser: Browser, api: ApiClient, tmp_path: Path, **options: Any) -> UiSession:
    return await UiSession.open(browser, base_url(api), tmp_path / "screenshots", **options)


async def log_in(session: UiSession, key: str) -> None:
    await session.goto()
    await session.page.fill("#login-key", key)
    await session.page.get_by_role("button", name="Log in").click()
    await expect(session.page.locator("h1")).to_have_text("Dashboard")


async def test_first_run_creates_the_first_key_and_opens_the_dashboard(browser, api, tmp_path):
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await session.goto()
        await page.get_by_role("button", name="Create the first key").click()
        key = (await page.locator("#new-key").inner_text()).strip()
        assert key.startswith("sk_") and len(key) == 46
        await page.get_by_role("button", name="Copy").click()
        assert await page.evaluate("navigator.clipboard.readText()") == key
        await page.click("#continue")
        await expect(page.locator("h1")).to_have_text("Dashboard")
        soulseek = page.locator(".services li", has_text="soulseek")
        await expect(soulseek).to_contain_text("down")
        await expect(soulseek).to_contain_text("could not be reached")
        await expect(page.locator(".figures dt", has_text="Tracks")).to_be_visible()
        assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") == key
        assert [k["label"] for k in (await api.get("/api/v1/api-keys", key=key)).data["keys"]] == ["Web UI"]

        await page.click("#logout")
        await expect(page.locator("text=You are logged out.")).to_be_visible()
        assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None
        # A key exists now: the login page no longer offers the first one; the key logs in again.
        await expect(page.locator("#login-key")).to_be_visible()
        await expect(page.get_by_role("button", name="Create the first key")).to_have_count(0)
        await log_in(session, key)


async def test_a_wrong_key_is_refused_with_the_api_message(browser, api, tmp_path):
    await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        await session.goto()
        await session.page.fill("#login-key", "sk_" + "x" * 43)
        await session.page.get_by_role("button", name="Log in").click()
        await expect(session.page.locator("text=Invalid API key.")).to_be_visible()
        assert await session.page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None


async def test_settings_show_the_field_error_then_save(browser, api, tmp_path):
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        await page.click("nav a[href='#/settings']")
        field = page.locator("#setting-server-max_body_kb")
        await field.fill("70000")
        await page.click("#save-settings")
        error = page.locator("#setting-server-max_body_kb-error")
        await expect(error).to_have_text("server.max_body_kb must be an integer between 1 and 65536.")
        await expect(field).to_have_attribute("aria-invalid", "true")
        assert (await api.get("/api/v1/settings")).data["settings"]["server"]["max_body_kb"] == 1024

        await field.fill("2048")
        await page.select_option("#setting-logging-level", "DEBUG")
        await page.click("#save-settings")
        await expect(page.locator(".sticky .status")).to_have_text(
            "Saved: logging.level, server.max_body_kb.")
        await expect(error).to_have_text("")
        settings = (await api.get("/api/v1/settings")).data["settings"]
        assert (settings["server"]["max_body_kb"], settings["logging"]["level"]) == (2048, "DEBUG")

        # Fixed by the environment: shown, disabled, and where it is set; a secret stays hidden.
        await expect(page.locator("#setting-soulseek-slskd_url")).to_be_disabled()
        await expect(page.locator(".field[data-key='soulseek.slskd_url']")).to_contain_text(
            "fixed by SOULSYNC_SOULSEEK__SLSKD_URL")
        assert await page.locator("#setting-soulseek-api_key").input_value() == ""
        await expect(page.locator(".field[data-key='server.port']")).to_contain_text("restart required")


async def test_the_dashboard_lists_the_health_checks_as_the_api_gives_them(browser, api, tmp_path):
    key = await api.bootstrap()
    health = (await api.get("/api/v1/system/health")).data
    assert any(c["level"] == "error" for c in health["checks"]), health  # slskd is unreachable
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        await expect(page.locator("#health")).to_contain_text(f"Overall {health['level']}")
        for check in health["checks"]:
            line = page.locator(f"#health li[data-check='{check['check']}']")
            await expect(line.locator(".badge")).to_have_text(check["level"])
            # Figures (free MiB) may move between the two reads; the words may not.
            words = re.sub(r"\d+", r"\\d+", re.escape(check["message"]))
            await expect(line).to_contain_text(re.compile(words))
            await expect(line).to_contain_text(check["hint"])


async def test_settings_back_up_now_and_list_the_backups(browser, api, tmp_path):
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        await page.click("nav a[href='#/settings']")
        await expect(page.locator("#backups")).to_contain_text("No backup yet.")
        await page.click("#backup-now")
        listed = page.locator("#backups tbody tr")
        await expect(listed).to_have_count(1)
        await expect(page.locator("#backup-now + .status")).to_contain_text("Last backup")
        [made] = (await api.get("/api/v1/system/backups")).data["backups"]
        await expect(listed).to_contain_text(made["name"])
        assert (tmp_path / "data").exists()


async def test_keys_create_and_revoking_the_own_key_logs_the_page_out(browser, api, tmp_path):
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        await page.click("nav a[href='#/keys']")
        await page.fill("#key-label", "Home Assistant")
        await page.get_by_role("button", name="Create key").click()
        created = (await page.locator("#created-key").inner_text()).strip()
        listed = (await api.get("/api/v1/api-keys", key=key)).data["keys"]
        assert sorted(k["label"] for k in listed) == ["Home Assistant", "tests"]
        assert any(created.startswith(k["key_prefix"]) for k in listed if k["label"] == "Home Assistant")
        await expect(page.locator("#keys tbody tr")).to_have_count(2)

        own = next(k["id"] for k in listed if k["label"] == "tests")
        await page.click(f"[data-key-id='{own}']")
        # The list reloads with the revoked key: 403, and the page is back at the login.
        await expect(page.locator("text=Your API key was refused")).to_be_visible()
        await expect(page.locator("#login-key")).to_be_visible()
        assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None
        assert (await api.get("/api/v1/api-keys", key=created)).status == 200


async def test_a_key_revoked_elsewhere_ends_the_stream_and_logs_the_page_out(browser, api, tmp_path):
    key = await api.bootstrap()
    other = (await api.post("/api/v1/api-keys", {"label": "admin"}, key=key)).data
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        streams = api.client.server.app[EVENT_STREAMS]
        for _ in range(200):
            if streams.open_streams():
                break
            await asyncio.sleep(0.05)
        assert len(streams.open_streams()) == 1
        listed = (await api.get("/api/v1/api-keys", key=key)).data["keys"]
        [own] = [k for k in listed if k["label"] == "tests"]
        assert (await api.delete(f"/api/v1/api-keys/{own['id']}", key=other["key"])).status == 200
        # The page makes no request of its own meanwhile: the ended stream is what it notices.
        await expect(page.locator("text=Your API key was refused")).to_be_visible()
        await expect(page.locator("#login-key")).to_be_visible()
        assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None
    # What the API answers for the revoked key (403) and for none it can read (401).
    assert (await api.get("/api/v1/system/status", key=key)).status == 403


async def test_a_key_the_api_cannot_read_logs_out_with_its_401_message(browser, api, tmp_path):
    await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await session.goto()
        await page.evaluate(f"localStorage.setItem('{KEY_STORAGE}', ' ')")
        await page.reload()
        await expect(page.locator("text=SoulSync asked for a key")).to_be_visible()
        await expect(page.locator("text=must be 'Bearer <key>'")).to_be_visible()
        await expect(page.locator("#login-key")).to_be_visible()
        assert await page.evaluate(f"localStorage.getItem('{KEY_STORAGE}')") is None


async def test_phone_layout_and_keyboard_navigation(browser, api, tmp_path):
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path, viewport=PHONE) as session:
        page = session.page
        await log_in(session, key)
        for route in PAGES:
            await session.goto(route)
            await expect(page.locator(f".page[data-page='{route}']")).to_be_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{route} is {width} px wide on a 390 px phone"
        await session.goto("dashboard")
        await page.reload()  # the key is remembered
        await expect(page.locator("h1")).to_have_text("Dashboard")
        # The skip link comes first in the tab order: the first focusable element of the
        # document. (Checked in the document, not by a fresh page's first Tab: where that Tab
        # starts differs between Chromium releases; 150 starts after the link of the page.)
        first = await page.evaluate(
            "[...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]"
            ".find((e) => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length).className")
        assert first == "skip"
        await page.focus(".skip")
        await expect(page.locator(".skip")).to_be_visible()  # shown when focused
        await page.keyboard.press("Enter")
        await expect(page.locator("#main")).to_be_focused()
        await expect(page.locator("h1")).to_have_text("Dashboard")
        await page.focus("nav a[href='#/plugins']")
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_have_text("Plugins")
        await expect(page.locator("td", has_text="slskd")).to_be_visible()


def write_album(folder: Path) -> None:
    """Two real tagged FLAC files of Justice's Cross."""
    folder.mkdir(parents=True)
    for number, title in enumerate(("Genesis", "Let There Be Light"), start=1):
        path = audio.write_flac(folder / f"0{number} - {title}.flac")
        audio.tag(path, title=title, artist="Justice", album="Cross", tracknumber=str(number),
                  date="2007")


async def test_library_scan_shows_the_api_error_then_runs_and_lists_what_it_found(
        browser, aiohttp_client, tmp_path):
    music = tmp_path / "music"
    core = await Core.open(tmp_path / "data", environ={"SOULSYNC_LIBRARY__MUSIC_DIR": str(music)},
                           entry_points=False)
    api = ApiClient(await aiohttp_client(create_app(core)), OpenApiChecker(build_openapi(all_endpoints())))
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        await log_in(session, key)
        await page.click("nav a[href='#/library']")
        await expect(page.locator("#artists")).to_contain_text("No artist matches.")
        await page.get_by_role("button", name="Scan the music folder").click()
        message = (await api.post("/api/v1/library/scan")).error["message"]
        await expect(page.locator(".card.row .status")).to_have_text(message)  # the folder is missing

        await asyncio.to_thread(write_album, music / "Justice" / "Cross")
        await page.get_by_role("button", name="Scan the music folder").click()
        await expect(page.locator("#scan-info")).to_contain_text("completed")
        await expect(page.locator("#artists")).to_contain_text("Justice")
        await page.get_by_role("link", name="Justice").click()
        await page.get_by_role("link", name="Cross").click()
        await expect(page.locator("tbody tr")).to_have_count(2)


async def test_a_secret_is_sent_only_when_retyped(browser, aiohttp_client, tmp_path):
    core = await Core.open(tmp_path / "data", environ={}, entry_points=False,
                           plugins=[("slskd", soulsync_slskd.plugin)])
    api = ApiClient(await aiohttp_client(create_app(core)), OpenApiChecker(build_openapi(all_endpoints())))
    key = await api.bootstrap()
    async with await ui(browser, api, tmp_path) as session:
        page = session.page
        patches: list[Any] = []
        page.on("request", lambda r: patches.append(r.post_data_json) if r.method == "PATCH" else None)
        await log_in(session, key)
        await page.click("nav a[href='#/settings']")
        secret = page.locator("#setting-soulseek-api_key")
        await expect(secret).to_have_attribute("type", "password")
        await secret.fill("new-slskd-key-0123456789")
        await page.click("#save-settings")
        await expect(page.locator(".sticky .status")).to_have_text("Saved: soulseek.api_key.")
        assert core.settings.get("soulseek.api_key") == "new-slskd-key-0123456789"
        await expect(secret).to_have_value("")
        await expect(secret).to_have_attribute("placeholder", "set (hidden) · type to replace")

        await page.fill("#setting-downloads-max_concurrent", "4")
        await page.click("#save-settings")
        await expect(page.locator(".sticky .status")).to_have_text("Saved: downloads.max_concurrent.")
        assert patches == [{"soulseek.api_key": "new-slskd-key-0123456789"}, {"downloads.max_concurrent": 4}]
        assert core.settings.get("soulseek.api_key") == "new-slskd-key-0123456789"
