"""The title and text a person reads for an event (Apprise targets; webhooks get the JSON)."""

from __future__ import annotations

from typing import Any

from soulsync_core.events import Event


def _track(data: dict[str, Any]) -> str:
    artist = data.get("artist_name") or ""
    title = data.get("track_name") or data.get("name") or ""
    return f"{artist} - {title}" if artist and title else artist or title


def _text(event: Event) -> str:
    data = event.data if isinstance(event.data, dict) else {}
    kind = event.type
    if kind.startswith("download."):
        text = _track(data)
        if data.get("error"):
            text += f": {data['error']}"
        return text
    if kind == "service.up" or kind == "service.down":
        reason = f": {data['reason']}" if data.get("reason") else ""
        return f"{data.get('service', '?')} is {kind.split('.')[1]}{reason}"
    if kind == "watchlist.release_found":
        return f"{data.get('artist_name', '?')}: {data.get('album_name', '?')}"
    if kind == "playlist.sync.finished":
        if data.get("state") == "failed":
            return f"{data.get('playlist_name') or data.get('playlist_id', '?')}: sync failed: " \
                   f"{data.get('error', '?')}"
        totals = data.get("totals") or {}
        return f"{data.get('playlist_name') or data.get('playlist_id', '?')}: " \
               f"{totals.get('matched', 0)} of {totals.get('total', 0)} tracks in the library"
    if kind == "test":
        return "A test notification from SoulSync: this target works."
    return ", ".join(f"{k}: {v}" for k, v in data.items() if isinstance(v, str | int | float))


def describe(event: Event) -> tuple[str, str]:
    """Return ``(title, body)`` for a notification of ``event``."""
    title = "SoulSync: " + event.type.replace(".", " ").replace("_", " ").capitalize()
    return title, _text(event) or event.type
