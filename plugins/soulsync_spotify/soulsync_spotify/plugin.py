"""The plugin's hooks: the ``spotify`` settings section and the Spotify provider.

The provider is one object in two roles, metadata provider and playlist source (it is also the
account login). The core calls the two hooks one after the other with the same settings and
accounts; both get the same object (:func:`soulsync_core.hooks.shared_provider`).
"""

from __future__ import annotations

from soulsync_core.hooks import (
    Accounts,
    MetadataProvider,
    PlaylistSource,
    Section,
    SettingsReader,
    hookimpl,
    shared_provider,
)
from soulsync_spotify.provider import SpotifyProvider
from soulsync_spotify.settings import SECTION


@shared_provider
def provider_for(settings: SettingsReader, accounts: Accounts) -> SpotifyProvider:
    """Return the provider of this settings/accounts pair, creating it on the first call."""
    return SpotifyProvider(settings, accounts)


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``spotify`` section (credentials, redirect address, addresses, pacing)."""
    return [SECTION]


@hookimpl
def metadata_providers(settings: SettingsReader, accounts: Accounts) -> list[MetadataProvider]:
    """Return the one Spotify provider; it reads its settings on every call."""
    return [provider_for(settings, accounts)]


@hookimpl
def playlist_sources(settings: SettingsReader, accounts: Accounts) -> list[PlaylistSource]:
    """Return the same Spotify provider as :func:`metadata_providers`."""
    return [provider_for(settings, accounts)]
