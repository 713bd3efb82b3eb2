"""Embedding an album's front cover in its audio files, with mutagen.

Blocking (it rewrites the file): run it in a thread. The cover replaces any front cover the
file had; other pictures stay.
"""

from __future__ import annotations

import base64
from pathlib import Path

from soulsync_core.library.tags import open_audio

FRONT_COVER = 3  # the ID3/FLAC picture type "Cover (front)"


def image_mime(data: bytes) -> str:
    """Return the MIME type of JPEG or PNG ``data`` (JPEG when it is neither)."""
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def embed_cover(path: Path, data: bytes) -> None:
    """Embed ``data`` (a JPEG or PNG) as the front cover of the audio file at ``path``.

    FLAC gets a PICTURE block, MP3/WAV/AIFF an ID3 APIC frame, MP4 a ``covr`` atom, Ogg and Opus
    a ``metadata_block_picture`` comment. Raises UnreadableFile for a file mutagen cannot open.
    """
    from mutagen.flac import Picture
    from mutagen.id3 import APIC
    from mutagen.mp4 import MP4Cover

    audio = open_audio(str(path))
    mime = image_mime(data)
    kind = type(audio).__name__
    if kind == "FLAC":
        picture = Picture()
        picture.type, picture.mime, picture.data = FRONT_COVER, mime, data
        audio.pictures[:] = [p for p in audio.pictures if p.type != FRONT_COVER]
        audio.add_picture(picture)
    elif kind == "MP4":
        fmt = MP4Cover.FORMAT_PNG if mime == "image/png" else MP4Cover.FORMAT_JPEG
        audio.tags["covr"] = [MP4Cover(data, imageformat=fmt)]
    elif kind in ("OggVorbis", "OggOpus"):
        picture = Picture()
        picture.type, picture.mime, picture.data = FRONT_COVER, mime, data
        audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    else:
        if audio.tags is None:
            audio.add_tags()
        audio.tags.delall("APIC")
        audio.tags.add(APIC(encoding=3, mime=mime, type=FRONT_COVER, desc="", data=data))
    audio.save()
