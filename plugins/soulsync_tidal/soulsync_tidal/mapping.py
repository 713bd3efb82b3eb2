"""JSON:API resources of TIDAL's developer API turned into SoulSync models.

A resource is ``{"id", "type", "attributes", "relationships"}``; related objects (a track's
artists and album, an album's cover) are separate resources in the document's ``included``
list, found through ``relationships.<name>.data`` identifiers, whose order is kept.
Durations are ISO-8601 (``PT5M20S``); popularity is 0..1 and becomes 0..100.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from soulsync_core.models import Album, AlbumType, Artist, Playlist, Track

Json = dict[str, Any]
Included = dict[tuple[str, str], Json]

ALBUM_TYPES: dict[str, AlbumType] = {"ALBUM": "album", "EP": "ep", "SINGLE": "single",
                                     "COMPILATION": "compilation"}
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")
_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")


def duration_ms(value: Any) -> int:
    """Return an ISO-8601 duration (``PT5M20S``, ``PT1H2M3.5S``) in milliseconds; 0 if unreadable."""
    match = _DURATION.match(value) if isinstance(value, str) and value != "P" else None
    if match is None or not any(match.groupdict().values()):
        return 0
    seconds = sum(float(amount) * _SECONDS[unit] for unit, amount in match.groupdict().items() if amount)
    return round(seconds * 1000)


def index(included: Iterable[Json] | None) -> Included:
    """Return the ``included`` resources by ``(type, id)``."""
    return {(item["type"], str(item["id"])): item for item in included or []
            if isinstance(item, dict) and "type" in item and "id" in item}


def related_ids(resource: Json, relationship: str) -> list[tuple[str, str]]:
    """Return the ``(type, id)`` pairs of one relationship of ``resource``, in order."""
    data = ((resource.get("relationships") or {}).get(relationship) or {}).get("data")
    if isinstance(data, dict):
        data = [data]
    return [(item["type"], str(item["id"])) for item in data or []
            if isinstance(item, dict) and "type" in item and "id" in item]


def related(resource: Json, relationship: str, included: Included) -> list[Json]:
    """Return the included resources one relationship of ``resource`` names, in order."""
    return [included[key] for key in related_ids(resource, relationship) if key in included]


def _attributes(resource: Json) -> Json:
    return resource.get("attributes") or {}


def _popularity(value: Any) -> int:
    return round(float(value) * 100) if isinstance(value, int | float) else 0


def _date(value: Any) -> str | None:
    match = _DATE.match(value) if isinstance(value, str) else None
    return match.group(0) if match else None


def artwork_url(resource: Json, relationship: str, included: Included) -> str | None:
    """Return the largest file of the first included artwork ``relationship`` names, or None."""
    for art in related(resource, relationship, included):
        files = [f for f in _attributes(art).get("files") or [] if isinstance(f, dict) and f.get("href")]
        if files:
            best = max(files, key=lambda f: (f.get("meta") or {}).get("width") or 0)
            return best["href"]
    return None


def _titled(attributes: Json) -> str:
    title = attributes.get("title") or ""
    version = attributes.get("version")
    return f"{title} ({version})" if version else title


def track(resource: Json, included: Included, meta: Json | None = None) -> Track:
    """Return a Track; artists and album come from ``included``, numbers from an item's ``meta``."""
    attributes = _attributes(resource)
    albums = related(resource, "albums", included)
    album = albums[0] if albums else None
    album_ids = related_ids(resource, "albums")
    meta = meta or {}
    return Track(
        id=str(resource["id"]), name=_titled(attributes),
        artists=[_attributes(a).get("name") or "" for a in related(resource, "artists", included)],
        album=_titled(_attributes(album)) if album else "",
        duration_ms=duration_ms(attributes.get("duration")),
        popularity=_popularity(attributes.get("popularity")),
        image_url=artwork_url(album, "coverArt", included) if album else None,
        release_date=_date(_attributes(album).get("releaseDate")) if album else None,
        album_id=album_ids[0][1] if album_ids else None,
        track_number=meta.get("trackNumber") or attributes.get("trackNumber"),
        disc_number=meta.get("volumeNumber") or attributes.get("volumeNumber"),
        isrc=attributes.get("isrc") or None, explicit=bool(attributes.get("explicit")))


def album(resource: Json, included: Included, artists: list[str] | None = None) -> Album:
    """Return an Album; ``artists`` stands in when the document does not include them."""
    attributes = _attributes(resource)
    names = [_attributes(a).get("name") or "" for a in related(resource, "artists", included)]
    return Album(
        id=str(resource["id"]), name=_titled(attributes), artists=names or list(artists or []),
        release_date=_date(attributes.get("releaseDate")),
        total_tracks=attributes.get("numberOfItems") or 0,
        album_type=ALBUM_TYPES.get(str(attributes.get("type") or "").upper(), "album"),
        image_url=artwork_url(resource, "coverArt", included))


def artist(resource: Json, included: Included) -> Artist:
    """Return an Artist (TIDAL lists neither genres nor followers)."""
    attributes = _attributes(resource)
    return Artist(id=str(resource["id"]), name=attributes.get("name") or "",
                  popularity=_popularity(attributes.get("popularity")),
                  image_url=artwork_url(resource, "profileArt", included))


def playlist(resource: Json, included: Included, owner: str = "") -> Playlist:
    """Return a Playlist without tracks; ``snapshot_id`` is ``lastModifiedAt``."""
    attributes = _attributes(resource)
    return Playlist(
        id=str(resource["id"]), name=attributes.get("name") or "", owner=owner,
        total_tracks=attributes.get("numberOfItems") or 0,
        description=attributes.get("description") or "",
        image_url=artwork_url(resource, "coverArt", included),
        snapshot_id=attributes.get("lastModifiedAt") or None)
