"""The connected Spotify user: the copy-paste login, and the user's tokens kept fresh.

Everything the login needs to survive between requests (and between the daemon and
``soulsync auth spotify``, another process) lives in the plugin's :class:`AccountStore`:

- ``"login"``: the login in progress, ``{state, redirect_uri, code_verifier?, created_at}``;
- ``"tokens"``: ``{access_token, refresh_token, expires_at, scope, user_id, display_name, pkce}``.

The store is async and belongs to the event loop; spotipy is sync and runs in worker threads.
So every store access happens here, on the loop, and only plain values (a code, a refresh
token) go to the threads. Tokens are read from the store each time they are needed (a
primary-key lookup), so tokens written by the CLI are used at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from soulsync_core.hooks import AccountStore, LoginFailed, NotAuthenticated, NotConfigured
from soulsync_core.models import Account, LoginStart
from soulsync_spotify.errors import GrantRefused

if TYPE_CHECKING:
    from soulsync_spotify.client import SpotifyApi

log = logging.getLogger(__name__)

SCOPES = "playlist-read-private playlist-read-collaborative user-library-read"
LOGIN_KEY = "login"
TOKENS_KEY = "tokens"
# How long a begun login can be finished in (Spotify's codes themselves live ~10 minutes).
LOGIN_TTL_SECONDS = 600
# A token this close to its expiry is renewed before use, so it cannot lapse in flight.
REFRESH_MARGIN_SECONDS = 60

NOT_CONNECTED = ("Spotify account not connected: run `soulsync auth spotify` or use "
                 "/api/v1/auth/spotify")
START_AGAIN = "start the login again (`soulsync auth spotify` or GET /api/v1/auth/spotify)"

Json = dict[str, Any]
ApiGetter = Callable[[], Awaitable["SpotifyApi"]]


class SpotifyAccount:
    """The user account half of the Spotify provider (see the module docstring).

    ``api`` returns the client for the current settings (built off the loop on first use);
    ``settings_get`` reads a setting. ``connected`` is what the store said last time it was
    read, for :attr:`SpotifyProvider.configured`, which must not do I/O.
    """

    def __init__(self, store: AccountStore, api: ApiGetter, settings_get: Callable[[str], Any]):
        self._store = store
        self._api = api
        self._get = settings_get
        self._refresh_lock = asyncio.Lock()
        self.connected = False
        self.display_name: str | None = None

    # --- login -----------------------------------------------------------------------------

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        """Store a new login (replacing one in progress) and return the address to open."""
        client_id = self._get("spotify.client_id").strip()
        if not client_id:
            raise NotConfigured("Spotify is not configured: set spotify.client_id (the client id "
                                "of your app on developer.spotify.com)")
        redirect = self._get("spotify.redirect_uri").strip() or redirect_uri
        state = secrets.token_urlsafe(16)
        # No secret: PKCE. 64 random bytes give an 86-character verifier (43 to 128 allowed).
        verifier = None if self._get("spotify.client_secret").strip() else secrets.token_urlsafe(64)
        api = await self._api()
        url = api.authorize_url(redirect, state, SCOPES, verifier)
        login: Json = {"state": state, "redirect_uri": redirect, "created_at": time.time()}
        if verifier:
            login["code_verifier"] = verifier
        await self._store.put(LOGIN_KEY, login)
        log.info("Spotify login started (%s), redirecting to %s",
                 "PKCE" if verifier else "authorization code", redirect)
        return LoginStart(url=url, redirect_uri=redirect, state=state, expires_in=LOGIN_TTL_SECONDS)

    async def finish_login(self, response: str) -> Account:
        """Exchange the code the user copied for tokens, store them and return the account."""
        code, state = parse_login_response(response)
        login = await self._store.get(LOGIN_KEY)
        if login is None:
            raise LoginFailed(f"No Spotify login is in progress: {START_AGAIN}")
        if time.time() - float(login.get("created_at", 0)) > LOGIN_TTL_SECONDS:
            await self._store.delete(LOGIN_KEY)
            raise LoginFailed(f"The Spotify login expired after {LOGIN_TTL_SECONDS // 60} minutes: "
                              f"{START_AGAIN}")
        if state is not None and state != login.get("state"):
            raise LoginFailed(f"The address is from another Spotify login attempt (its state does "
                              f"not match): {START_AGAIN}, and paste the address of that attempt")
        api = await self._api()
        try:
            token = await asyncio.to_thread(api.exchange_code, code, login["redirect_uri"], SCOPES,
                                            login.get("code_verifier"))
        except GrantRefused as exc:
            raise LoginFailed(f"Spotify refused the code ({exc.description or 'invalid_grant'}): "
                              f"the code was already used or expired; {START_AGAIN}") from None
        me = await asyncio.to_thread(api.call_as_user, token["access_token"],
                                     lambda spotify: spotify.current_user())
        tokens = _tokens_record(token, pkce="code_verifier" in login, user=me or {})
        await self._store.put(TOKENS_KEY, tokens)
        await self._store.delete(LOGIN_KEY)
        self._note(tokens)
        log.info("Spotify account %s connected", tokens["display_name"] or tokens["user_id"])
        return _account(tokens)

    async def account(self) -> Account:
        """Return who is connected, from the store (no network)."""
        tokens = await self._read()
        return _account(tokens) if tokens else Account(connected=False)

    async def logout(self) -> None:
        """Forget the tokens and any login in progress."""
        await self._store.delete(TOKENS_KEY)
        await self._store.delete(LOGIN_KEY)
        self._note(None)
        log.info("Spotify account disconnected")

    # --- tokens ------------------------------------------------------------------------------

    async def refresh_connected(self) -> bool:
        """Read the store to update :attr:`connected`; return it."""
        await self._read()
        return self.connected

    async def access_token(self, rejected: str | None = None) -> str:
        """Return a usable access token of the connected user, renewed when it expires soon.

        ``rejected`` is a token Spotify just answered 401 to: a different one in the store
        (written by the CLI, or renewed by a concurrent call) is used instead, else the token
        is renewed. Raises NotAuthenticated when no user is connected or Spotify refuses the
        refresh token (the tokens are then dropped), or the errors of the refresh request.
        """
        tokens = await self._read()
        if tokens is None:
            raise NotAuthenticated(NOT_CONNECTED)
        if not _needs_refresh(tokens, rejected):
            return tokens["access_token"]
        async with self._refresh_lock:
            # A concurrent call may have renewed it while this one waited for the lock.
            tokens = await self._read()
            if tokens is None:
                raise NotAuthenticated(NOT_CONNECTED)
            if not _needs_refresh(tokens, rejected):
                return tokens["access_token"]
            return (await self._refresh(tokens))["access_token"]

    async def _refresh(self, tokens: Json) -> Json:
        api = await self._api()
        try:
            token = await asyncio.to_thread(api.refresh_user_token, tokens["refresh_token"],
                                            tokens.get("scope") or SCOPES, bool(tokens.get("pkce")))
        except GrantRefused as exc:
            await self._store.delete(TOKENS_KEY)
            self._note(None)
            log.warning("Spotify refused to renew the login of %s (%s); the account is "
                        "disconnected", tokens.get("display_name") or tokens.get("user_id"),
                        exc.description or "invalid_grant")
            raise NotAuthenticated(f"Spotify no longer accepts the login (it was revoked or "
                                   f"expired). {NOT_CONNECTED}") from None
        renewed = _tokens_record(token, pkce=bool(tokens.get("pkce")), user={
            "id": tokens.get("user_id"), "display_name": tokens.get("display_name")},
            previous_refresh_token=tokens["refresh_token"])
        await self._store.put(TOKENS_KEY, renewed)
        self._note(renewed)
        log.info("Spotify access token renewed")
        return renewed

    async def _read(self) -> Json | None:
        tokens = await self._store.get(TOKENS_KEY)
        if tokens is not None and not tokens.get("access_token"):
            tokens = None
        self._note(tokens)
        return tokens

    def _note(self, tokens: Json | None) -> None:
        self.connected = tokens is not None
        self.display_name = (tokens.get("display_name") or tokens.get("user_id")) if tokens else None


def parse_login_response(response: str) -> tuple[str, str | None]:
    """Return ``(code, state)`` from what the user pasted: the address the browser was sent to
    (``…?code=…&state=…``) or the bare code (state None). Raises LoginFailed for a declined
    login, an error answer, or an address without a code.
    """
    text = response.strip()
    if not text:
        raise LoginFailed("Nothing was pasted: paste the whole address the browser was sent to "
                          "after approving access in Spotify (or the code in it)")
    if "?" in text:
        parts = urlsplit(text)
        query = parse_qs(parts.query or parts.fragment)
    elif "=" in text:  # only the query part was copied: code=…&state=…
        query = parse_qs(text)
    else:  # a bare code (codes are URL-safe: never "?", "=" or "/")
        return text, None
    error = (query.get("error") or [None])[0]
    if error == "access_denied":
        raise LoginFailed(f"You declined the access in Spotify, so no account was connected; "
                          f"{START_AGAIN} and choose Agree")
    if error:
        raise LoginFailed(f"Spotify answered the login with the error {error!r}; {START_AGAIN}")
    code = (query.get("code") or [None])[0]
    if not code:
        raise LoginFailed("The pasted address has no code in it: paste the whole address the "
                          "browser was sent to after approving access in Spotify")
    return code, (query.get("state") or [None])[0]


def _needs_refresh(tokens: Json, rejected: str | None) -> bool:
    if rejected is not None and tokens["access_token"] == rejected:
        return True
    return float(tokens.get("expires_at") or 0) - time.time() < REFRESH_MARGIN_SECONDS


def _tokens_record(token: Json, pkce: bool, user: Json,
                   previous_refresh_token: str | None = None) -> Json:
    """The ``"tokens"`` value from spotipy's token info and the user object."""
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or previous_refresh_token,
        "expires_at": int(token["expires_at"]),
        "scope": token.get("scope") or SCOPES,
        "user_id": user.get("id"),
        "display_name": user.get("display_name"),
        "pkce": pkce,
    }


def _account(tokens: Json) -> Account:
    return Account(connected=True, user_id=tokens.get("user_id"),
                   display_name=tokens.get("display_name"),
                   scopes=str(tokens.get("scope") or "").split())
