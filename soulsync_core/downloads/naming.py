"""Where a download goes in the library: the ``library.path_template`` setting, made safe.

The template is a relative path whose components may hold ``$name`` or ``${name}`` variables
(:data:`VARIABLES`), e.g. the default ``$albumartist/$album/$track - $title.$ext``. Each
component is filled and then sanitised on its own, so no value — a title of ``../../etc``, an
artist called ``AC/DC``, a peer's hostile tags — can add, remove or climb a folder:

* path separators (``/`` and ``\\``), NUL and control characters, and the characters Windows
  refuses in names (``<>:"|?*``) become ``_``;
* runs of spaces become one; empty brackets and dangling dashes (a ``$track`` that was empty)
  go; trailing dots and spaces go (Windows drops them);
* a component that starts with a dot gets a ``_`` in front, so nothing is ``.``, ``..`` or a
  hidden file; a Windows reserved name (``CON``, ``NUL``, ``COM1`` …, with or without an
  extension) gets a ``_`` in front too;
* a component is cut to :data:`MAX_COMPONENT_BYTES` bytes of UTF-8 (the file name keeps its
  extension), far below the 255-byte limit of common file systems, leaving room for the
  temporary name used while the file is copied in;
* an empty artist, album or title becomes ``Unknown Artist`` / ``Unknown Album`` / ``Unknown
  Title``, and a component left empty becomes ``_``.

Everything here is pure; the caller still checks that the joined path stays under the library
root on the real file system (symbolic links).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Template

DEFAULT_PATH_TEMPLATE = "$albumartist/$album/$track - $title.$ext"
VARIABLES: dict[str, str] = {
    "albumartist": "the album's artist (the first artist when not given)",
    "artist": "the track's artists, comma-separated",
    "album": "the album (the title for a track without one)",
    "title": "the track title",
    "track": "the track number, two digits (empty when unknown)",
    "disc": "the disc number (empty when unknown)",
    "year": "the release year (empty when unknown)",
    "ext": "the file's extension, lower case",
}
FALLBACKS = {"albumartist": "Unknown Artist", "artist": "Unknown Artist", "album": "Unknown Album",
             "title": "Unknown Title"}
MAX_COMPONENT_BYTES = 180

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_SPACES = re.compile(r"\s+")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|\{\s*\}")
_REPEATED_DASHES = re.compile(r"(?:\s*-\s*){2,}")
_EDGE_JUNK = re.compile(r"^[\s\-_,]+|[\s\-_,]+$")
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                       *(f"LPT{i}" for i in range(1, 10))})
_EXT_SUFFIXES = (".$ext", ".${ext}")


def _split(template: str) -> list[str]:
    return re.split(r"[\\/]", template)


def check_path_template(value: str) -> str | None:
    """Return what is wrong with a ``library.path_template`` value, None when it is usable.

    Made for ``Setting(check=...)``: the template must be relative, without empty, ``.`` or
    ``..`` components, and use only known variables.
    """
    if not value.strip():
        return "must not be empty; the default is " + DEFAULT_PATH_TEMPLATE
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value) or value.startswith("~"):
        return "must be relative to library.music_dir, e.g. " + DEFAULT_PATH_TEMPLATE
    known = ", ".join(f"${name}" for name in VARIABLES)
    for part in _split(value):
        if part.strip() in ("", ".", ".."):
            return f"has an empty, '.' or '..' folder ({value!r}); write e.g. {DEFAULT_PATH_TEMPLATE}"
        template = Template(part)
        if not template.is_valid():
            return f"{part!r} has a '$' that starts no variable; write $$ for a '$', variables are {known}"
        unknown = [name for name in template.get_identifiers() if name not in VARIABLES]
        if unknown:
            return f"unknown variable ${unknown[0]}; the variables are {known}"
    return None


def _clean_value(value: str) -> str:
    # Separators inside a value must never make a folder: "AC/DC" is one name.
    return _SPACES.sub(" ", _UNSAFE.sub("_", value)).strip()


def _truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def sanitize_component(text: str, fallback: str = "_", max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """Return ``text`` as one safe path component (see the module docstring); never empty."""
    text = _SPACES.sub(" ", _UNSAFE.sub("_", text))
    text = _EMPTY_BRACKETS.sub("", text)
    text = _REPEATED_DASHES.sub(" - ", text)
    text = _EDGE_JUNK.sub("", text)
    text = _truncate(text, max_bytes).rstrip(". ").strip()
    if not text:
        text = fallback
    if text.startswith("."):
        text = "_" + text
    if text.split(".", 1)[0].strip().upper() in _RESERVED:
        text = "_" + text
    return _truncate(text, max_bytes)


def render_path(template: str, values: Mapping[str, str]) -> list[str]:
    """Return the path components (folders, then the file name) of ``template`` filled in.

    ``values`` maps the variables of :data:`VARIABLES`; ``ext`` is required and always ends
    the file name, whether or not the template's last component ends with ``.$ext``. The
    template is assumed valid (:func:`check_path_template`).
    """
    clean = {name: _clean_value(values.get(name, "")) or FALLBACKS.get(name, "") for name in VARIABLES}
    parts = _split(template)
    components: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if last:
            for suffix in _EXT_SUFFIXES:
                if part.endswith(suffix):
                    part = part[: -len(suffix)]
                    break
        text = Template(part).safe_substitute(clean)
        if not last:
            components.append(sanitize_component(text))
            continue
        ext = sanitize_component(clean["ext"].lower().lstrip("."), "bin", 16)
        stem = sanitize_component(text, max_bytes=MAX_COMPONENT_BYTES - len(ext) - 1)
        components.append(f"{stem}.{ext}")
    return components
