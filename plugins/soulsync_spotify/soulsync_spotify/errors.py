"""Failures the client reports in more detail than the core's errors, for the provider to act on.

They live apart from :mod:`soulsync_spotify.client` so the provider can catch them without
importing spotipy (which the client module does, and which is loaded only when needed).
"""

from __future__ import annotations

from soulsync_core.hooks import ProviderError


class ApiError(ProviderError):
    """The Web API answered an error status (not 401 or 429); ``status`` says which."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class TokenRejected(ProviderError):
    """The Web API answered 401 to a user's access token: it expired early or was revoked."""


class GrantRefused(ProviderError):
    """The accounts service refused an authorization code or refresh token (``invalid_grant``).

    ``description`` is the service's ``error_description`` (e.g. "Invalid authorization code").
    """

    def __init__(self, message: str, description: str):
        super().__init__(message)
        self.description = description
