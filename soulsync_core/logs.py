"""Logging: one line per record on stdout, journald-friendly, with secrets scrubbed.

Under systemd (``JOURNAL_STREAM`` is set) each line starts with a ``<N>`` syslog priority that
journald turns into the entry's level, and carries no timestamp since journald adds its own.
Elsewhere lines carry an ISO timestamp. Anything shaped like an API key is replaced before a
line is written, and the access log never shows the value of ``api_key=`` (nor a login's
``code=``). Control characters in a message (a newline in a key label, a track title, a
search term) are written escaped (``\n``, ``\x00``), so no input can forge or break a log
line; traceback lines are indented below the record they belong to.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from soulsync_core.apikeys import RAW_KEY_PATTERN

# ``code`` is the one-time OAuth code of a login callback (/auth/<name>/callback?code=…).
_QUERY_SECRET = re.compile(r"((?:^|[?&])(?:api_key|code)=)[^&#\s\"']*", re.IGNORECASE)
_SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4,
                    logging.INFO: 6, logging.DEBUG: 7}


# C0 (except tab), DEL, C1 and the Unicode line and paragraph separators: each ends or
# corrupts a line in a terminal, a file or journald.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """Return ``text`` with every control character written as an escape (``\n``, ``\x00``,
    ``\u2028``); tabs and printable text are unchanged."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escaped, text)


def _indented(text: str) -> str:
    return "\n".join("    " + escape_controls(line) for line in text.split("\n"))


def scrub(text: str) -> str:
    """Return ``text`` with raw keys and ``api_key=`` and ``code=`` query values replaced by
    ``***``."""
    # The substring tests are much cheaper than the regexes, and almost every line passes them.
    if "sk_" in text:
        text = RAW_KEY_PATTERN.sub("sk_***", text)
    lowered = text.lower()
    if "api_key=" in lowered or "code=" in lowered:
        text = _QUERY_SECRET.sub(r"\1***", text)
    return text


class ScrubbingFormatter(logging.Formatter):
    """Formats a record on one line (tracebacks indented below it) and scrubs secrets."""

    def __init__(self, journald: bool):
        fmt = "%(name)s: %(message)s" if journald else "%(asctime)s %(levelname)s %(name)s: %(message)s"
        super().__init__(fmt)
        self._journald = journald

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))

    def format(self, record: logging.LogRecord) -> str:
        text = scrub(super().format(record))
        if self._journald:
            priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
            text = "\n".join(f"<{priority}>{line}" for line in text.splitlines())
        return text


def setup_logging(level: str, stream: TextIO | None = None) -> None:
    """Send every logger to ``stream`` (stdout) through the scrubbing formatter at ``level``."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ScrubbingFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    """Change the level of the root logger; takes effect on the next record."""
    logging.getLogger().setLevel(level)


ACCESS_LOGGER = "soulsync.access"


def set_access_log(enabled: bool) -> None:
    """Switch the access log on or off (``logging.access_log``)."""
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET if enabled else logging.WARNING)


class AccessLogger(AbstractAccessLogger):
    """``<client> "<METHOD> <path?query>" <status> <bytes> <ms>ms`` with ``api_key=`` hidden."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.1fms',
            request.remote, request.method, scrub(request.path_qs), response.status,
            response.body_length, time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
