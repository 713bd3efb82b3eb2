"""A playlist source for the core's playlist and account tests: an in-memory account that logs
in through the real core path (state and tokens in the core's AccountStore, i.e. SQLite).

The real Spotify and TIDAL plugins are tested against their fakes in their own test files;
this one lets the core tests control timing (a sync that blocks) and contents exactly.
"""

from __future__ import annotations

import asyncio
import secrets
import types
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from soulsync_core.hooks import AccountStore, LoginFailed, hookimpl
from soulsync_core.models import Account, Health, LoginStart, Playlist, Track

NAME = "fakemusic"
AUTHORIZE = "https://accounts.fakemusic.test/authorize"


class FakePlaylistSource:
    """Playlists held in memory; ``block`` makes ``get_playlist`` wait (a slow source)."""

    name = NAME

    def __init__(self, store: AccountStore):
        self.store = store
        self.playlists: dict[str, Playlist] = {}
        self.block: asyncio.Event | None = None
        self.fetches = 0
        self.issued_codes: set[str] = set()

    @property
    def configured(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def health(self) -> Health:
        tokens = await self.store.get("tokens")
        return Health(ok=tokens is not None, message="" if tokens else "no account connected",
                      details={"account_connected": tokens is not None})

    # ------------------------------------------------------------------ AccountLogin

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        state = secrets.token_urlsafe(16)
        await self.store.put("login", {"state": state, "redirect_uri": redirect_uri})
        query = urlencode({"client_id": "cid", "redirect_uri": redirect_uri, "state": state})
        return LoginStart(f"{AUTHORIZE}?{query}", redirect_uri, state, 600)

    def approve(self, url: str) -> str:
        """Play the service's authorize page: return the address the browser is sent to."""
        query = parse_qs(urlsplit(url).query)
        code = secrets.token_urlsafe(8)
        self.issued_codes.add(code)
        return f"{query['redirect_uri'][0]}?{urlencode({'code': code, 'state': query['state'][0]})}"

    async def finish_login(self, response: str) -> Account:
        pending = await self.store.get("login")
        if pending is None:
            raise LoginFailed("No login is in progress: start one first.")
        query = parse_qs(urlsplit(response).query) if "?" in response else {"code": [response]}
        if "state" in query and query["state"][0] != pending["state"]:
            raise LoginFailed("This address belongs to another login attempt: start again.")
        code = query.get("code", [""])[0]
        if code not in self.issued_codes:
            raise LoginFailed("The code was refused: start the login again.")
        self.issued_codes.discard(code)
        await self.store.put("tokens", {"access_token": "at-" + code, "user": "alice"})
        await self.store.delete("login")
        return await self.account()

    async def account(self) -> Account:
        tokens = await self.store.get("tokens")
        if tokens is None:
            return Account(False)
        return Account(True, tokens["user"], "Alice", ["playlist-read"])

    async def logout(self) -> None:
        await self.store.delete("tokens")
        await self.store.delete("login")

    # ---------------------------------------------------------------- PlaylistSource

    async def list_playlists(self) -> list[Playlist]:
        return [Playlist(p.id, p.name, p.owner, len(p.tracks), p.description, p.image_url)
                for p in self.playlists.values()]

    async def get_playlist(self, playlist_id: str) -> Playlist:
        self.fetches += 1
        if self.block is not None:
            await self.block.wait()
        if playlist_id not in self.playlists:
            raise LookupError(f"Playlist {playlist_id} not found")
        return self.playlists[playlist_id]


def source_plugin() -> tuple[types.SimpleNamespace, list[FakePlaylistSource]]:
    """Return a plugin module offering one FakePlaylistSource, and a list that will hold it."""
    made: list[FakePlaylistSource] = []

    @hookimpl
    def playlist_sources(settings: Any, accounts: Any) -> list[FakePlaylistSource]:
        made.append(FakePlaylistSource(accounts.store(NAME)))
        return made[-1:]

    return types.SimpleNamespace(playlist_sources=playlist_sources), made


def track(track_id: str, name: str, artist: str, album: str, seconds: int = 180) -> Track:
    """A source's track (ids are 22 base-62 characters, like Spotify's)."""
    return Track(track_id, name, [artist], album, seconds * 1000)
