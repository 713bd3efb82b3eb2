"""Timestamp and duration formats used on the wire and in the database."""

from datetime import UTC, datetime


def utc_now_iso() -> str:
    """Return the current time as ISO-8601 UTC with seconds, e.g. ``2026-03-03T12:00:00+00:00``.

    Every timestamp SoulSync stores or returns has this fixed width, so text order is time order.
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def iso_from_epoch(seconds: float) -> str:
    """Return an epoch time in the same ISO-8601 UTC form as :func:`utc_now_iso`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def format_uptime(seconds: float) -> str:
    """Return ``"{h}h {m}m {s}s"`` for a duration; hours are not wrapped at 24 (``"50h 3m 2s"``)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m {secs}s"
