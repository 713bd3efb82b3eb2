"""Log lines: one per record, whatever text a record carries."""

from __future__ import annotations

import io
import logging

from soulsync_core.logs import ScrubbingFormatter, escape_controls, setup_logging


def _line(message: str, *args: object, journald: bool = False) -> str:
    record = logging.LogRecord("soulsync.test", logging.INFO, __file__, 1, message, args, None)
    return ScrubbingFormatter(journald=journald).format(record)


def test_control_characters_in_a_message_cannot_forge_a_line():
    forged = "x\n2026-01-01T00:00:00.000+00:00 ERROR soulsync: forged\r\x00\x1b[2J\u2028\x85"
    for journald in (False, True):
        text = _line("API key created: %s", forged, journald=journald)
        assert len(text.splitlines()) == 1, text
        assert "\\n2026-01-01" in text and "\\r\\x00\\x1b[2J\\u2028\\x85" in text


def test_plain_text_and_tabs_are_unchanged():
    assert escape_controls("Daft Punk \u2013 One More Time\t(2000) é") == \
        "Daft Punk \u2013 One More Time\t(2000) é"


def test_tracebacks_stay_below_their_record_and_indented():
    stream = io.StringIO()
    setup_logging("INFO", stream)
    try:
        raise ValueError("bad\n2026-01-01 ERROR forged")
    except ValueError:
        logging.getLogger("soulsync.test").exception("failed for %s", "a\nb")
    finally:
        setup_logging("WARNING")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("failed for a\\nb")
    assert rest and all(line.startswith("    ") for line in rest), rest
