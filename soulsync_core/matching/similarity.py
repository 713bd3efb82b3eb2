"""Is this the wanted recording? Similarity of titles, artists, albums and durations.

One scoring rule serves the download ranking (against remote paths) and library/playlist
matching (against tagged tracks), so both accept and reject for the same reasons:

* **Gates** reject outright, whatever the other scores: a version mismatch (see
  :mod:`~soulsync_core.matching.text`), a duration outside the tolerance, a title or artist
  similarity under 0.88, a generic title ("Intro", "Untitled") whose album differs.
* **Confidence** = 0.50 title + 0.30 artist + 0.15 duration fit + 0.05 album fit, each in
  [0, 1]: duration fit falls from 1 (equal) to 0.5 (at the tolerance) and is 0.5 when a
  duration is unknown; album fit is 0.5 when an album is unknown. Each soft-version mismatch
  (edit, extended, clean) costs 0.05. A rejected comparison reports half its raw
  confidence, so it is at most 0.5, below any sensible threshold.

Similarities are rapidfuzz Indel ratios over folded text, order-insensitive
(``token_sort_ratio``): extra words lower the score, unlike a subset match, so "Queen" is not
"Queen Latifah". Titles whose numbers differ ("Part 1"/"Part 2", "Song 2"/"Song") score at
most 0.5. Titles also compare with their markers kept ("Song - Live Aid" = "Song (Live
Aid)"), a censored word with the word it hides ("F**k" = "Fuck"), and without an extra
bracket on one side at 0.9 ("Satisfaction" vs "(I Can't Get No) Satisfaction"; two different
brackets stay apart). An artist name of two words or more inside a longer one ("Jimi
Hendrix" in "The Jimi Hendrix Experience") scores 0.9.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from soulsync_core.matching.text import (
    HARD_VERSIONS,
    SOFT_VERSIONS,
    TitleInfo,
    album_versions,
    artist_key,
    clean_album,
    credit_names,
    fold,
    parse_title,
)
from soulsync_core.models import Track

TITLE_GATE = 0.88
ARTIST_GATE = 0.88
ALBUM_GATE = 0.88
DEFAULT_DURATION_TOLERANCE_S = 5.0
DEFAULT_MIN_CONFIDENCE = 0.85
_DETAIL_GATE = 0.5
_SOFT_PENALTY = 0.05
_GENERIC_TITLE = re.compile(
    r"^(?:intro|outro|interlude|prelude|skit|untitled|hidden track|bonus track|track \d+"
    r"|untitled \d+|instrumental)$")
_DIGITS = re.compile(r"\d+")

VERSION_LABELS = {
    "live": "a live version", "remix": "a remix", "acoustic": "an acoustic version",
    "instrumental": "an instrumental", "acapella": "an a cappella version",
    "karaoke": "a karaoke version", "demo": "a demo or alternate take",
    "sped_up": "a sped-up version", "slowed": "a slowed version", "cover": "a cover",
    "orchestral": "an orchestral version", "reprise": "a reprise", "rerecording": "a re-recording",
    "edit": "an edit", "extended": "an extended version", "clean": "a clean (censored) version",
}


@functools.cache
def _fuzz() -> Any:
    """Return rapidfuzz's ``fuzz`` module, imported on first comparison, not at daemon start-up."""
    from rapidfuzz import fuzz

    return fuzz


@dataclass(frozen=True)
class TrackInfo:
    """A track as matching needs it: a wanted track, or a library track to compare with it.

    ``artists`` in credit order (a single string is one artist); ``duration_ms`` 0 when
    unknown; ``compilation`` says the wanted album is a various-artists compilation, which
    lets a download come from a "Various Artists" folder.
    """

    title: str
    artists: tuple[str, ...]
    album: str = ""
    duration_ms: int = 0
    isrc: str | None = None
    compilation: bool = False

    def __post_init__(self) -> None:
        names = (self.artists,) if isinstance(self.artists, str) else tuple(self.artists)
        object.__setattr__(self, "artists", tuple(n for n in names if n and n.strip()))

    @classmethod
    def from_track(cls, track: Track, *, compilation: bool = False) -> TrackInfo:
        """Return the matching view of a metadata source's track."""
        return cls(track.name, tuple(track.artists), track.album or "", track.duration_ms or 0,
                   track.isrc, compilation)


@dataclass
class MatchScore:
    """How well a candidate track matches a wanted one.

    ``matched`` is True when no gate rejected it and ``confidence >= min_confidence``;
    ``reasons`` says why not otherwise (empty when matched). ``method`` is ``isrc`` (equal
    ISRCs decide alone), ``exact`` (equal folded title and artist, duration in tolerance) or
    ``fuzzy``. ``duration_delta_s`` is candidate minus wanted, None when either is unknown.
    """

    matched: bool
    confidence: float
    method: Literal["isrc", "exact", "fuzzy"]
    title_score: float
    artist_score: float
    album_score: float | None
    duration_delta_s: float | None
    reasons: list[str] = field(default_factory=list)


def text_similarity(a: str, b: str) -> float:
    """Return the similarity in [0, 1] of two folded texts (1.0 only when equal)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    fuzz = _fuzz()
    return min(0.999, max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100)


def title_info_similarity(wanted: TitleInfo, candidate: TitleInfo) -> float:
    """Return :func:`title_similarity` of two parsed titles."""
    wb, cb = _title_fold(wanted.base, candidate.base), _title_fold(candidate.base, wanted.base)
    score = text_similarity(wb, cb)
    # "Song - Live Aid" vs "Song (Live Aid)": the same words, one side reads them as a marker.
    score = max(score, text_similarity(fold(wanted.clean), fold(candidate.clean)))
    wbare, cbare = fold(wanted.bare), fold(candidate.bare)
    extra_w, extra_c = wbare != fold(wanted.base), cbare != fold(candidate.base)
    if (extra_w or extra_c) and not (extra_w and extra_c):
        # "(I Can't Get No) Satisfaction" vs "Satisfaction": close, never equal. When both
        # sides carry a different bracket ("Waka Waka (Esto es África)" vs "Waka Waka (This
        # Time for Africa)"), the brackets are what tells the two apart.
        score = max(score, 0.9 * text_similarity(wbare, cbare))
    if set(_DIGITS.findall(wb)) != set(_DIGITS.findall(cb)):
        score = min(score, 0.5)
    return score


_CENSORED = re.compile(r"[^\W\d]*\*+[^\W\d]*")


def _title_fold(title: str, other: str) -> str:
    """Return ``fold(title)`` with its censored words ("F**k") spelt as in ``other`` when it fits.

    A censored word is restored from a word of ``other`` of the same length whose visible
    letters agree ("F**k" <- "fuck", never "forget"), so a censored and an uncensored tag of
    one recording compare equal.
    """
    if "*" not in title:
        return fold(title)
    words = fold(other).split()

    def restore(match: re.Match[str]) -> str:
        shape = fold(match.group(0).replace("*", "9"))  # a digit survives folding
        pattern = re.compile("".join("[a-z]" if c == "9" else re.escape(c) for c in shape))
        return next((w for w in words if pattern.fullmatch(w)), match.group(0))

    return fold(_CENSORED.sub(restore, title))
def title_similarity(wanted: str, candidate: str) -> float:
    """Return how alike two titles are in [0, 1], ignoring noise and version markers.

    Versions are the gate's business (:func:`version_conflicts`), so "Song (Live)" and "Song"
    score 1.0 here.
    """
    return title_info_similarity(parse_title(wanted), parse_title(candidate))


def artist_similarity(wanted: Sequence[str], names: Iterable[str]) -> tuple[float, str]:
    """Return ``(score, name)``: the best similarity of any wanted artist to any of ``names``.

    Each name is tried whole and split into its credited artists ("A feat. B" gives A and
    B, see :func:`~soulsync_core.matching.text.credit_names`); comparison uses
    :func:`artist_key`, also without spaces ("AC/DC" = "ACDC"). A name of two words or more
    found whole inside the other ("Jimi Hendrix" in "The Jimi Hendrix Experience", "Hall &
    Oates" in "Daryl Hall & John Oates") scores 0.9, unless the longer one is a tribute or
    karaoke act. Returns ``(0.0, "")`` when either side is empty.
    """
    wanted_keys = [artist_key(a) for a in wanted if a.strip()]
    best, best_name = 0.0, ""
    for name in names:
        for piece in credit_names(name):
            key = artist_key(piece)
            for want in wanted_keys:
                score = _name_similarity(want, key)
                if score > best:
                    best, best_name = score, name
                    if best == 1.0:
                        return best, best_name
    return best, best_name


@functools.lru_cache(maxsize=65536)
def _name_similarity(want: str, key: str) -> float:
    """Return the similarity of two artist keys (see :func:`artist_similarity`)."""
    score = max(text_similarity(want, key), text_similarity(want.replace(" ", ""), key.replace(" ", "")))
    return score if score >= ARTIST_GATE else max(score, _contained(want, key))


_FILLER_WORDS = frozenset({"and", "the", "of"})
_ACT_WORDS = frozenset({"tribute", "karaoke", "cover", "covers"})
_CONTAINED_SCORE = 0.9


def _contained(a: str, b: str) -> float:
    """Return 0.9 when every word of the shorter key is in the longer one (see artist_similarity)."""
    short, long = sorted((a.split(), b.split()), key=len)
    if len([w for w in short if w not in _FILLER_WORDS]) < 2 or len(short) == len(long):
        return 0.0
    rest = list(long)
    for word in short:
        if word not in rest:
            return 0.0
        rest.remove(word)
    return 0.0 if _ACT_WORDS & set(rest) else _CONTAINED_SCORE


def album_similarity(wanted: str, candidate: str) -> float | None:
    """Return how alike two album names are (edition and year wording ignored), None if one is empty."""
    a, b = fold(clean_album(wanted)), fold(clean_album(candidate))
    return text_similarity(a, b) if wanted.strip() and candidate.strip() else None


def version_conflicts(wanted: Iterable[TitleInfo], candidate: Iterable[TitleInfo],
                      wanted_album: str = "", candidate_album: str = "", *,
                      durations_known: bool) -> tuple[list[str], int]:
    """Return ``(reasons, soft mismatches)`` for the versions of a wanted and a candidate track.

    Versions are the union of the titles' markers and the album's (:func:`album_versions`).
    A hard tag on one side only is a reason; so is the same hard tag with unrelated details
    ("Skrillex Remix" vs "Mark Ronson Remix"). A soft tag on one side only is a reason when
    ``durations_known`` is False, else it is only counted.
    """
    def collect(infos: Iterable[TitleInfo], album: str) -> tuple[set[str], dict[str, set[str]]]:
        tags: set[str] = set(album_versions(album)) if album else set()
        details: dict[str, set[str]] = {}
        for info in infos:
            tags |= info.versions
            for marker in info.markers:
                for tag in marker.tags:
                    if marker.detail:
                        details.setdefault(tag, set()).add(marker.detail)
        return tags, details

    want_tags, want_details = collect(wanted, wanted_album)
    cand_tags, cand_details = collect(candidate, candidate_album)
    reasons: list[str] = []
    soft = 0
    for tag in sorted(want_tags ^ cand_tags):
        is_soft = tag in SOFT_VERSIONS
        if is_soft and durations_known:
            soft += 1
            continue
        label = VERSION_LABELS[tag]
        reasons.append(f"is {label}; the wanted track is not" if tag in cand_tags
                       else f"is not {label}; the wanted track is")
    for tag in sorted(want_tags & cand_tags & HARD_VERSIONS):
        ours, theirs = want_details.get(tag), cand_details.get(tag)
        if ours and theirs and max(_fuzz().token_set_ratio(a, b) for a in ours for b in theirs) / 100 < (
                _DETAIL_GATE):
            reasons.append(f"is a different {tag.replace('_', ' ')} ({', '.join(sorted(theirs))!r}; "
                           f"wanted {', '.join(sorted(ours))!r})")
    return reasons, soft


def duration_fit(wanted_ms: int, candidate_s: float | None,
                 tolerance_s: float) -> tuple[float | None, float, str | None]:
    """Return ``(delta_s, fit, reason)`` for a wanted length in ms and a candidate's in seconds.

    ``delta_s`` is candidate minus wanted (None when either is unknown, then fit is 0.5);
    fit falls linearly from 1.0 to 0.5 at the tolerance; beyond it ``reason`` says by how much.
    """
    if not wanted_ms or not candidate_s:
        return None, 0.5, None
    delta = round(candidate_s - wanted_ms / 1000, 1)
    if abs(delta) > tolerance_s:
        side = "longer" if delta > 0 else "shorter"
        return delta, 0.0, f"{abs(delta):.0f} s {side} than the wanted track (tolerance {tolerance_s:g} s)"
    return delta, 1.0 - 0.5 * abs(delta) / tolerance_s if tolerance_s else 1.0, None


def is_generic_title(title: str) -> bool:
    """Return True for titles many albums share ("Intro", "Untitled 3"): the album must match."""
    return bool(_GENERIC_TITLE.match(fold(parse_title(title).base)))


def combine(title: float, artist: float, duration: float, album: float | None, soft: int) -> float:
    """Return the raw confidence of component scores (see the module docstring), in [0, 1]."""
    raw = 0.5 * title + 0.3 * artist + 0.15 * duration + 0.05 * (0.5 if album is None else album)
    return max(0.0, min(1.0, raw - _SOFT_PENALTY * soft))


def gate_reasons(wanted: TrackInfo, title: float, shown_title: str, artist: float,
                 shown_artist: str, album: float | None) -> list[str]:
    """Return the title, artist and generic-title gate reasons (readable sentences)."""
    reasons: list[str] = []
    if title < TITLE_GATE:
        reasons.append(f"title {shown_title!r} does not match {wanted.title!r} "
                       f"({title:.2f} < {TITLE_GATE:.2f})")
    if artist < ARTIST_GATE:
        wanted_artists = ", ".join(wanted.artists) or "(none)"
        found = f"best {shown_artist!r}, {artist:.2f} < {ARTIST_GATE:.2f}" if shown_artist else "none found"
        reasons.append(f"artist {wanted_artists!r} does not match ({found})")
    if wanted.album and is_generic_title(wanted.title) and (album is None or album < ALBUM_GATE):
        reasons.append(f"the title {wanted.title!r} is on many albums and the album is not "
                       f"{wanted.album!r}")
    return reasons


def _isrc(value: str | None) -> str:
    return (value or "").replace("-", "").strip().upper()


def track_similarity(wanted: TrackInfo, candidate: TrackInfo, *,
                     duration_tolerance_s: float = DEFAULT_DURATION_TOLERANCE_S,
                     min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> MatchScore:
    """Return how well ``candidate`` (e.g. a library track) matches ``wanted``.

    Equal ISRCs match with confidence 1.0 whatever the names say (an ISRC names one
    recording); different ISRCs decide nothing, since one recording is often issued under
    several. Otherwise the gates and confidence of the module docstring apply; artist lists
    compare in any order, and artists credited in the candidate's title count as its artists.
    """
    w_info, c_info = parse_title(wanted.title), parse_title(candidate.title)
    title = title_info_similarity(w_info, c_info)
    artist, shown_artist = artist_similarity(wanted.artists, (*candidate.artists, *c_info.featured))
    album = album_similarity(wanted.album, candidate.album)
    delta, fit, duration_reason = duration_fit(
        wanted.duration_ms, candidate.duration_ms / 1000 if candidate.duration_ms else None,
        duration_tolerance_s)
    reasons, soft = version_conflicts([w_info], [c_info], wanted.album, candidate.album,
                                      durations_known=delta is not None)
    if duration_reason:
        reasons.append(duration_reason)
    reasons += gate_reasons(wanted, title, candidate.title, artist, shown_artist, album)
    raw = combine(title, artist, fit, album, soft)
    if not reasons and raw < min_confidence:
        reasons.append(f"confidence {raw:.2f} is below the minimum {min_confidence:.2f}")
    scores = dict(title_score=round(title, 3), artist_score=round(artist, 3),
                  album_score=None if album is None else round(album, 3), duration_delta_s=delta)
    if _isrc(wanted.isrc) and _isrc(wanted.isrc) == _isrc(candidate.isrc):
        return MatchScore(True, 1.0, "isrc", **scores)
    if reasons:
        return MatchScore(False, round(raw * 0.5, 3), "fuzzy", reasons=reasons, **scores)
    exact = title == 1.0 and artist == 1.0
    return MatchScore(True, round(raw, 3), "exact" if exact else "fuzzy", **scores)
