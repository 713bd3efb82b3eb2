"""Hook implementations of the ``hydrabase`` plugin: its settings section and its provider."""

from __future__ import annotations

from soulsync_core.hooks import MetadataProvider, Section, SettingsReader, hookimpl
from soulsync_hydrabase.provider import HydrabaseProvider
from soulsync_hydrabase.settings import SECTION


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``hydrabase`` section (url, api_key, timeout_seconds)."""
    return [SECTION]


@hookimpl
def metadata_providers(settings: SettingsReader) -> list[MetadataProvider]:
    """Return the ``hydrabase`` provider; it reports itself unconfigured without a URL."""
    return [HydrabaseProvider(settings)]
