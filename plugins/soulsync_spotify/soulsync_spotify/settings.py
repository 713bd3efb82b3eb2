"""The ``spotify`` settings section: app credentials, service addresses, pacing, timeout."""

from __future__ import annotations

from soulsync_core.hooks import Section, Setting


def _check_url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return f"{value!r} must be an http:// or https:// address"
    return None


SECTION = Section("spotify", (
    Setting("spotify.client_id", str, "",
            "Client ID of your Spotify app (developer.spotify.com, Dashboard). No user login is "
            "needed: SoulSync uses the app's client-credentials token."),
    Setting("spotify.client_secret", str, "", "Client secret of the same Spotify app.",
            secret=True),
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
), "Spotify as a metadata source.")
