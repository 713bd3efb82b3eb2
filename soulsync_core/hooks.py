"""The plugin contract: pluggy hookspecs, the ``hookimpl`` marker, provider protocols, errors.

A plugin is a module listed under the entry-point group ``soulsync.plugins`` whose functions
are marked ``@hookimpl``. Hooks are called synchronously and return provider objects; all I/O
happens on the providers' async methods, which the core awaits with its own timeouts, order
and fallback. Plugins import this module and :mod:`soulsync_core.models`, nothing else.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import pluggy

from soulsync_core.config import Section, Setting
from soulsync_core.events import Event
from soulsync_core.models import (
    Account,
    Album,
    Artist,
    Candidate,
    Health,
    LoginStart,
    Playlist,
    Track,
    Transfer,
)

PROJECT = "soulsync"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = [
    "AccountLogin", "AccountStore", "Accounts", "AuthFailed", "DownloadClient", "Event",
    "EventListener", "LoginFailed",
    "MetadataProvider", "NotAuthenticated", "NotConfigured", "PlaylistSource", "ProviderError",
    "RateLimited", "Section", "Setting", "SettingsReader", "hookimpl", "retry_after_seconds",
    "shared_provider",
]


# --- errors a provider raises ------------------------------------------------------------


class ProviderError(Exception):
    """The provider could not answer. ``str()`` says why, in words meant for a person."""


class NotConfigured(ProviderError):
    """A setting the provider needs (URL, credentials) is missing."""


class AuthFailed(ProviderError):
    """The service refused the configured credentials (a wrong API key or client secret)."""


class NotAuthenticated(ProviderError):
    """No user account is connected (never logged in, logged out, or the service revoked the
    login): the user has to log in again (``soulsync auth <name>`` or ``/api/v1/auth/<name>``)."""


class LoginFailed(ProviderError):
    """An account login could not be finished; ``str()`` tells the user what to do (no login
    in progress, the pasted address is from another attempt, the service refused the code)."""


class RateLimited(ProviderError):
    """The service asked us to slow down; ``retry_after`` is in seconds.

    The core puts the provider into a cool-down for that long (``auto`` skips it meanwhile)
    instead of sleeping inside a request.
    """

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, default: float) -> float:
    """Return a ``Retry-After`` header in seconds for :class:`RateLimited`.

    An absent header, an HTTP date (services here send seconds) or a negative or unreadable
    value gives ``default``.
    """
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        return default
    return seconds if seconds >= 0 else default


# --- what hooks receive --------------------------------------------------------------------


class SettingsReader(Protocol):
    """The settings as a plugin sees them: read a value, hear about changes."""

    def get(self, key: str) -> Any:
        """Return the effective value of a dotted key."""

    def on_change(self, prefix: str, listener: Any) -> None:
        """Call ``listener({key: value})`` (sync or async) after keys under ``prefix`` change."""


class AccountStore(Protocol):
    """Private, persistent storage of one account: OAuth tokens, a login in progress.

    The core keeps it in SQLite, apart from settings: ``/settings`` never shows it and the
    core never logs it. Values are JSON objects. The daemon and the CLI (``soulsync auth``)
    share it, so a value written by one is read by the other's next :meth:`get`.
    """

    async def get(self, key: str) -> dict[str, Any] | None:
        """Return the value stored under ``key``, None when there is none."""

    async def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under ``key``, replacing what was there (committed on return)."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is absent."""


class Accounts(Protocol):
    """What provider hooks receive to keep account data: one :class:`AccountStore` per name."""

    def store(self, account: str) -> AccountStore:
        """Return the store of ``account`` (e.g. ``"spotify"``); cheap, no I/O."""


# --- providers hooks return ------------------------------------------------------------------


@runtime_checkable
class MetadataProvider(Protocol):
    """A metadata source (iTunes, Spotify, Hydrabase …).

    ``name`` is the source name used by ``search.auto_order``, the ``source`` field of the
    search API and the ``services`` map of ``/system/status``. ``configured`` must not do I/O.
    Search methods return at most ``limit`` results, ``[]`` when nothing matches, and raise a
    :class:`ProviderError` when they cannot answer.
    """

    name: str

    @property
    def configured(self) -> bool: ...

    async def start(self) -> None:
        """Open sessions or sockets. Must not raise because the service is down."""

    async def close(self) -> None:
        """Release everything :meth:`start` opened."""

    async def health(self) -> Health:
        """Probe the service once; the core calls this in the background, never per request."""

    async def search_tracks(self, query: str, limit: int) -> list[Track]: ...

    async def search_albums(self, query: str, limit: int) -> list[Album]: ...

    async def search_artists(self, query: str, limit: int) -> list[Artist]: ...

    async def artist_albums(self, artist_id: str, limit: int) -> list[Album]:
        """Return an artist's releases (albums, singles, EPs, compilations), newest first."""

    async def album_tracks(self, album_id: str) -> list[Track]:
        """Return an album's tracks in disc and track order."""


@runtime_checkable
class DownloadClient(Protocol):
    """A download source (slskd). Searches return candidates; transfers are polled in bulk."""

    name: str

    @property
    def configured(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def health(self) -> Health: ...

    async def search(self, query: str) -> list[Candidate]:
        """Run one search to completion and return every file found, unranked."""

    async def enqueue(self, candidate: Candidate) -> Transfer:
        """Ask for ``candidate`` to be downloaded; return the transfer as first reported."""

    async def transfers(self) -> list[Transfer]:
        """Return every transfer the client knows, in one request."""

    async def cancel(self, transfer: Transfer) -> None:
        """Cancel ``transfer`` and remove it from the client's list."""

    async def local_file(self, transfer: Transfer) -> Path | None:
        """Return where a completed transfer's file is on this host, or None if it is not there.

        The client knows its own layout (slskd: ``<download_path>/<last remote folder>/<name>``,
        with ``_<digits>`` added on a name clash); the core only moves the file it is given.
        Raises ProviderError saying why when the file is there but must not be used (slskd:
        it is reached through a symbolic link out of the downloads folder). The core only
        reads the file; deleting it afterwards is allowed to fail.
        """


@runtime_checkable
class PlaylistSource(Protocol):
    """A streaming account whose playlists can be mirrored (Spotify, TIDAL)."""

    name: str

    @property
    def configured(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def health(self) -> Health: ...

    async def list_playlists(self) -> list[Playlist]:
        """Return every playlist of the connected account (all pages), without tracks.

        Raises NotAuthenticated when no account is connected.
        """

    async def get_playlist(self, playlist_id: str) -> Playlist:
        """Return one playlist with all its tracks in playlist order (all pages).

        Items without a track (deleted, unavailable, podcast episodes) are left out; the
        owner's local files are kept with ``id`` "". Raises NotAuthenticated when no account
        is connected and LookupError when there is no such playlist.
        """


@runtime_checkable
class AccountLogin(Protocol):
    """A provider that connects a user account by OAuth authorization code (with PKCE when
    it has no client secret), in the copy-paste flow a NAS without a browser needs.

    The core serves it as ``GET/POST/DELETE /api/v1/auth/<name>``, the callback
    ``GET /auth/<name>/callback`` and ``soulsync auth <name>``. Login state (``state``, PKCE
    verifier) and tokens live in the provider's :class:`AccountStore`, so a login begun by the
    API can be finished by the callback, and one finished by the CLI is used by the daemon.
    These methods work without :meth:`start` having been called.
    """

    name: str

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        """Start a login and return the authorize address to open.

        ``redirect_uri`` is the daemon's callback, used unless the plugin's settings name
        another. A new login replaces one in progress. Raises NotConfigured when the client
        id is missing.
        """

    async def finish_login(self, response: str) -> Account:
        """Finish the login from what the user copied: the whole address the browser was sent
        to (``…?code=…&state=…``) or the bare code. Exchanges the code, stores the tokens and
        returns the connected account. Raises LoginFailed saying what to do, or ProviderError
        when the service cannot be reached.
        """

    async def account(self) -> Account:
        """Return who is connected, from stored data (no network)."""

    async def logout(self) -> None:
        """Forget the stored tokens and any login in progress."""


_P = TypeVar("_P")


def shared_provider(factory: Callable[[SettingsReader, Accounts], _P],
                    ) -> Callable[[SettingsReader, Accounts], _P]:
    """Return ``factory`` made to build one provider per ``(settings, accounts)`` pair.

    For a plugin whose provider serves several hooks (a service that searches and lists
    playlists): each hook calls the returned function and gets the same object, which the core
    then starts, checks and closes once. The provider must keep ``settings`` (every provider
    reads its settings on each call): an entry lives as long as its provider, so the pair's ids
    cannot be reused meanwhile.
    """
    made: weakref.WeakValueDictionary[tuple[int, int], Any] = weakref.WeakValueDictionary()

    @functools.wraps(factory)
    def provider(settings: SettingsReader, accounts: Accounts) -> _P:
        key = (id(settings), id(accounts))
        found = made.get(key)
        if found is None:
            found = factory(settings, accounts)
            made[key] = found
        return found

    return provider


# --- hookspecs --------------------------------------------------------------------------------


@hookspec
def settings_sections() -> list[Section]:
    """Return the settings sections this plugin adds (keys, defaults, types, secret flags)."""


@hookspec
def metadata_providers(settings: SettingsReader, accounts: Accounts) -> list[MetadataProvider]:
    """Return the metadata providers this plugin offers; an empty list offers none.

    ``accounts`` is where a provider keeps tokens (see :class:`AccountStore`); an
    implementation that needs only ``settings`` may leave it out of its parameters.
    """


@hookspec
def download_clients(settings: SettingsReader, accounts: Accounts) -> list[DownloadClient]:
    """Return the download clients this plugin offers; an empty list offers none."""


@hookspec
def playlist_sources(settings: SettingsReader, accounts: Accounts) -> list[PlaylistSource]:
    """Return the playlist sources this plugin offers; an empty list offers none.

    A source that logs in a user account also implements :class:`AccountLogin`. One object
    may be returned by several hooks (a metadata provider and playlist source of one service).
    """


# Called with each event (``Event``: id, type, at, data); may be async. It runs in the
# listener's own task, behind its own queue: a slow listener only falls behind (it then gets a
# ``lost`` event), it never slows the daemon. It must not block: sync I/O goes to a thread.
EventListener = Callable[[Event], Awaitable[None] | None]


@hookspec
def event_listeners(settings: SettingsReader) -> list[EventListener]:
    """Return callables to be called with every event the daemon publishes; [] for none."""
