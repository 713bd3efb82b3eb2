"""Hydrabase result objects to SoulSync models: ids, de-duplication, dates.

Ids follow the public SoulSync server: a track's and an artist's ``id`` is the native id of
the node plugin that found it (an iTunes number, a Spotify id), so a result can be wishlisted
and later found in the library by that id; its ``soul_id`` and the plugin's name are kept in
``external_urls`` (``hydrabase_soul_id``, ``hydrabase_plugin``). An album's id is its native id
too, or its ``soul_id`` when it has none. ``(plugin_id, id)`` spots the same result relayed by
several peers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from soulsync_core.models import Album, Artist, Track

Row = dict[str, Any]

ALBUM_TYPES = ("album", "single", "ep", "compilation")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def unique(rows: Iterable[Row], *, keep_order: bool = False) -> list[Row]:
    """Return ``rows`` without repeats of ``(plugin_id, id)``, and without rows lacking an id.

    By default the rows come back best ``confidence`` first (ties keep the server's order), so
    the copy kept of a repeated result is the most confident one. With ``keep_order`` the
    server's order is kept (album tracks) and the first copy wins.
    """
    rows = [row for row in rows if soul_id(row)]
    if not keep_order:
        rows.sort(key=lambda row: -_number(row.get("confidence"), float))
    seen: set[tuple[str, str]] = set()
    kept: list[Row] = []
    for row in rows:
        key = (str(row.get("plugin_id") or ""), str(row.get("id") or soul_id(row)))
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def to_track(row: Row) -> Track:
    """Return the Track a Hydrabase track object describes (id = its native id)."""
    return Track(
        id=public_id(row),
        name=_text(row.get("name")),
        artists=_artists(row.get("artists")),
        album=_album_name(row.get("album")),
        duration_ms=_number(row.get("duration_ms"), int),
        popularity=_number(row.get("popularity"), int),
        preview_url=_optional(row.get("preview_url")),
        image_url=_optional(row.get("image_url")),
        release_date=release_date(row.get("release_date")),
        external_urls=external_urls(row),
    )


def to_album(row: Row) -> Album:
    """Return the Album a Hydrabase album object describes (id = its native id, else soul_id)."""
    album_type = _text(row.get("album_type")).lower()
    return Album(
        id=public_id(row),
        name=_text(row.get("name")),
        artists=_artists(row.get("artists")),
        release_date=release_date(row.get("release_date")),
        total_tracks=_number(row.get("total_tracks"), int),
        album_type=album_type if album_type in ALBUM_TYPES else "album",  # type: ignore[arg-type]
        image_url=_optional(row.get("image_url")),
    )


def to_artist(row: Row) -> Artist:
    """Return the Artist a Hydrabase artist object describes (id = its native id)."""
    genres = row.get("genres")
    return Artist(
        id=public_id(row),
        name=_text(row.get("name")),
        popularity=_number(row.get("popularity"), int),
        genres=[g for g in genres if isinstance(g, str)] if isinstance(genres, list) else [],
        followers=_number(row.get("followers"), int),
        image_url=_optional(row.get("image_url")),
        external_urls=external_urls(row),
    )


def public_id(row: Row) -> str:
    """Return the id SoulSync shows for a result: its native id, else its soul_id ("" if none)."""
    return _first_id(row, ("id", "soul_id"))


def soul_id(row: Row) -> str:
    """Return the result's soul_id (what ``artist.albums``/``album.tracks`` take), else its id."""
    return _first_id(row, ("soul_id", "id"))


def external_urls(row: Row) -> dict[str, str]:
    """Return the result's ``external_urls`` plus ``hydrabase_soul_id`` and ``hydrabase_plugin``
    (the node plugin's name, lower-cased: ``itunes``, ``spotify``) when the result has them."""
    urls = row.get("external_urls")
    result = {k: v for k, v in urls.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(urls, dict) else {}
    soul = _first_id(row, ("soul_id",))
    if soul:
        result["hydrabase_soul_id"] = soul
    plugin = _text(row.get("plugin_id")).lower()
    if plugin:
        result["hydrabase_plugin"] = plugin
    return result


def newest_first(albums: list[Album]) -> list[Album]:
    """Return ``albums`` sorted by release date, newest first; undated ones last."""
    return sorted(albums, key=lambda album: album.release_date or "", reverse=True)


def release_date(value: Any) -> str | None:
    """Return the ``YYYY[-MM[-DD]]`` prefix of a raw date (iTunes sends a full timestamp)."""
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    return match.group(0) if match else None


def _first_id(row: Row, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _optional(value: Any) -> str | None:
    """Return a non-empty string or None (Hydrabase sends "" for a missing URL)."""
    text = _text(value)
    return text or None


def _artists(value: Any) -> list[str]:
    """Return artist names from a list of strings or ``{"name": …}`` objects, or one string."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if not isinstance(value, list):
        return []
    names = [item.get("name") if isinstance(item, dict) else item for item in value]
    return [name.strip() for name in names if isinstance(name, str) and name.strip()]


def _album_name(value: Any) -> str:
    if isinstance(value, dict):
        return _text(value.get("name"))
    return _text(value)


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    """Return ``value`` as ``kind``, 0 when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return kind(0)
    try:
        return kind(float(value))
    except (ValueError, OverflowError):
        return kind(0)
