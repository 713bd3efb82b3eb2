"""Reading a downloaded file's stream and writing SoulSync's tags into it, with mutagen.

Both functions are blocking (they open and rewrite the file): run them in a thread.

The tags written are exactly those the library scanner reads back
(:mod:`soulsync_core.library.tags`): title, artists, album artist, album, track number/total,
disc number/total, date, ISRC, and the provider ids under the names of
:data:`~soulsync_core.library.tags.PROVIDER_TAGS` — ``TXXX:<name>`` in ID3 (MP3, WAV, AIFF),
``<name>`` in Vorbis comments (FLAC, Ogg, Opus), ``----:com.apple.iTunes:<name>`` in MP4.
A peer's own text tags are removed first (they are unchecked and often wrong); embedded cover
art is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from soulsync_core.library.tags import UnreadableFile, open_audio

_FORMATS = {"FLAC": "flac", "MP3": "mp3", "OggVorbis": "ogg", "OggOpus": "opus", "WAVE": "wav",
            "AIFF": "aiff"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Picture tags survive the clean-up: FLAC keeps pictures outside the comments anyway.
_KEEP_VORBIS = frozenset({"metadata_block_picture", "coverart", "coverartmime"})


@dataclass(frozen=True)
class AudioInfo:
    """A file's stream: ``format`` as the quality profile names it (``flac``, ``mp3`` …),
    ``length_s`` in seconds, ``bitrate`` in kbps (None when unknown)."""

    format: str
    length_s: float
    bitrate: int | None
    sample_rate: int | None
    bit_depth: int | None





def probe(path: str) -> AudioInfo:
    """Return the stream figures of the audio file at ``path``; raise UnreadableFile otherwise."""
    audio = open_audio(path)
    info = audio.info
    name = type(audio).__name__
    if name == "MP4":
        codec = (getattr(info, "codec", "") or "").lower()
        fmt = "alac" if codec == "alac" else "aac"
    else:
        fmt = _FORMATS.get(name, name.lower())
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    return AudioInfo(fmt, float(getattr(info, "length", 0) or 0), round(bitrate / 1000) or None,
                     int(getattr(info, "sample_rate", 0) or 0) or None,
                     int(getattr(info, "bits_per_sample", 0) or 0) or None)


@dataclass(frozen=True)
class TagSet:
    """The tags SoulSync writes. ``custom`` maps tag names (``SPOTIFY_TRACK_ID``) to values."""

    title: str
    artists: list[str]
    album_artist: str
    album: str
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    date: str | None = None
    disc_total: int | None = None
    isrc: str | None = None
    custom: dict[str, str] | None = None


def _text(value: str) -> str:
    # NUL separates values in ID3v2.4 and nothing else belongs in a tag either.
    return _CONTROL.sub(" ", value).strip()


def write_tags(path: str, tags: TagSet) -> None:
    """Replace the text tags of the file at ``path`` with ``tags``.

    Raises OSError when the file cannot be written (a full disk: the folder's fault, not the
    file's), UnreadableFile when mutagen cannot make sense of it.
    """
    audio = open_audio(path)
    if audio.tags is None:
        audio.add_tags()
    family = type(audio).__name__
    if family in ("MP3", "WAVE", "AIFF"):
        _write_id3(audio.tags, tags)
    elif family == "MP4":
        _write_mp4(audio.tags, tags)
    else:
        _write_vorbis(audio.tags, tags)
    try:
        audio.save()
    except OSError:
        raise
    except Exception as exc:
        cause = _os_error(exc)
        if cause is not None:
            raise cause from None
        raise UnreadableFile(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None


def _os_error(exc: BaseException) -> OSError | None:
    """Return the OSError mutagen wrapped into ``exc`` (it re-raises them as MutagenError)."""
    for inner in (*exc.args[:1], exc.__cause__, exc.__context__):
        if isinstance(inner, OSError):
            return inner
    return None


def _number(number: int | None, total: int | None) -> str | None:
    if not number:
        return None
    return f"{number}/{total}" if total else str(number)


def _write_id3(frames: Any, tags: TagSet) -> None:
    from mutagen import id3

    for key in list(frames.keys()):
        if not key.startswith("APIC"):
            del frames[key]
    texts = {"TIT2": tags.title, "TPE2": tags.album_artist, "TALB": tags.album,
             "TRCK": _number(tags.track_number, tags.track_total),
             "TPOS": _number(tags.disc_number, tags.disc_total), "TDRC": tags.date, "TSRC": tags.isrc}
    frames.add(id3.TPE1(encoding=3, text=[_text(a) for a in tags.artists]))
    for frame_id, value in texts.items():
        if value:
            frames.add(getattr(id3, frame_id)(encoding=3, text=[_text(value)]))
    for name, value in (tags.custom or {}).items():
        frames.add(id3.TXXX(encoding=3, desc=name, text=[_text(value)]))


def _write_vorbis(comments: Any, tags: TagSet) -> None:
    for key in list(comments.keys()):
        if key.lower() not in _KEEP_VORBIS:
            del comments[key]
    values = {"TITLE": tags.title, "ALBUMARTIST": tags.album_artist, "ALBUM": tags.album,
              "TRACKNUMBER": str(tags.track_number) if tags.track_number else None,
              "TRACKTOTAL": str(tags.track_total) if tags.track_number and tags.track_total else None,
              "DISCNUMBER": str(tags.disc_number) if tags.disc_number else None,
              # Both names: players read one or the other (foobar2000 TOTALDISCS, others DISCTOTAL).
              "DISCTOTAL": str(tags.disc_total) if tags.disc_number and tags.disc_total else None,
              "TOTALDISCS": str(tags.disc_total) if tags.disc_number and tags.disc_total else None,
              "DATE": tags.date, "ISRC": tags.isrc, **(tags.custom or {})}
    comments["ARTIST"] = [_text(a) for a in tags.artists]
    for key, value in values.items():
        if value:
            comments[key] = [_text(value)]


def _write_mp4(atoms: Any, tags: TagSet) -> None:
    for key in list(atoms.keys()):
        if key != "covr":
            del atoms[key]
    atoms["\xa9nam"] = [_text(tags.title)]
    atoms["\xa9ART"] = [_text(a) for a in tags.artists]
    atoms["aART"] = [_text(tags.album_artist)]
    atoms["\xa9alb"] = [_text(tags.album)]
    if tags.track_number:
        atoms["trkn"] = [(tags.track_number, tags.track_total or 0)]
    if tags.disc_number:
        atoms["disk"] = [(tags.disc_number, tags.disc_total or 0)]
    if tags.date:
        atoms["\xa9day"] = [_text(tags.date)]
    custom = {"ISRC": tags.isrc, **(tags.custom or {})}
    for name, value in custom.items():
        if value:
            atoms[f"----:com.apple.iTunes:{name}"] = [_mp4_freeform(_text(value).encode())]


def _mp4_freeform(data: bytes) -> Any:
    from mutagen.mp4 import MP4FreeForm  # imported on first use, as in library.tags

    return MP4FreeForm(data)
