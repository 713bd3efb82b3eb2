"""The ``hydrabase`` metadata provider: searches and look-ups as Hydrabase requests.

Ids: every Track, Album and Artist this provider returns carries the result's ``soul_id`` as
its ``id``, because ``artist.albums`` and ``album.tracks`` take a soul_id; so the id of a search
result can be passed straight back to :meth:`artist_albums` / :meth:`album_tracks`.
"""

from __future__ import annotations

from soulsync_core.hooks import SettingsReader
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_hydrabase import mapping
from soulsync_hydrabase.connection import HydrabaseConnection, State
from soulsync_hydrabase.settings import URL


class HydrabaseProvider:
    """Metadata from a Hydrabase node (and, through it, its peers).

    The keyword arguments tune reconnection (see :class:`HydrabaseConnection`); the plugin
    uses the defaults, tests pass small values.
    """

    name = "hydrabase"

    def __init__(self, settings: SettingsReader, *, backoff_initial: float = 1.0,
                 backoff_max: float = 30.0, connect_timeout: float = 10.0):
        self._settings = settings
        self.connection = HydrabaseConnection(settings, backoff_initial=backoff_initial,
                                              backoff_max=backoff_max,
                                              connect_timeout=connect_timeout)
        settings.on_change("hydrabase.", self.connection.settings_changed)

    @property
    def configured(self) -> bool:
        """True when ``hydrabase.url`` is set (the API key may legitimately be empty)."""
        return bool((self._settings.get(URL) or "").strip())

    async def start(self) -> None:
        """Start connecting in the background; never waits for the node."""
        await self.connection.start()

    async def close(self) -> None:
        await self.connection.close()

    async def health(self) -> Health:
        """Return ok when the socket is open; ``details["peers"]`` is the node's peer count.

        Waits briefly for a connection attempt that is under way, so the first check after
        start-up reports the outcome rather than "connecting".
        """
        await self.connection.settle()
        status = self.connection.status()
        details = {"peers": status.peers}
        if status.state is State.CONNECTED:
            node = f" (node {status.node})" if status.node else ""
            return Health(True, f"connected to {status.url}{node}, {status.peers} peers", details)
        if status.state is State.IDLE:
            return Health(False, "Hydrabase is not configured: set hydrabase.url", details)
        if status.state is State.CONNECTING:
            return Health(False, f"still connecting to {status.url}", details)
        if status.state is State.CLOSED:
            return Health(False, "the Hydrabase client is not started", details)
        message = str(status.error) if status.error else "not connected"
        if status.retry_in is not None:
            message += f"; next attempt in {status.retry_in:.0f} s"
        return Health(False, message, details)

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        rows = mapping.unique(await self.connection.request("tracks", query))
        return [mapping.to_track(row) for row in rows[:limit]]

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        rows = mapping.unique(await self.connection.request("albums", query))
        return [mapping.to_album(row) for row in rows[:limit]]

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        rows = mapping.unique(await self.connection.request("artists", query))
        return [mapping.to_artist(row) for row in rows[:limit]]

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return the releases of the artist whose soul_id is ``artist_id``, newest first.

        Only Spotify-backed nodes answer this today (the iTunes plugin of Hydrabase returns
        nothing), so an empty list is common.
        """
        rows = mapping.unique(await self.connection.request("artist.albums", artist_id))
        return mapping.newest_first([mapping.to_album(row) for row in rows])[:limit]

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return the tracks of the album whose soul_id is ``album_id``, in the node's order."""
        rows = mapping.unique(await self.connection.request("album.tracks", album_id),
                              keep_order=True)
        return [mapping.to_track(row) for row in rows]
