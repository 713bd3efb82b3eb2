"""Write tiny, *valid* silent audio files in every format the library scanner reads, and tag them.

No encoder (ffmpeg, sox, libFLAC …) is needed: each writer builds the container and a few
frames of digital silence by hand, following the format's specification, so the tests and the
scan benchmark get real files that mutagen (and any decoder) reads like the ones on a user's
disk.

- WAV  : stdlib ``wave``.
- AIFF : FORM/AIFF with COMM and SSND chunks (16-bit PCM, 80-bit extended sample rate).
- FLAC : fLaC marker + STREAMINFO + frames made of CONSTANT subframes (silence), header CRC-8
         and frame CRC-16 computed here.
- MP3  : MPEG-1 Layer III, 128 kb/s, 44.1 kHz, mono frames whose side info is all zero
         (part2_3_length = 0 -> the decoder outputs silence).
- OGG  : Ogg Vorbis: identification, comment and a minimal setup header (one codebook, one
         floor 1, one residue 0, one mapping, one mode), then one-byte audio packets whose
         floor is "unused" (silence); pages with the Ogg CRC-32.
- Opus : Ogg Opus: OpusHead, OpusTags, then 20 ms CELT silence frames (``F8 FF FE``).
- M4A  : MP4 (ftyp, moov, mdat) holding AAC-LC (``mp4a`` + ``esds``, empty raw data blocks)
         or ALAC (``alac`` magic cookie, escape/uncompressed frames of zeros).

The WAV/FLAC/MP3 writers are the project's reference ``make_tiny_audio.py`` (shared reference
material); the others were added for the scanner tests. :func:`tag` writes native tags of each
format (ID3 frames, Vorbis comments, MP4 atoms), including this project's provider-id tags,
with mutagen's non-"easy" interfaces so that custom tags can be written too.

Usage: ``python -m tests.audio OUTDIR`` writes one file of each format.
"""

from __future__ import annotations

import math
import struct
import sys
import wave
from collections.abc import Callable, Mapping
from pathlib import Path

# --------------------------------------------------------------------------- WAV


def write_wav(path: str | Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2) -> Path:
    path = Path(path)
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * channels * frames)
    return path


# -------------------------------------------------------------------------- AIFF


def _extended80(value: float) -> bytes:
    """Return ``value`` as the 80-bit IEEE 754 extended float AIFF uses for the sample rate."""
    if value == 0:
        return b"\x00" * 10
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= mantissa < 1
    exponent += 16382
    return struct.pack(">HQ", exponent, int(mantissa * (1 << 64)))


def write_aiff(path: str | Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2,
               bits: int = 16) -> Path:
    path = Path(path)
    frames = int(seconds * rate)
    comm = struct.pack(">hLh", channels, frames, bits) + _extended80(rate)
    sound = struct.pack(">LL", 0, 0) + b"\x00" * (frames * channels * bits // 8)
    body = b"AIFF" + _chunk(b"COMM", comm) + _chunk(b"SSND", sound)
    path.write_bytes(b"FORM" + struct.pack(">L", len(body)) + body)
    return path


def _chunk(name: bytes, data: bytes) -> bytes:
    pad = b"\x00" if len(data) % 2 else b""
    return name + struct.pack(">L", len(data)) + data + pad


# -------------------------------------------------------------------------- FLAC


def _crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _utf8_int(n: int) -> bytes:
    """FLAC's UTF-8-like coding of the frame number."""
    if n < 0x80:
        return bytes([n])
    out = []
    while True:
        out.insert(0, 0x80 | (n & 0x3F))
        n >>= 6
        if n < (0x40 >> len(out)):
            break
    lead = (0xFF00 >> (len(out) + 1)) & 0xFF
    return bytes([lead | n]) + bytes(out)


_RATE_CODES = {88200: 0b0001, 176400: 0b0010, 192000: 0b0011, 8000: 0b0100, 16000: 0b0101,
               22050: 0b0110, 24000: 0b0111, 32000: 0b1000, 44100: 0b1001, 48000: 0b1010,
               96000: 0b1011}
# 12/20-bit are legal FLAC but libsndfile refuses them, so only the common depths are offered
_BPS_CODES = {8: 0b001, 16: 0b100, 24: 0b110}


def write_flac(path: str | Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2,
               bits: int = 16, block: int = 4096) -> Path:
    path = Path(path)
    if rate not in _RATE_CODES or bits not in _BPS_CODES or not 1 <= channels <= 8:
        raise ValueError(f"unsupported rate/bits/channels: {rate}/{bits}/{channels}")
    total = int(seconds * rate)
    frames = []
    sample_codes = {4096: 0b1100, 4608: 0b0101, 1152: 0b0011, 576: 0b0010}
    pos = 0
    index = 0
    while pos < total:
        n = min(block, total - pos)
        if n == block and block in sample_codes:
            bs_code, bs_extra = sample_codes[block], b""
        else:
            bs_code, bs_extra = 0b0111, struct.pack(">H", n - 1)
        hdr = bytes([0xFF, 0xF8,
                     (bs_code << 4) | _RATE_CODES[rate],
                     ((channels - 1) << 4) | (_BPS_CODES[bits] << 1)])
        hdr += _utf8_int(index) + bs_extra
        hdr += bytes([_crc8(hdr)])
        # one CONSTANT subframe per channel: 8-bit header 0x00 (type 000000, no wasted bits)
        # followed by the constant sample value (0) in `bits` bits; all bits are zero, so the
        # subframes are simply ceil(channels * (8 + bits) / 8) zero bytes incl. the final padding.
        sub = b"\x00" * ((channels * (8 + bits) + 7) // 8)
        body = hdr + sub
        frames.append(body + struct.pack(">H", _crc16(body)))
        pos += n
        index += 1
    framesizes = [len(f) for f in frames]
    si = struct.pack(">HH", block, block)
    si += min(framesizes).to_bytes(3, "big") + max(framesizes).to_bytes(3, "big")
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | total
    si += packed.to_bytes(8, "big") + b"\x00" * 16  # MD5 unknown (allowed)
    meta = bytes([0x80 | 0x00]) + len(si).to_bytes(3, "big") + si  # last-metadata-block, STREAMINFO
    path.write_bytes(b"fLaC" + meta + b"".join(frames))
    return path


# --------------------------------------------------------------------------- MP3


# MPEG-1 Layer III bitrate indexes (kbps -> the header's 4-bit index).
MP3_BITRATES = {32: 1, 40: 2, 48: 3, 56: 4, 64: 5, 80: 6, 96: 7, 112: 8, 128: 9, 160: 10,
                192: 11, 224: 12, 256: 13, 320: 14}


def write_mp3(path: str | Path, seconds: float = 1.0, kbps: int = 128) -> Path:
    """MPEG-1 Layer III ``kbps`` kb/s (CBR, default 128) 44.1 kHz mono; frames of 1152 samples."""
    path = Path(path)
    nframes = max(1, round(seconds * 44100 / 1152))
    out = bytearray()
    rest = 0
    for _ in range(nframes):
        # frame bytes = 144 * bitrate / 44100 (417.96 at 128 kb/s) -> pad 1 byte on most frames
        rest += kbps * 1000 * 144 % 44100
        pad = 1 if rest >= 44100 else 0
        rest -= 44100 if pad else 0
        header = bytes([0xFF, 0xFB, MP3_BITRATES[kbps] << 4 | (pad << 1), 0xC4])  # mono, original
        size = kbps * 1000 * 144 // 44100 + pad
        out += header + b"\x00" * 17 + b"\x00" * (size - 4 - 17)  # zero side info + main data
    path.write_bytes(bytes(out))
    return path


# --------------------------------------------------------------------------- Ogg


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
        table.append(crc)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _ogg_page(packets: list[bytes], granule: int, serial: int, sequence: int, flags: int) -> bytes:
    """One Ogg page holding whole ``packets`` (each must fit, 255 lacing values at most)."""
    lacing = bytearray()
    for packet in packets:
        size = len(packet)
        lacing += b"\xff" * (size // 255) + bytes([size % 255])
    if len(lacing) > 255:
        raise ValueError("too many packets for one Ogg page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + b"".join(packets))
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return bytes(page)


def _ogg_stream(headers: list[bytes], audio: list[bytes], samples_per_packet: int,
                granule_offset: int = 0, serial: int = 0x50C5) -> bytes:
    """Return an Ogg stream: each header packet on its own page, then audio pages of 50 packets."""
    pages = []
    sequence = 0
    for index, packet in enumerate(headers):
        pages.append(_ogg_page([packet], 0, serial, sequence, 0x02 if index == 0 else 0))
        sequence += 1
    granule = granule_offset
    for start in range(0, len(audio), 50):
        chunk = audio[start:start + 50]
        granule += samples_per_packet * len(chunk)
        last = start + 50 >= len(audio)
        pages.append(_ogg_page(chunk, granule, serial, sequence, 0x04 if last else 0))
        sequence += 1
    return b"".join(pages)


class _BitWriter:
    """Vorbis packs bit fields least-significant bit first."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def write(self, value: int, count: int) -> None:
        self.bits.extend((value >> i) & 1 for i in range(count))

    def bytes(self) -> bytes:
        out = bytearray((len(self.bits) + 7) // 8)
        for i, bit in enumerate(self.bits):
            out[i // 8] |= bit << (i % 8)
        return bytes(out)


def _vorbis_setup() -> bytes:
    w = _BitWriter()
    w.write(0, 8)            # codebook count - 1
    w.write(0x564342, 24)    # codebook sync pattern "BCV"
    w.write(1, 16)           # dimensions
    w.write(2, 24)           # entries
    w.write(0, 1)            # not ordered
    w.write(0, 1)            # not sparse
    w.write(0, 5)            # entry 0: length 1
    w.write(0, 5)            # entry 1: length 1 (a complete two-leaf Huffman tree)
    w.write(0, 4)            # lookup type 0
    w.write(0, 6)            # time domain transforms - 1
    w.write(0, 16)           # ... each 0
    w.write(0, 6)            # floor count - 1
    w.write(1, 16)           # floor type 1
    w.write(0, 5)            # no partitions: the two implicit posts only
    w.write(0, 2)            # multiplier - 1
    w.write(7, 4)            # rangebits: posts at 0 and 128 (= blocksize_0 / 2)
    w.write(0, 6)            # residue count - 1
    w.write(0, 16)           # residue type 0
    w.write(0, 24)           # begin
    w.write(0, 24)           # end
    w.write(0, 24)           # partition size - 1
    w.write(0, 6)            # classifications - 1
    w.write(0, 8)            # classbook
    w.write(0, 3)            # cascade low bits
    w.write(0, 1)            # no high bits
    w.write(0, 6)            # mapping count - 1
    w.write(0, 16)           # mapping type 0
    w.write(0, 1)            # one submap
    w.write(0, 1)            # no coupling
    w.write(0, 2)            # reserved
    w.write(0, 8)            # submap 0: unused time config
    w.write(0, 8)            # submap 0: floor 0
    w.write(0, 8)            # submap 0: residue 0
    w.write(0, 6)            # mode count - 1
    w.write(0, 1)            # blockflag: short blocks only
    w.write(0, 16)           # window type
    w.write(0, 16)           # transform type
    w.write(0, 8)            # mapping 0
    w.write(1, 1)            # framing bit
    return b"\x05vorbis" + w.bytes()


def write_ogg_vorbis(path: str | Path, seconds: float = 1.0, rate: int = 44100,
                     channels: int = 2) -> Path:
    path = Path(path)
    ident = (b"\x01vorbis" + struct.pack("<IBIiii", 0, channels, rate, 0, 96000, 0)
             + bytes([(11 << 4) | 8, 1]))  # blocksizes 256 and 2048, framing bit
    comment = b"\x03vorbis" + struct.pack("<I", 6) + b"tests/" + struct.pack("<I", 0) + b"\x01"
    # An audio packet: type bit 0, then per channel a floor "nonzero" bit of 0: silence.
    packets = max(2, int(seconds * rate / 128) + 1)
    # The first packet only primes the decoder; each further short block yields 128 samples.
    data = _ogg_stream([ident, comment, _vorbis_setup()], [b"\x00"] * packets, 128,
                       granule_offset=-128)
    path.write_bytes(data)
    return path


OPUS_SILENCE = b"\xf8\xff\xfe"  # CELT-only fullband 20 ms mono frame that decodes to silence
OPUS_PRE_SKIP = 312


def write_opus(path: str | Path, seconds: float = 1.0, channels: int = 2) -> Path:
    path = Path(path)
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 6) + b"tests/" + struct.pack("<I", 0)
    toc = OPUS_SILENCE if channels == 1 else bytes([OPUS_SILENCE[0] | 0x04]) + OPUS_SILENCE[1:]
    frames = max(1, round(seconds * 50))
    path.write_bytes(_ogg_stream([head, tags], [toc] * frames, 960, granule_offset=OPUS_PRE_SKIP))
    return path


# --------------------------------------------------------------------------- MP4


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _descriptor(tag: int, payload: bytes) -> bytes:
    return bytes([tag, len(payload)]) + payload  # short form: every payload here is < 128 bytes


def _sample_entry(kind: bytes, channels: int, bits: int, rate: int, *inner: bytes) -> bytes:
    return _box(kind, b"\x00" * 6, struct.pack(">H", 1), b"\x00" * 8,
                struct.pack(">HHHHI", channels, bits, 0, 0, rate << 16), *inner)


def _mp4(entry: bytes, frames: list[bytes], samples_per_frame: int, rate: int) -> bytes:
    duration = samples_per_frame * len(frames)
    ftyp = _box(b"ftyp", b"M4A ", struct.pack(">I", 0x200), b"M4A mp42isom\x00\x00\x00\x00")

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(b"stbl",
                    _full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
                    _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(frames), samples_per_frame)),
                    _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(frames), 1)),
                    _full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(frames)),
                              b"".join(struct.pack(">I", len(f)) for f in frames)),
                    _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)))
        minf = _box(b"minf", _full_box(b"smhd", 0, 0, b"\x00" * 4),
                    _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1),
                                            _full_box(b"url ", 0, 1))),
                    stbl)
        mdia = _box(b"mdia",
                    _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, rate, duration, 0x55C4, 0)),
                    _full_box(b"hdlr", 0, 0, b"\x00" * 4, b"soun", b"\x00" * 12, b"SoundHandler\x00"),
                    minf)
        tkhd = _full_box(b"tkhd", 0, 7, struct.pack(">IIIII", 0, 0, 1, 0, duration), b"\x00" * 8,
                         struct.pack(">hhhH", 0, 0, 0x0100, 0), _MATRIX, struct.pack(">II", 0, 0))
        mvhd = _full_box(b"mvhd", 0, 0, struct.pack(">IIIIIH", 0, 0, rate, duration, 0x10000, 0x0100),
                         b"\x00" * 10, _MATRIX, b"\x00" * 24, struct.pack(">I", 2))
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    size = len(moov(0))
    return ftyp + moov(len(ftyp) + size + 8) + _box(b"mdat", *frames)


def write_m4a_aac(path: str | Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """AAC-LC, mono: each frame is an empty single-channel element (no spectral data) + END."""
    path = Path(path)
    rate_index = {96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5, 24000: 6,
                  22050: 7, 16000: 8}[rate]
    config = struct.pack(">H", (2 << 11) | (rate_index << 7) | (1 << 3))  # AAC LC, mono
    decoder = _descriptor(0x04, bytes([0x40, 0x15]) + b"\x00\x00\x00"
                          + struct.pack(">II", 128000, 128000) + _descriptor(0x05, config))
    es = _descriptor(0x03, struct.pack(">HB", 1, 0) + decoder + _descriptor(0x06, b"\x02"))
    entry = _sample_entry(b"mp4a", 1, 16, rate, _full_box(b"esds", 0, 0, es))
    # SCE, tag 0, global gain 0, ics_info with max_sfb 0, no pulse/TNS/gain control, then END.
    frame = bytes([0x00, 0x00, 0x00, 0x07])
    frames = [frame] * max(1, round(seconds * rate / 1024))
    path.write_bytes(_mp4(entry, frames, 1024, rate))
    return path


def write_m4a_alac(path: str | Path, seconds: float = 1.0, rate: int = 44100,
                   frame_length: int = 4096) -> Path:
    """ALAC, mono, 16-bit: uncompressed (escape) frames of zero samples."""
    path = Path(path)
    cookie = struct.pack(">IBBBBBBHIII", frame_length, 0, 16, 40, 10, 14, 1, 255, 0, 0, rate)
    entry = _sample_entry(b"alac", 1, 16, rate, _full_box(b"alac", 0, 0, cookie))
    # element SCE (3 bits) tag 0 (4) unused (12) partial 0 (1) shift 0 (2) escape 1 (1),
    # then frame_length 16-bit samples, then END (3 bits, 0b111) and padding.
    header_bits = "000" + "0000" + "0" * 12 + "0" + "00" + "1"
    bits = header_bits + "0" * (16 * frame_length) + "111"
    bits += "0" * (-len(bits) % 8)
    frame = int(bits, 2).to_bytes(len(bits) // 8, "big")
    frames = [frame] * max(1, round(seconds * rate / frame_length))
    path.write_bytes(_mp4(entry, frames, frame_length, rate))
    return path


WRITERS: dict[str, Callable[..., Path]] = {
    "wav": write_wav, "aiff": write_aiff, "flac": write_flac, "mp3": write_mp3,
    "ogg": write_ogg_vorbis, "opus": write_opus, "m4a": write_m4a_aac, "alac": write_m4a_alac,
}
EXTENSIONS = {"wav": ".wav", "aiff": ".aiff", "flac": ".flac", "mp3": ".mp3", "ogg": ".ogg",
              "opus": ".opus", "m4a": ".m4a", "alac": ".m4a"}


# ------------------------------------------------------------------------ tagging

# Generic tag names used by :func:`tag`, and each family's native key for them.
_ID3_TEXT = {"title": "TIT2", "artist": "TPE1", "albumartist": "TPE2", "album": "TALB",
             "tracknumber": "TRCK", "discnumber": "TPOS", "date": "TDRC", "genre": "TCON",
             "isrc": "TSRC", "bpm": "TBPM", "compilation": "TCMP"}
_ID3_TXXX = {"musicbrainz_artistid": "MusicBrainz Artist Id",
             "musicbrainz_albumartistid": "MusicBrainz Album Artist Id",
             "musicbrainz_albumid": "MusicBrainz Album Id",
             "releasetype": "MusicBrainz Album Type"}
_VORBIS = {"title": "TITLE", "artist": "ARTIST", "albumartist": "ALBUMARTIST", "album": "ALBUM",
           "tracknumber": "TRACKNUMBER", "discnumber": "DISCNUMBER", "date": "DATE",
           "genre": "GENRE", "isrc": "ISRC", "bpm": "BPM", "compilation": "COMPILATION",
           "musicbrainz_artistid": "MUSICBRAINZ_ARTISTID",
           "musicbrainz_albumartistid": "MUSICBRAINZ_ALBUMARTISTID",
           "musicbrainz_albumid": "MUSICBRAINZ_ALBUMID",
           "musicbrainz_trackid": "MUSICBRAINZ_TRACKID", "releasetype": "RELEASETYPE"}
_MP4 = {"title": "\xa9nam", "artist": "\xa9ART", "albumartist": "aART", "album": "\xa9alb",
        "date": "\xa9day", "genre": "\xa9gen"}
_MP4_FREEFORM = {"musicbrainz_artistid": "MusicBrainz Artist Id",
                 "musicbrainz_albumartistid": "MusicBrainz Album Artist Id",
                 "musicbrainz_albumid": "MusicBrainz Album Id",
                 "musicbrainz_trackid": "MusicBrainz Track Id", "isrc": "ISRC",
                 "releasetype": "MusicBrainz Album Type"}

TagValue = str | list[str]


def tag(path: str | Path, **tags: TagValue) -> None:
    """Write ``tags`` into ``path`` in the file's native tag format.

    Generic names: title, artist, albumartist, album, tracknumber ("3" or "3/12"), discnumber,
    date, genre (a list for several), isrc, bpm, compilation ("1"), musicbrainz_artistid,
    musicbrainz_albumartistid, musicbrainz_albumid, musicbrainz_trackid (the recording),
    releasetype; any other name in upper case (``SPOTIFY_TRACK_ID``) is written as a custom
    tag: ``TXXX:<name>`` in ID3, ``<name>`` in Vorbis comments, ``----:com.apple.iTunes:<name>``
    in MP4.
    """
    import mutagen

    audio = mutagen.File(str(path))
    if audio is None:
        raise ValueError(f"{path} is not an audio file mutagen knows")
    if audio.tags is None:
        audio.add_tags()
    family = type(audio.tags).__name__
    if family in ("ID3", "_WaveID3", "_IFFID3"):
        _tag_id3(audio.tags, tags)
    elif family == "MP4Tags":
        _tag_mp4(audio.tags, tags)
    else:
        _tag_vorbis(audio.tags, tags)
    audio.save()


def _values(value: TagValue) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _tag_id3(tags: object, values: Mapping[str, TagValue]) -> None:
    from mutagen import id3

    for name, value in values.items():
        if name == "musicbrainz_trackid":
            tags.add(id3.UFID(owner="http://musicbrainz.org", data=str(value).encode()))
        elif name in _ID3_TEXT:
            frame = getattr(id3, _ID3_TEXT[name])
            tags.add(frame(encoding=3, text=_values(value)))
        else:
            desc = _ID3_TXXX.get(name, name)
            tags.add(id3.TXXX(encoding=3, desc=desc, text=_values(value)))


def _tag_vorbis(tags: object, values: Mapping[str, TagValue]) -> None:
    for name, value in values.items():
        tags[_VORBIS.get(name, name)] = _values(value)


def _tag_mp4(tags: object, values: Mapping[str, TagValue]) -> None:
    from mutagen.mp4 import MP4FreeForm

    for name, value in values.items():
        if name in ("tracknumber", "discnumber"):
            number, _, total = str(value).partition("/")
            tags["trkn" if name == "tracknumber" else "disk"] = [(int(number), int(total or 0))]
        elif name == "compilation":
            tags["cpil"] = value in ("1", "true")
        elif name == "bpm":
            tags["tmpo"] = [int(str(value))]
        elif name in _MP4:
            tags[_MP4[name]] = _values(value)
        else:
            desc = _MP4_FREEFORM.get(name, name)
            tags[f"----:com.apple.iTunes:{desc}"] = [MP4FreeForm(v.encode()) for v in _values(value)]


def make(path: str | Path, kind: str, seconds: float = 1.0, **tags: TagValue) -> Path:
    """Write a file of ``kind`` (a key of :data:`WRITERS`) at ``path`` and tag it; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[kind](path, seconds=seconds)
    if tags:
        tag(path, **tags)
    return path


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    outdir.mkdir(parents=True, exist_ok=True)
    for kind, writer in WRITERS.items():
        p = writer(outdir / f"silence-{kind}{EXTENSIONS[kind]}", seconds=2.5)
        print(p, p.stat().st_size, "bytes")
