"""The ``itunes`` settings section: where the API is, which storefront, how fast, how long."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting


def _check_base_url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return "must start with http:// or https:// (e.g. https://itunes.apple.com)"
    return None


def _check_country(value: str) -> str | None:
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        return "must be a two-letter ISO country code such as US, GB or FR"
    return None


SECTION = Section("itunes", (
    Setting("itunes.base_url", str, "https://itunes.apple.com",
            "Base URL of the iTunes Search API (/search and /lookup live under it); "
            "empty disables the source.", check=_check_base_url),
    Setting("itunes.country", str, "US",
            "Storefront (two-letter country code) whose catalogue is searched.",
            check=_check_country),
    Setting("itunes.requests_per_minute", int, 20,
            "Most requests sent to iTunes per minute; Apple throttles at about 20.",
            minimum=1, maximum=1000),
    Setting("itunes.timeout_seconds", float, 10.0,
            "How long one iTunes request may take, connection included.",
            minimum=0.1, maximum=120),
), "The iTunes Search API metadata source (no account needed).")
