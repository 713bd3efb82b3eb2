"""Where slskd saves a completed download, and finding it there without leaving the folder.

slskd (0.18 to 0.26, default settings) saves a remote path as
``<downloads>/<last remote directory>/<file name>``: the path is split on ``\\`` and ``/``, only
the last two parts are kept, characters that are invalid in a file name on slskd's system
become ``_`` (only NUL on Linux; ``<>:"|?*`` and control characters too on Windows), and when
the file exists already the new one is saved as ``<stem>_<DateTime.Ticks>.<ext>``.

The functions here are blocking (they list folders); callers run them in a thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SEPARATORS = re.compile(r"[\\/]")
_WINDOWS_INVALID = re.compile(r'[<>:"|?*\x00-\x1f]')
_UNSAFE = ("", ".", "..")


def relative_parts(remote_filename: str) -> tuple[str, str] | None:
    """Return ``(last directory or "", file name)`` of a remote path, as slskd keeps them.

    None when the path cannot name a file inside the downloads folder: an empty file name, or a
    ``.``/``..`` part (slskd refuses to enqueue those, so no such file was written there).
    """
    parts = _SEPARATORS.split(remote_filename)
    name = parts[-1]
    directory = parts[-2] if len(parts) > 1 else ""
    if name in _UNSAFE or directory in (".", ".."):
        return None
    return directory, name


def _spellings(part: str) -> list[str]:
    """The ways slskd may have written ``part``: sanitised for Linux, and for Windows."""
    linux = part.replace("\x00", "_")
    windows = _WINDOWS_INVALID.sub("_", part)
    return [linux] if windows == linux else [linux, windows]


def _name_pattern(name: str) -> re.Pattern[str]:
    """Match ``name`` and its clash variants ``<stem>_<digits><.ext>``."""
    stem, dot, extension = name.rpartition(".") if "." in name[1:] else (name, "", "")
    return re.compile(re.escape(stem) + r"(?:_\d+)?" + re.escape(dot + extension))


class Unusable(Exception):
    """The file may be there but must not or cannot be used; ``str()`` says why."""


class OutsideDownloads(Unusable):
    """The file is there, but reached through a symbolic link that leaves the downloads folder;
    ``str()`` names the link and where it leads."""


class FolderUnreadable(Unusable):
    """A folder the file would be in may not be listed by SoulSync's user; ``str()`` names it."""


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def find_download(download_root: str | Path, remote_filename: str, size: int = 0) -> Path | None:
    """Return the file slskd saved for ``remote_filename`` under ``download_root``, or None.

    Among the file and its ``_<digits>`` clash variants, those of exactly ``size`` bytes (when
    ``size`` > 0) come first, then the newest. The result always resolves to a path inside
    ``download_root``, whatever the remote path holds (``..``, absolute paths, symbolic links).
    Raises OutsideDownloads when the only such files lie through a symbolic link out of it,
    FolderUnreadable when a folder to look in may not be listed (and nothing was found).
    """
    relative = relative_parts(remote_filename)
    root = Path(download_root).expanduser()
    if relative is None or not root.is_dir():
        return None
    real_root = root.resolve()
    directory, name = relative
    patterns = [_name_pattern(spelling) for spelling in _spellings(name)]
    found: list[tuple[bool, int, Path]] = []
    outside: list[Path] = []
    forbidden: list[tuple[Path, PermissionError]] = []
    for folder_name in _spellings(directory) if directory else [""]:
        folder = root / folder_name if folder_name else root
        try:
            entries = list(os.scandir(folder))
        except PermissionError as exc:
            forbidden.append((folder, exc))
            continue
        except OSError:
            continue
        for entry in entries:
            if not any(pattern.fullmatch(entry.name) for pattern in patterns):
                continue
            path = folder / entry.name
            try:
                stat = entry.stat()
            except OSError:
                continue
            if not entry.is_file():
                continue
            if _inside(path, real_root):
                found.append((size > 0 and stat.st_size == size, stat.st_mtime_ns, path))
            else:
                outside.append(path)
    if not found:
        if outside:
            raise OutsideDownloads(_leaving(outside[0], root))
        if forbidden:
            folder, exc = forbidden[0]
            raise FolderUnreadable(f"SoulSync may not look into {folder} ({exc.strerror}): give its "
                                   f"user read access to slskd's downloads folder {root} and the "
                                   "folders slskd makes in it")
        return None
    return max(found, key=lambda item: (item[0], item[1]))[2]


def _leaving(path: Path, root: Path) -> str:
    """Say which symbolic link takes ``path`` (below ``root``) out of the downloads folder."""
    link = next((p for p in (path.parent, path) if p != root and p.is_symlink()), path)
    try:
        target = f" (to {os.readlink(link)})"
    except OSError:
        target = ""
    return (f"it was saved as {path}, and {link} is a symbolic link leading out of slskd's "
            f"downloads folder {root}{target}; SoulSync reads nothing outside that folder, so the "
            f"file was left there: make {link} a real folder or file inside {root}")
