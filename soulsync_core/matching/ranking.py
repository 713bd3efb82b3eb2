"""Ranking Soulseek search results for a wanted track, with the reasons for every verdict.

Each candidate is scored against the wanted track from its remote path (see
:mod:`~soulsync_core.matching.paths`) with the gates and confidence of
:mod:`~soulsync_core.matching.similarity`, plus three download-only gates: the file must be
audio, must not sit in a "Various Artists"/"VA" folder unless the wanted album is a
compilation or that very album (compilations carry edits, covers and misnamed files, and
Soulseek nearly always offers the track from its own album too), must not sit in an
"Unknown Artist"/"Unknown Album" folder (untagged rips), and a lossless file must not be
smaller than 320 kbps for its length (a fake or truncated file).

Accepted candidates come first, ordered by :attr:`Scored.rank_key`:

1. quality rank (the profile's first rule the file meets; lower is better);
2. confidence band (0.05 wide, higher first), so a hair of similarity does not beat a
   much better peer while a clearly better match still does;
3. peer score (:func:`peer_score`: free upload slot, then upload speed, then queue length);
4. exact confidence, then raw upload speed, then username and filename, so the order is
   total and the same on every run.

Rejected candidates follow, best confidence first, each with its reasons.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from soulsync_core.matching.paths import UNKNOWN_FOLDERS, parse_remote_path
from soulsync_core.matching.quality import (
    LOSSLESS,
    QualityProfile,
    audio_format,
    effective_kbps,
    quality_label,
)
from soulsync_core.matching.similarity import (
    ALBUM_GATE,
    DEFAULT_DURATION_TOLERANCE_S,
    DEFAULT_MIN_CONFIDENCE,
    TrackInfo,
    album_similarity,
    artist_similarity,
    combine,
    duration_fit,
    gate_reasons,
    title_info_similarity,
    version_conflicts,
)
from soulsync_core.matching.text import album_versions, clean_album, fold, is_folder_noise, parse_title
from soulsync_core.models import Candidate

_MIN_LOSSLESS_KBPS = 320
# Upload speed buckets in bytes/s: under 100 KB/s, 500 KB/s, 1 MB/s, 5 MB/s, and above.
_SPEED_STEPS = (100_000, 500_000, 1_000_000, 5_000_000)

RankKey = tuple[int, int, float, float, float, int, str, str]


@dataclass
class Scored:
    """One candidate's verdict and the figures behind it, as stored on a download.

    ``accepted`` is True when ``reasons`` is empty. ``title``/``artist``/``album`` are the
    parts of the path that were compared (``artist`` "" when nothing resembled the artist);
    ``versions`` the version tags the path carries. Scores are in [0, 1], rounded to 3
    places; ``album_score`` is None when either album is unknown; ``duration_delta_s`` is
    candidate minus wanted, None when either length is unknown. ``quality_rank`` is None
    when the profile refuses the file. ``rank_key`` sorts candidates best first.
    """

    candidate: Candidate
    accepted: bool
    reasons: list[str]
    title: str
    artist: str
    album: str
    versions: list[str]
    title_score: float
    artist_score: float
    album_score: float | None
    duration_delta_s: float | None
    confidence: float
    quality: str
    quality_rank: int | None
    peer_score: float
    rank_key: RankKey


def peer_score(candidate: Candidate) -> float:
    """Return the peer's score in [0, 1): free slot 0.5, speed bucket 0.1 each, queue < 0.09.

    Each part outweighs everything after it, so ordering by the score is ordering by free
    slot, then upload speed bucket (see ``_SPEED_STEPS``), then shorter queue.
    """
    bucket = sum(candidate.upload_speed >= step for step in _SPEED_STEPS)
    queue = 0.09 / (1 + max(candidate.queue_length, 0) / 10)
    return round(0.5 * bool(candidate.has_free_slot) + 0.1 * bucket + queue, 4)


def _special_folder_reason(folder: str, wanted: TrackInfo, album: float | None) -> str | None:
    if fold(folder) in UNKNOWN_FOLDERS:
        return f"is in the folder {folder!r}, so its tags were missing"
    if wanted.compilation or (album is not None and album >= ALBUM_GATE):
        return None
    return f"is in the compilation folder {folder!r} and the wanted album is not a compilation"


def score_candidate(wanted: TrackInfo, candidate: Candidate, profile: QualityProfile, *,
                    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
                    min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Scored:
    """Return the verdict on one search result for ``wanted``; see the module docstring."""
    path = parse_remote_path(candidate.filename)
    w_info = parse_title(wanted.title)
    fmt = audio_format(candidate)
    reasons: list[str] = []
    if fmt is None:
        reasons.append(f"is not an audio file (.{path.extension or '?'})")

    # The title may be any trailing run of the file name's segments; the segments before it
    # may name the artist.
    best_title, title, before = -1.0, path.title, ()
    for text, prefix in path.title_spans:
        score = title_info_similarity(w_info, parse_title(text))
        if score > best_title:
            best_title, title, before = score, text, prefix
    stem_info = parse_title(path.title_spans[0][0])  # the longest reading holds every marker

    names = [*before, *parse_title(title).featured, *path.folder_artists]
    if wanted.album:
        # "Daft Punk Discovery 2001 FLAC" names the artist once album, year and format are gone.
        album_words = set(fold(clean_album(wanted.album)).split())
        names += [" ".join(w for w in fold(n).split() if w not in album_words and not is_folder_noise(w))
                  for n in path.folder_artists]
    artist, shown_artist = artist_similarity(wanted.artists, [n for n in names if n])
    album_scores = [s for s in (album_similarity(wanted.album, path.album),
                                album_similarity(wanted.album, path.album_folder)) if s is not None]
    album = max(album_scores) if album_scores else None

    special = path.special_folder()
    special_reason = _special_folder_reason(special, wanted, album) if special else None
    if special_reason:
        reasons.append(special_reason)
    delta, fit, duration_reason = duration_fit(wanted.duration_ms, candidate.duration_s,
                                               duration_tolerance_s)
    conflicts, soft = version_conflicts([w_info], [stem_info], wanted.album, path.album_folder,
                                        durations_known=delta is not None)
    reasons += conflicts
    if duration_reason:
        reasons.append(duration_reason)
    reasons += gate_reasons(wanted, best_title, title, artist, shown_artist, album)
    kbps = effective_kbps(candidate)
    if fmt in LOSSLESS and kbps is not None and kbps < _MIN_LOSSLESS_KBPS:
        reasons.append(f"is only {kbps:.0f} kbps for {fmt}: a fake or truncated file")
    raw = combine(best_title, artist, fit, album, soft)
    if not reasons and raw < min_confidence:
        reasons.append(f"confidence {raw:.2f} is below the minimum {min_confidence:.2f}")
    rank = profile.rank(candidate)
    if rank is None and fmt is not None:
        reasons.append(f"{quality_label(candidate)} is not in the quality profile ({profile})")

    accepted = not reasons
    confidence = round(raw if accepted else raw * 0.5, 3)
    peer = peer_score(candidate)
    tiebreak = (candidate.username, candidate.filename)
    if accepted and rank is not None:
        band = math.floor(confidence * 20 + 1e-9) / 20
        key: RankKey = (0, rank, -band, -peer, -confidence, -candidate.upload_speed, *tiebreak)
    else:
        key = (1, 0, 0.0, 0.0, -confidence, 0, *tiebreak)
    versions = stem_info.versions | album_versions(path.album_folder)
    return Scored(
        candidate=candidate, accepted=accepted, reasons=reasons, title=title,
        artist=shown_artist if artist > 0 else "", album=path.album, versions=sorted(versions),
        title_score=round(best_title, 3), artist_score=round(artist, 3),
        album_score=None if album is None else round(album, 3), duration_delta_s=delta,
        confidence=confidence, quality=quality_label(candidate), quality_rank=rank,
        peer_score=peer, rank_key=key,
    )


def rank_candidates(wanted: TrackInfo, candidates: Iterable[Candidate], profile: QualityProfile, *,
                    duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
                    min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[Scored]:
    """Return every candidate scored, accepted ones first in download order, then the rejected.

    A (username, filename) pair seen twice (two queries found it) is scored once, as first
    seen. Otherwise the order does not depend on the order of ``candidates``.
    """
    seen: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        seen.setdefault((candidate.username, candidate.filename), candidate)
    scored = [score_candidate(wanted, c, profile, duration_tolerance_s=duration_tolerance_s,
                              min_confidence=min_confidence) for c in seen.values()]
    return sorted(scored, key=lambda s: s.rank_key)
