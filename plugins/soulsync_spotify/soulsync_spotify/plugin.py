"""The plugin's hooks: the ``spotify`` settings section and the Spotify metadata provider."""

from __future__ import annotations

from soulsync_core.hooks import MetadataProvider, Section, SettingsReader, hookimpl
from soulsync_spotify.provider import SpotifyProvider
from soulsync_spotify.settings import SECTION


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``spotify`` section (credentials, addresses, pacing, timeout)."""
    return [SECTION]


@hookimpl
def metadata_providers(settings: SettingsReader) -> list[MetadataProvider]:
    """Return the one Spotify provider; it reads its settings on every call."""
    return [SpotifyProvider(settings)]
