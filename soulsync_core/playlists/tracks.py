"""Playlist tracks as sync handles them: one track object shape, whoever supplied the track.

Clients send tracks the way the public server took them (``name``, ``artists`` as names or
``{"name": …}``, ``album`` as a name or an object, optional ``id`` and ``duration_ms``);
playlist sources return :class:`soulsync_core.models.Track`. Both become the wishlist's track
object (:func:`soulsync_core.wishlist.normalize_track`), so a missing track goes to the
wishlist and the downloads exactly as it came.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from soulsync_core.downloads.models import Wanted
from soulsync_core.downloads.wanted import track_key
from soulsync_core.models import Track
from soulsync_core.wishlist import WishlistInputError, normalize_track, wanted_of

log = logging.getLogger(__name__)

# Marks an id SoulSync made up for a track that has none (a client sent no id, or a Spotify
# local file): it never names a track at a source.
LOCAL_ID_PREFIX = "local-"


def _local_id(data: dict[str, Any]) -> str:
    """Return a stable made-up id from the track's names (same names, same id)."""
    album = data.get("album")
    album_name = album.get("name") if isinstance(album, dict) else album
    artists = data.get("artists") or []
    names = [a.get("name") if isinstance(a, dict) else a for a in artists]
    text = "\x1f".join(str(part or "") for part in (data.get("name"), *names, album_name))
    return LOCAL_ID_PREFIX + hashlib.sha1(text.encode()).hexdigest()[:16]


def track_object(data: Any, field: str) -> dict[str, Any]:
    """Return the checked track object of one client-sent track.

    Raises :class:`soulsync_core.wishlist.WishlistInputError` naming ``field`` (e.g.
    ``tracks[3]``) and what to fix. A track without ``id`` gets a stable made-up one.
    """
    if isinstance(data, dict) and data.get("id") in (None, ""):
        data = {**data, "id": _local_id(data)}
    return normalize_track(data, field)


def source_track_object(track: Track, source: str) -> dict[str, Any]:
    """Return the track object of a playlist source's track (``provider`` is the source)."""
    album: dict[str, Any] = {"name": track.album or "", "images": []}
    if track.album_id:
        album["id"] = track.album_id
    if track.image_url:
        album["images"] = [{"url": track.image_url}]
    if track.release_date:
        album["release_date"] = track.release_date
    data: dict[str, Any] = {
        "id": track.id, "name": track.name, "artists": [{"name": a} for a in track.artists],
        "album": album, "duration_ms": track.duration_ms or 0, "provider": source,
    }
    for key in ("isrc", "track_number", "disc_number", "image_url"):
        value = getattr(track, key)
        if value:
            data[key] = value
    if not track.id:
        data["id"] = _local_id(data)
        data.pop("provider")
    return normalize_track(data, "track")


def source_track_objects(tracks: Iterable[Track], source: str) -> list[dict[str, Any]]:
    """Return the track objects of a source's playlist, leaving out tracks without a title
    (nothing can be matched or downloaded for them)."""
    objects = []
    for track in tracks:
        try:
            objects.append(source_track_object(track, source))
        except WishlistInputError as exc:
            log.warning("%s playlist track %r left out: %s", source, track.id, exc)
    return objects


def wanted_of_object(obj: dict[str, Any]) -> Wanted:
    """Return the wanted track of a track object; a made-up id is not a source's id."""
    wanted = wanted_of(obj)
    if wanted.track_id and wanted.track_id.startswith(LOCAL_ID_PREFIX):
        wanted.track_id, wanted.source = None, None
    return wanted


def key_of(obj: dict[str, Any]) -> str:
    """Return the key that says two playlist entries are the same track."""
    return track_key(wanted_of_object(obj))


def display_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the track as the playlist endpoints show it: id, name, artists, album,
    duration_ms, image_url (``id`` "" for a track without a source id)."""
    album = obj.get("album") or {}
    images = album.get("images") or []
    image = obj.get("image_url") or (images[0].get("url") if images and isinstance(images[0], dict)
                                     else None)
    track_id = str(obj["id"])
    return {
        "id": "" if track_id.startswith(LOCAL_ID_PREFIX) else track_id,
        "name": obj["name"],
        "artists": [a["name"] for a in obj.get("artists") or []],
        "album": album.get("name") or "",
        "duration_ms": round(obj.get("duration_ms") or 0),
        "image_url": image,
    }
