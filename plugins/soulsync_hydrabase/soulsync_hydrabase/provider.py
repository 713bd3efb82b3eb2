"""The ``hydrabase`` metadata provider: searches and look-ups as Hydrabase requests.

Ids: Tracks and Artists carry the native id of the node plugin that found them (Albums too,
or their ``soul_id`` when they have none; see :mod:`.mapping`), but ``artist.albums`` and
``album.tracks`` take a soul_id. So the provider remembers the soul_id of every artist and
album it returned (the last :data:`REMEMBERED_IDS`), and :meth:`artist_albums` /
:meth:`album_tracks` look up the soul_id of the id they are given; an id it never saw (say,
after a restart) is searched for on the node first, as the public server does.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from soulsync_core.hooks import ProviderError, SettingsReader
from soulsync_core.models import Album, Artist, Health, Track
from soulsync_hydrabase import mapping
from soulsync_hydrabase.connection import HydrabaseConnection, State
from soulsync_hydrabase.settings import URL

# Soul ids remembered per kind: enough for every result of a long browsing session.
REMEMBERED_IDS = 5000
SOUL_PREFIX = "soul_"
# What the health check searches for after a request failed, to see whether the node answers.
PROBE_QUERY = "a"

Kind = Literal["artists", "albums"]


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
        self._soul_ids: dict[Kind, OrderedDict[str, str]] = {"artists": OrderedDict(),
                                                              "albums": OrderedDict()}

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
        """Return ok when the socket is open (and, after a request failed, a probe search is
        answered); ``details["peers"]`` is the node's peer count.

        Waits briefly for a connection attempt that is under way, so the first check after
        start-up reports the outcome rather than "connecting".
        """
        await self.connection.settle()
        status = self.connection.status()
        details = {"peers": status.peers}
        if status.state is State.CONNECTED and self.connection.last_failure is not None:
            # An open socket says nothing about a node that stopped answering (or answers
            # garbage): ask it once more, so it is taken back as soon as it answers again.
            try:
                await self.connection.request("tracks", PROBE_QUERY)
            except ProviderError as exc:
                return Health(False, f"connected, but the node's answers fail: {exc}", details)
            status = self.connection.status()
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
        rows = self._remember("albums", mapping.unique(await self.connection.request("albums", query)))
        return [mapping.to_album(row) for row in rows[:limit]]

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        rows = self._remember("artists",
                              mapping.unique(await self.connection.request("artists", query)))
        return [mapping.to_artist(row) for row in rows[:limit]]

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return the releases of the artist ``artist_id`` (a native id or a soul_id), newest first.

        Only Spotify-backed nodes answer this today (the iTunes plugin of Hydrabase returns
        nothing), so an empty list is common. Raises ProviderError when the node knows no
        artist with that id.
        """
        soul = await self._soul_id("artists", artist_id)
        rows = self._remember("albums",
                              mapping.unique(await self.connection.request("artist.albums", soul)))
        return mapping.newest_first([mapping.to_album(row) for row in rows])[:limit]

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return the tracks of the album ``album_id`` (a native id or a soul_id), in the
        node's order. Raises ProviderError when the node knows no album with that id."""
        soul = await self._soul_id("albums", album_id)
        rows = mapping.unique(await self.connection.request("album.tracks", soul),
                              keep_order=True)
        return [mapping.to_track(row) for row in rows]

    def _remember(self, kind: Kind, rows: list[mapping.Row]) -> list[mapping.Row]:
        """Note the soul_id of each result under its public id; return ``rows``."""
        known = self._soul_ids[kind]
        for row in rows:
            public, soul = mapping.public_id(row), mapping.soul_id(row)
            if public and soul:
                known[public] = soul
                known.move_to_end(public)
        while len(known) > REMEMBERED_IDS:
            known.popitem(last=False)
        return rows

    async def _soul_id(self, kind: Kind, given: str) -> str:
        """Return the soul_id for the id a client passed: a soul_id as it is, a remembered
        one, else the soul_id of the node's search result with that native id."""
        given = given.strip()
        if given.startswith(SOUL_PREFIX):
            return given
        known = self._soul_ids[kind].get(given)
        if known is not None:
            return known
        rows = self._remember(kind, [row for row in await self.connection.request(kind, given)
                                     if mapping.public_id(row) == given])
        if rows:
            return mapping.soul_id(rows[0])
        what = "artist" if kind == "artists" else "album"
        raise ProviderError(f"Hydrabase knows no {what} with the id {given!r}; pass an id from "
                            f"a Hydrabase search result")
