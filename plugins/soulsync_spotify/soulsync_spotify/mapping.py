"""Spotify Web API objects (parsed JSON) to SoulSync's models.

Fields Spotify removed for Development Mode apps in February 2026 (``popularity``,
``followers``) and fields it dropped for a while (``external_ids``) are all optional here.
"""

from __future__ import annotations

from typing import Any, cast

from soulsync_core.models import Album, AlbumType, Artist, Playlist, Track

Json = dict[str, Any]

UNKNOWN_OWNER = "Unknown Owner"

ALBUM_TYPES = ("album", "single", "compilation")


def largest_image(images: list[Json] | None) -> str | None:
    """Return the URL of the largest image (by area), the first one when sizes are missing."""
    best = max(images or [], key=lambda i: (i.get("width") or 0) * (i.get("height") or 0),
               default=None)
    return best["url"] if best else None


def _artist_names(item: Json) -> list[str]:
    return [artist["name"] for artist in item.get("artists") or [] if artist and artist.get("name")]


def track(item: Json, album: Json | None = None) -> Track:
    """Return a Track from a track object; ``album`` supplies the album a simplified track lacks."""
    album = album if album is not None else item.get("album") or {}
    return Track(
        id=item["id"], name=item["name"], artists=_artist_names(item),
        album=album.get("name") or "", duration_ms=item.get("duration_ms") or 0,
        popularity=item.get("popularity") or 0, preview_url=item.get("preview_url"),
        image_url=largest_image(album.get("images")),
        release_date=album.get("release_date") or None, album_id=album.get("id"),
        track_number=item.get("track_number"), disc_number=item.get("disc_number"),
        isrc=(item.get("external_ids") or {}).get("isrc"), explicit=bool(item.get("explicit")))


def album(item: Json) -> Album:
    """Return an Album; Spotify has no "ep" type, so an EP arrives as a single."""
    kind = str(item.get("album_type") or "album").lower()
    return Album(
        id=item["id"], name=item["name"], artists=_artist_names(item),
        release_date=item.get("release_date") or None, total_tracks=item.get("total_tracks") or 0,
        album_type=cast(AlbumType, kind if kind in ALBUM_TYPES else "album"),
        image_url=largest_image(item.get("images")))


def artist(item: Json) -> Artist:
    """Return an Artist (popularity and followers are 0 where Spotify no longer sends them)."""
    return Artist(
        id=item["id"], name=item["name"], popularity=item.get("popularity") or 0,
        genres=list(item.get("genres") or []),
        followers=(item.get("followers") or {}).get("total") or 0,
        image_url=largest_image(item.get("images")))


def first_image(images: list[Json] | None) -> str | None:
    """Return the URL of the first image (Spotify lists the largest first), None without any."""
    for image in images or []:
        if image and image.get("url"):
            return image["url"]
    return None


def playlist(item: Json) -> Playlist:
    """Return a Playlist without tracks from a (simplified or full) playlist object.

    The track count is in ``items.total`` since February 2026 and in ``tracks.total`` before.
    """
    owner = item.get("owner") or {}
    count = (item.get("items") or {}).get("total") or (item.get("tracks") or {}).get("total") or 0
    return Playlist(
        id=item["id"], name=item.get("name") or "",
        owner=owner.get("display_name") or owner.get("id") or UNKNOWN_OWNER,
        total_tracks=count, description=item.get("description") or "",
        image_url=first_image(item.get("images")), snapshot_id=item.get("snapshot_id") or None)


def entry_track(entry: Json | None) -> Track | None:
    """Return the Track of a playlist item or saved-track entry, None for what is not a track.

    An entry carries the track under ``item`` (since February 2026) or ``track``. Left out:
    null entries and items (deleted or unavailable tracks), podcast episodes (``type``
    "episode", or the legacy track-shaped form flagged ``episode``). A local file of the
    owner has no id: it becomes a Track with ``id`` "" and no album id or numbers.
    """
    if not entry:
        return None
    item = entry.get("item") or entry.get("track")
    if not item or item.get("type", "track") != "track" or item.get("episode") is True:
        return None
    album = item.get("album") or {}
    local = bool(item.get("is_local") or entry.get("is_local")) or not item.get("id")
    return Track(
        id=item.get("id") or "", name=item.get("name") or "", artists=_artist_names(item),
        album=album.get("name") or "", duration_ms=item.get("duration_ms") or 0,
        popularity=item.get("popularity") or 0, preview_url=item.get("preview_url"),
        image_url=first_image(album.get("images")),
        release_date=album.get("release_date") or None, album_id=album.get("id") or None,
        track_number=(item.get("track_number") or None) if local else item.get("track_number"),
        disc_number=(item.get("disc_number") or None) if local else item.get("disc_number"),
        isrc=(item.get("external_ids") or {}).get("isrc") or None,
        explicit=bool(item.get("explicit")))
