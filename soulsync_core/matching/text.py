"""Text primitives of matching: folding, title cleaning, version markers and artist splitting.

Everything here answers "is this the same recording?", so the rules separate two kinds of
title decoration:

* **Noise** does not change which recording it is and is removed: featured-artist credits
  ("(feat. X)", "ft. X", "(with X)"), producer credits, remaster markers ("(Remastered 2011)",
  "- 2011 Remaster"), "explicit", release wording ("Album Version", "Single Version",
  "Deluxe Edition", "Bonus Track", "Original Mix"), mono/stereo mixes and year mixes ("2009
  Mix": the same performance mixed down again), years and soundtrack credits ("From 'Top Gun'").
* **Version markers** name a different recording and are kept. *Hard* markers are a different
  performance or arrangement, so a file with one never matches a wanted track without it and
  the other way round: live, remix (any "<name> Mix", "Rmx", "VIP", "Dub", "Bootleg", mash-up),
  acoustic (also unplugged, stripped, piano version), instrumental, a cappella, karaoke, demo
  (also outtake, alternate take, rehearsal), sped up, slowed, cover, orchestral, reprise and
  re-recording ("Taylor's Version"). *Soft* markers are another cut of the same performance:
  edit (radio edit, single edit), extended and clean (censored). Their length usually differs,
  so the scorers let the duration decide when both durations are known and reject a mismatch
  only when they cannot compare durations.

Markers count only in version position: inside brackets, or as a " - " suffix that reads like
one ("- Live", "- Live at Wembley", "- Mark Ronson Remix"), so "Live Forever" is not live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from unidecode import unidecode

HARD_VERSIONS = frozenset({
    "live", "remix", "acoustic", "instrumental", "acapella", "karaoke", "demo", "sped_up",
    "slowed", "cover", "orchestral", "reprise", "rerecording",
})
SOFT_VERSIONS = frozenset({"edit", "extended", "clean"})

# Patterns run on folded text (see fold), so they can be plain lower-case ASCII.
_VERSION_RULES: tuple[tuple[str, str], ...] = (
    # "The Complete Sessions" is a reissue of studio takes, not a live-in-the-studio session.
    ("live", r"live|in concert|concert|unplugged|(?<!complete )sessions?|en vivo|ao vivo|en directo"),
    ("acoustic", r"acoustic|unplugged|stripped|piano version|acustico|acustica"),
    ("instrumental", r"instrumental|inst"),
    ("acapella", r"a ?cappella|acapella|vocals? only"),
    ("karaoke", r"karaoke|backing track|originally performed by|in the style of|made famous by"),
    ("demo", r"demo|outtake|alternate (?:take|version)|alt take|early (?:take|version)|rehearsal"
             r"|take number \d+|take \d+|rough (?:cut|mix)|work ?tape"),
    ("sped_up", r"sped up|speed up|nightcore"),
    ("slowed", r"slowed|reverb"),
    ("cover", r"cover|tribute"),
    ("orchestral", r"orchestral|symphonic"),
    ("reprise", r"reprise"),
    ("rerecording", r"re ?record(?:ed|ing)?|taylors version"),
    ("remix", r"re ?mix(?:es|ed)?|rmx|refix|bootleg|mash ?up|rework(?:ed)?|vip|dub|mixed"),
    ("extended", r"extended|long version|12 inch|club version"),
    ("edit", r"edit|radio (?:mix|version)|short version"),
    ("clean", r"clean|censored|edited"),
)
_ANYWHERE = tuple((tag, re.compile(rf"\b(?:{pattern})\b")) for tag, pattern in _VERSION_RULES)
# A " - " suffix is a marker only when the keyword ends it ("- Mark Ronson Remix") ...
_AT_END = tuple((tag, re.compile(rf"\b(?:{pattern})$")) for tag, pattern in _VERSION_RULES)
# ... or it says where it was recorded ("- Live at Wembley '86").
_LIVE_WHERE = re.compile(r"\blive (?:at|in|from|on|for)\b|\blive \d{2,4}\b")
_TRAILING_VERSION_WORDS = re.compile(r"(?: (?:version|recording|\d+))+$")

# "<words> mix" is a remix unless every word before "mix" is one of these: "Original Mix",
# "Stereo Mix" and "2009 Mix" are the recording itself; "Radio Mix"/"Extended Mix" are cuts.
_PLAIN_MIX_WORDS = frozenset({"original", "album", "stereo", "mono", "single", "main", "lp", "the",
                              "ultimate",
                              "radio", "extended", "new"})
_MIX = re.compile(r"\bmix\b")

_NOISE_WORDS = frozenset("""
    remaster remastered remasterd remastering digital digitally version edition deluxe expanded
    anniversary bonus track tracks explicit dirty uncensored album single lp ep original mono
    stereo mix main standard special collectors collector hd hq hi res hires bit khz kbps
    reissue re issue super legacy limited japan japanese uk us import the a of and soundtrack ost
    motion picture from
""".split())
_NUMBER_WORD = re.compile(r"^\d+(?:st|nd|rd|th|s)?$")
_FEAT_START = re.compile(r"^(?:feat|ft|featuring|with)\b")
_CREDIT_START = re.compile(r"^(?:prod|produced|from)\b")
_FEAT_PREFIX = re.compile(r"^\s*(?:feat\.?|ft\.?|featuring|with)\s+", re.IGNORECASE)
_TRAILING_FEAT = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s+(.+)$", re.IGNORECASE)

BRACKETS = re.compile(r"\s*[(\[{]([^()\[\]{}]*)[)\]}]")
DASH = re.compile(r"\s+[-\u2013\u2014]+\s+")
_SPACES = re.compile(r"\s+")

_ACRONYM = re.compile(r"\b((?:[a-z]\.){2,})")
_APOSTROPHES = re.compile(r"['`\u00b4]")
_DOLLAR_S = re.compile(r"(?<=[a-z])\$|\$(?=[a-z])")
_BANG_I = re.compile(r"(?<=[a-z])!(?=[a-z])")
_SPACED_PLUS = re.compile(r"\s\+\s")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_ABBREVIATIONS = {"pt": "part", "vol": "volume", "feat": "featuring", "ft": "featuring"}
_COUNTED = frozenset({"part", "volume", "chapter", "act", "book", "number", "op"})
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7",
          "viii": "8", "ix": "9", "x": "10"}

# Credits split in two steps: first on the separators that always join two acts (commas,
# "feat.", "with", "vs."), then each part on "&", "+" and "x", which may also sit inside one
# name ("Simon & Garfunkel"). Word separators must stand between spaces and do not consume
# them, so "Lil Nas X feat. Billy Ray Cyrus" gives "Lil Nas X" and "Billy Ray Cyrus".
_CREDIT_SEPARATORS = re.compile(
    r"\s*(?:[,;/]|(?<!\S)(?:feat\.?|ft\.?|featuring|with|vs\.?|versus)(?=\s))\s*", re.IGNORECASE)
_NAME_SEPARATORS = re.compile(r"\s*(?:&|(?<!\S)(?:\+|x)(?=\s))\s*", re.IGNORECASE)
_THE_SUFFIX = re.compile(r"^(.*?),\s*the$", re.IGNORECASE)


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Return the comparison form of ``text``: ASCII, lower case, words separated by one space.

    Accents are transliterated (``"Motörhead"`` -> ``"motorhead"``), ``&`` and a spaced ``+``
    become ``and``, apostrophes and acronym dots vanish (``"Don't"`` -> ``"dont"``, ``"R.E.M."``
    -> ``"rem"``), ``$``/``!`` inside a word read as letters (``"Ke$ha"``, ``"P!nk"``), every
    other punctuation mark separates words, ``pt``/``vol`` are spelt out and a roman numeral
    after part/volume/number becomes digits (``"Pt. II"`` -> ``"part 2"``). A text with no
    letter or digit at all (the band ``!!!``) is returned lower-cased rather than empty.
    Unlike :func:`soulsync_core.library.folding.fold` (search), punctuation is not kept.
    """
    text_ = unidecode(text).lower()
    text_ = _ACRONYM.sub(lambda m: m.group(1).replace(".", ""), text_)
    text_ = _APOSTROPHES.sub("", text_).replace("&", " and ")
    text_ = _SPACED_PLUS.sub(" and ", text_)
    text_ = _BANG_I.sub("i", _DOLLAR_S.sub("s", text_))
    words = _NON_ALNUM.sub(" ", text_).split()
    if not words:
        return _SPACES.sub(" ", text.lower()).strip()
    out: list[str] = []
    for i, word in enumerate(words):
        word = _ABBREVIATIONS.get(word, word)
        if out and out[-1] in _COUNTED and word in _ROMAN:
            word = _ROMAN[word]
        elif word == "no" and i + 1 < len(words) and words[i + 1].isdigit():
            word = "number"  # "No. 5", never "No Surprises"
        out.append(word)
    return " ".join(out)


@lru_cache(maxsize=65536)
def artist_key(name: str) -> str:
    """Return the comparison form of an artist name: folded, without a leading or ``", The"``.

    ``"The Beatles"``, ``"Beatles, The"`` and ``"beatles"`` all give ``"beatles"``; a name
    that is only "The" words ("The The") keeps them.
    """
    match = _THE_SUFFIX.match(name.strip())
    folded = fold(f"The {match.group(1)}" if match else name)
    stripped = folded[4:] if folded.startswith("the ") else folded
    return stripped or folded


def split_artists(text: str) -> list[str]:
    """Return the artist names in a credit, in order, as written and without duplicates.

    Splits on ``,`` ``;`` ``/`` ``&`` ``+`` and the words feat./ft./featuring/with/vs./x:
    ``"A feat. B & C"`` -> ``["A", "B", "C"]``. ``"Beatles, The"`` stays one name. Names that
    contain a separator ("Simon & Garfunkel") are split too, so compare the whole credit as
    well as its pieces (:func:`credit_names`).
    """
    names: list[str] = []
    for part in _credit_parts(text):
        for piece in _NAME_SEPARATORS.split(part):
            _add_name(names, piece)
    return names


@lru_cache(maxsize=16384)
def credit_names(text: str) -> tuple[str, ...]:
    """Return every name a credit may stand for: the whole credit, its acts, then their pieces.

    ``"Simon & Garfunkel feat. X"`` -> ``("Simon & Garfunkel feat. X", "Simon & Garfunkel",
    "X", "Simon", "Garfunkel")`` (duplicates dropped, case-insensitively).
    """
    names: list[str] = []
    _add_name(names, text)
    parts = _credit_parts(text)
    for part in parts:
        _add_name(names, part)
    for part in parts:
        for piece in _NAME_SEPARATORS.split(part):
            _add_name(names, piece)
    return tuple(names)


def _credit_parts(text: str) -> list[str]:
    the_suffix = _THE_SUFFIX.match(text.strip())
    if the_suffix and not _CREDIT_SEPARATORS.search(the_suffix.group(1)):
        return [text.strip()]  # "Beatles, The"
    return [p for p in _CREDIT_SEPARATORS.split(text) if p.strip(" .-()[]")]


def _add_name(names: list[str], piece: str) -> None:
    piece = piece.strip(" .-()[]")
    if piece and piece.casefold() not in (n.casefold() for n in names):
        names.append(piece)


@dataclass(frozen=True)
class VersionMarker:
    """One version marker of a title: ``text`` as written, its ``tags``, and its ``detail``.

    ``detail`` holds the folded words that tell two versions of one kind apart (the remixer,
    the venue): ``"Mark Ronson Remix"`` -> ``"mark ronson"``; empty when there are none.
    """

    text: str
    tags: frozenset[str]
    detail: str


@dataclass(frozen=True)
class TitleInfo:
    """A title taken apart.

    ``clean`` is the title without noise, version markers kept, as written (for display and
    queries); ``base`` also drops the version markers (the song's name); ``bare`` also drops
    any other bracket ("(I Can't Get No) Satisfaction" -> "Satisfaction"). ``versions`` is the
    union of the markers' tags; ``featured`` the artists credited in the title.
    """

    clean: str
    base: str
    bare: str
    versions: frozenset[str]
    markers: tuple[VersionMarker, ...]
    featured: tuple[str, ...]


def _mix_is_remix(folded: str) -> bool:
    for match in _MIX.finditer(folded):
        before = folded[:match.start()].split()
        if not all(w in _PLAIN_MIX_WORDS or _NUMBER_WORD.match(w) for w in before):
            return True
    return False


def _version_tags(folded: str, *, strict: bool) -> frozenset[str]:
    if strict:
        trimmed = _TRAILING_VERSION_WORDS.sub("", folded)
        tags = {tag for tag, rule in _AT_END if rule.search(trimmed) or rule.search(folded)}
        if _LIVE_WHERE.search(folded):
            tags.add("live")
        remix_text = trimmed if trimmed.endswith(" mix") or trimmed == "mix" else ""
    else:
        tags = {tag for tag, rule in _ANYWHERE if rule.search(folded)}
        remix_text = folded
    if remix_text and _mix_is_remix(remix_text):
        tags.add("remix")
    return frozenset(tags)


# What is left of a marker once its keywords are gone, minus these, tells versions apart.
_DETAIL_STOPWORDS = _NOISE_WORDS | {"at", "in", "on", "by", "for", "with"}


def _classify(text: str, *, strict: bool) -> tuple[str, VersionMarker | None, tuple[str, ...]]:
    """Return ``(kind, marker, featured)``; kind is ``feat``, ``version``, ``noise`` or ``other``."""
    folded = fold(text)
    if _FEAT_START.match(folded):
        return "feat", None, tuple(split_artists(_FEAT_PREFIX.sub("", text)))
    tags = _version_tags(folded, strict=strict)
    if tags:
        rest = folded
        for _, rule in _ANYWHERE:
            rest = rule.sub(" ", rest)
        detail = " ".join(w for w in rest.split() if w not in _DETAIL_STOPWORDS
                          and not _NUMBER_WORD.match(w))
        return "version", VersionMarker(text.strip(), tags, detail), ()
    words = folded.split()
    if ("remaster" in folded or _CREDIT_START.match(folded)
            or all(w in _NOISE_WORDS or _NUMBER_WORD.match(w) for w in words)):
        return "noise", None, ()
    return "other", None, ()


def _tidy(text: str) -> str:
    return _SPACES.sub(" ", text).strip(" -\u2013\u2014,:;/")


@lru_cache(maxsize=65536)
def parse_title(title: str) -> TitleInfo:
    """Return ``title`` taken apart into its song name, version markers and credits.

    Never raises; a title that is nothing but decoration keeps its text as ``base``.
    """
    text = _SPACES.sub(" ", title).strip()
    markers: list[VersionMarker] = []
    featured: list[str] = []
    version_brackets: list[str] = []

    def bracket(match: re.Match[str]) -> str:
        kind, marker, names = _classify(match.group(1), strict=False)
        featured.extend(names)
        if marker is not None:
            markers.append(marker)
            version_brackets.append(match.group(0))
        return match.group(0) if kind in ("version", "other") else ""

    text = BRACKETS.sub(bracket, text)
    parts = DASH.split(text)
    tail: list[str] = []
    while len(parts) > 1:
        kind, marker, names = _classify(BRACKETS.sub("", parts[-1]), strict=True)
        if kind == "other":
            break
        featured.extend(names)
        last = parts.pop()
        if marker is not None:
            markers.append(marker)
            tail.insert(0, last)
    # Only the last segment: in "A feat. B - Title" the credit belongs to the artist part.
    feat = _TRAILING_FEAT.search(parts[-1])
    if feat and feat.start() > 0:
        featured.extend(split_artists(feat.group(1)))
        parts[-1] = parts[-1][:feat.start()]
    head = " - ".join(parts)
    clean = _tidy(" - ".join([head, *tail])) or _tidy(title)
    base = head
    for kept in version_brackets:
        base = base.replace(kept, "")
    base = _tidy(base) or clean
    bare = _tidy(BRACKETS.sub("", base)) or base
    versions = frozenset().union(*(m.tags for m in markers))
    return TitleInfo(clean, base, bare, versions, tuple(markers), tuple(dict.fromkeys(featured)))


def clean_title(title: str) -> str:
    """Return ``title`` without noise (credits, remaster and release wording), markers kept.

    ``"One More Time (feat. Romanthony) [2011 Remaster]"`` -> ``"One More Time"``;
    ``"Song - Live at Wembley"`` stays as it is.
    """
    return parse_title(title).clean


def version_tags(title: str) -> frozenset[str]:
    """Return the version tags of ``title`` (e.g. ``{"live"}``); empty for the original version."""
    return parse_title(title).versions


_ALBUM_LIVE = re.compile(r"^live (?:at|in|from|on)\b|\blive$")
_ALBUM_UNPLUGGED = re.compile(r"\bunplugged\b")
_ALBUM_REMIXES = re.compile(r"\bremix(?:es|ed)\b")


@lru_cache(maxsize=16384)
def album_versions(album: str) -> frozenset[str]:
    """Return the hard version tags an album name gives its tracks ("Live at Leeds" -> live).

    Besides markers in version position, an album is live when it starts "Live at/in/from/on"
    or ends with "Live", live and acoustic when "Unplugged", remix when "Remixes"/"Remixed".
    "Live Through This" stays a studio album. Soft tags (edit, clean) are per-track cuts and
    never come from an album.
    """
    folded = fold(album)
    tags = set(parse_title(album).versions & HARD_VERSIONS)
    if _ALBUM_LIVE.search(folded):
        tags.add("live")
    if _ALBUM_UNPLUGGED.search(folded):
        tags.update(("live", "acoustic"))
    if _ALBUM_REMIXES.search(folded):
        tags.add("remix")
    return frozenset(tags)


_FOLDER_NOISE = _NOISE_WORDS | {
    "flac", "mp3", "aac", "m4a", "ogg", "opus", "wav", "alac", "lossless", "web", "cd", "cds",
    "vinyl", "disc", "disk", "v0", "v2", "cbr", "vbr", "24bit", "16bit", "discography",
    "discografia", "collection", "complete", "albums", "singles", "eps", "rip", "scene",
}


@lru_cache(maxsize=16384)
def clean_album(name: str) -> str:
    """Return an album or folder name without years, format tags and edition wording.

    ``"Discovery (2001) [FLAC 24-96]"`` -> ``"Discovery"``, ``"2001 - Discovery"`` ->
    ``"Discovery"``, ``"Abbey Road (Super Deluxe Edition)"`` -> ``"Abbey Road"``. Version
    markers ("(Live)") are kept. Returns the tidied input when nothing else would remain.
    """
    def bracket(match: re.Match[str]) -> str:
        inner = match.group(1)
        noise = is_folder_noise(inner) or _classify(inner, strict=False)[0] in ("noise", "feat")
        return "" if noise else match.group(0)

    text = BRACKETS.sub(bracket, _SPACES.sub(" ", name))
    parts = [p for p in DASH.split(text) if not is_folder_noise(p)]
    return _tidy(" - ".join(parts)) or _tidy(name)


def is_folder_noise(text: str) -> bool:
    """Return True when ``text`` says nothing about artist or album ("2001", "FLAC 24-96")."""
    return all(w in _FOLDER_NOISE or _NUMBER_WORD.match(w) for w in fold(text).split())
