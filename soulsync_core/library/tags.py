"""Reading one audio file: tags and stream properties with mutagen, path fallback, folding.

:func:`read_track` is blocking (it opens and parses the file) and is meant to run in a worker
thread; it returns a :class:`TrackRecord` ready for the store, with every folded and grouping
column already computed so that the event loop only moves finished rows.

Tags are read through mutagen's native interfaces (ID3 frames, Vorbis comments, MP4 atoms)
rather than its "easy" wrappers, because the custom provider-id tags below are not in the
easy key sets. The tag names that SoulSync writes itself on import are listed in
:data:`PROVIDER_TAGS`; the import pipeline must write exactly these.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from soulsync_core.library.folding import fold, letter_of, name_key, normalize

# Lower-case file extensions the scanner picks up; anything else in the music folder is ignored.
AUDIO_EXTENSIONS = frozenset({".flac", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".wav", ".aif",
                              ".aiff", ".aifc"})



@functools.cache
def _file_types() -> list[Any]:
    # mutagen is imported on first use (in a scan or import thread), not at daemon start-up,
    # where it would cost ~0.1 s and memory for nothing until a file is read.
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    return [FLAC, MP3, MP4, OggVorbis, OggOpus, WAVE, AIFF]


def open_audio(path: str) -> Any:
    """Return the mutagen file object of ``path`` (one of the formats SoulSync reads).

    Raises :class:`UnreadableFile` when it cannot be opened or parsed, or is another format.
    Blocking: call it from a thread.
    """
    import mutagen

    try:
        audio = mutagen.File(path, options=_file_types())
    except Exception as exc:
        # mutagen raises many types (MutagenError, struct.error, EOFError, OSError …) for
        # damaged files; any of them means "skip this file", never "stop the scan".
        raise UnreadableFile(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
    if audio is None:
        raise UnreadableFile("not a FLAC, MP3, M4A, OGG Vorbis, Opus, WAV or AIFF file")
    return audio

_FORMATS = {"FLAC": "FLAC", "MP3": "MP3", "OggVorbis": "OGG", "OggOpus": "OPUS", "WAVE": "WAV",
            "AIFF": "AIFF"}
_LOSSLESS = frozenset({"FLAC", "ALAC", "WAV", "AIFF"})

UNKNOWN_ARTIST = "Unknown Artist"
UNKNOWN_ALBUM = "Unknown Album"
VARIOUS_ARTISTS = "Various Artists"
_VARIOUS = frozenset({"various artists", "various", "va", "v.a.", "v/a"})
RECORD_TYPES = frozenset({"album", "single", "ep", "compilation"})

# Custom tags SoulSync writes on import, by the column they fill. Written as ``TXXX:<name>`` in
# ID3 (MP3, WAV, AIFF), ``<name>`` in Vorbis comments (FLAC, OGG, Opus) and
# ``----:com.apple.iTunes:<name>`` in MP4; matched case-insensitively when read.
PROVIDER_TAGS: dict[str, str] = {
    "spotify_track_id": "SPOTIFY_TRACK_ID",
    "spotify_album_id": "SPOTIFY_ALBUM_ID",
    "spotify_artist_id": "SPOTIFY_ARTIST_ID",
    "itunes_track_id": "ITUNES_TRACK_ID",
    "itunes_album_id": "ITUNES_ALBUM_ID",
    "itunes_artist_id": "ITUNES_ARTIST_ID",
    "deezer_track_id": "DEEZER_TRACK_ID",
    "deezer_album_id": "DEEZER_ALBUM_ID",
    "deezer_artist_id": "DEEZER_ARTIST_ID",
}

# Native tag names -> the generic names used below. Vorbis comments already use the generic
# names (lower-cased), so they need only their few variants.
_ID3_FRAMES = {"TIT2": "title", "TPE1": "artist", "TPE2": "albumartist", "TALB": "album",
               "TRCK": "tracknumber", "TPOS": "discnumber", "TDRC": "date", "TDOR": "originaldate",
               "TSRC": "isrc", "TBPM": "bpm", "TCMP": "compilation"}
_DESCRIPTIONS = {"musicbrainz artist id": "musicbrainz_artistid",
                 "musicbrainz album artist id": "musicbrainz_albumartistid",
                 "musicbrainz album id": "musicbrainz_albumid",
                 "musicbrainz track id": "musicbrainz_trackid",
                 "musicbrainz album type": "releasetype"}
_VORBIS_VARIANTS = {"album artist": "albumartist", "album_artist": "albumartist",
                    "year": "date", "tracknum": "tracknumber"}
_MP4_ATOMS = {"\xa9nam": "title", "\xa9ART": "artist", "aART": "albumartist", "\xa9alb": "album",
              "\xa9day": "date", "\xa9gen": "genre"}
_MP4_FREEFORM = "----:com.apple.iTunes:"

_LEADING_NUMBER = re.compile(r"^\s*(\d+)")
_YEAR = re.compile(r"(\d{4})")
_FILE_NAME = re.compile(r"^(?:(?P<disc>\d)-)?(?P<number>\d{1,3})(?:\s*[-._]\s*|\s+)(?P<title>.+)$")
_DISC_FOLDER = re.compile(r"^(?:cd|disc|disk)\s*[-_.]?\s*(\d{1,2})$", re.IGNORECASE)


class UnreadableFile(Exception):
    """The file cannot be opened or is not valid audio of a supported format; ``str()`` says why."""


@dataclass(slots=True)
class TrackRecord:
    """Everything the store needs for one file: location, stat, tags and their derived keys.

    ``artist`` is the album's artist (album artist tag, else artist tag, else the path);
    ``track_artist`` is the track's own artist tag. Folded columns are ASCII lower case.
    """

    folder: str
    file_name: str
    file_size: int
    file_mtime: int
    title: str
    artist: str
    track_artist: str
    album: str
    format: str
    track_number: int | None = None
    disc_number: int = 1
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    duration: int | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
    bpm: float | None = None
    record_type: str = "album"
    musicbrainz_artist_id: str | None = None
    musicbrainz_release_id: str | None = None
    musicbrainz_recording_id: str | None = None
    isrc: str | None = None
    spotify_track_id: str | None = None
    spotify_album_id: str | None = None
    spotify_artist_id: str | None = None
    itunes_track_id: str | None = None
    itunes_album_id: str | None = None
    itunes_artist_id: str | None = None
    deezer_track_id: str | None = None
    deezer_album_id: str | None = None
    deezer_artist_id: str | None = None
    # Derived keys, filled by finish().
    artist_key: str = ""
    artist_fold: str = ""
    artist_letter: str = ""
    album_key: str = ""
    album_fold: str = ""
    release_key: str = ""
    title_fold: str = ""
    track_artist_fold: str | None = None

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.file_name}"

    def finish(self) -> TrackRecord:
        """Compute the grouping and folded columns from the names; return self."""
        self.artist_key = name_key(self.artist)
        self.artist_fold = fold(self.artist)
        self.artist_letter = letter_of(self.artist_fold)
        self.album_key = name_key(self.album)
        self.album_fold = fold(self.album)
        # Releases with the same title by the same artist (reissues, self-titled albums) are
        # told apart by their MusicBrainz release id when the files carry one.
        self.release_key = (self.musicbrainz_release_id or "").lower()
        self.title_fold = fold(self.title)
        track_artist_fold = fold(self.track_artist)
        self.track_artist_fold = None if track_artist_fold == self.artist_fold else track_artist_fold
        return self


def read_track(path: str, root: str, file_size: int, file_mtime: int) -> TrackRecord:
    """Read ``path`` (a file under ``root``) and return its record; blocking, run it in a thread.

    Missing tags fall back to the path ``Artist/Album/NN - Title.ext`` relative to ``root``.
    Raises :class:`UnreadableFile` when the file cannot be opened or parsed.
    """
    audio = open_audio(path)
    tags = _generic_tags(audio)
    folder, _, file_name = path.rpartition("/")
    record = _from_tags(tags, folder, file_name, file_size, file_mtime, audio.info,
                        _format_of(audio))
    _fill_from_path(record, tags, PurePath(path).relative_to(root))
    return record.finish()


def _format_of(audio: Any) -> str:
    name = type(audio).__name__
    if name == "MP4":
        codec = (getattr(audio.info, "codec", "") or "").lower()
        return "ALAC" if codec == "alac" else "AAC" if codec.startswith("mp4a") else codec.upper()
    return _FORMATS.get(name, name.upper())


def _generic_tags(audio: Any) -> dict[str, list[str]]:
    """Return the file's tags as ``{generic lower-case name: [values]}``, whatever the format."""
    tags = audio.tags
    if tags is None:
        return {}
    family = type(audio).__name__
    if family == "MP4":
        return _mp4_tags(tags)
    if family in ("MP3", "WAVE", "AIFF"):
        return _id3_tags(tags)
    found: dict[str, list[str]] = {}
    for key, value in tags.items():
        name = key.lower()
        _add(found, _VORBIS_VARIANTS.get(name, name), value)
    return found


def _add(found: dict[str, list[str]], name: str, values: Iterable[Any]) -> None:
    texts = [normalize(str(v)) for v in values]
    texts = [t for t in texts if t]
    if texts:
        found.setdefault(name, []).extend(texts)


def _id3_tags(tags: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for frame in tags.values():
        frame_id = frame.FrameID
        if frame_id in _ID3_FRAMES:
            _add(found, _ID3_FRAMES[frame_id], frame.text)
        elif frame_id == "TCON":
            _add(found, "genre", frame.genres)  # resolves ID3v1 numeric genres like "(17)"
        elif frame_id == "TXXX":
            desc = frame.desc.lower()
            _add(found, _DESCRIPTIONS.get(desc, desc), frame.text)
        elif frame_id == "UFID" and frame.owner == "http://musicbrainz.org":
            _add(found, "musicbrainz_trackid", [frame.data.decode("ascii", "replace")])
    return found


def _mp4_tags(tags: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in tags.items():
        if key in _MP4_ATOMS:
            _add(found, _MP4_ATOMS[key], value)
        elif key in ("trkn", "disk") and value:
            number, total = value[0]
            if number:
                _add(found, "tracknumber" if key == "trkn" else "discnumber",
                     [f"{number}/{total}" if total else str(number)])
        elif key == "cpil":
            _add(found, "compilation", ["1" if value else "0"])
        elif key == "tmpo" and value:
            _add(found, "bpm", [value[0]])
        elif key == "gnre" and value:
            from mutagen.id3 import TCON

            _add(found, "genre", [g for g in (TCON.GENRES[v - 1] for v in value
                                              if 0 < v <= len(TCON.GENRES))])
        elif key.startswith(_MP4_FREEFORM):
            desc = key[len(_MP4_FREEFORM):].lower()
            _add(found, _DESCRIPTIONS.get(desc, desc),
                 [bytes(v).decode("utf-8", "replace") for v in value])
    return found


def _first(tags: dict[str, list[str]], name: str) -> str | None:
    values = tags.get(name)
    return values[0] if values else None


def _number(text: str | None) -> int | None:
    """Return the leading integer of ``"3"``, ``"03"`` or ``"3/12"``; None when there is none."""
    if not text:
        return None
    match = _LEADING_NUMBER.match(text)
    return int(match.group(1)) if match else None


def _year(text: str | None) -> int | None:
    match = _YEAR.search(text or "")
    return int(match.group(1)) if match else None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _from_tags(tags: dict[str, list[str]], folder: str, file_name: str, file_size: int,
               file_mtime: int, info: Any, format_name: str) -> TrackRecord:
    album_artist = ", ".join(tags.get("albumartist", []))
    track_artist = ", ".join(tags.get("artist", []))
    compilation = (_first(tags, "compilation") or "").lower() in ("1", "true", "yes")
    if fold(album_artist) in _VARIOUS:
        compilation = True
    if compilation and not album_artist:
        # Without this the tracks of a compilation, each by another artist, would become as
        # many one-track albums.
        album_artist = VARIOUS_ARTISTS
    release_type = (_first(tags, "releasetype") or "").lower().split(";")[0].strip()
    length = float(getattr(info, "length", 0) or 0)
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    if not bitrate and length > 0:
        bitrate = int(file_size * 8 / length)
    sample_rate = int(getattr(info, "sample_rate", 0) or 0) or (48000 if format_name == "OPUS" else None)
    record = TrackRecord(
        folder=folder, file_name=file_name, file_size=file_size, file_mtime=file_mtime,
        title=_first(tags, "title") or "",
        artist=album_artist or track_artist,
        track_artist=track_artist or album_artist,
        album=_first(tags, "album") or "",
        format=format_name,
        track_number=_number(_first(tags, "tracknumber")),
        disc_number=_number(_first(tags, "discnumber")) or 1,
        year=_year(_first(tags, "date") or _first(tags, "originaldate")),
        genres=list(dict.fromkeys(tags.get("genre", []))),
        duration=round(length * 1000) if length > 0 else None,
        bitrate=round(bitrate / 1000) if bitrate else None,
        sample_rate=sample_rate,
        bit_depth=(int(getattr(info, "bits_per_sample", 0) or 0) or None)
        if format_name in _LOSSLESS else None,
        bpm=_float(_first(tags, "bpm")),
        record_type="compilation" if compilation else
        (release_type if release_type in RECORD_TYPES else "album"),
        musicbrainz_artist_id=_first(tags, "musicbrainz_albumartistid")
        if tags.get("albumartist") else _first(tags, "musicbrainz_artistid"),
        musicbrainz_release_id=_first(tags, "musicbrainz_albumid"),
        musicbrainz_recording_id=_first(tags, "musicbrainz_trackid"),
        isrc=_first(tags, "isrc"),
    )
    for column, tag_name in PROVIDER_TAGS.items():
        setattr(record, column, _first(tags, tag_name.lower()))
    return record


def _fill_from_path(record: TrackRecord, tags: dict[str, list[str]], relative: PurePath) -> None:
    """Fill what the tags left empty from ``Artist/Album/NN - Title.ext`` (disc folders skipped)."""
    folders = [normalize(part) for part in relative.parts[:-1]]
    disc = None
    if folders and (match := _DISC_FOLDER.match(folders[-1])):
        disc = int(match.group(1))
        folders.pop()
    path_album = folders[-1] if folders else UNKNOWN_ALBUM
    path_artist = folders[-2] if len(folders) >= 2 else UNKNOWN_ARTIST
    # SoulSync's own layout is "Artist/Artist - Album/..."; the album is the part after the dash.
    if path_album.lower().startswith(path_artist.lower() + " - "):
        path_album = path_album[len(path_artist) + 3:].strip() or path_album
    stem = normalize(relative.stem)
    path_title = stem
    if match := _FILE_NAME.match(stem):
        path_title = match.group("title").strip()
        if record.track_number is None:
            record.track_number = int(match.group("number"))
        if disc is None and match.group("disc"):
            disc = int(match.group("disc"))
    if disc is not None and "discnumber" not in tags:
        record.disc_number = disc
    if not record.title:
        record.title = path_title or stem
    if not record.artist:
        record.artist = path_artist
        record.track_artist = record.track_artist or path_artist
    if not record.album:
        record.album = path_album
