"""Audio formats and the quality profile: which files are good enough, and in what order.

A profile is an ordered list of rules written as strings, so it fits a list setting and an
environment variable (where commas separate entries)::

    ["flac", "mp3>=320"]            FLAC first, then MP3 of at least 320 kbps
    ["flac>=24bit>=96khz", "flac"]  hi-res FLAC first, then any FLAC
    ["lossless", "mp3>=256kbps"]    any lossless format, then MP3 of at least 256 kbps

An entry is ``FORMAT`` followed by any number of ``>=NUMBER[UNIT]`` minimums: no unit, ``k``
or ``kbps`` is a bitrate in kbps, ``bit`` a bit depth, ``khz``/``hz`` a sample rate. A minimum
the candidate's metadata cannot prove (unknown bit depth, say) is not met.

With ``fallback`` on, a file no rule accepts still qualifies after every rule's files (better
than nothing), lossless before lossy, lossy by bitrate; with it off, a FLAC-only profile
never takes an MP3.

:func:`quality_rank` orders any two files (a library file or a Soulseek candidate) under a
profile: the profile's order first, then bit depth, sample rate and bitrate, never the file
extension alone. Quality upgrades and the album folder scoring compare files with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from soulsync_core.models import Candidate

LOSSLESS = frozenset({"flac", "alac", "wav", "aiff", "ape", "wv", "dsf", "dff"})
LOSSY = frozenset({"mp3", "aac", "ogg", "opus", "wma"})
FORMATS = LOSSLESS | LOSSY
DEFAULT_QUALITY_PROFILE: tuple[str, ...] = ("flac", "mp3>=320")

_EXTENSIONS = {
    "flac": "flac", "alac": "alac", "wav": "wav", "wave": "wav", "aif": "aiff", "aiff": "aiff",
    "aifc": "aiff", "ape": "ape", "wv": "wv", "dsf": "dsf", "dff": "dff", "mp3": "mp3",
    "mp4": "aac", "aac": "aac", "ogg": "ogg", "oga": "ogg", "opus": "opus", "wma": "wma",
}
# An .m4a holds either AAC or ALAC; only lossless audio reaches these bitrates.
_ALAC_MIN_KBPS = 500
_ENTRY = re.compile(r"^([a-z0-9]+)((?:\s*>=\s*\d+(?:\.\d+)?\s*[a-z]*)*)$")
_MINIMUM = re.compile(r">=\s*(\d+(?:\.\d+)?)\s*([a-z]*)")
_UNITS = {"": "bitrate", "k": "bitrate", "kbps": "bitrate", "kbit": "bitrate", "bit": "bit_depth",
          "khz": "sample_rate", "hz": "sample_rate"}
_SYNTAX_HELP = "write FORMAT, then optional minimums like >=320 (kbps), >=24bit or >=96khz"


def extension_of(filename: str) -> str:
    """Return the lower-case extension of a (Windows or POSIX) remote path, "" when it has none."""
    name = re.split(r"[\\/]", filename)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem and ext.isalnum() and len(ext) <= 5 else ""


def audio_format(candidate: Candidate) -> str | None:
    """Return the candidate's audio format (one of FORMATS), or None when it is not audio."""
    ext = (candidate.extension or extension_of(candidate.filename)).lower().lstrip(".")
    if ext == "m4a":
        lossless = candidate.bit_depth or (candidate.bitrate or 0) >= _ALAC_MIN_KBPS
        return "alac" if lossless else "aac"
    return _EXTENSIONS.get(ext)


def effective_kbps(candidate: Candidate) -> float | None:
    """Return the bitrate the file's size and length imply, None when either is unknown."""
    if not candidate.size or not candidate.duration_s:
        return None
    return candidate.size * 8 / 1000 / candidate.duration_s


def bitrate_kbps(candidate: Candidate) -> float | None:
    """Return the stated bitrate, else the one size and length imply, else None."""
    return float(candidate.bitrate) if candidate.bitrate else effective_kbps(candidate)


def quality_label(candidate: Candidate) -> str:
    """Return a short human description: ``"flac 24/96 kHz"``, ``"mp3 320 kbps"``, ``"ogg"``."""
    fmt = audio_format(candidate) or (extension_of(candidate.filename) or "unknown")
    if fmt in LOSSLESS and candidate.bit_depth and candidate.sample_rate:
        return f"{fmt} {candidate.bit_depth}/{candidate.sample_rate / 1000:g} kHz"
    kbps = bitrate_kbps(candidate)
    return f"{fmt} {round(kbps)} kbps" if kbps and fmt not in LOSSLESS else fmt


@dataclass(frozen=True)
class QualityRule:
    """One profile entry: a format (or ``lossless``) and minimums; None means no minimum."""

    format: str
    min_bitrate: int | None = None
    min_bit_depth: int | None = None
    min_sample_rate: int | None = None

    def matches(self, candidate: Candidate) -> bool:
        """Return True when the candidate is of this format and proves every minimum."""
        fmt = audio_format(candidate)
        if fmt is None or (fmt != self.format and not (self.format == "lossless" and fmt in LOSSLESS)):
            return False
        kbps = bitrate_kbps(candidate)
        return ((self.min_bitrate is None or (kbps is not None and kbps >= self.min_bitrate))
                and (self.min_bit_depth is None or (candidate.bit_depth or 0) >= self.min_bit_depth)
                and (self.min_sample_rate is None
                     or (candidate.sample_rate or 0) >= self.min_sample_rate))

    def __str__(self) -> str:
        text = self.format
        if self.min_bitrate is not None:
            text += f">={self.min_bitrate}"
        if self.min_bit_depth is not None:
            text += f">={self.min_bit_depth}bit"
        if self.min_sample_rate is not None:
            text += f">={self.min_sample_rate / 1000:g}khz"
        return text


@dataclass(frozen=True)
class QualityProfile:
    """Ordered rules (earlier is better) and whether files no rule accepts may still be taken."""

    rules: tuple[QualityRule, ...]
    fallback: bool = True

    def rank(self, candidate: Candidate) -> int | None:
        """Return the candidate's quality rank (lower is better), None when it does not qualify.

        The rank is the index of the first rule the candidate meets. Under fallback, any other
        audio file ranks after all rules: ``len(rules)`` for lossless, ``+1`` for lossy of at
        least 256 kbps, ``+2`` for at least 192 kbps, ``+3`` for the rest.
        """
        for index, rule in enumerate(self.rules):
            if rule.matches(candidate):
                return index
        fmt = audio_format(candidate)
        if not self.fallback or fmt is None:
            return None
        kbps = bitrate_kbps(candidate) or 0
        tier = 0 if fmt in LOSSLESS else 1 if kbps >= 256 else 2 if kbps >= 192 else 3
        return len(self.rules) + tier

    def __str__(self) -> str:
        rules = ", ".join(str(rule) for rule in self.rules)
        return rules + (" (or anything else as a fallback)" if self.fallback else " (nothing else)")


def _parse_rule(entry: str) -> QualityRule:
    text = entry.strip().lower()
    match = _ENTRY.match(text)
    if not match:
        raise ValueError(f"quality profile entry {entry!r} is not understood: {_SYNTAX_HELP}, "
                         f"e.g. mp3>=320 or flac>=24bit")
    fmt = match.group(1)
    if fmt not in FORMATS and fmt != "lossless":
        known = ", ".join(sorted(FORMATS | {"lossless"}))
        raise ValueError(f"quality profile entry {entry!r}: unknown format {fmt!r}; use one of {known}")
    minimums: dict[str, int] = {}
    for number, unit in _MINIMUM.findall(match.group(2)):
        kind = _UNITS.get(unit)
        if kind is None:
            raise ValueError(f"quality profile entry {entry!r}: unknown unit {unit!r}; "
                             f"use kbps, bit or khz")
        if kind in minimums:
            raise ValueError(f"quality profile entry {entry!r} gives the {kind.replace('_', ' ')} twice")
        value = float(number) * (1000 if unit == "khz" else 1)
        minimums[kind] = round(value)
    return QualityRule(fmt, minimums.get("bitrate"), minimums.get("bit_depth"),
                       minimums.get("sample_rate"))


def parse_quality_profile(entries: Sequence[str], *, fallback: bool = True) -> QualityProfile:
    """Return the profile the setting value ``entries`` describes (see the module docstring).

    Raises ValueError with a message that names the bad entry and says how to write it.
    """
    if isinstance(entries, str) or not entries:
        raise ValueError("quality profile must be a list of at least one format, e.g. "
                         '["flac", "mp3>=320"]')
    rules: list[QualityRule] = []
    for entry in entries:
        rule = _parse_rule(entry)
        if rule in rules:
            raise ValueError(f"quality profile lists {str(rule)!r} twice")
        rules.append(rule)
    return QualityProfile(tuple(rules), fallback)


def check_quality_profile(value: list[str]) -> str | None:
    """Return what is wrong with a quality profile setting value, None when it is valid.

    Made for ``Setting(check=...)``.
    """
    try:
        parse_quality_profile(value)
    except ValueError as exc:
        return str(exc)
    return None


# LAME's VBR presets average below their quality's CBR equal (V0 averages about 245 kbps and
# is usually ranked between CBR 320 and 256), so a VBR average counts this much more.
VBR_BITRATE_FACTOR = 1.25


@dataclass(frozen=True)
class QualityRank:
    """A file's place under a quality profile: compare with ``<`` (better is smaller).

    ``rule`` is the index of the profile entry the file meets (files no entry accepts come
    after every entry, lossless first, as under ``fallback``); within a rule the higher bit
    depth, sample rate and (VBR-weighted, lossy only) bitrate win. Equal ranks are equally
    good, so an equal file is never an upgrade.
    """

    rule: int
    bit_depth: int
    sample_rate: int
    bitrate: float

    @property
    def key(self) -> tuple[int, int, int, float]:
        """The sort key: smaller is better."""
        return (self.rule, -self.bit_depth, -self.sample_rate, -self.bitrate)

    def __lt__(self, other: QualityRank) -> bool:
        return self.key < other.key

    def __le__(self, other: QualityRank) -> bool:
        return self.key <= other.key


def quality_rank(profile: QualityProfile, fmt: str, bitrate: float | None = None,
                 bit_depth: int | None = None, sample_rate: int | None = None,
                 vbr: bool = False) -> QualityRank:
    """Return the rank of a file of format ``fmt`` (a FORMATS name or an extension) with the
    given stream figures under ``profile``; unknown figures count as 0.

    A lossless file's bitrate does not count within its rule (it says how well the file
    compressed, not how good it is). ``vbr`` marks a lossy variable-bitrate file, whose
    average counts :data:`VBR_BITRATE_FACTOR` times. The rule part ignores
    ``profile.fallback``: every audio file gets a rank, so a library file outside the profile
    can still be upgraded; a file that is not audio ranks after all of them.
    """
    name = fmt.lower().lstrip(".")
    name = name if name in FORMATS else _EXTENSIONS.get(name, name)
    lossless = name in LOSSLESS
    kbps = float(bitrate or 0) * (VBR_BITRATE_FACTOR if vbr and not lossless else 1)
    candidate = Candidate("", f"file.{name}", 0, name, round(kbps) or None, bit_depth, sample_rate)
    rule = QualityProfile(profile.rules, fallback=True).rank(candidate)
    return QualityRank(len(profile.rules) + 4 if rule is None else rule, bit_depth or 0,
                       sample_rate or 0, 0.0 if lossless else kbps)


def cutoff_rule(profile: QualityProfile, entry: str) -> int:
    """Return the index of ``entry`` (a ``downloads.upgrade_until`` value) in ``profile``.

    Files whose :func:`quality_rank` ``rule`` is larger are below the cutoff. Raises
    ValueError saying what to fix when the entry is not one of the profile's.
    """
    rule = _parse_rule(entry)
    if rule not in profile.rules:
        listed = ", ".join(str(r) for r in profile.rules)
        raise ValueError(f"downloads.upgrade_until {entry!r} is not an entry of "
                         f"downloads.quality_profile ({listed}); set it to one of those")
    return profile.rules.index(rule)


def check_cutoff_entry(value: str) -> str | None:
    """Return what is wrong with a ``downloads.upgrade_until`` value ("" is off), else None.

    Made for ``Setting(check=...)``.
    """
    if not value.strip():
        return None
    try:
        _parse_rule(value)
    except ValueError as exc:
        return str(exc)
    return None
