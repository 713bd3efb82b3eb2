"""Hook implementations of the TIDAL plugin (entry point ``tidal`` in ``soulsync.plugins``).

The same :class:`TidalProvider` is returned as metadata provider and playlist source, so one
session, one rate limit and one account serve both.
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
from soulsync_tidal.provider import TidalProvider
from soulsync_tidal.settings import SECTION


@shared_provider
def _provider(settings: SettingsReader, accounts: Accounts) -> TidalProvider:
    return TidalProvider(settings, accounts.store("tidal"))


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``tidal`` section (credentials, addresses, country, pacing, timeout)."""
    return [SECTION]


@hookimpl
def metadata_providers(settings: SettingsReader, accounts: Accounts) -> list[MetadataProvider]:
    """Return the ``tidal`` provider (catalogue search, discographies, album tracks)."""
    return [_provider(settings, accounts)]


@hookimpl
def playlist_sources(settings: SettingsReader, accounts: Accounts) -> list[PlaylistSource]:
    """Return the same ``tidal`` provider as the playlist source of the connected account."""
    return [_provider(settings, accounts)]
