"""A completed transfer's file into the library: locate, check, tag, place, index.

1. :meth:`Importer.locate` asks the client where the file is (slskd's own layout) and waits
   until it exists and its size holds still between two looks.
2. :meth:`Importer.check` opens it with mutagen and compares its length with the wanted
   track's (``downloads.duration_tolerance_seconds``).
3. :meth:`Importer.destination` fills ``library.path_template`` (see :mod:`.naming`).
4. :meth:`Importer.place` copies the file under a hidden temporary name into its final
   folder, writes the tags there, and then either renames it over the final name or, when the
   library already has that track (the same name, with any audio extension) at equal or better
   quality, drops it and keeps the library's file. A lower-quality file of another extension
   is removed. The source is never modified, so an interrupted import can simply run again.
5. :meth:`Importer.index` updates the library rows of the one file at once.

Failures come in two kinds: :class:`BadFile` (this file is wrong: corrupt, wrong length —
the pipeline tries another candidate) and :class:`ImportFailed` (the set-up is wrong: the
download folder is not visible, the library folder is missing or not writable — trying other
files would fail the same way). Every blocking step runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soulsync_core.downloads.models import TAGGED_SOURCES, Wanted
from soulsync_core.downloads.naming import render_path
from soulsync_core.downloads.tagging import AudioInfo, TagSet, probe, write_tags
from soulsync_core.hooks import DownloadClient
from soulsync_core.library import LibraryService
from soulsync_core.library.tags import AUDIO_EXTENSIONS, PROVIDER_TAGS, UnreadableFile
from soulsync_core.matching import QualityProfile
from soulsync_core.models import Candidate, Transfer

# Polls of a file's size while waiting for it to hold still (bounded by the wait setting).
MAX_POLL_SECONDS = 0.25


class BadFile(Exception):
    """The downloaded file is not the wanted track in usable form; ``str()`` says why."""


class ImportFailed(Exception):
    """The file cannot be imported for a reason no other candidate would avoid; ``str()`` says why."""


@dataclass(frozen=True)
class Placement:
    """Where the track is now. ``kept_existing``: the library's own file was as good or better
    and was left alone (``path`` is that file). ``removed``: lower-quality files replaced."""

    path: Path
    kept_existing: bool
    removed: tuple[Path, ...] = ()


def quality_key(info: AudioInfo, profile: QualityProfile) -> tuple[int, int, int, int]:
    """Return a sort key of a file's quality under ``profile`` (smaller is better).

    The profile's rank first (the quality order the user chose), then bit depth, sample rate
    and bitrate, so two files the profile ranks alike are still told apart.
    """
    candidate = Candidate("", f"file.{info.format}", 0, info.format, info.bitrate, info.bit_depth,
                          info.sample_rate, round(info.length_s) or None)
    rank = QualityProfile(profile.rules, fallback=True).rank(candidate)
    return (rank if rank is not None else 1_000, -(info.bit_depth or 0), -(info.sample_rate or 0),
            -(info.bitrate or 0))


def tag_set(wanted: Wanted) -> TagSet:
    """Return the tags a download of ``wanted`` gets (provider ids under the scanner's names)."""
    custom: dict[str, str] = {}
    if wanted.source in TAGGED_SOURCES:
        for kind, value in (("track", wanted.track_id), ("album", wanted.album_id)):
            if value:
                custom[PROVIDER_TAGS[f"{wanted.source}_{kind}_id"]] = value
    return TagSet(title=wanted.title, artists=list(wanted.artists),
                  album_artist=wanted.album_artist or wanted.artists[0],
                  album=wanted.album or wanted.title, track_number=wanted.track_number,
                  track_total=wanted.track_total, disc_number=wanted.disc_number,
                  date=wanted.release_date, isrc=wanted.isrc, custom=custom or None)


def template_values(wanted: Wanted, ext: str) -> dict[str, str]:
    """Return the ``library.path_template`` variables for ``wanted`` and a file extension."""
    return {
        "albumartist": wanted.album_artist or wanted.artists[0], "artist": wanted.artist,
        "album": wanted.album or wanted.title, "title": wanted.title,
        "track": f"{wanted.track_number:02d}" if wanted.track_number else "",
        "disc": str(wanted.disc_number) if wanted.disc_number else "", "year": wanted.year,
        "ext": ext,
    }


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _ensure_folder(root: Path, parts: list[str]) -> Path:
    """Create ``root/parts…`` one level at a time; return it. Blocking.

    Raises ImportFailed when the root is missing or when an existing level is not a folder
    or leads outside the root (a symbolic link): nothing is ever created outside it.
    """
    try:
        real_root = root.resolve(strict=True)
    except OSError:
        raise ImportFailed(f"the music folder {root} (library.music_dir) does not exist; "
                           "create it or correct the setting") from None
    folder = root
    for part in parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            if not folder.is_symlink() and not folder.exists():
                folder.mkdir()
        if not folder.resolve().is_relative_to(real_root) or not folder.is_dir():
            raise ImportFailed(f"{folder} is not a folder inside the music folder {root}; "
                               "SoulSync writes nothing outside it")
    return folder


def _rivals(final: Path) -> list[Path]:
    """Return the library's files that are this track: the final name with any audio extension."""
    stem = final.stem
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(final.parent):
            name, dot, ext = entry.name.rpartition(".")
            if dot and name == stem and f".{ext.lower()}" in AUDIO_EXTENSIONS and entry.is_file():
                found.append(final.parent / entry.name)
    return sorted(found)


def _place(source: Path, root: Path, parts: list[str], temp_name: str, tags: TagSet,
           key: Callable[[AudioInfo], tuple[int, ...]]) -> Placement:
    """Copy, tag and move ``source`` to ``root/parts`` (see :meth:`Importer.place`). Blocking."""
    folder = _ensure_folder(root, parts[:-1])
    final = folder / parts[-1]
    temp = folder / temp_name
    try:
        shutil.copyfile(source, temp)
        write_tags(str(temp), tags)
        new = key(probe(str(temp)))
        rivals = _rivals(final)
        for rival in rivals:
            try:
                old = key(probe(str(rival)))
            except UnreadableFile:
                continue  # a broken file is replaced by any good one
            if old <= new:
                temp.unlink()
                return Placement(rival, kept_existing=True)
        os.replace(temp, final)
    except OSError as exc:
        raise ImportFailed(f"could not write {final}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    removed = []
    for rival in rivals:
        if rival != final:
            with contextlib.suppress(FileNotFoundError):
                rival.unlink()
            removed.append(rival)
    return Placement(final, kept_existing=False, removed=tuple(removed))


class Importer:
    """The import steps, each awaitable; the service decides the order and what to persist."""

    def __init__(self, library: LibraryService):
        self._library = library

    async def locate(self, client: DownloadClient, transfer: Transfer, wait_s: float) -> Path:
        """Return the completed transfer's file once it exists and its size holds still.

        Looks at least twice; gives up ``wait_s`` seconds after the first look with
        ImportFailed naming where it looked (a wrong ``soulseek.download_path`` is the usual
        cause).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        poll = min(MAX_POLL_SECONDS, max(0.01, wait_s / 10))
        seen: tuple[Path, int | None] | None = None
        looks = 0
        while True:
            try:
                path = await client.local_file(transfer)
            except Exception as exc:
                raise ImportFailed(f"cannot look for the downloaded file: {exc}") from None
            reading = (path, await asyncio.to_thread(_size, path)) if path is not None else None
            if reading is not None and reading[1] is not None and reading == seen:
                return reading[0]
            looks += 1
            if looks >= 2 and loop.time() >= deadline:
                if reading is None:
                    raise ImportFailed(
                        f"{transfer.username} sent {transfer.filename!r}, but the file is not where "
                        f"slskd keeps it (soulseek.download_path, <last remote folder>/<file name>); "
                        f"check that this host sees slskd's downloads folder there")
                raise ImportFailed(f"{reading[0]} kept changing size for {wait_s:g} s")
            seen = reading
            await asyncio.sleep(poll)

    async def check(self, path: Path, wanted: Wanted, tolerance_s: float) -> AudioInfo:
        """Return the file's stream figures; raise BadFile when it does not open as audio or
        its length is further than ``tolerance_s`` from the wanted track's (when known)."""
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            raise BadFile(f"{path.name} is not an audio file the library reads")
        try:
            info = await asyncio.to_thread(probe, str(path))
        except UnreadableFile as exc:
            raise BadFile(f"the file does not open as audio ({exc})") from None
        if info.length_s <= 0:
            raise BadFile("the file holds no audio")
        if wanted.duration_ms > 0:
            delta = info.length_s - wanted.duration_ms / 1000
            if abs(delta) > tolerance_s:
                longer = "longer" if delta > 0 else "shorter"
                raise BadFile(f"the file is {abs(delta):.0f} s {longer} than the wanted track "
                              f"(tolerance {tolerance_s:g} s)")
        return info

    def destination(self, wanted: Wanted, source: Path, template: str) -> Path:
        """Return where ``source`` goes: the music folder joined with the filled template."""
        parts = render_path(template, template_values(wanted, source.suffix.lstrip(".").lower()))
        return self._library.music_dir().joinpath(*parts)

    async def place(self, source: Path, destination: Path, download_id: int, wanted: Wanted,
                    profile: QualityProfile) -> Placement:
        """Copy ``source`` to ``destination`` tagged, unless the library has it as good already.

        ``destination`` must come from :meth:`destination`. Raises ImportFailed when a folder
        cannot be made or written, BadFile when the tags cannot be written.
        """
        root = self._library.music_dir()
        if not destination.is_relative_to(root):
            raise ImportFailed(f"{destination} is not in the music folder {root} any more "
                               "(library.music_dir changed)")
        parts = list(destination.relative_to(root).parts)
        temp_name = f".soulsync-{download_id}-{destination.name}"
        try:
            return await asyncio.to_thread(_place, source, root, parts, temp_name, tag_set(wanted),
                                           lambda info: quality_key(info, profile))
        except UnreadableFile as exc:
            raise BadFile(f"the tags could not be written ({exc})") from None

    async def index(self, placement: Placement) -> int:
        """Update the library rows for the placed file (and drop those of replaced files);
        return the track id. Raises ImportFailed when the library cannot read the file."""
        library = self._library
        for path in placement.removed:
            track_id = await library.store.track_id(str(path.parent), path.name)
            if track_id is not None:
                await library.store.remove_tracks([track_id])
        try:
            return await library.import_file(placement.path)
        except (ValueError, OSError, UnreadableFile) as exc:
            raise ImportFailed(f"the library could not read {placement.path}: {exc}") from None

    async def discard(self, path: Path) -> None:
        """Delete a downloaded file that was refused or is no longer needed (gone already: fine)."""
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)
