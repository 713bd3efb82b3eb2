"""The Spotify metadata provider: searches, discographies and album tracks through spotipy.

Each request waits for the provider's own rate limit on the event loop, then runs spotipy in a
worker thread. Paged answers are followed through their ``next`` links, one limited request
per page. The client is rebuilt from the settings after any ``spotify.*`` change.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aiolimiter import AsyncLimiter

from soulsync_core.hooks import NotConfigured, ProviderError, SettingsReader
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_spotify import mapping

if TYPE_CHECKING:
    from soulsync_spotify.client import SpotifyApi

# spotipy (with requests and redis) takes ~0.2 s to import: too much for every daemon start,
# so the client module is loaded only when Spotify is configured, in a thread, at start().
CLIENT_MODULE = "soulsync_spotify.client"

log = logging.getLogger(__name__)

# Development Mode apps (every new app since February 2026) get "400 Invalid limit" above 10
# for search and artist albums; album tracks still take 50.
SEARCH_PAGE = 10
ARTIST_ALBUMS_PAGE = 10
# Queried one group at a time: Spotify lists a discography group by group, so the newest
# releases of a large discography are only found by taking the newest of each group.
RELEASE_GROUPS = ("album", "single", "compilation")
# Spotify reads very short free-text artist queries poorly; a field filter works better.
SHORT_ARTIST_QUERY = 4

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]+$")

Json = dict[str, Any]


class SpotifyProvider:
    """Metadata from the Spotify Web API with an app's client-credentials token."""

    name = "spotify"

    def __init__(self, settings: SettingsReader):
        self._settings = settings
        self._api: SpotifyApi | None = None
        self._limiter: AsyncLimiter | None = None
        settings.on_change("spotify.", self._settings_changed)

    @property
    def configured(self) -> bool:
        """True when both the client id and the client secret are set."""
        return bool(self._settings.get("spotify.client_id").strip()
                    and self._settings.get("spotify.client_secret").strip())

    def _settings_changed(self, changed: dict[str, Any]) -> None:
        # Built again on the next request. A request in flight finishes on the old client,
        # whose session is closed when that client is garbage-collected.
        self._api = None
        self._limiter = None
        log.info("Spotify settings changed (%s); the next request uses them",
                 ", ".join(sorted(changed)))

    def _client(self) -> tuple[SpotifyApi, AsyncLimiter]:
        """Return the client and rate limiter for the current settings; raise NotConfigured."""
        if not self.configured:
            raise NotConfigured("Spotify is not configured: set spotify.client_id and "
                                "spotify.client_secret")
        if self._api is None:
            from soulsync_spotify.client import Config, SpotifyApi

            get = self._settings.get
            self._api = SpotifyApi(Config(
                client_id=get("spotify.client_id").strip(),
                client_secret=get("spotify.client_secret").strip(),
                api_url=get("spotify.api_url"), accounts_url=get("spotify.accounts_url"),
                timeout=get("spotify.timeout_seconds")))
        if self._limiter is None:
            self._limiter = AsyncLimiter(self._settings.get("spotify.requests_per_minute"), 60)
        return self._api, self._limiter

    async def start(self) -> None:
        """Load the client module off the event loop when configured; nothing is opened.

        The client itself is built, without I/O, on the first request.
        """
        if self.configured:
            await asyncio.to_thread(importlib.import_module, CLIENT_MODULE)

    async def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    async def health(self) -> Health:
        """Obtain a new access token: ok when Spotify issues one for the credentials."""
        try:
            api, _ = self._client()
            await asyncio.to_thread(api.fresh_token)
        except ProviderError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message="Spotify issued an access token")

    async def _call(self, request: Callable[[Any], Any]) -> Any:
        """Wait for the rate limit, then return ``request(spotipy client)`` run in a thread."""
        api, limiter = self._client()
        await limiter.acquire()
        return await asyncio.to_thread(api.call, request)

    async def _collect(self, page: Any, want: int, key: str | None = None) -> list[Json]:
        """Return up to ``want`` items of a paging object and the pages its ``next`` links name.

        ``key`` names the paging object inside the answer (search wraps it: ``{"tracks": …}``).
        Null items (Spotify sends some) are left out.
        """
        items: list[Json] = []
        while True:
            with _expected_shape():
                paging = page[key] if key else page
                items.extend(item for item in paging["items"] if item and item.get("id"))
                link = paging.get("next")
            if len(items) >= want or not link:
                return items[:want]
            page = await self._call(lambda spotify, paging=paging: spotify.next(paging))

    async def _search(self, query: str, kind: str, limit: int) -> list[Json]:
        if limit <= 0:
            return []
        if kind == "artist" and len(query) <= SHORT_ARTIST_QUERY:
            query = f"artist:{query}"
        first = await self._call(lambda spotify: spotify.search(
            query, limit=min(SEARCH_PAGE, limit), offset=0, type=kind))
        return await self._collect(first, limit, key=f"{kind}s")

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        """Return up to ``limit`` tracks in Spotify's relevance order."""
        items = await self._search(query, "track", limit)
        with _expected_shape():
            return [mapping.track(item) for item in items]

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        """Return up to ``limit`` albums (singles and compilations too) in relevance order."""
        items = await self._search(query, "album", limit)
        with _expected_shape():
            return [mapping.album(item) for item in items]

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        """Return up to ``limit`` artists in relevance order."""
        items = await self._search(query, "artist", limit)
        with _expected_shape():
            return [mapping.artist(item) for item in items]

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return the artist's ``limit`` newest albums, singles/EPs and compilations.

        Raises ProviderError for an id that is not a Spotify id or that Spotify does not know.
        """
        _check_id(artist_id, "artist")
        if limit <= 0:
            return []
        releases: dict[str, Album] = {}
        for group in RELEASE_GROUPS:
            first = await self._call(lambda spotify, group=group: spotify.artist_albums(
                artist_id, include_groups=group, limit=min(ARTIST_ALBUMS_PAGE, limit), offset=0))
            items = await self._collect(first, limit)
            with _expected_shape():
                for item in items:
                    releases.setdefault(item["id"], mapping.album(item))
        # Dates are YYYY[-MM[-DD]], so text order is date order; unknown dates go last.
        newest = sorted(releases.values(), key=lambda a: a.release_date or "", reverse=True)
        return newest[:limit]

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return every track of the album in disc and track order, all pages followed.

        Raises ProviderError for an id that is not a Spotify id or that Spotify does not know.
        """
        _check_id(album_id, "album")
        album = await self._call(lambda spotify: spotify.album(album_id))
        with _expected_shape():
            tracks_page = album["tracks"]
        items = await self._collect(tracks_page, sys.maxsize)
        with _expected_shape():
            tracks = [mapping.track(item, album) for item in items]
        return sorted(tracks, key=lambda t: (t.disc_number or 0, t.track_number or 0))


def _check_id(value: str, kind: str) -> None:
    if not _SPOTIFY_ID.match(value):
        raise ProviderError(f"{value!r} is not a Spotify {kind} id (letters and digits only)")


@contextmanager
def _expected_shape() -> Iterator[None]:
    """Turn a missing key or a wrong type in Spotify's JSON into a ProviderError."""
    try:
        yield
    except (KeyError, TypeError, AttributeError) as exc:
        log.debug("unexpected JSON from Spotify", exc_info=True)
        raise ProviderError(f"Spotify answered JSON of an unexpected shape ({exc!r})") from None
