"""JSON Schema of the rules a body type cannot say through its fields: which fields one of
several forms needs, at least one field, the free-form track objects clients send.

Each is attached to its body type with :func:`rules`, next to the declaration, so the OpenAPI
document states what the handler checks (msgspec cannot enforce rules across fields, so the
handler still does, with its own message).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from soulsync_core.api.endpoints import NON_BLANK_PATTERN

NON_BLANK: dict[str, Any] = {"type": "string", "pattern": NON_BLANK_PATTERN}
AT_LEAST_ZERO: dict[str, Any] = {"anyOf": [{"type": "null"}, {"type": "number", "minimum": 0}]}
NON_EMPTY_OBJECT: dict[str, Any] = {"minProperties": 1}

_ARTIST: dict[str, Any] = {"anyOf": [
    {"type": "string"}, {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}]}
_ARTISTS: dict[str, Any] = {"anyOf": [{"type": "null"}, {"type": "array", "items": _ARTIST}]}
_TRACK_FIELDS: dict[str, Any] = {
    "name": NON_BLANK, "artists": _ARTISTS,
    "album": {"anyOf": [{"type": "null"}, {"type": "string"}, {"type": "object"}]},
    "duration_ms": AT_LEAST_ZERO, "track_number": AT_LEAST_ZERO, "disc_number": AT_LEAST_ZERO,
    "provider": {"type": ["string", "null"]},
}

# A track object as soulsync_core.wishlist.normalize_track accepts it.
TRACK_OBJECT: dict[str, Any] = {
    "type": "object", "required": ["id", "name"],
    "properties": {"id": {"anyOf": [NON_BLANK, {"type": "integer"}]}, **_TRACK_FIELDS},
}

# A playlist entry as soulsync_core.playlists.tracks.track_object accepts it: the id may be
# absent, null or "" (a local file of the owner gets a made-up one).
PLAYLIST_TRACK: dict[str, Any] = {
    "type": "object", "required": ["name"],
    "properties": {"id": {"anyOf": [{"type": "null"}, {"type": "integer"},
                                    {"type": "string", "pattern": f"^$|{NON_BLANK_PATTERN}"}]},
                   **_TRACK_FIELDS},
}


def rules(body: Any, schema: dict[str, Any]) -> Any:
    """Return ``body`` (a msgspec type) with ``schema`` added to its JSON Schema."""
    return Annotated[body, msgspec.Meta(extra_json_schema=schema)]
