"""Which peer's folder holds the wanted album: grouping search results and scoring folders.

Search results are grouped by (peer, album folder) — a ``CD1``/``Disc 2`` folder counts as
part of the folder above it. Each folder's audio files are assigned to the tracklist with an
optimal assignment (:func:`soulsync_core.matching.assignment.assign`) on a cost built from
title similarity, track (and disc) number and duration; files left over (a hidden bonus
track, another disc) are allowed and not counted.

A folder is refused when it covers less than ``min_coverage`` of the tracklist, mixes formats
or bitrates, holds more than one copy of a track (two releases in one folder), is a different
edition (live, or remastered when the wanted album is not), or the quality profile refuses
its files. Accepted folders are ordered by quality rank, then coverage, then the peer (free
slot, speed, queue).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import msgspec

from soulsync_core.downloads.models import Wanted
from soulsync_core.matching import (
    QualityProfile,
    RemotePath,
    audio_format,
    parse_remote_path,
    peer_score,
    quality_label,
)
from soulsync_core.matching.assignment import assign
from soulsync_core.matching.quality import LOSSLESS, bitrate_kbps
from soulsync_core.matching.similarity import album_similarity, is_generic_title, title_similarity
from soulsync_core.matching.text import album_versions, fold
from soulsync_core.models import Candidate

# A pair below this match score is no assignment (its cost is then prohibitive).
MIN_PAIR_SCORE = 0.6
# A file name with a title this unlike the track's is another song, whatever its number.
MIN_TITLE = 0.5
# Two files this similar to one track mean the folder holds two copies (two releases).
DUPLICATE_SCORE = 0.9
_NO_PAIR_COST = 10.0
_DISC_FOLDER = re.compile(r"^(?:cd|disc|disk|dvd)\s*\d+\b")
_COVER_NAMES = ("cover", "folder", "front", "albumart")
_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")


class FileMatch(msgspec.Struct):
    """A folder file assigned to tracklist entry ``track`` (0-based) and how well it fits.

    ``title_score`` is None when the file name says no title ("01.flac", "Track 01");
    ``number_match`` None when the file name has no number; ``duration_delta_s`` None when
    the length of either is unknown.
    """

    track: int
    filename: str
    size: int
    score: float
    title_score: float | None
    number_match: bool | None
    duration_delta_s: float | None


class FolderScore(msgspec.Struct):
    """One (peer, folder) and the verdict on it, kept on the album download.

    ``coverage`` is the share of tracklist entries a file was assigned to (0 to 1);
    ``missing`` the 0-based tracklist entries without one; ``extra`` the audio files not
    assigned (bonus tracks, other discs). ``quality_rank`` is the worst profile rank among
    the assigned files (lower is better; None: refused by the profile). ``reasons`` say why
    a folder was refused (empty when ``accepted``); ``cover`` is the folder's cover image.
    """

    username: str
    folder: str
    accepted: bool
    reasons: list[str]
    coverage: float
    matched: list[FileMatch]
    missing: list[int]
    extra: list[str]
    quality: str
    quality_rank: int | None
    peer_score: float
    has_free_slot: bool
    upload_speed: int
    queue_length: int
    cover: str | None = None
    cover_size: int = 0


def _split(filename: str) -> list[str]:
    return re.split(r"[\\/]", filename)


def folder_of(filename: str) -> str:
    """Return the album folder of a remote path: its folder, or the one above a disc folder."""
    parts = _split(filename)[:-1]
    if len(parts) > 1 and _DISC_FOLDER.match(fold(parts[-1])):
        parts = parts[:-1]
    return "\\".join(parts)


def group_folders(found: Iterable[Candidate]) -> dict[tuple[str, str], list[Candidate]]:
    """Return the search results grouped by (peer, album folder), each file once."""
    groups: dict[tuple[str, str], dict[str, Candidate]] = {}
    for candidate in found:
        key = (candidate.username, folder_of(candidate.filename))
        groups.setdefault(key, {})[candidate.filename] = candidate
    return {key: list(files.values()) for key, files in groups.items()}


# Lossy bitrate tiers a folder must not mix: a VBR rip's files each have their own average
# (V0: 220 to 280 kbps), so exact bitrates would refuse every VBR folder.
_LOSSY_TIERS = ((300, "320 kbps"), (220, "V0/256 kbps"), (170, "192 kbps"), (0, "below 170 kbps"))


def _quality_key(candidate: Candidate) -> str:
    """What must be the same across a folder: the format and its resolution (lossless) or
    bitrate tier (lossy)."""
    fmt = audio_format(candidate)
    kbps = bitrate_kbps(candidate)
    if fmt in LOSSLESS or fmt is None or kbps is None:
        return quality_label(candidate)
    return f"{fmt} {next(label for floor, label in _LOSSY_TIERS if kbps >= floor)}"


@lru_cache(maxsize=65536)
def _title_score(wanted: str, stem: str) -> float | None:
    """Title similarity of a file name's title, None when it says no title ("Track 01")."""
    if not stem or is_generic_title(stem) or fold(stem).replace("track", "").strip().isdigit():
        return None
    return title_similarity(wanted, stem)


def pair_score(track: Wanted, candidate: Candidate, tolerance_s: float,
               path: RemotePath | None = None) -> FileMatch:
    """Return how well ``candidate`` fits tracklist entry ``track`` (``FileMatch.track`` 0).

    The score is the weighted mean of the signals the file has: title 0.6, number 0.25,
    duration 0.15; a duration outside ``tolerance_s``, a title below :data:`MIN_TITLE` or a
    file numbered for another disc scores 0. ``path`` is the candidate's parsed remote path
    (parsed here when not given).
    """
    path = path or parse_remote_path(candidate.filename)
    title = _title_score(track.title, path.title)
    number: bool | None = None
    if path.track_number is not None and track.track_number is not None:
        number = path.track_number == track.track_number
        if path.disc_number is not None and track.disc_number is not None:
            number = number and path.disc_number == track.disc_number
    delta: float | None = None
    if candidate.duration_s and track.duration_ms:
        delta = round(candidate.duration_s - track.duration_ms / 1000, 1)
    signals = [(0.6, title), (0.25, None if number is None else float(number)),
               (0.15, None if delta is None else float(abs(delta) <= tolerance_s))]
    known = [(w, s) for w, s in signals if s is not None]
    score = sum(w * s for w, s in known) / sum(w for w, _ in known) if known else 0.0
    if (delta is not None and abs(delta) > tolerance_s) or (title is not None and title < MIN_TITLE):
        score = 0.0
    if (path.disc_number is not None and track.disc_number is not None
            and path.disc_number != track.disc_number):
        score = 0.0
    return FileMatch(0, candidate.filename, candidate.size, round(score, 3), title, number, delta)


def _cover(files: Sequence[Candidate]) -> Candidate | None:
    images = [c for c in files if _split(c.filename)[-1].rsplit(".", 1)[-1].lower() in _IMAGE_EXTENSIONS]
    for image in images:
        stem = fold(_split(image.filename)[-1].rsplit(".", 1)[0])
        if any(name in stem for name in _COVER_NAMES):
            return image
    return images[0] if images else None


def score_folder(username: str, folder: str, files: Sequence[Candidate], tracks: Sequence[Wanted],
                 album: str, profile: QualityProfile, *, min_coverage: float,
                 tolerance_s: float, owned: frozenset[int] = frozenset()) -> FolderScore:
    """Return the verdict on one folder for the tracklist ``tracks`` of ``album``.

    ``owned`` are the tracklist entries the library has already: they take part in the
    assignment (so their files are not taken for other tracks) but are neither needed from
    the folder nor counted in its coverage, ``matched`` or ``missing``.
    """
    audio = [c for c in files if audio_format(c) is not None]
    paths = [parse_remote_path(c.filename) for c in audio]
    pairs = [[pair_score(t, c, tolerance_s, p) for c, p in zip(audio, paths, strict=True)]
             for t in tracks]
    cost = [[1.0 - p.score if p.score >= MIN_PAIR_SCORE else _NO_PAIR_COST for p in row] for row in pairs]
    chosen = assign(cost)
    matched: list[FileMatch] = []
    for index, col in enumerate(chosen):
        if col is not None and pairs[index][col].score >= MIN_PAIR_SCORE:
            match = pairs[index][col]
            match.track = index
            matched.append(match)
    used = {m.filename for m in matched}
    matched = [m for m in matched if m.track not in owned]
    needed = [i for i in range(len(tracks)) if i not in owned]
    missing = [i for i in needed if i not in {m.track for m in matched}]
    extra = [c.filename for c in audio if c.filename not in used]
    coverage = (round(len(matched) / len(needed), 3) if needed else 1.0) if tracks else 0.0
    by_name = {c.filename: c for c in audio}
    taken = [by_name[m.filename] for m in matched]
    reasons: list[str] = []
    if coverage < min_coverage:
        have = f", {len(owned)} more in the library" if owned else ""
        reasons.append(f"covers {len(matched)} of {len(needed)} tracks{have} "
                       f"(downloads.album_min_coverage is {min_coverage:g})")
    qualities = sorted({_quality_key(c) for c in taken})
    if len(qualities) > 1:
        reasons.append(f"mixes formats or bitrates: {', '.join(qualities)}")
    ranks = [profile.rank(c) for c in taken]
    rank = None if not ranks or any(r is None for r in ranks) else max(r for r in ranks if r is not None)
    if taken and rank is None:
        reasons.append(f"the quality profile ({profile}) refuses its files")
    duplicates = [i for i, row in enumerate(pairs)
                  if sum(p.score >= DUPLICATE_SCORE and p.title_score is not None for p in row) > 1]
    if duplicates:
        reasons.append(f"holds more than one copy of {len(duplicates)} track(s): it mixes releases")
    reasons += _edition_reasons(folder, album)
    first = taken[0] if taken else (files[0] if files else Candidate(username, folder, 0))
    cover = _cover(files)
    return FolderScore(username, folder, not reasons, reasons, coverage, matched, missing, extra,
                       ", ".join(qualities) or "no audio", rank, peer_score(first),
                       first.has_free_slot, first.upload_speed, first.queue_length,
                       cover.filename if cover else None, cover.size if cover else 0)


def _edition_reasons(folder: str, album: str) -> list[str]:
    name = _split(folder)[-1] if folder else ""
    reasons = []
    extra = album_versions(name) - album_versions(album)
    if extra:
        reasons.append(f"is a different edition ({', '.join(sorted(extra))}): {name!r}")
    if "remaster" in fold(name) and "remaster" not in fold(album):
        reasons.append(f"is a remaster, which was not asked for: {name!r}")
    similarity = album_similarity(album, parse_remote_path(folder + "\\x.flac").album) if name else None
    if similarity is not None and similarity < 0.5:
        reasons.append(f"the folder {name!r} is not named like the album {album!r}")
    return reasons


def score_folders(found: Iterable[Candidate], tracks: Sequence[Wanted], album: str,
                  profile: QualityProfile, *, min_coverage: float, tolerance_s: float,
                  owned: frozenset[int] = frozenset()) -> list[FolderScore]:
    """Return every folder's verdict, accepted ones first, best first (see the module
    docstring; ``owned`` as in :func:`score_folder`)."""
    scored = [score_folder(user, folder, files, tracks, album, profile, min_coverage=min_coverage,
                           tolerance_s=tolerance_s, owned=owned)
              for (user, folder), files in group_folders(found).items()]
    scored.sort(key=lambda f: (not f.accepted, f.quality_rank if f.quality_rank is not None else 99,
                               -f.coverage, -f.peer_score, f.username, f.folder))
    return scored
