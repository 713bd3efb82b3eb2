"""The ``tidal`` settings section: the app's credentials, TIDAL's addresses, pacing, timeout."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting


def _check_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return f"{value!r} must be an http:// or https:// address"
    return None


def _check_optional_url(value: str) -> str | None:
    return _check_url(value) if value else None


def _check_country(value: str) -> str | None:
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        return "must be a two-letter ISO country code such as US, GB or NO"
    return None


SECTION = Section("tidal", (
    Setting("tidal.client_id", str, "",
            "Client ID of your app at developer.tidal.com (Dashboard). Enough for logging in a "
            "TIDAL account (authorization code with PKCE)."),
    Setting("tidal.client_secret", str, "",
            "Client secret of the same app; optional. With it, catalogue search works without a "
            "logged-in account (client-credentials token).", secret=True),
    Setting("tidal.api_url", str, "https://openapi.tidal.com/v2",
            "Address of TIDAL's developer API (change it only for a proxy or a local fake).",
            check=_check_url),
    Setting("tidal.auth_url", str, "https://auth.tidal.com/v1/oauth2",
            "Address of TIDAL's OAuth service; tokens come from <auth_url>/token.",
            check=_check_url),
    Setting("tidal.login_url", str, "https://login.tidal.com",
            "Address of TIDAL's login pages; a login opens <login_url>/authorize.",
            check=_check_url),
    Setting("tidal.redirect_uri", str, "",
            "Where TIDAL sends the browser back after a login; it must be listed among the app's "
            "redirect URIs. Empty: the daemon's own /auth/tidal/callback.",
            check=_check_optional_url),
    Setting("tidal.country_code", str, "US",
            "Country (two-letter code) whose catalogue is read; tracks not available there are "
            "left out of playlists.", check=_check_country),
    Setting("tidal.requests_per_second", int, 4,
            "Most API requests SoulSync sends to TIDAL per second.", minimum=1, maximum=100),
    Setting("tidal.timeout_seconds", float, 10.0,
            "How long one HTTP request to TIDAL may take, connecting included.",
            minimum=0.1, maximum=120),
), "TIDAL: a user's playlists (after a login) and catalogue search.")
