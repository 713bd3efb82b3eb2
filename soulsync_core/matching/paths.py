"""Reading a Soulseek remote path: the only metadata a search result carries.

``@@music\\Daft Punk\\Discovery (2001)\\CD1\\01 - One More Time.flac`` gives the folders, a
disc folder, the album folder ("Discovery", year removed), the track number and the title
part of the file name. File names come in many layouts ("01 - Title", "01. Artist - Title",
"1-01 Title", "Artist - Album - 01 - Title", "A1 Title"), so besides one best guess the parse
keeps every reading of the title (:attr:`RemotePath.title_spans`) for the scorer to try.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from soulsync_core.matching.quality import extension_of
from soulsync_core.matching.text import DASH, clean_album, fold, is_folder_noise, parse_title

_SEPARATORS = re.compile(r"[\\/]+")
_DISC_FOLDER = re.compile(r"^(?:cd|disc|disk|side)\s*(\d{1,2})\b")
_TRACK_PREFIX = re.compile(
    r"^(?:(?P<disc>\d{1,2})[-.](?=\d{2}\b))?(?P<track>\d{1,3}|[a-d]\d{1,2})"
    r"(?P<sep>\s*[-.)_]\s*|\s+)(?=\S)", re.IGNORECASE)
_NUMBER_SEGMENT = re.compile(r"^(?:(\d{1,2})[-.])?(\d{1,3}|[a-d]\d{1,2})$", re.IGNORECASE)

VARIOUS_FOLDERS = frozenset({"various artists", "various artist", "various", "va", "v a",
                             "compilations"})
UNKNOWN_FOLDERS = frozenset({"unknown artist", "unknown album", "unknown", "artist unknown"})


@dataclass(frozen=True)
class RemotePath:
    """What a remote path says about its file.

    ``folders`` runs from the share down, without the ``@@share`` marker or a drive letter.
    ``album_folder`` is the folder that names the album (a disc folder such as "CD1" is
    skipped), "" when the file sits at the root; ``album`` is it cleaned by
    :func:`clean_album`; ``artist_folder`` is the folder above it ("" when none).
    ``folder_artists`` are the names that may be the artist, closest first: the album
    folder's "Artist - Album" prefix, up to two folders above it, and last the album folder
    itself (files are often kept straight in an artist folder). ``title`` and ``artist`` are
    the best guess from the file name (``artist`` "" when it has none).
    ``title_spans`` are all readings of the title, each with the file-name segments before it.
    """

    path: str
    folders: tuple[str, ...]
    filename: str
    extension: str
    track_number: int | None
    disc_number: int | None
    title: str
    artist: str
    album_folder: str
    album: str
    artist_folder: str
    folder_artists: tuple[str, ...]
    title_spans: tuple[tuple[str, tuple[str, ...]], ...]

    def special_folder(self) -> str | None:
        """Return the album or artist folder named like "Various Artists" or "Unknown Artist".

        Checks the album folder (also its "VA - " prefix) and the folder above it, not the
        share's upper folders, where a "Various" folder just means miscellaneous music.
        Returns None when neither is such a folder.
        """
        prefixes = DASH.split(self.album_folder)[:-1]
        for folder in (self.artist_folder, *prefixes, self.album_folder):
            folded = fold(folder) if folder else ""
            if folded in VARIOUS_FOLDERS or folded in UNKNOWN_FOLDERS:
                return folder
            if folded.startswith(("va ", "various artists ")) and folder == self.album_folder:
                return folder
        return None


def _track(text: str) -> int:
    return int(text) if text.isdigit() else int(text[1:])


def _stem_parts(stem: str) -> tuple[list[str], list[str], int | None, int | None, str | None]:
    """Split a file stem into (segments before the number, title segments, track, disc, raw).

    ``raw`` is the stem with its number when the number was followed only by a space, since
    "99 Luftballons" may be a title rather than track 99.
    """
    if "_" in stem and " " not in stem.strip():
        stem = stem.replace("_", " ")
        if not DASH.search(stem):
            stem = stem.replace("-", " - ")
    segments = DASH.split(stem.strip())
    for index, segment in enumerate(segments):
        number = _NUMBER_SEGMENT.match(segment)
        if number and index + 1 < len(segments):
            disc = int(number.group(1)) if number.group(1) else None
            return segments[:index], segments[index + 1:], _track(number.group(2)), disc, None
        match = _TRACK_PREFIX.match(segment)
        if match:
            disc = int(match.group("disc")) if match.group("disc") else None
            raw = " - ".join(segments[index:]) if not match.group("sep").strip() else None
            rest = [segment[match.end():], *segments[index + 1:]]
            return segments[:index], rest, _track(match.group("track")), disc, raw
    return [], segments, None, None, None


def parse_remote_path(path: str) -> RemotePath:
    """Return what ``path`` (backslashes or slashes) says about its file. Never raises."""
    parts = [p for p in _SEPARATORS.split(path.strip()) if p]
    filename = parts[-1] if parts else ""
    folders = tuple(p for p in parts[:-1] if not p.startswith("@@") and not re.match(r"^[a-z]:$", p, re.I))
    extension = extension_of(filename)
    stem = filename[: -len(extension) - 1] if extension else filename

    disc_number: int | None = None
    album_index = len(folders) - 1
    if folders:
        disc = _DISC_FOLDER.match(fold(folders[-1]).replace(" ", ""))
        if disc and len(folders) > 1:
            disc_number = int(disc.group(1))
            album_index -= 1
    album_folder = folders[album_index] if album_index >= 0 else ""
    album_parts = [p for p in DASH.split(album_folder) if p.strip() and not is_folder_noise(p)]
    album = clean_album(album_parts[-1]) if album_parts else ""
    prefixes = [clean_album(p) for p in album_parts[:-1]]
    above = [clean_album(f) for f in reversed(folders[max(0, album_index - 2):max(album_index, 0)])]
    # Files sitting straight in an artist folder make the "album" folder the artist's.
    folder_artists = tuple(dict.fromkeys(p for p in (*prefixes, *above, album) if fold(p)))

    before, title_segments, track, disc_from_name, raw = _stem_parts(stem)
    title_segments = [s for s in title_segments if s.strip()] or [stem]
    spans: list[tuple[str, tuple[str, ...]]] = []
    for index in range(len(title_segments)):
        spans.append((" - ".join(title_segments[index:]), (*before, *title_segments[:index])))
    if raw:
        spans.append((raw, tuple(before)))
    # After version and noise suffixes are set aside, a second segment means the first one
    # is most often the artist ("Daft Punk - One More Time"), not part of the title.
    guess = 1 if len(DASH.split(parse_title(spans[0][0]).base)) > 1 else 0
    title, artist_segments = spans[guess]
    return RemotePath(
        path=path, folders=folders, filename=filename, extension=extension,
        track_number=track, disc_number=disc_number if disc_number is not None else disc_from_name,
        title=title, artist=artist_segments[0] if artist_segments else "",
        album_folder=album_folder, album=album,
        artist_folder=folders[album_index - 1] if album_index >= 1 else "", folder_artists=folder_artists,
        title_spans=tuple(spans),
    )
