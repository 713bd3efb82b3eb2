"""The ``itunes`` metadata provider: searches and lookups mapped to SoulSync models."""

from __future__ import annotations

from soulsync_core.hooks import ProviderError, SettingsReader
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_itunes import mapping
from soulsync_itunes.client import ITunesClient

# iTunes caps a search at 200 results and a lookup's related rows at 50 unless asked for more.
MAX_LIMIT = 200
ENTITIES = {"tracks": "song", "albums": "album", "artists": "musicArtist"}


class ITunesProvider:
    """Implements :class:`soulsync_core.hooks.MetadataProvider` over the iTunes Search API."""

    name = "itunes"

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._client = ITunesClient(settings)

    @property
    def configured(self) -> bool:
        """True whenever a base URL is set: iTunes needs no account."""
        return bool(self._settings.get("itunes.base_url"))

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def health(self) -> Health:
        """Run one one-result search; ok when iTunes answers it, otherwise say why not."""
        try:
            await self._search("tracks", "a", 1)
        except ProviderError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, details={"country": self._settings.get("itunes.country")})

    async def _search(self, kind: str, query: str, limit: int) -> list[mapping.Row]:
        return await self._client.get("/search", {
            "term": query, "media": "music", "entity": ENTITIES[kind],
            "limit": max(1, min(limit, MAX_LIMIT)),
        })

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        """Return up to ``limit`` songs matching ``query`` in the configured storefront."""
        rows = await self._search("tracks", query, limit)
        return [mapping.to_track(row) for row in rows if mapping.is_song(row)][:limit]

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        """Return up to ``limit`` albums, singles and EPs matching ``query``."""
        rows = await self._search("albums", query, limit)
        return [mapping.to_album(row) for row in rows if mapping.is_collection(row)][:limit]

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        """Return up to ``limit`` artists matching ``query``."""
        rows = await self._search("artists", query, limit)
        return [mapping.to_artist(row) for row in rows if mapping.is_artist(row)][:limit]

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return up to ``limit`` of the artist's releases, newest first; [] for an unknown id.

        The lookup lists the artist itself first; only its collections are returned.
        """
        rows = await self._lookup(artist_id, "album")
        collections = sorted((row for row in rows if mapping.is_collection(row)),
                             key=lambda row: str(row.get("releaseDate", "")), reverse=True)
        return [mapping.to_album(row) for row in collections[:limit]]

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return the album's songs in disc and track order; [] for an unknown id."""
        rows = await self._lookup(album_id, "song")
        songs = sorted((row for row in rows if mapping.is_song(row)),
                       key=lambda row: (row.get("discNumber") or 0, row.get("trackNumber") or 0))
        return [mapping.to_track(row) for row in songs]

    async def _lookup(self, item_id: str, entity: str) -> list[mapping.Row]:
        if not item_id.isdigit():
            raise ProviderError(f"iTunes ids are numbers; {item_id!r} is not an iTunes id")
        return await self._client.get("/lookup", {"id": item_id, "entity": entity,
                                                  "limit": MAX_LIMIT})
