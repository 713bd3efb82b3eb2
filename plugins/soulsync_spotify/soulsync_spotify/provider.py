"""The Spotify provider: metadata search, the user's playlists, and the user login.

One object serves three roles of the plugin contract: a MetadataProvider (searches,
discographies, album tracks), a PlaylistSource (the connected user's playlists and liked
songs) and an AccountLogin (the copy-paste OAuth login, see :mod:`soulsync_spotify.account`).

Each request waits for the provider's own rate limit on the event loop, then runs spotipy in a
worker thread. Paged answers are followed through their ``next`` links, one limited request
per page. Metadata uses the app's client-credentials token when a client secret is set, and
the connected user's token otherwise; playlists always use the user's. The client is rebuilt
from the settings after any ``spotify.*`` change.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiolimiter import AsyncLimiter

from soulsync_core.hooks import Accounts, NotAuthenticated, NotConfigured, ProviderError, SettingsReader
from soulsync_core.models import Account, Album, Artist, Health, LoginStart, Playlist, Track
from soulsync_spotify import mapping
from soulsync_spotify.account import SpotifyAccount
from soulsync_spotify.errors import ApiError, TokenRejected

if TYPE_CHECKING:
    from soulsync_spotify.client import SpotifyApi

# spotipy (with requests and redis) takes ~0.2 s to import: too much for every daemon start,
# so the client module is loaded only when Spotify is used, in a thread.
CLIENT_MODULE = "soulsync_spotify.client"

log = logging.getLogger(__name__)

# Development Mode apps (every new app since February 2026) get "400 Invalid limit" above 10
# for search and artist albums; album tracks, playlists and their items still take 50.
SEARCH_PAGE = 10
ARTIST_ALBUMS_PAGE = 10
PLAYLIST_PAGE = 50
# Queried one group at a time: Spotify lists a discography group by group, so the newest
# releases of a large discography are only found by taking the newest of each group.
RELEASE_GROUPS = ("album", "single", "compilation")
# Spotify reads very short free-text artist queries poorly; a field filter works better.
SHORT_ARTIST_QUERY = 4
# Without a client secret, ``configured`` depends on a connected account; the store is read
# again in the background at most this often, so a login by the CLI is noticed.
CONNECTED_RECHECK_SECONDS = 30.0
# The name of the account store; tokens and a login in progress are kept there.
ACCOUNT = "spotify"

LIKED_SONGS_ID = "liked-songs"
LIKED_SONGS_IDS = frozenset({LIKED_SONGS_ID, "spotify:liked-songs"})
LIKED_SONGS_NAME = "Liked Songs"

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]+$")
_PLAYLIST_URI = re.compile(r"^spotify:(?:user:[^:]+:)?playlist:([0-9A-Za-z]+)$")
_PLAYLIST_PATH = re.compile(r"^/(?:intl-[a-z-]+/)?(?:embed/)?playlist/([0-9A-Za-z]+)/?$")

Json = dict[str, Any]
Call = Callable[[Callable[[Any], Any]], Awaitable[Any]]


class SpotifyProvider:
    """Spotify as metadata source, playlist source and account login (see the module doc)."""

    name = "spotify"

    def __init__(self, settings: SettingsReader, accounts: Accounts):
        self._settings = settings
        self._accounts = accounts
        self._api: SpotifyApi | None = None
        self._limiter: AsyncLimiter | None = None
        self._account = SpotifyAccount(accounts.store(ACCOUNT), self._client_api, settings.get)
        self._recheck_at = 0.0
        self._background: set[asyncio.Task[Any]] = set()
        settings.on_change("spotify.", self._settings_changed)

    def _setting(self, key: str) -> str:
        return str(self._settings.get(key) or "").strip()

    @property
    def configured(self) -> bool:
        """True when the client id is set and either a client secret is set or a user account
        is connected (as last read from the store; no I/O here)."""
        if not self._setting("spotify.client_id"):
            return False
        if self._setting("spotify.client_secret"):
            return True
        self._recheck_connected_soon()
        return self._account.connected

    def _recheck_connected_soon(self) -> None:
        """Schedule a read of the store (a login by the CLI) when the last one is old."""
        now = time.monotonic()
        if now < self._recheck_at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._recheck_at = now + CONNECTED_RECHECK_SECONDS
        task = loop.create_task(self._recheck_connected(), name="spotify account recheck")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _recheck_connected(self) -> None:
        try:
            await self._account.refresh_connected()
        except Exception as exc:  # the store is gone (shutting down): keep the last answer
            log.debug("could not read the Spotify account: %r", exc)

    def _settings_changed(self, changed: dict[str, Any]) -> None:
        # Built again on the next request. A request in flight finishes on the old client,
        # whose session is closed when that client is garbage-collected.
        self._api = None
        self._limiter = None
        log.info("Spotify settings changed (%s); the next request uses them",
                 ", ".join(sorted(changed)))

    async def _client_api(self) -> SpotifyApi:
        """Return the client for the current settings; raise NotConfigured without a client id.

        The first call loads spotipy in a thread; building the client does no I/O.
        """
        if not self._setting("spotify.client_id"):
            raise NotConfigured("Spotify is not configured: set spotify.client_id (and "
                                "spotify.client_secret, or connect an account)")
        if CLIENT_MODULE not in sys.modules:
            await asyncio.to_thread(importlib.import_module, CLIENT_MODULE)
        if self._api is None:
            from soulsync_spotify.client import Config, SpotifyApi

            get = self._settings.get
            self._api = SpotifyApi(Config(
                client_id=self._setting("spotify.client_id"),
                client_secret=self._setting("spotify.client_secret"),
                api_url=get("spotify.api_url"), accounts_url=get("spotify.accounts_url"),
                timeout=get("spotify.timeout_seconds")))
        return self._api

    async def _client(self) -> tuple[SpotifyApi, AsyncLimiter]:
        api = await self._client_api()
        if self._limiter is None:
            self._limiter = AsyncLimiter(self._settings.get("spotify.requests_per_minute"), 60)
        return api, self._limiter

    async def start(self) -> None:
        """Load the client module off the event loop when a client id is set, and read whether
        an account is connected. Nothing is opened; the client is built on the first request."""
        if not self._setting("spotify.client_id"):
            return
        await asyncio.to_thread(importlib.import_module, CLIENT_MODULE)
        await self._recheck_connected()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._api is not None:
            self._api.close()
            self._api = None

    async def health(self) -> Health:
        """Check the token the provider would use for metadata: a new app token when a client
        secret is set, else the account's token (renewed when due) against ``/me``.

        ``details`` hold ``account_connected``, ``account`` (the display name or None) and
        ``server_date``, the Date header of Spotify's last answer, when there was one.
        """
        ok, message = True, ""
        try:
            if self._setting("spotify.client_secret"):
                api = await self._client_api()
                await asyncio.to_thread(api.fresh_token)
                message = "Spotify issued an access token"
            else:
                await self._client_api()
                await self._user_call(lambda spotify: spotify.current_user())
                message = "Spotify accepted the account's access token"
        except ProviderError as exc:
            ok, message = False, str(exc)
        try:
            connected = await self._account.refresh_connected()
        except Exception as exc:
            log.debug("could not read the Spotify account: %r", exc)
            connected = self._account.connected
        if ok:
            message += (f"; account {self._account.display_name} is connected" if connected else
                        "; no Spotify account is connected (playlists need one: run "
                        "`soulsync auth spotify`)")
        details: dict[str, Any] = {"account_connected": connected,
                                   "account": self._account.display_name}
        if self._api is not None and self._api.server_date:
            details["server_date"] = self._api.server_date  # for the health list's clock check
        return Health(ok=ok, message=message, details=details)

    # --- calls -----------------------------------------------------------------------------

    async def _call(self, request: Callable[[Any], Any]) -> Any:
        """A metadata call: with the app's token when a client secret is set, else the user's."""
        if not self._setting("spotify.client_secret"):
            return await self._user_call(request)
        api, limiter = await self._client()
        await limiter.acquire()
        return await asyncio.to_thread(api.call, request)

    async def _user_call(self, request: Callable[[Any], Any]) -> Any:
        """Wait for the rate limit, then return ``request(spotipy client)`` sent with the
        connected user's token, in a thread.

        A 401 renews the token (or takes a newer one from the store) and repeats the call
        once. Raises NotAuthenticated when no account is connected or it was revoked.
        """
        api, limiter = await self._client()
        token = await self._account.access_token()
        await limiter.acquire()
        try:
            return await asyncio.to_thread(api.call_as_user, token, request)
        except TokenRejected as exc:
            log.info("%s; renewing it", exc)
        token = await self._account.access_token(rejected=token)
        await limiter.acquire()
        try:
            return await asyncio.to_thread(api.call_as_user, token, request)
        except TokenRejected as exc:
            raise NotAuthenticated(f"{exc} even after renewing it: log in again with "
                                   "`soulsync auth spotify` or /api/v1/auth/spotify") from None

    async def _collect(self, page: Any, want: int, key: str | None = None, call: Call | None = None,
                       keep: Callable[[Any], bool] | None = None) -> list[Json]:
        """Return up to ``want`` items of a paging object and the pages its ``next`` links name.

        ``key`` names the paging object inside the answer (search wraps it: ``{"tracks": …}``).
        ``call`` sends the page requests (:meth:`_call` by default). Items ``keep`` refuses
        are left out; by default null items and items without an id (Spotify sends some).
        """
        call = call or self._call
        keep = keep or (lambda item: bool(item and item.get("id")))
        items: list[Json] = []
        while True:
            with _expected_shape():
                paging = page[key] if key else page
                items.extend(item for item in paging["items"] if keep(item))
                link = paging.get("next")
            if len(items) >= want or not link:
                return items[:want]
            page = await call(lambda spotify, paging=paging: spotify.next(paging))

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

    # --- playlists (PlaylistSource) ------------------------------------------------------------

    async def list_playlists(self) -> list[Playlist]:
        """Return every playlist of the connected user (owned and followed), all pages, without
        tracks. Raises NotAuthenticated when no account is connected."""
        first = await self._user_call(lambda spotify: spotify.current_user_playlists(
            limit=PLAYLIST_PAGE, offset=0))
        items = await self._collect(first, sys.maxsize, call=self._user_call)
        with _expected_shape():
            return [mapping.playlist(item) for item in items]

    async def get_playlist(self, playlist_id: str) -> Playlist:
        """Return one playlist with its tracks in playlist order, all pages followed.

        ``playlist_id`` is an id, a ``spotify:playlist:`` URI, an ``open.spotify.com`` address,
        or ``liked-songs``/``spotify:liked-songs`` for the user's saved tracks. Null items and
        podcast episodes are left out; local files are kept with ``id`` "". Raises
        NotAuthenticated when no account is connected, LookupError when Spotify has no such
        playlist, RateLimited or ProviderError.
        """
        if playlist_id.strip() in LIKED_SONGS_IDS:
            return await self._liked_songs()
        plain = parse_playlist_id(playlist_id)
        try:
            body = await self._user_call(lambda spotify: spotify.playlist(plain))
            with _expected_shape():
                playlist = mapping.playlist(body)
            first = await self._user_call(lambda spotify: spotify.playlist_items(
                plain, limit=PLAYLIST_PAGE, offset=0))
        except ApiError as exc:
            raise _playlist_error(exc, playlist_id) from None
        entries = await self._collect(first, sys.maxsize, call=self._user_call, keep=bool)
        with _expected_shape():
            playlist.tracks = [t for t in map(mapping.entry_track, entries) if t is not None]
        playlist.total_tracks = playlist.total_tracks or len(playlist.tracks)
        return playlist

    async def _liked_songs(self) -> Playlist:
        first = await self._user_call(lambda spotify: spotify.current_user_saved_tracks(
            limit=PLAYLIST_PAGE, offset=0))
        entries = await self._collect(first, sys.maxsize, call=self._user_call, keep=bool)
        with _expected_shape():
            tracks = [t for t in map(mapping.entry_track, entries) if t is not None]
            total = first.get("total") or len(tracks)
        # Saved tracks have no snapshot id; None tells a sync to compare the tracks instead.
        return Playlist(id=LIKED_SONGS_ID, name=LIKED_SONGS_NAME,
                        owner=self._account.display_name or "", total_tracks=total, tracks=tracks)

    # --- the user login (AccountLogin) ------------------------------------------------------------

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        """Start a login; see :meth:`SpotifyAccount.begin_login`."""
        return await self._account.begin_login(redirect_uri)

    async def finish_login(self, response: str) -> Account:
        """Finish a login from the pasted address or code; see :meth:`SpotifyAccount.finish_login`."""
        return await self._account.finish_login(response)

    async def account(self) -> Account:
        """Return who is connected, from the store (no network)."""
        return await self._account.account()

    async def logout(self) -> None:
        """Forget the tokens and any login in progress."""
        await self._account.logout()


def parse_playlist_id(value: str) -> str:
    """Return the bare playlist id of an id, a ``spotify:playlist:<id>`` URI or an
    ``https://open.spotify.com/playlist/<id>`` address; raise LookupError for anything else."""
    text = value.strip()
    if _SPOTIFY_ID.match(text):
        return text
    if match := _PLAYLIST_URI.match(text):
        return match.group(1)
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.hostname == "open.spotify.com" and (match := _PLAYLIST_PATH.match(parts.path)):
        return match.group(1)
    raise LookupError(f"Playlist {value!r} not found: give a Spotify playlist id, a "
                      "spotify:playlist: URI, an open.spotify.com/playlist/ address or liked-songs")


def _playlist_error(exc: ApiError, playlist_id: str) -> Exception:
    # An id that is not 22 base62 characters gets 400 "Invalid base62 id", not 404: to the
    # caller both mean Spotify has no such playlist.
    if exc.status == 404 or (exc.status == 400 and "invalid base62 id" in str(exc).lower()):
        return LookupError(f"Playlist {playlist_id} not found on Spotify")
    if exc.status == 403:
        return ProviderError(f"Spotify refused access to playlist {playlist_id} (HTTP 403): "
                             "playlists made by Spotify (editorial, algorithmic) cannot be read "
                             "by apps, and Development Mode apps only serve registered users")
    return exc


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
