"""The ``spotify`` settings section: app credentials, the login's redirect address, service
addresses, pacing, timeout."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting


def _check_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return f"{value!r} must be an http:// or https:// address"
    return None


def _check_redirect_uri(value: str) -> str | None:
    # Empty: the daemon's own callback (http://127.0.0.1:<port>/auth/spotify/callback).
    return _check_url(value) if value.strip() else None


SECTION = Section("spotify", (
    Setting("spotify.client_id", str, "",
            "Client ID of your Spotify app (developer.spotify.com, Dashboard). Searches use the "
            "app's own token when a client secret is set; playlists and liked songs need a user "
            "login (`soulsync auth spotify` or /api/v1/auth/spotify), which also serves searches "
            "when there is no secret."),
    Setting("spotify.client_secret", str, "",
            "Client secret of the same Spotify app. Empty: the user login uses PKCE, and searches "
            "use the user's token.", secret=True),
    Setting("spotify.redirect_uri", str, "",
            "Where Spotify sends the browser after the login; it must be registered as a Redirect "
            "URI of the app. Empty: the daemon's own callback, "
            "http://127.0.0.1:<port>/auth/spotify/callback (Spotify accepts plain http only for "
            "the loopback IP 127.0.0.1, never for localhost).", check=_check_redirect_uri),
    Setting("spotify.api_url", str, "https://api.spotify.com",
            "Address of the Spotify Web API (change it only for a proxy or a local fake).",
            check=_check_url),
    Setting("spotify.accounts_url", str, "https://accounts.spotify.com",
            "Address of the Spotify accounts service that issues access tokens.",
            check=_check_url),
    Setting("spotify.requests_per_minute", int, 120,
            "Most Web API requests SoulSync sends to Spotify per minute.",
            minimum=1, maximum=6000),
    Setting("spotify.timeout_seconds", float, 10.0,
            "How long one HTTP request to Spotify may take.", minimum=0.1, maximum=120),
), "Spotify as a metadata source and as a source of the user's playlists.")
