"""spotipy set up for one configuration, with every failure turned into a ProviderError.

Two kinds of access token are used: the app's own (client credentials, when a client secret is
set), which spotipy obtains and renews here, and a user's (authorization code, with PKCE when
there is no secret), which the provider keeps in its account store and passes in per call. The
code exchange and the refresh of a user's token are done here too, through spotipy's
``SpotifyOAuth``/``SpotifyPKCE``, but the tokens they return are handed back, never kept.

Everything here is synchronous (spotipy uses ``requests``) and runs in worker threads. The
session never retries and never sleeps: a 429 surfaces at once as :class:`RateLimited` so the
core can cool the provider down, instead of a thread sleeping through ``Retry-After``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth, SpotifyPKCE
from urllib3.util.retry import Retry

from soulsync_core.hooks import AuthFailed, NotConfigured, ProviderError, RateLimited, retry_after_seconds
from soulsync_core.http_body import MAX_BODY_BYTES, too_large
from soulsync_spotify.errors import ApiError, GrantRefused, TokenRejected

log = logging.getLogger(__name__)

# Spotify's rate limit is a rolling 30-second window; used when a 429 has no Retry-After.
DEFAULT_RETRY_AFTER = 30.0
# Error codes of RFC 6749 §5.2 that mean "these credentials or this grant are refused".
OAUTH_REFUSALS = frozenset({"invalid_client", "invalid_grant", "invalid_request",
                            "unauthorized_client", "unsupported_grant_type", "invalid_scope"})


@dataclass(frozen=True)
class Config:
    """What a client is built from; a change to any of it means a new client.

    ``client_secret`` is "" when the app has none: then there is no app token, and a user
    logs in with PKCE.
    """

    client_id: str
    client_secret: str = field(repr=False)
    api_url: str
    accounts_url: str
    timeout: float


class _QuietSpotipy(logging.Filter):
    """Keeps spotipy's DEBUG and ERROR lines out of the log.

    Its DEBUG lines print the Authorization header (the access token, or the client id and
    secret in Basic form). Its ERROR lines repeat each failed request, which the provider
    reports itself, and would call a transparent token refresh an error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.INFO <= record.levelno < logging.ERROR


_QUIET = _QuietSpotipy()


class _Throttled(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:g} s")
        self.retry_after = retry_after


class _ServerFailed(Exception):
    def __init__(self, status: int, url: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.url = url


def _stop_on_429_and_5xx(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A ``requests`` response hook, so the token request and API calls fail the same way.

    spotipy would turn a 429 or 5xx of the token endpoint into a status-less OAuth error.
    """
    if response.status_code == 429:
        response.close()
        raise _Throttled(retry_after_seconds(response.headers.get("Retry-After"), DEFAULT_RETRY_AFTER))
    if response.status_code >= 500:
        response.close()
        raise _ServerFailed(response.status_code, response.url)


class _TooLarge(Exception):
    def __init__(self, url: str):
        super().__init__("body too large")
        self.url = url


def _bounded_body(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A ``requests`` response hook that reads the body itself, at most MAX_BODY_BYTES.

    Hooks run before ``requests`` reads the body, which it would read whole however large;
    the body read here becomes the response's content.
    """
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        response.close()
        raise _TooLarge(response.url)
    body = response.raw.read(MAX_BODY_BYTES + 1, decode_content=True) or b""
    if len(body) > MAX_BODY_BYTES:
        response.close()
        raise _TooLarge(response.url)
    response._content = body
    response._content_consumed = True


def _session(on_date: Callable[[str], None] | None = None) -> requests.Session:
    """A session without retries, failing on 429/5xx, reading bodies bounded; ``on_date``
    is given each answer's ``Date`` header (the health list's clock check)."""
    session = requests.Session()
    # No retries at all: urllib3 would otherwise sleep for Retry-After inside the call.
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, respect_retry_after_header=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_stop_on_429_and_5xx)
    session.hooks["response"].append(_bounded_body)
    if on_date is not None:
        def note_date(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            date = response.headers.get("Date")
            if date:
                on_date(date)

        # First: a 429 or 5xx raises in the hooks after it, and its Date counts too.
        session.hooks["response"].insert(0, note_date)
    return session


class _UserToken:
    """Stands in for spotipy's auth manager: the access token of the current thread's call.

    One ``spotipy.Spotify`` serves every user call; each worker thread sets the token of the
    call it runs, so concurrent calls with different tokens do not mix.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def set(self, token: str | None) -> None:
        self._local.token = token

    def get_access_token(self, as_dict: bool = False) -> str:
        token = getattr(self._local, "token", None)
        if not token:
            raise TokenRejected("no user access token was given for this call")
        return token


class SpotifyApi:
    """spotipy for one :class:`Config`: app calls, user calls, and the user token endpoint."""

    def __init__(self, config: Config):
        for name in ("spotipy.client", "spotipy.oauth2"):
            logging.getLogger(name).addFilter(_QUIET)  # a no-op when already there
        self.config = config
        # The Date header of Spotify's last answer (API or accounts service), or None.
        self.server_date: str | None = None
        self._session = _session(self._note_date)
        self._auth: SpotifyClientCredentials | None = None
        self._spotify: spotipy.Spotify | None = None
        if config.client_secret:
            self._auth = SpotifyClientCredentials(
                client_id=config.client_id, client_secret=config.client_secret,
                requests_session=self._session, requests_timeout=config.timeout,
                cache_handler=MemoryCacheHandler())
            self._auth.OAUTH_TOKEN_URL = self.token_url
            self._spotify = self._new_spotify(self._auth)
        self._user_token = _UserToken()
        self._user_spotify = self._new_spotify(self._user_token)

    @property
    def token_url(self) -> str:
        return f"{self.config.accounts_url.rstrip('/')}/api/token"

    @property
    def authorize_url_base(self) -> str:
        return f"{self.config.accounts_url.rstrip('/')}/authorize"

    def _new_spotify(self, auth_manager: Any) -> spotipy.Spotify:
        spotify = spotipy.Spotify(auth_manager=auth_manager, requests_session=self._session,
                                  requests_timeout=self.config.timeout, retries=0, status_retries=0)
        spotify.prefix = f"{self.config.api_url.rstrip('/')}/v1/"
        return spotify

    def call(self, request: Callable[[spotipy.Spotify], Any]) -> Any:
        """Return what ``request(spotify)`` returns with the app's token (parsed JSON, or None
        for a non-JSON body).

        A 401 (the access token expired or was revoked) drops the cached token and repeats the
        request once with a new one. Raises NotConfigured without a client secret, and
        RateLimited, AuthFailed, ApiError or ProviderError.
        """
        if self._auth is None or self._spotify is None:
            raise NotConfigured("Spotify has no client secret, so there is no app token")
        spotify, auth = self._spotify, self._auth
        with self._translated():
            try:
                return request(spotify)
            except SpotifyException as exc:
                if exc.http_status != 401:
                    raise
                log.info("Spotify refused the access token (%s); fetching a new one", _message(exc))
                auth.cache_handler.save_token_to_cache(None)
                return request(spotify)

    def call_as_user(self, access_token: str, request: Callable[[spotipy.Spotify], Any]) -> Any:
        """Return what ``request(spotify)`` returns, sent with a user's ``access_token``.

        Raises TokenRejected on a 401 (the caller renews the token and repeats the call), and
        RateLimited, ApiError or ProviderError like :meth:`call`.
        """
        self._user_token.set(access_token)
        try:
            with self._translated():
                try:
                    return request(self._user_spotify)
                except SpotifyException as exc:
                    if exc.http_status == 401:
                        raise TokenRejected(f"Spotify refused the account's access token "
                                            f"({_message(exc)})") from None
                    raise
        finally:
            self._user_token.set(None)

    def fresh_token(self) -> None:
        """Obtain a new app access token (the health probe); raise AuthFailed or ProviderError."""
        if self._auth is None:
            raise NotConfigured("Spotify has no client secret, so there is no app token")
        with self._translated():
            self._auth.get_access_token(as_dict=False, check_cache=False)

    def _note_date(self, date: str) -> None:
        self.server_date = date

    # --- a user's tokens ---------------------------------------------------------------------

    def _oauth(self, redirect_uri: str, scope: str, pkce: bool) -> SpotifyOAuth | SpotifyPKCE:
        """Return a spotipy OAuth helper pointed at the configured accounts service.

        Each gets its own session: spotipy closes its session when the helper is collected.
        """
        common: dict[str, Any] = dict(
            client_id=self.config.client_id, redirect_uri=redirect_uri, scope=scope,
            requests_session=_session(self._note_date), requests_timeout=self.config.timeout,
            cache_handler=MemoryCacheHandler(), open_browser=False)
        auth: SpotifyOAuth | SpotifyPKCE = (
            SpotifyPKCE(**common) if pkce
            else SpotifyOAuth(client_secret=self.config.client_secret, **common))
        auth.OAUTH_AUTHORIZE_URL = self.authorize_url_base
        auth.OAUTH_TOKEN_URL = self.token_url
        return auth

    def authorize_url(self, redirect_uri: str, state: str, scope: str,
                      code_verifier: str | None) -> str:
        """Return the address where the user approves access; with ``code_verifier``, a PKCE
        one (its S256 challenge is in the address). No I/O."""
        auth = self._oauth(redirect_uri, scope, pkce=code_verifier is not None)
        if isinstance(auth, SpotifyPKCE):
            auth.code_verifier = code_verifier
            auth.code_challenge = auth._get_code_challenge()
        return auth.get_authorize_url(state=state)

    def exchange_code(self, code: str, redirect_uri: str, scope: str,
                      code_verifier: str | None) -> dict[str, Any]:
        """Exchange an authorization code for tokens; return spotipy's token info
        (``access_token``, ``refresh_token``, ``expires_at``, ``scope`` …).

        Raises GrantRefused when Spotify refuses the code, AuthFailed for a wrong client id or
        secret, RateLimited or ProviderError.
        """
        auth = self._oauth(redirect_uri, scope, pkce=code_verifier is not None)
        with self._translated(user_grant=True):
            if isinstance(auth, SpotifyPKCE):
                auth.code_verifier = code_verifier
                auth.code_challenge = auth._get_code_challenge()
                auth.get_access_token(code=code, check_cache=False)
            else:
                auth.get_access_token(code=code, as_dict=False, check_cache=False)
            return _cached_token(auth)

    def refresh_user_token(self, refresh_token: str, scope: str, pkce: bool) -> dict[str, Any]:
        """Return new token info for a user's ``refresh_token`` (the old refresh token is kept
        in it when Spotify sends none). A PKCE login is refreshed without the client secret.

        Raises GrantRefused when Spotify refuses the refresh token (revoked, or the app's
        access withdrawn), AuthFailed, RateLimited or ProviderError.
        """
        # spotipy insists on a redirect URI although a refresh sends none.
        auth = self._oauth("http://127.0.0.1/unused", scope, pkce=pkce or not self.config.client_secret)
        with self._translated(user_grant=True):
            auth.refresh_access_token(refresh_token)
            return _cached_token(auth)

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def _translated(self, user_grant: bool = False) -> Iterator[None]:
        """Turn spotipy, requests and urllib3 failures into the core's errors.

        With ``user_grant``, a refused code or refresh token is GrantRefused rather than
        AuthFailed, so the caller can tell it from refused app credentials.
        """
        try:
            yield
        except _Throttled as exc:
            raise RateLimited(f"Spotify asked to slow down for {exc.retry_after:g} s",
                              exc.retry_after) from None
        except _ServerFailed as exc:
            raise ProviderError(f"{self._service(exc.url)} answered HTTP {exc.status}") from None
        except _TooLarge as exc:
            raise too_large(self._service(exc.url)) from None
        except SpotifyOauthError as exc:
            if user_grant and exc.error == "invalid_grant":
                raise GrantRefused(f"Spotify refused the grant ({exc.error_description or 'no reason'})",
                                   str(exc.error_description or "")) from None
            raise _oauth_error(exc) from None
        except SpotifyException as exc:
            raise _api_error(exc) from None
        except requests.Timeout as exc:
            raise ProviderError(f"{self._service(exc)} did not answer within "
                                f"{self.config.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise ProviderError(f"{self._service(exc)} could not be reached or closed the "
                                "connection") from None
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            # Non-JSON or half-formed answers: a token without expires_in, a cut-off body.
            log.debug("unexpected answer from Spotify", exc_info=True)
            raise ProviderError(f"{self._service(exc)} answered something that is not the "
                                f"expected JSON ({type(exc).__name__})") from None

    def _service(self, where: Exception | str) -> str:
        """Name the service a URL (or the request of a requests error) belongs to."""
        if isinstance(where, Exception):
            request = getattr(where, "request", None)
            where = getattr(request, "url", None) or ""
        if where and urlsplit(where).path.endswith("/api/token"):
            return f"Spotify's accounts service ({_origin(self.config.accounts_url)})"
        return f"Spotify ({_origin(self.config.api_url)})"


def _cached_token(auth: SpotifyOAuth | SpotifyPKCE) -> dict[str, Any]:
    token = auth.cache_handler.get_cached_token()
    if not token or not token.get("access_token"):
        raise ValueError("the token answer has no access_token")
    return dict(token)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _message(exc: SpotifyException) -> str:
    # spotipy's msg is "<url>:\n <message from the error body>"; the URL adds nothing here.
    return str(exc.msg).split("\n", 1)[-1].strip()


def _oauth_error(exc: SpotifyOauthError) -> ProviderError:
    if exc.error == "invalid_client":
        return AuthFailed("Spotify refused the client id/secret")
    if isinstance(exc.error, str) and exc.error in OAUTH_REFUSALS:
        return AuthFailed(f"Spotify refused the token request ({exc.error}: "
                          f"{exc.error_description or 'no description'})")
    return ProviderError("Spotify's accounts service did not issue a token")


def _api_error(exc: SpotifyException) -> ProviderError:
    status, message = exc.http_status, _message(exc)
    if status == 429:  # only without our session's hook, e.g. spotipy's own retry error
        return RateLimited("Spotify asked to slow down",
                           retry_after_seconds((exc.headers or {}).get("Retry-After"), DEFAULT_RETRY_AFTER))
    if status == 401:  # already after one retry with a new token
        return AuthFailed(f"Spotify refused a new access token ({message})")
    return ApiError(f"Spotify answered HTTP {status}: {message}", status)
