"""The ``tidal`` provider: account login, the user's playlists, and catalogue metadata.

One object is the :class:`AccountLogin`, :class:`PlaylistSource` and :class:`MetadataProvider`
of TIDAL. Playlists need the connected user's token; catalogue calls use it too when there is
one, else the app's client-credentials token (which needs ``tidal.client_secret``).

Every list is read to its end through JSON:API cursors (``links.next``, or
``links.meta.nextCursor`` sent back as ``page[cursor]``). Track ids are hydrated with
``GET /tracks?filter[id]=…`` at most 20 at a time, the API's own limit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from yarl import URL

from soulsync_core.hooks import (
    AccountStore,
    AuthFailed,
    NotAuthenticated,
    ProviderError,
    SettingsReader,
)
from soulsync_core.models import Account, Album, Artist, Health, LoginStart, Playlist, Track
from soulsync_tidal import mapping
from soulsync_tidal.account import RELOGIN, TidalAccount
from soulsync_tidal.client import Json, TidalHttp, TidalNotFound, Unauthorized

log = logging.getLogger(__name__)

BATCH = 20  # ids per /tracks or /albums call; TIDAL answers 400 above 20
# A guard against a service that keeps sending the same or endless cursors.
MAX_PAGES = 500
TRACK_INCLUDE = "artists,albums"
ALBUM_INCLUDE = "artists,coverArt"

Getter = Callable[[URL], Awaitable[Json]]


class TidalProvider:
    """TIDAL through its developer API; see the module docstring."""

    name = "tidal"

    def __init__(self, settings: SettingsReader, store: AccountStore):
        self._settings = settings
        self._http = TidalHttp(settings)
        self._account = TidalAccount(settings, store, self._http)
        self._user_ids: dict[str, str] = {}  # access token -> user id, for tokens without one

    @property
    def configured(self) -> bool:
        """True when a client id is set and a client secret is set or an account is connected.

        No I/O: "connected" is what the last read of the account store said.
        """
        return bool(self._settings.get("tidal.client_id").strip()
                    and (self._account.has_secret() or self._account.connected))

    async def start(self) -> None:
        """Open the HTTP session and note whether an account is connected (no network)."""
        await self._http.start()
        try:
            await self._account.stored_tokens()
        except Exception as exc:  # the store is local; still, start() must not fail
            log.warning("could not read the stored TIDAL account: %r", exc)

    async def close(self) -> None:
        await self._http.close()

    # --- account login ----------------------------------------------------------------------

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        """Start a login (authorization code with PKCE); see :class:`AccountLogin`."""
        return await self._account.begin_login(redirect_uri)

    async def finish_login(self, response: str) -> Account:
        """Finish the login from the pasted redirect address or bare code."""
        return await self._account.finish_login(response, self._me_with)

    async def account(self) -> Account:
        """Return who is connected, from the store."""
        return await self._account.account()

    async def logout(self) -> None:
        """Forget the stored tokens and any login in progress."""
        self._user_ids.clear()
        await self._account.logout()

    async def _me_with(self, token: str) -> Json:
        try:
            document = await self._http.get(self._http.api_url("/users/me"), token)
        except Unauthorized as exc:
            raise ProviderError(f"TIDAL did not accept the new login: {exc}") from None
        with _expected_shape():
            return document["data"]

    # --- requests with a token ----------------------------------------------------------------

    async def _user_get(self, url: URL) -> Json:
        """GET with the user's token, renewed before expiry and once after a 401.

        Raises NotAuthenticated when no account is connected or the login cannot be renewed.
        """
        tokens = await self._account.user_tokens()
        try:
            return await self._http.get(url, tokens["access_token"])
        except Unauthorized:
            log.info("TIDAL refused the access token; renewing it")
        tokens = await self._account.renew(tokens["access_token"])
        try:
            return await self._http.get(url, tokens["access_token"])
        except Unauthorized as exc:
            raise NotAuthenticated(f"{exc}, even just after renewing it; {RELOGIN}") from None

    async def _app_get(self, url: URL) -> Json:
        """GET with the client-credentials token, fetched again once after a 401."""
        token = await self._account.app_token()
        try:
            return await self._http.get(url, token)
        except Unauthorized:
            self._account.forget_app_token(token)
        token = await self._account.app_token(fresh=True)
        try:
            return await self._http.get(url, token)
        except Unauthorized as exc:
            raise AuthFailed(f"{exc}, even with a new client-credentials token") from None

    async def _catalogue_get(self, url: URL) -> Json:
        """GET with the user's token when connected, else with the app's token.

        Raises NotConfigured when neither is possible.
        """
        if await self._account.stored_tokens() is not None:
            try:
                return await self._user_get(url)
            except NotAuthenticated:
                if not self._account.has_secret():
                    raise
        return await self._app_get(url)

    def _url(self, path: str, params: dict[str, str] | None = None) -> URL:
        return self._http.api_url(path, params)

    async def _pages(self, get: Getter, url: URL) -> AsyncIterator[Json]:
        """Yield the document at ``url`` and every page its cursors lead to."""
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            document = await get(url)
            yield document
            following = self._next_url(document.get("links"), url)
            if following is None or str(following) in seen:
                return
            seen.add(str(following))
            url = following

    def _next_url(self, links: Any, current: URL) -> URL | None:
        """Return the next page's address from JSON:API ``links``, None on the last page."""
        if not isinstance(links, dict):
            return None
        if isinstance(links.get("next"), str) and links["next"]:
            return self._url(links["next"])
        cursor = (links.get("meta") or {}).get("nextCursor")
        if isinstance(cursor, str) and cursor:
            return current.update_query({"page[cursor]": cursor})
        return None

    # --- health -----------------------------------------------------------------------------

    async def health(self) -> Health:
        """Read ``/users/me`` when an account is connected, else obtain a catalogue token.

        ``details`` carry ``server_date``, the Date header of TIDAL's last answer, when there
        was one (the health list's clock check reads it).
        """
        health = await self._health()
        if self._http.server_date:
            health.details["server_date"] = self._http.server_date
        return health

    async def _health(self) -> Health:
        try:
            self._account.client_id()
            tokens = await self._account.stored_tokens()
            if tokens is not None:
                me = await self._user_get(self._url("/users/me"))
                with _expected_shape():
                    attributes = me["data"].get("attributes") or {}
                name = tokens.get("display_name") or attributes.get("username") or tokens.get("user_id")
                return Health(ok=True, message=f"connected to TIDAL as {name}",
                              details={"account_connected": True, "account": name})
            await self._account.app_token(fresh=True)
        except ProviderError as exc:
            return Health(ok=False, message=str(exc),
                          details={"account_connected": self._account.connected, "account": None})
        return Health(ok=True, message="TIDAL issued a catalogue token (no account connected)",
                      details={"account_connected": False, "account": None})

    # --- playlists ----------------------------------------------------------------------------

    async def _user_id(self, tokens: Json) -> str:
        if tokens.get("user_id"):
            return str(tokens["user_id"])
        cached = self._user_ids.get(tokens["access_token"])
        if cached is None:
            me = await self._user_get(self._url("/users/me"))
            with _expected_shape():
                cached = str(me["data"]["id"])
            self._user_ids = {tokens["access_token"]: cached}
        return cached

    async def list_playlists(self) -> list[Playlist]:
        """Return every playlist the connected user owns (all pages), without tracks.

        Raises NotAuthenticated when no account is connected.
        """
        tokens = await self._account.user_tokens()
        user_id = await self._user_id(tokens)
        owner = tokens.get("display_name") or ""
        playlists: list[Playlist] = []
        url = self._url("/playlists", {"filter[owners.id]": user_id, "include": "coverArt"})
        async for document in self._pages(self._user_get, url):
            with _expected_shape():
                included = mapping.index(document.get("included"))
                playlists.extend(mapping.playlist(resource, included, owner)
                                 for resource in document.get("data") or [])
        return playlists

    async def get_playlist(self, playlist_id: str) -> Playlist:
        """Return one playlist with its tracks in playlist order (all pages).

        Videos and tracks TIDAL does not return for the country are left out. Raises
        NotAuthenticated when no account is connected, TidalNotFound (a LookupError) when
        TIDAL has no such playlist.
        """
        path = f"/playlists/{quote(playlist_id, safe='')}"
        try:
            document = await self._user_get(self._url(path, {"include": "coverArt,owners"}))
        except TidalNotFound as exc:
            raise TidalNotFound(f"TIDAL has no playlist {playlist_id!r} ({exc})") from None
        tokens = await self._account.stored_tokens() or {}
        with _expected_shape():
            resource = document["data"]
            owned = ("users", str(tokens.get("user_id"))) in mapping.related_ids(resource, "owners")
            playlist = mapping.playlist(resource, mapping.index(document.get("included")),
                                        (tokens.get("display_name") or "") if owned else "")
        track_ids: list[str] = []
        async for page in self._pages(self._user_get, self._url(path + "/relationships/items")):
            with _expected_shape():
                track_ids.extend(str(item["id"]) for item in page.get("data") or []
                                 if item.get("type") == "tracks")
        playlist.tracks = await self._tracks(track_ids, self._user_get)
        return playlist

    async def _hydrate(self, kind: str, ids: list[str], include: str,
                       get: Getter) -> tuple[dict[str, Json], mapping.Included]:
        """Return ``({id: resource}, included)`` of ``/<kind>?filter[id]=…``, 20 ids per call.

        Ids TIDAL does not return (not available in the country) are absent.
        """
        found: dict[str, Json] = {}
        included: mapping.Included = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), BATCH):
            batch = unique[start:start + BATCH]
            document = await get(self._url(f"/{kind}", {"filter[id]": ",".join(batch),
                                                          "include": include}))
            with _expected_shape():
                included.update(mapping.index(document.get("included")))
                found.update((str(resource["id"]), resource) for resource in document.get("data") or []
                             if resource.get("type") == kind)
        return found, included

    async def _tracks(self, ids: list[str], get: Getter,
                      metas: dict[str, Json] | None = None) -> list[Track]:
        """Return the tracks of ``ids`` in that order, with artists and album names."""
        found, included = await self._hydrate("tracks", ids, TRACK_INCLUDE, get)
        with _expected_shape():
            return [mapping.track(found[i], included, (metas or {}).get(i)) for i in ids if i in found]

    async def _albums(self, ids: list[str], fallback: mapping.Included) -> list[Album]:
        """Return the albums of ``ids`` in that order, with their artists.

        ``fallback`` holds album resources already read, used for an id the batch call omits.
        """
        found, included = await self._hydrate("albums", ids, ALBUM_INCLUDE, self._catalogue_get)
        with _expected_shape():
            albums = []
            for album_id in ids:
                resource = found.get(album_id) or fallback.get(("albums", album_id))
                if resource is not None:
                    albums.append(mapping.album(resource, included))
            return albums

    # --- metadata -----------------------------------------------------------------------------

    async def _search(self, kind: str, query: str, limit: int) -> tuple[list[str], mapping.Included]:
        """Return up to ``limit`` ids of ``kind`` in TIDAL's order and the included resources."""
        if limit <= 0 or not query.strip():
            return [], {}
        url = self._url(f"/searchResults/{quote(query.strip(), safe='')}", {"include": kind})
        try:
            document = await self._catalogue_get(url)
        except TidalNotFound:
            return [], {}
        with _expected_shape():
            relationship = ((document.get("data") or {}).get("relationships") or {}).get(kind) or {}
            ids = [str(item["id"]) for item in relationship.get("data") or [] if item.get("type") == kind]
            included = mapping.index(document.get("included"))
            following = self._next_url(relationship.get("links"), url)
        pages = 1
        while following is not None and len(ids) < limit and pages < MAX_PAGES:
            document = await self._catalogue_get(following)
            pages += 1
            with _expected_shape():
                ids.extend(str(item["id"]) for item in document.get("data") or []
                           if item.get("type") == kind)
                included.update(mapping.index(document.get("included")))
                following = self._next_url(document.get("links"), following)
        return list(dict.fromkeys(ids))[:limit], included

    async def search_tracks(self, query: str, limit: int) -> list[Track]:
        """Return up to ``limit`` tracks in TIDAL's relevance order, with artists and album."""
        ids, _ = await self._search("tracks", query, limit)
        return await self._tracks(ids, self._catalogue_get)

    async def search_albums(self, query: str, limit: int) -> list[Album]:
        """Return up to ``limit`` albums (EPs and singles too) in relevance order."""
        ids, included = await self._search("albums", query, limit)
        return await self._albums(ids, included)

    async def search_artists(self, query: str, limit: int) -> list[Artist]:
        """Return up to ``limit`` artists in relevance order."""
        ids, included = await self._search("artists", query, limit)
        with _expected_shape():
            return [mapping.artist(included[("artists", i)], included) for i in ids
                    if ("artists", i) in included]

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return the artist's ``limit`` newest releases (albums, EPs, singles), newest first.

        Raises ProviderError (TidalNotFound) when TIDAL has no such artist.
        """
        if limit <= 0:
            return []
        path = f"/artists/{quote(artist_id, safe='')}/relationships/albums"
        releases: mapping.Included = {}
        order: list[str] = []
        try:
            async for page in self._pages(self._catalogue_get, self._url(path, {"include": "albums"})):
                with _expected_shape():
                    releases.update(mapping.index(page.get("included")))
                    order.extend(str(item["id"]) for item in page.get("data") or []
                                 if item.get("type") == "albums")
        except TidalNotFound as exc:
            raise TidalNotFound(f"TIDAL has no artist {artist_id!r} ({exc})") from None
        dates = {i: str(((releases.get(("albums", i)) or {}).get("attributes") or {}).get("releaseDate")
                        or "") for i in order}
        # Dates are YYYY-MM-DD, so text order is date order; undated releases go last.
        newest = sorted(dict.fromkeys(order), key=lambda i: dates[i], reverse=True)[:limit]
        return await self._albums(newest, releases)

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return the album's tracks in volume and track order (all pages).

        Raises ProviderError (TidalNotFound) when TIDAL has no such album.
        """
        path = f"/albums/{quote(album_id, safe='')}/relationships/items"
        metas: dict[str, Json] = {}
        try:
            async for page in self._pages(self._catalogue_get, self._url(path, {"include": "items"})):
                with _expected_shape():
                    for item in page.get("data") or []:
                        if item.get("type") == "tracks":
                            metas[str(item["id"])] = item.get("meta") or {}
        except TidalNotFound as exc:
            raise TidalNotFound(f"TIDAL has no album {album_id!r} ({exc})") from None
        ordered = sorted(metas, key=lambda i: (metas[i].get("volumeNumber") or 0,
                                               metas[i].get("trackNumber") or 0))
        return await self._tracks(ordered, self._catalogue_get, metas)


@contextmanager
def _expected_shape() -> Iterator[None]:
    """Turn a missing key or a wrong type in TIDAL's JSON into a ProviderError."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        log.debug("unexpected JSON from TIDAL", exc_info=True)
        raise ProviderError(f"TIDAL answered JSON of an unexpected shape ({exc!r})") from None
