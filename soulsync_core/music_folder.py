"""The rule every writer into the music folder follows: it must exist already.

An absent ``library.music_dir`` is usually an unmounted share or a typo; creating it would
fill the wrong disk (``~/Music/Playlists/…`` on the system drive) and make the next scan
"succeed" on an empty folder. So nothing creates it: the scanner refuses to scan, and playlist
sync and wishlist runs fail with the same message (:func:`require_music_folder`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from soulsync_core.jobs import JobFailed
from soulsync_core.library.scanner import missing_folder_message


class MusicFolderMissing(JobFailed):
    """The music folder (or the folder a playlist goes in) does not exist; ``str()`` says which
    and what to set."""


async def require_music_folder(root: Path, inside: Path | None = None) -> None:
    """Raise MusicFolderMissing unless ``root`` is a folder and, when given, the parent of
    ``inside`` (a folder about to be created, such as the playlists folder) exists too."""
    if not await asyncio.to_thread(root.is_dir):
        raise MusicFolderMissing(missing_folder_message(root))
    if inside is not None and not await asyncio.to_thread(inside.parent.is_dir):
        raise MusicFolderMissing(
            f"The folder {inside.parent} (where the playlists folder {inside.name} goes) does "
            "not exist. Create it, or set library.playlists_dir to an existing folder.")
