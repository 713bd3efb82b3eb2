"""Hook implementations of the iTunes plugin (entry point ``itunes`` in ``soulsync.plugins``)."""

from __future__ import annotations

from soulsync_core.hooks import MetadataProvider, Section, SettingsReader, hookimpl
from soulsync_itunes.provider import ITunesProvider
from soulsync_itunes.settings import SECTION


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``itunes`` section: base_url, country, requests_per_minute, timeout_seconds."""
    return [SECTION]


@hookimpl
def metadata_providers(settings: SettingsReader) -> list[MetadataProvider]:
    """Return the ``itunes`` provider."""
    return [ITunesProvider(settings)]
