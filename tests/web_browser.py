"""Driving the web UI in a real Chromium (Debian's ``chromium`` package) through Playwright.

:func:`open_browser` launches ``/usr/bin/chromium`` (browsers cannot be downloaded here, so
Playwright is pointed at it). :class:`UiSession` is one page on a SoulSync server that records
every console error, uncaught exception, CSP violation and request, and :meth:`UiSession.check`
fails on any of them. Used as ``async with session:``, a failure saves a screenshot of the
page under the test's temp dir and names it in the error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium not found at /usr/bin/chromium; install it with "
           "`apt-get update && apt-get install -y chromium` to run the web UI browser tests.")

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# How long a step may wait for the page (a condition, never a timing assertion).
ACTION_TIMEOUT_MS = 10_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)
# A 4xx answer of the API (a validation error the test provokes, a refused key) is logged by
# Chromium as this console error; it is allowed only for /api/v1/ requests (checked apart).
_FAILED_RESOURCE = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
# A refused event stream (503 while the daemon stops, as a test provokes it): the page falls
# back to polling, so the browser's log line about it is no fault of the page.
_REFUSED_STREAM = re.compile(r"^Failed to load resource: the server responded with a status of 503")


@asynccontextmanager
async def open_browser() -> AsyncIterator[Browser]:
    """Yield a headless Chromium; closed on exit."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class UiSession:
    """One browser page on the SoulSync server at ``base_url``; see the module docstring."""

    def __init__(self, page: Page, base_url: str, artefacts: Path):
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.artefacts = artefacts
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)
        # A confirm() (revoke a key) is answered yes, as the person would.
        page.on("dialog", lambda dialog: dialog.accept())

    @classmethod
    async def open(cls, browser: Browser, base_url: str, artefacts: Path,
                   viewport: dict[str, int] | None = None, color_scheme: str = "light") -> UiSession:
        context = await browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme,
                                            permissions=["clipboard-read", "clipboard-write"])
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        return cls(await context.new_page(), base_url, artefacts)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error" or _FAILED_RESOURCE.match(message.text):
            return
        source = urlsplit(message.location.get("url", "")).path
        if source == "/api/v1/events" and _REFUSED_STREAM.match(message.text):
            return
        self.console_errors.append(message.text)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _request_failed(self, request: Request) -> None:
        # An API request cut short by the page itself: a reload or unload while a poll was
        # under way, or the event stream closed at log-out.
        # The icon too: a reload may cut its load short.
        if urlsplit(request.url).path.startswith("/api/v1/") and request.failure == "net::ERR_ABORTED":
            return
        if urlsplit(request.url).path.endswith("/icon.svg") and request.failure == "net::ERR_ABORTED":
            return
        self.failed.append(f"{request.url} {request.failure}")

    def _response(self, response: Response) -> None:
        path = urlsplit(response.url).path
        if response.status >= 400 and not path.startswith("/api/v1/"):
            self.failed.append(f"{response.url} answered {response.status}")

    async def goto(self, route: str = "") -> None:
        """Open the UI at ``#/<route>`` (the page itself when empty)."""
        await self.page.goto(f"{self.base_url}/{'#/' + route if route else ''}")

    def check(self) -> None:
        """Fail on console errors, page errors, CSP violations, failed loads, foreign requests."""
        assert self.console_errors == [], f"console errors (CSP violations included): {self.console_errors}"
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"
        assert self.failed == [], f"requests that failed: {self.failed}"
        foreign = [url for url in self.requests if not self._allowed(url)]
        assert foreign == [], f"requests beyond /api/v1/ and the UI's own files: {foreign}"

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base_url:
            return False
        return parts.path == "/" or parts.path.startswith(("/api/v1/", "/assets/"))

    async def screenshot(self, name: str) -> Path:
        self.artefacts.mkdir(parents=True, exist_ok=True)
        path = self.artefacts / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def __aenter__(self) -> UiSession:
        return self

    async def __aexit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if error is not None:
                error.add_note(f"screenshot of the page: {await self.screenshot('failure')}")
                return
            try:
                self.check()
            except AssertionError as failure:
                failure.add_note(f"screenshot of the page: {await self.screenshot('failure')}")
                raise
        finally:
            await self.page.context.close()
