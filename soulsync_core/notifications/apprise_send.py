"""Sending through Apprise, which is synchronous: in a worker thread, with its log captured.

Apprise logs the services' answers, and some of those lines carry the target's URL or token,
as do urllib3's (the HTTP library under it). Their loggers are therefore kept out of
SoulSync's log; each thread's lines are collected while it
sends, and the reason a send failed is taken from them with the URL's parts removed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from urllib.parse import urlsplit

from soulsync_core.notifications.webhook import DeliveryFailed

_captured: dict[int, list[str]] = {}
_setup_lock = threading.Lock()
_ready = False


class _PerThread(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        lines = _captured.get(record.thread or 0)
        if lines is not None and record.levelno >= logging.WARNING:
            lines.append(record.getMessage())


def _setup() -> None:
    global _ready
    with _setup_lock:
        if _ready:
            return
        # urllib3 (under Apprise's requests) logs each request's URL at DEBUG.
        for name in ("apprise", "urllib3"):
            logger = logging.getLogger(name)
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.addHandler(_PerThread())
        _ready = True


def is_apprise_url(url: str) -> bool:
    """True when Apprise knows the URL's scheme and can parse it (nothing is logged)."""
    import apprise  # imported on first use: it loads every notification plugin

    _setup()
    return bool(apprise.Apprise().add(url))


def scrub_url(text: str, url: str) -> str:
    """Return ``text`` without ``url`` and without its user, password, path and query parts."""
    text = text.replace(url, "…")
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    secrets = [parts.username, parts.password, parts.query, parts.fragment,
               *parts.path.split("/")]
    for part in sorted((p for p in secrets if p and len(p) >= 3), key=len, reverse=True):
        text = text.replace(part, "…")
    return text


def _send(url: str, title: str, body: str) -> None:
    import apprise

    _setup()
    ident = threading.get_ident()
    _captured[ident] = []
    try:
        # The service's plugin itself, not Apprise(): that would send from its own thread
        # pool, whose log lines could not be told apart from another target's.
        service = apprise.Apprise.instantiate(url)
        if service is None:
            raise DeliveryFailed("Apprise does not know this URL")
        if service.notify(title=title, body=body):
            return
        lines = [line for line in _captured[ident] if line.strip()]
        reason = scrub_url(lines[-1], url) if lines else "the service refused the notification"
        raise DeliveryFailed(reason)
    finally:
        _captured.pop(ident, None)


async def send_apprise(url: str, title: str, body: str, seconds: float) -> str:
    """Send one notification to the Apprise ``url``; return a short answer.

    Raises DeliveryFailed with the service's reason (URL parts removed) or on timeout; the
    worker thread of a timed-out send finishes on its own (Apprise's own timeouts bound it).
    """
    try:
        async with asyncio.timeout(seconds):
            await asyncio.to_thread(_send, url, title, body)
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {seconds:g} s") from None
    return "sent"
