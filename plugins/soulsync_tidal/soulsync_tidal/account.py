"""The TIDAL account: a login by authorization code with PKCE, and the tokens it yields.

Stored in the plugin's AccountStore (shared by the daemon and ``soulsync auth``):

- ``"login"``: ``{state, verifier, redirect_uri, created_at}`` of the login in progress;
- ``"tokens"``: ``{access_token, refresh_token, expires_at, scope, user_id, display_name}``.

The store is read on every request that needs the user's token (a primary-key lookup), so a
login or logout done by the other process applies at once. The app's client-credentials token
(catalogue only) is kept in memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from soulsync_core.hooks import (
    AccountStore,
    AuthFailed,
    LoginFailed,
    NotAuthenticated,
    NotConfigured,
    SettingsReader,
)
from soulsync_core.models import Account, LoginStart
from soulsync_tidal.client import Json, TidalHttp, TokenRefused

log = logging.getLogger(__name__)

SCOPES = "user.read playlists.read collection.read search.read"
LOGIN_KEY = "login"
TOKENS_KEY = "tokens"
LOGIN_EXPIRES_IN = 600
# A token this close to expiry is renewed before use, so a request never starts with a token
# that expires on the way.
EXPIRY_MARGIN = 60.0
RELOGIN = "log in again (soulsync auth tidal, or POST /api/v1/auth/tidal)"


def pkce_pair() -> tuple[str, str]:
    """Return ``(verifier, S256 challenge)`` as RFC 7636 describes them."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _parse_response(response: str) -> tuple[str, str | None]:
    """Return ``(code, state or None)`` from a redirect address, its query, or a bare code.

    Raises LoginFailed for an address that carries an ``error`` or no code.
    """
    text = response.strip()
    if "=" not in text:
        if not text:
            raise LoginFailed("Nothing was pasted: paste the whole address the browser was sent "
                              "to after the TIDAL login, or the code in it")
        return text, None
    query = urlsplit(text).query if "?" in text else text.lstrip("?#")
    params = {key: values[0] for key, values in parse_qs(query).items()}
    if "error" in params:
        reason = params.get("error_description") or params["error"]
        raise LoginFailed(f"TIDAL did not authorize SoulSync ({reason}); start the login again "
                          "and approve access")
    if not params.get("code"):
        raise LoginFailed("The pasted address has no code; paste the whole address the browser "
                          "was sent to after the TIDAL login")
    return params["code"], params.get("state")


class TidalAccount:
    """Logs the user in and out and hands out valid access tokens."""

    def __init__(self, settings: SettingsReader, store: AccountStore, http: TidalHttp,
                 clock: Callable[[], float] = time.time):
        self._settings = settings
        self._store = store
        self._http = http
        self._clock = clock
        self._renewing = asyncio.Lock()
        self._app_token: tuple[tuple[str, str, str], str, float] | None = None
        # What the last store read said, for ``configured`` (which must not do I/O).
        self.connected = False

    # --- settings -------------------------------------------------------------------------

    def client_id(self) -> str:
        """Return the client id; raise NotConfigured when it is not set."""
        client_id = self._settings.get("tidal.client_id").strip()
        if not client_id:
            raise NotConfigured("TIDAL is not configured: set tidal.client_id to the client id of "
                                "your app from developer.tidal.com")
        return client_id

    def has_secret(self) -> bool:
        return bool(self._settings.get("tidal.client_secret").strip())

    # --- login ----------------------------------------------------------------------------

    async def begin_login(self, redirect_uri: str) -> LoginStart:
        """Store a new login (state, PKCE verifier) and return the authorize address."""
        client_id = self.client_id()
        redirect_uri = self._settings.get("tidal.redirect_uri").strip() or redirect_uri
        state = secrets.token_urlsafe(24)
        verifier, challenge = pkce_pair()
        await self._store.put(LOGIN_KEY, {"state": state, "verifier": verifier,
                                          "redirect_uri": redirect_uri, "created_at": self._clock()})
        query = urlencode({"response_type": "code", "client_id": client_id,
                           "redirect_uri": redirect_uri, "scope": SCOPES,
                           "code_challenge_method": "S256", "code_challenge": challenge,
                           "state": state})
        url = f"{self._settings.get('tidal.login_url').rstrip('/')}/authorize?{query}"
        return LoginStart(url=url, redirect_uri=redirect_uri, state=state,
                          expires_in=LOGIN_EXPIRES_IN)

    async def finish_login(self, response: str, who: Callable[[str], Awaitable[Json]]) -> Account:
        """Exchange the code in ``response`` for tokens, store them and return the account.

        ``who(access_token)`` is awaited for the ``/users/me`` resource. Raises LoginFailed
        saying what to do, ProviderError when TIDAL cannot be reached.
        """
        code, state = _parse_response(response)
        login = await self._store.get(LOGIN_KEY)
        if login is None:
            raise LoginFailed("No TIDAL login is in progress (or it was finished already); "
                              "start one first")
        if self._clock() - float(login.get("created_at", 0)) > LOGIN_EXPIRES_IN:
            await self._store.delete(LOGIN_KEY)
            raise LoginFailed("The TIDAL login expired (it must be finished within 10 minutes); "
                              "start a new one")
        if state is not None and state != login.get("state"):
            raise LoginFailed("The pasted address belongs to another login attempt (its state "
                              "does not match); open the address of the latest login and paste "
                              "where it leads")
        try:
            answer = await self._http.post_token({
                "grant_type": "authorization_code", "client_id": self.client_id(), "code": code,
                "redirect_uri": login["redirect_uri"], "code_verifier": login["verifier"]})
        except TokenRefused as exc:
            raise LoginFailed(f"TIDAL refused the code ({exc}). A code works once and only for "
                              "a few minutes: open the login address again and paste the new "
                              "address") from None
        me: Json = await who(answer["access_token"])
        tokens = self._tokens_from(answer, {})
        attributes = me.get("attributes") or {}
        tokens["user_id"] = str(me.get("id") or answer.get("user_id") or "") or None
        tokens["display_name"] = _display_name(attributes)
        await self._store.put(TOKENS_KEY, tokens)
        await self._store.delete(LOGIN_KEY)
        self.connected = True
        log.info("TIDAL account %s connected", tokens["display_name"] or tokens["user_id"])
        return _account(tokens)

    async def account(self) -> Account:
        """Return who is connected, from the store (no network)."""
        return _account(await self.stored_tokens())

    async def logout(self) -> None:
        """Forget the tokens and any login in progress."""
        await self._store.delete(TOKENS_KEY)
        await self._store.delete(LOGIN_KEY)
        self.connected = False

    # --- tokens ---------------------------------------------------------------------------

    async def stored_tokens(self) -> Json | None:
        """Return the stored tokens (None when no account is connected)."""
        tokens = await self._store.get(TOKENS_KEY)
        self.connected = tokens is not None
        return tokens

    async def user_tokens(self) -> Json:
        """Return the stored tokens with an access token valid for a while, renewed if needed.

        Raises NotAuthenticated when no account is connected or TIDAL refuses the renewal.
        """
        tokens = await self.stored_tokens()
        if tokens is None:
            raise NotAuthenticated(f"No TIDAL account is connected; {RELOGIN}")
        if float(tokens.get("expires_at") or 0) - self._clock() > EXPIRY_MARGIN:
            return tokens
        return await self.renew(tokens["access_token"])

    async def renew(self, stale_access_token: str) -> Json:
        """Return tokens with an access token other than ``stale_access_token``.

        Another request (or process) may have renewed it already; otherwise the refresh token is
        used once. A refused refresh drops the tokens and raises NotAuthenticated.
        """
        async with self._renewing:
            tokens = await self.stored_tokens()
            if tokens is None:
                raise NotAuthenticated(f"No TIDAL account is connected; {RELOGIN}")
            if tokens["access_token"] != stale_access_token:
                return tokens
            if not tokens.get("refresh_token"):
                raise await self._dropped("TIDAL gave no refresh token")
            try:
                answer = await self._http.post_token({
                    "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                    "client_id": self.client_id()})
            except TokenRefused as exc:
                raise await self._dropped(f"TIDAL refused to renew the login ({exc})") from None
            tokens = self._tokens_from(answer, tokens)
            await self._store.put(TOKENS_KEY, tokens)
            log.info("TIDAL access token renewed")
            return tokens

    async def _dropped(self, reason: str) -> NotAuthenticated:
        """Forget the tokens TIDAL will not renew; return the error to raise."""
        await self._store.delete(TOKENS_KEY)
        self.connected = False
        log.warning("%s; the TIDAL account is disconnected", reason)
        return NotAuthenticated(f"{reason}; {RELOGIN}")

    def _tokens_from(self, answer: Json, previous: Json) -> Json:
        """Return ``previous`` updated by a token answer (a refresh may omit the refresh token)."""
        return {**previous,
                "access_token": answer["access_token"],
                "refresh_token": answer.get("refresh_token") or previous.get("refresh_token"),
                "expires_at": self._clock() + float(answer.get("expires_in") or 0),
                "scope": answer.get("scope") if answer.get("scope") is not None
                else previous.get("scope", SCOPES)}

    async def app_token(self, fresh: bool = False) -> str:
        """Return a client-credentials access token (catalogue only), fetched when needed.

        Raises NotConfigured without a client id or secret, AuthFailed when TIDAL refuses them.
        """
        client_id = self.client_id()
        secret = self._settings.get("tidal.client_secret").strip()
        if not secret:
            raise NotConfigured("TIDAL needs a connected account or tidal.client_secret to search "
                                f"the catalogue; set the secret or {RELOGIN}")
        made_for = (client_id, secret, self._settings.get("tidal.auth_url"))
        cached = self._app_token
        if not fresh and cached and cached[0] == made_for and cached[2] - self._clock() > EXPIRY_MARGIN:
            return cached[1]
        try:
            answer = await self._http.post_token({"grant_type": "client_credentials"},
                                                 basic_auth=(client_id, secret))
        except TokenRefused as exc:
            raise AuthFailed(f"TIDAL refused the client id/secret ({exc})") from None
        self._app_token = (made_for, answer["access_token"],
                           self._clock() + float(answer.get("expires_in") or 0))
        return answer["access_token"]

    def forget_app_token(self, token: str) -> None:
        """Drop the cached client-credentials token when it is ``token`` (TIDAL refused it)."""
        if self._app_token and self._app_token[1] == token:
            self._app_token = None


def _display_name(attributes: Json) -> str | None:
    full = " ".join(str(attributes[k]) for k in ("firstName", "lastName") if attributes.get(k))
    return full or attributes.get("username") or None


def _account(tokens: Json | None) -> Account:
    if tokens is None:
        return Account(connected=False)
    return Account(connected=True, user_id=tokens.get("user_id"),
                   display_name=tokens.get("display_name"),
                   scopes=str(tokens.get("scope") or "").split())
