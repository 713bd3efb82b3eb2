"""Search folding: the one way library names are turned into their searchable form.

Names are stored twice: as written (``Björk``) and folded (``bjork``). Every search term is
folded the same way before it is compared, so ``bjork``, ``BJÖRK`` and ``Björk`` all find
``Björk`` and ``motorhead`` finds ``Motörhead``.
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

_SPACES = re.compile(r"\s+")

# FTS5's trigram tokenizer indexes three-character sequences: shorter terms cannot use it and
# are matched as prefixes through the ordinary name indexes instead (see queries.py).
TRIGRAM = 3

# Sorts after every character a folded text can hold (folded text is ASCII), so that
# ``prefix <= x < prefix + PREFIX_END`` selects exactly the texts starting with ``prefix``.
PREFIX_END = "\U0010ffff"


def normalize(text: str) -> str:
    """Return ``text`` in NFC with runs of whitespace made one space and the ends trimmed.

    macOS writes file names decomposed (NFD); without this, a name read from a path and the
    same name read from a tag would be two different artists.
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold(text: str) -> str:
    """Return the accent- and case-folded ASCII form of ``text`` (``"Dvořák"`` -> ``"dvorak"``).

    NULs are left out: inside an FTS5 query string one is a syntax error, and the API refuses
    control characters but the matcher folds names that come from playlists and tags.
    """
    return _SPACES.sub(" ", unidecode(text.replace("\x00", "")).lower()).strip()


def name_key(text: str) -> str:
    """Return the grouping key of a name: the same artist or album whatever the letter case."""
    return normalize(text).casefold()


def letter_of(folded: str) -> str:
    """Return the index letter of a folded name: ``"a"``-``"z"``, or ``"#"`` for anything else."""
    first = folded[:1]
    return first if "a" <= first <= "z" else "#"


def fts_phrase(folded: str) -> str:
    """Return ``folded`` as an FTS5 string literal: a phrase, so every character is literal.

    Inside double quotes FTS5 gives no character a meaning except the quote itself, which is
    doubled; ``%``, ``_``, ``*`` and operators are plain text.
    """
    return '"' + folded.replace('"', '""') + '"'
