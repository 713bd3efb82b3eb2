"""Finding a wanted track in the library: the one place that answers "do we have it, which file?".

Used by playlist sync (which files go into the M3U8), the wishlist (drop what the library
has) and the watchlist. Candidates come from the library's indexes (provider-id and ISRC
indexes, the FTS5 trigram index), never from a walk over all tracks; the verdict on each
candidate is :func:`soulsync_core.matching.track_similarity`, the same scoring the download
ranking uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec

from soulsync_core.downloads.models import TAGGED_SOURCES, Wanted
from soulsync_core.library.queries import LibraryQueries
from soulsync_core.matching import TrackInfo, track_similarity
from soulsync_core.settings import Settings

# Library tracks read per title/artist search; the best-ranked come first, so a few suffice.
CANDIDATES = 10
_FIELDS = frozenset({"id", "title", "artist_name", "track_artist", "album_title", "duration",
                     "isrc", "file_path"})

Method = Literal["id", "isrc", "exact", "fuzzy"]


@dataclass(frozen=True)
class LibraryMatch:
    """A library track found for a wanted one: its id, how sure (0 to 1), how, and its file."""

    track_id: int
    confidence: float
    method: Method
    path: str


class LibraryMatcher:
    """Matches wanted tracks against the library (reads only)."""

    def __init__(self, queries: LibraryQueries, settings: Settings):
        self._queries = queries
        self._settings = settings

    async def match(self, wanted: Wanted) -> LibraryMatch | None:
        """Return the library track that is the wanted recording, None when there is none.

        A track tagged with the wanted source's id or the same ISRC wins outright; otherwise
        the best candidate of a title/artist search that the shared matching accepts.
        """
        if wanted.source in TAGGED_SOURCES and wanted.track_id:
            found = await self._queries.lookup("track", wanted.source, wanted.track_id, _FIELDS)
            if found is not None:
                return self._match(found, 1.0, "id")
        if wanted.isrc:
            found = await self._queries.lookup("track", "isrc", wanted.isrc, _FIELDS)
            if found is not None:
                return self._match(found, 1.0, "isrc")
        if not wanted.artists or not wanted.title.strip():
            return None
        info = wanted.track_info()
        tolerance = self._settings.get("downloads.duration_tolerance_seconds")
        best: LibraryMatch | None = None
        for text in await self._queries.search_tracks(wanted.title, wanted.artists[0], CANDIDATES,
                                                      _FIELDS):
            score = track_similarity(info, _track_info(text), duration_tolerance_s=tolerance)
            if score.matched and (best is None or score.confidence > best.confidence):
                best = self._match(text, score.confidence, score.method)
        return best

    async def match_many(self, wanted: Sequence[Wanted]) -> list[LibraryMatch | None]:
        """Return :meth:`match` of each wanted track, in order."""
        return [await self.match(w) for w in wanted]

    @staticmethod
    def _match(text: str, confidence: float, method: Method) -> LibraryMatch:
        obj = msgspec.json.decode(text)
        return LibraryMatch(obj["id"], confidence, method, obj["file_path"])


def _track_info(text: str) -> TrackInfo:
    obj = msgspec.json.decode(text)
    artists = tuple(a for a in (obj.get("artist_name"), obj.get("track_artist")) if a)
    return TrackInfo(obj.get("title") or "", artists, obj.get("album_title") or "",
                     obj.get("duration") or 0, obj.get("isrc"))
