"""Notification targets from the settings: Apprise URLs and signed webhooks, validated.

``notifications.targets`` is a list of ``{url, name?, events?}`` (an Apprise URL: discord://,
tgram://, ntfy://, json:// …); ``notifications.webhooks`` a list of ``{url, secret, name?,
events?}``. Both are secret settings, because their URLs hold tokens: nothing here ever puts a
URL into a message; :func:`redact_url` gives the form that may be shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from soulsync_core.notifications.apprise_send import is_apprise_url

# What a target without ``events`` is told about: what a person wants to hear of.
DEFAULT_EVENTS: tuple[str, ...] = ("download.failed", "watchlist.release_found", "service.down",
                                   "playlist.sync.finished")

Kind = Literal["apprise", "webhook"]


@dataclass(frozen=True)
class Target:
    """One place notifications go. ``url`` is secret; show :attr:`shown_url` instead."""

    name: str
    kind: Kind
    url: str
    events: tuple[str, ...]
    secret: str = ""

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)


# Schemes whose host part is a server's address. For the others the "host" is often the
# token itself (tgram://<bot token>/<chat>, discord://<webhook id>/<token>), so no part is shown.
_ADDRESS_SCHEMES = {"http", "https", "json", "jsons", "xml", "xmls", "form", "forms"}


def redact_url(url: str) -> str:
    """Return ``scheme://host/…`` for a server address, ``scheme://…`` for any other URL:
    enough to recognise a target, none of its tokens."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "…"
    if not scheme:
        return "…"
    if scheme not in _ADDRESS_SCHEMES:
        return f"{scheme}://…"
    return f"{scheme}://{host}{port}/…"


def _entry_name(index: int, entry: dict[str, Any], kind: str) -> str:
    name = entry.get("name")
    return name if isinstance(name, str) and name.strip() else f"{kind} {index + 1}"


def _check_entries(value: list[dict[str, Any]], kind: Kind) -> str | None:
    allowed = {"url", "name", "events"} | ({"secret"} if kind == "webhook" else set())
    names: set[str] = set()
    for index, entry in enumerate(value):
        label = f"entry {index + 1}"
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            return f"{label}: name must be a string"
        if isinstance(name, str) and name.strip():
            label += f" ({name!r})"
        unknown = sorted(set(entry) - allowed)
        if unknown:
            return f"{label}: unknown field(s) {', '.join(unknown)}; the fields are " \
                   f"{', '.join(sorted(allowed))}"
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            return f"{label}: url is required (a string)"
        if kind == "apprise" and not is_apprise_url(url.strip()):
            return (f"{label}: url ({redact_url(url)}) is not a notification URL Apprise knows, "
                    "e.g. discord://webhook_id/token, ntfy://topic, json://host/path; see "
                    "https://github.com/caronc/apprise/wiki")
        if kind == "webhook":
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return f"{label}: url ({redact_url(url)}) must be an http:// or https:// address"
            secret = entry.get("secret")
            if not isinstance(secret, str) or not secret:
                return f"{label}: secret is required (the key the body is signed with)"
        events = entry.get("events", list(DEFAULT_EVENTS))
        if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
            return f"{label}: events must be a list of event types or globs, e.g. [\"download.*\"]"
        full = _entry_name(index, entry, "webhook" if kind == "webhook" else "target")
        if full in names:
            return f"{label}: the name {full!r} is used twice; names must be unique"
        names.add(full)
    return None


def check_targets(value: list[dict[str, Any]]) -> str | None:
    """Return what is wrong with a ``notifications.targets`` value, or None."""
    return _check_entries(value, "apprise")


def check_webhooks(value: list[dict[str, Any]]) -> str | None:
    """Return what is wrong with a ``notifications.webhooks`` value, or None."""
    return _check_entries(value, "webhook")


def parse_targets(targets: Sequence[dict[str, Any]],
                  webhooks: Sequence[dict[str, Any]]) -> list[Target]:
    """Return the targets of validated setting values, Apprise ones first."""
    found = [Target(_entry_name(i, e, "target"), "apprise", e["url"].strip(),
                    tuple(e.get("events", DEFAULT_EVENTS)))
             for i, e in enumerate(targets)]
    found += [Target(_entry_name(i, e, "webhook"), "webhook", e["url"].strip(),
                     tuple(e.get("events", DEFAULT_EVENTS)), e["secret"])
              for i, e in enumerate(webhooks)]
    return found
