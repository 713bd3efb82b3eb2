"""Hook implementations of the slskd plugin (entry point ``slskd`` in ``soulsync.plugins``)."""

from __future__ import annotations

from soulsync_core.hooks import DownloadClient, Section, SettingsReader, hookimpl
from soulsync_slskd.client import SlskdClient
from soulsync_slskd.settings import SECTION


@hookimpl
def settings_sections() -> list[Section]:
    """Return the ``soulseek`` section: where slskd is, its key, its download folder, pacing."""
    return [SECTION]


@hookimpl
def download_clients(settings: SettingsReader) -> list[DownloadClient]:
    """Return the ``soulseek`` download client."""
    return [SlskdClient(settings)]
