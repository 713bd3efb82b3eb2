"""spotipy set up for one configuration, with every failure turned into a ProviderError.

Everything here is synchronous (spotipy uses ``requests``) and runs in worker threads. The
session never retries and never sleeps: a 429 surfaces at once as :class:`RateLimited` so the
core can cool the provider down, instead of a thread sleeping through ``Retry-After``.
"""

from __future__ import annotations

import logging
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
from spotipy.oauth2 import SpotifyClientCredentials
from urllib3.util.retry import Retry

from soulsync_core.hooks import AuthFailed, ProviderError, RateLimited, retry_after_seconds

log = logging.getLogger(__name__)

# Spotify's rate limit is a rolling 30-second window; used when a 429 has no Retry-After.
DEFAULT_RETRY_AFTER = 30.0
# Error codes of RFC 6749 §5.2 that mean "these credentials or this grant are refused".
OAUTH_REFUSALS = frozenset({"invalid_client", "invalid_grant", "invalid_request",
                            "unauthorized_client", "unsupported_grant_type", "invalid_scope"})


@dataclass(frozen=True)
class Config:
    """What a client is built from; a change to any of it means a new client."""

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


def _session() -> requests.Session:
    session = requests.Session()
    # No retries at all: urllib3 would otherwise sleep for Retry-After inside the call.
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False, respect_retry_after_header=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_stop_on_429_and_5xx)
    return session


class SpotifyApi:
    """A spotipy client with client-credentials auth for one :class:`Config`."""

    def __init__(self, config: Config):
        for name in ("spotipy.client", "spotipy.oauth2"):
            logging.getLogger(name).addFilter(_QUIET)  # a no-op when already there
        self.config = config
        self._session = _session()
        self._auth = SpotifyClientCredentials(
            client_id=config.client_id, client_secret=config.client_secret,
            requests_session=self._session, requests_timeout=config.timeout,
            cache_handler=MemoryCacheHandler())
        self._auth.OAUTH_TOKEN_URL = f"{config.accounts_url.rstrip('/')}/api/token"
        self._spotify = spotipy.Spotify(auth_manager=self._auth, requests_session=self._session,
                                        requests_timeout=config.timeout, retries=0,
                                        status_retries=0)
        self._spotify.prefix = f"{config.api_url.rstrip('/')}/v1/"

    def call(self, request: Callable[[spotipy.Spotify], Any]) -> Any:
        """Return what ``request(spotify)`` returns (parsed JSON, or None for a non-JSON body).

        A 401 (the access token expired or was revoked) drops the cached token and repeats the
        request once with a new one. Raises RateLimited, AuthFailed or ProviderError.
        """
        with self._translated():
            try:
                return request(self._spotify)
            except SpotifyException as exc:
                if exc.http_status != 401:
                    raise
                log.info("Spotify refused the access token (%s); fetching a new one", _message(exc))
                self._auth.cache_handler.save_token_to_cache(None)
                return request(self._spotify)

    def fresh_token(self) -> None:
        """Obtain a new access token (the health probe); raise AuthFailed or ProviderError."""
        with self._translated():
            self._auth.get_access_token(as_dict=False, check_cache=False)

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Turn spotipy, requests and urllib3 failures into the core's errors."""
        try:
            yield
        except _Throttled as exc:
            raise RateLimited(f"Spotify asked to slow down for {exc.retry_after:g} s",
                              exc.retry_after) from None
        except _ServerFailed as exc:
            raise ProviderError(f"{self._service(exc.url)} answered HTTP {exc.status}") from None
        except SpotifyOauthError as exc:
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
    return ProviderError(f"Spotify answered HTTP {status}: {message}")
