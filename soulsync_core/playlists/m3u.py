"""Writing M3U8 playlist files that media servers (Navidrome, Jellyfin, Plex) import.

Entries are paths relative to the playlist file's folder, with ``/`` separators, so the
playlist keeps working when the music folder is mounted elsewhere (a NAS share, a container).
Files are UTF-8 (that is what the ``8`` means) and replaced atomically: a media server that
reads the playlist while SoulSync writes it sees the old or the new version, never half.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from soulsync_core.downloads.naming import sanitize_component

HEADER = "#EXTM3U"


@dataclass(frozen=True)
class Entry:
    """One playlist line: the track's file, its length in seconds (-1 unknown) and its label."""

    path: str
    seconds: int
    label: str


def file_name(playlist_name: str) -> str:
    """Return the file name for a playlist: its name made safe for any filesystem, + ``.m3u8``."""
    return sanitize_component(playlist_name.strip(), fallback="Playlist", max_bytes=200) + ".m3u8"


def relative_entry(playlist_file: Path, track_file: str) -> str:
    """Return ``track_file`` relative to the playlist's folder, ``/``-separated."""
    relative = os.path.relpath(track_file, playlist_file.parent)
    return relative.replace(os.sep, "/")


def read_entries(playlist_file: Path) -> list[Entry]:
    """Return the entries of an existing playlist file, [] when there is none.

    A path without an ``#EXTINF`` line before it gets length -1 and its file name as label.
    """
    try:
        text = playlist_file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    entries: list[Entry] = []
    info: tuple[int, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            length, _, label = line[len("#EXTINF:"):].partition(",")
            try:
                info = (int(float(length)), label)
            except ValueError:
                info = (-1, label)
        elif line and not line.startswith("#"):
            seconds, label = info or (-1, Path(line).stem)
            entries.append(Entry(line, seconds, label))
            info = None
    return entries


def render(entries: Iterable[Entry]) -> str:
    """Return the text of an extended M3U8 file holding ``entries`` in order."""
    lines = [HEADER]
    for entry in entries:
        lines.append(f"#EXTINF:{entry.seconds},{entry.label.replace(chr(10), ' ')}")
        lines.append(entry.path)
    return "\n".join(lines) + "\n"


def _replace(playlist_file: Path, text: str) -> None:
    """Replace ``playlist_file`` with ``text`` atomically. Blocking.

    The data reaches the disk before the rename: a power cut right after it must not leave
    an empty playlist under the real name (the rename can be on disk before the data).
    """
    temporary = playlist_file.with_name(f".{playlist_file.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, playlist_file)


def write_playlist(playlist_file: Path, entries: Sequence[Entry], *, append: bool) -> int:
    """Write the playlist and return how many entries it holds.

    ``append`` keeps every entry already in the file (also ones the user added by hand) and
    adds the new paths after them; otherwise the file holds exactly ``entries``. The playlist's
    folder is created, never its parents (FileNotFoundError: see
    :mod:`soulsync_core.music_folder`). Blocking: run it in a thread.
    """
    playlist_file.parent.mkdir(exist_ok=True)
    if append:
        kept = read_entries(playlist_file)
        known = {entry.path for entry in kept}
        entries = [*kept, *(e for e in entries if e.path not in known)]
    _replace(playlist_file, render(entries))
    return len(entries)


def retarget(playlist_file: Path, old_file: str, new_file: str) -> int:
    """Point the playlist's entries for ``old_file`` at ``new_file`` (a track whose file was
    replaced under another name, e.g. ``.mp3`` -> ``.flac``); return how many changed.

    Other lines, comments included, stay as they are; the file is replaced atomically and only
    when an entry changed. Blocking: run it in a thread.
    """
    try:
        lines = playlist_file.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        return 0
    old_entry = relative_entry(playlist_file, old_file)
    new_entry = relative_entry(playlist_file, new_file)
    changed = 0
    for index, line in enumerate(lines):
        # Entries SoulSync writes are relative; a hand-made playlist may hold absolute paths.
        if line.strip() in (old_entry, old_file):
            lines[index] = new_file if line.strip() == old_file else new_entry
            changed += 1
    if changed:
        _replace(playlist_file, "\n".join(lines) + "\n")
    return changed
