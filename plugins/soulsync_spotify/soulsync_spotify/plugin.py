"""The plugin's hooks: the ``spotify`` settings section and the Spotify provider.

The provider is one object in two roles, metadata provider and playlist source (it is also the
account login). The core calls the two hooks one after the other with the same settings and
accounts; both get the same object, remembered only as long as something else holds it.
"""

from __future__ import annotations

import weakref

from soulsync_core.hooks import (
    Accounts,
    MetadataProvider,
    PlaylistSource,
    Section,
    SettingsReader,
    hookimpl,
)
from soulsync_spotify.provider import SpotifyProvider
from soulsync_spotify.settings import SECTION

# (id(settings), id(accounts)) -> provider. The provider holds both objects, so while an
# entry lives neither id can be reused by another object.
_providers: weakref.WeakValueDictionary[tuple[int, int], SpotifyProvider] = (
    weakref.WeakValueDictionary())


def provider_for(settings: SettingsReader, accounts: Accounts) -> SpotifyProvider:
    """Return the provider of this settings/accounts pair, creating it on the first call."""
    key = (id(settings), id(accounts))
    provider = _providers.get(key)
    if provider is None:
        provider = SpotifyProvider(settings, accounts)
        _providers[key] = provider
    return provider


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
