"""Soulseek search queries for a wanted track.

Soulseek peers match every word of a query against the file's full path, so a query is a few
plain words: one wrong or missing word (a "(feat. X)" credit, a "2011 Remaster" the file name
lacks, a leading "The" the folder drops) and the file is not found, while a leading ``-``
would exclude a word. Searches are rate-limited, so the list is short and best first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from unidecode import unidecode

from soulsync_core.matching.similarity import is_generic_title
from soulsync_core.matching.text import HARD_VERSIONS, clean_album, fold, parse_title

MAX_QUERY_WORDS = 10
_WORD_BREAK = re.compile(r"[^\w]+|_")
_SKIP_ALBUMS = frozenset({"single", "ep", "greatest hits", "the best of", "best of", "hits"})
_TAG_WORDS = {"sped_up": "sped up", "acapella": "acapella", "rerecording": ""}


def _words(text: str) -> list[str]:
    # Apostrophes split words ("Don't" -> "Don"): peers that index words find "Don", peers
    # that match substrings find it inside "Don't"; "Dont" would fail both.
    words = [w for w in _WORD_BREAK.split(text) if w]
    return [w for w in words if len(w) > 1 or w.isdigit()] or words


def _query(*texts: str) -> str:
    return " ".join(w for t in texts for w in _words(t))


def _primary_artist(artists: Sequence[str]) -> str:
    if not artists:
        return ""
    name = artists[0].strip()
    # Folders say "Beatles" as often as "The Beatles"; without "The" the query finds both.
    words = name.split()
    return " ".join(words[1:]) if len(words) > 1 and words[0].lower() == "the" else name


def search_queries(title: str, artists: Sequence[str] | str, album: str | None = None) -> list[str]:
    """Return Soulseek queries for a track, best first: distinct, non-empty, at most 10 words.

    1. primary artist + title without noise, with any hard version marker
       ("Mark Ronson Remix", "Live at Wembley");
    2. the same with the marker reduced to its keyword ("remix", "live");
    3. artist + title without any remaining bracket ("(I Can't Get No) Satisfaction" ->
       "Satisfaction");
    4. ASCII spellings of the above when they differ (files named "Bjork");
    5. title alone (still with its marker) when it is at least two words.
    A generic title ("Intro") gets artist + album + title first. Soft markers (radio edit,
    extended) are left out: file names often omit them and the duration check tells cuts
    apart. ``artists`` may be a list (the first is used) or one string.
    """
    names = [artists] if isinstance(artists, str) else list(artists)
    artist = _primary_artist(names)
    info = parse_title(title)
    markers = [m for m in info.markers if m.tags & HARD_VERSIONS]
    marker_text = " ".join(m.text for m in markers)
    tag_words = " ".join(dict.fromkeys(
        _TAG_WORDS.get(t, t) for m in markers for t in sorted(m.tags & HARD_VERSIONS)))
    candidates: list[str] = []
    album_name = clean_album(album) if album else ""
    if album_name and is_generic_title(title) and fold(album_name) not in _SKIP_ALBUMS:
        candidates.append(_query(artist, album_name, info.base))
    candidates += [
        _query(artist, info.base, marker_text),
        _query(artist, info.base, tag_words),
        _query(artist, info.bare, marker_text),
    ]
    candidates += [unidecode(q) for q in candidates]
    if len(_words(info.base)) >= 2:
        candidates.append(_query(info.base, marker_text))
    queries: list[str] = []
    seen: set[str] = set()
    for query in candidates:
        query = " ".join(query.split()[:MAX_QUERY_WORDS])
        if query and query.casefold() not in seen:
            seen.add(query.casefold())
            queries.append(query)
    return queries


def album_search_queries(album: str, artists: Sequence[str] | str) -> list[str]:
    """Return Soulseek queries for a whole album, best first: distinct, non-empty.

    1. primary artist + album without edition and year wording (folders are named
       "2001 - Discovery [FLAC]", so the year and format words are left to the path);
    2. its ASCII spelling when it differs;
    3. the album alone when it is at least two words and not a generic name ("Greatest Hits").
    """
    names = [artists] if isinstance(artists, str) else list(artists)
    artist = _primary_artist(names)
    name = clean_album(album) or album
    candidates = [_query(artist, name)]
    candidates.append(unidecode(candidates[0]))
    if len(_words(name)) >= 2 and fold(name) not in _SKIP_ALBUMS:
        candidates.append(_query(name))
    return [q for q in dict.fromkeys(c.strip() for c in candidates) if q]
