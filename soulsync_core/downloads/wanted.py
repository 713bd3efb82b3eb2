"""Turning what a client asks for into a :class:`Wanted` track: a metadata track or a query.

``POST /downloads`` takes a track object as the search endpoints return it (also with
Spotify-style ``artists: [{"name": …}]`` and ``album: {"name": …}``), or ``{"query": "Artist -
Title"}``, which is looked up through the metadata search (``source`` auto) first.
"""

from __future__ import annotations

import re

from soulsync_core.downloads.models import Wanted
from soulsync_core.matching import TrackInfo, fold, track_similarity
from soulsync_core.models import Track
from soulsync_core.search import AUTO, MetadataSearch

QUERY_RESULTS = 10
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")


def guess_source(track_id: str | None) -> str | None:
    """Return the source a bare track id most likely comes from (all digits: iTunes; 22
    base-62 characters: Spotify), None when it cannot be told."""
    if not track_id:
        return None
    if track_id.isdigit():
        return "itunes"
    if _SPOTIFY_ID.match(track_id):
        return "spotify"
    return None


def wanted_from_track(track: Track, source: str | None) -> Wanted:
    """Return the wanted track for a metadata source's track (``source`` names that source).

    A source that relays another's results (Hydrabase) names the one whose id ``track.id`` is
    in ``external_urls["hydrabase_plugin"]``; that one is the wanted track's source, so the
    library can be matched by the id.
    """
    source = track.external_urls.get("hydrabase_plugin") or source
    return Wanted(
        title=track.name.strip(), artists=[a.strip() for a in track.artists if a.strip()],
        album=(track.album or "").strip(), duration_ms=track.duration_ms or 0,
        track_number=track.track_number, disc_number=track.disc_number,
        release_date=track.release_date, isrc=track.isrc, track_id=track.id or None,
        album_id=track.album_id, source=source if source != AUTO else None,
    )


def track_key(wanted: Wanted) -> str:
    """Return the key two requests for the same track share: the source's id when known,
    else the folded first artist, title and album."""
    if wanted.track_id:
        return f"{wanted.source or ''}:{wanted.track_id}"
    first = wanted.artists[0] if wanted.artists else ""  # a playlist entry may name no artist
    return "~" + "|".join((fold(first), fold(wanted.title), fold(wanted.album)))


def _split_query(query: str) -> TrackInfo | None:
    artist, dash, title = query.partition(" - ")
    if not dash or not artist.strip() or not title.strip():
        return None
    return TrackInfo(title.strip(), (artist.strip(),))


async def resolve_query(search: MetadataSearch, query: str, *, duration_ms: int = 0) -> Wanted | None:
    """Return the track ``query`` names according to the metadata sources, None when none knows it.

    Raises NoSourceAvailable (a SourceUnavailable) when no source could be asked at all.

    With ``"Artist - Title"`` the first of the results that matches artist and title (and
    ``duration_ms``, when known) wins (a source may list a live version or a cover first);
    otherwise the first result.
    """
    asked = _split_query(query)
    if asked is not None and duration_ms:
        asked = TrackInfo(asked.title, asked.artists, duration_ms=duration_ms)
    # The dash is the user's separator, not part of any name: sources that match words
    # literally (or take the query whole) find "Artist Title" where "Artist - Title" fails.
    terms = query if asked is None else f"{asked.artists[0]} {asked.title}"
    tracks, source = await search.search("tracks", terms, QUERY_RESULTS, AUTO)
    usable = [t for t in tracks if t.name.strip() and any(a.strip() for a in t.artists)]
    if not usable:
        return None
    chosen = usable[0]
    if asked is not None:
        chosen = next((t for t in usable
                       if track_similarity(asked, TrackInfo.from_track(t)).matched), chosen)
    return wanted_from_track(chosen, source)
