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
)
from soulsync_tidal.provider import TidalProvider
from soulsync_tidal.settings import SECTION

# The provider made for the last (settings, accounts) pair. The core calls the provider hooks
# one after the other for one configuration, so both hooks get the same object.
_last: tuple[SettingsReader, Accounts, TidalProvider] | None = None


def _provider(settings: SettingsReader, accounts: Accounts) -> TidalProvider:
    global _last
    if _last is None or _last[0] is not settings or _last[1] is not accounts:
        _last = (settings, accounts, TidalProvider(settings, accounts.store("tidal")))
    return _last[2]


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
