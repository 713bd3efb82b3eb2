"""A completed transfer's file into the library: locate, check, tag, place, index.

1. :meth:`Importer.locate` asks the client where the file is (slskd's own layout) and waits
   until it exists and its size holds still between two looks.
2. :meth:`Importer.check` opens it with mutagen and compares its length with the wanted
   track's (``downloads.duration_tolerance_seconds``).
3. :meth:`Importer.destination` fills ``library.path_template`` (see :mod:`.naming`).
4. :meth:`Importer.place` copies the file under a hidden temporary name into its final
   folder, writes the tags there, flushes it to disk, and then either renames it over the
   final name or, when the library already has that track (the same name, with any audio
   extension) at equal or better quality, drops it and keeps the library's file. A
   lower-quality file of another extension is removed. The source is never modified, so an
   interrupted import can simply run again.
5. :meth:`Importer.index` updates the library rows of the one file at once.
6. :meth:`Importer.discard` deletes the client's copy when it may; when it may not, that is
   a warning for the caller to show, never a failure.

Only reading is needed in the client's folder: the copy (never a move, so the music folder
may be on another file system) and the final rename both happen in the music folder, and a
half-written file never has the final name. A copy that fails (a full disk) leaves neither
the temporary file nor the folders it created behind.

Failures come in two kinds: :class:`BadFile` (this file is wrong: corrupt, wrong length —
the pipeline tries another candidate) and :class:`ImportFailed` (the set-up is wrong: the
download folder is not visible or readable, the library folder is missing, full or not
writable — trying other files would fail the same way). Every blocking step runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soulsync_core import faultpoints
from soulsync_core.downloads.models import TAGGED_SOURCES, Wanted
from soulsync_core.downloads.naming import render_path
from soulsync_core.downloads.tagging import AudioInfo, TagSet, probe, write_tags
from soulsync_core.hooks import DownloadClient
from soulsync_core.library import LibraryService
from soulsync_core.library.tags import AUDIO_EXTENSIONS, PROVIDER_TAGS, UnreadableFile
from soulsync_core.matching import QualityProfile
from soulsync_core.models import Candidate, Transfer
from soulsync_core.paths import fsync_dir, fsync_file

log = logging.getLogger(__name__)

# Polls of a file's size while waiting for it to hold still (bounded by the wait setting).
MAX_POLL_SECONDS = 0.25
# Bytes per read and write of the copy into the music folder.
COPY_CHUNK = 1 << 20


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
                  disc_total=wanted.disc_total, date=wanted.release_date, isrc=wanted.isrc,
                  custom=custom or None)


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


def _ensure_folder(root: Path, parts: list[str], created: list[Path]) -> Path:
    """Create ``root/parts…`` one level at a time; return it. Blocking.

    Appends each folder it creates to ``created`` (outermost first), so that a failed import
    can remove them again. Raises ImportFailed when the root is missing, when a level cannot
    be created, or when an existing level is not a folder or leads outside the root (a
    symbolic link): nothing is ever created outside it.
    """
    try:
        real_root = root.resolve(strict=True)
    except FileNotFoundError:
        raise ImportFailed(f"the music folder {root} (library.music_dir) does not exist; "
                           "create it or correct the setting") from None
    except OSError as exc:
        raise ImportFailed(_write_failure(root, exc)) from None
    folder = root
    for part in parts:
        folder = folder / part
        try:
            if not folder.is_symlink() and not folder.exists():
                try:
                    folder.mkdir()
                    created.append(folder)
                except FileExistsError:
                    pass  # made meanwhile by another import of the same album
            inside = folder.resolve().is_relative_to(real_root) and folder.is_dir()
        except OSError as exc:  # a level SoulSync may not enter or create
            raise ImportFailed(_write_failure(folder, exc)) from None
        if not inside:
            raise ImportFailed(f"{folder} is not a folder inside the music folder {root}; "
                               "SoulSync writes nothing outside it")
    return folder


def _write_failure(path: Path, exc: OSError) -> str:
    """Return what to tell the user when ``path`` in the music folder cannot be written."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the music folder's disk is full ({reason}) while writing {path}; nothing was "
                "left in the library: free some space, then ask for the track again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"SoulSync may not write {path} ({reason}): give its user write access to the "
                "music folder (library.music_dir; under systemd also ReadWritePaths=)")
    return f"could not write {path}: {reason}"


def _unreadable(path: Path, exc: OSError) -> str:
    """Return what to tell the user when the client's file ``path`` cannot be read."""
    return (f"SoulSync cannot read the downloaded file {path} ({exc.strerror or exc}): give its "
            "user read access to slskd's downloads folder (soulseek.download_path) and its files")


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


def _copy(source: Path, temp: Path) -> None:
    """Copy ``source`` to ``temp``. Blocking.

    Raises ImportFailed when ``source`` cannot be opened for reading, OSError when ``temp``
    cannot be written (a full disk).
    """
    try:
        reader = open(source, "rb")
    except OSError as exc:
        raise ImportFailed(_unreadable(source, exc)) from None
    with reader, open(temp, "wb") as writer:
        shutil.copyfileobj(reader, writer, COPY_CHUNK)


def _readable(path: Path) -> None:
    """Raise ImportFailed when ``path`` cannot be opened for reading. Blocking."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ImportFailed(_unreadable(path, exc)) from None


def _place(source: Path, root: Path, parts: list[str], temp_name: str, tags: TagSet,
           key: Callable[[AudioInfo], tuple[int, ...]]) -> Placement:
    """Copy, tag and move ``source`` to ``root/parts`` (see :meth:`Importer.place`). Blocking.

    On any failure the temporary file and the folders this call created are removed again.
    """
    created: list[Path] = []
    placed = False
    try:
        folder = _ensure_folder(root, parts[:-1], created)
        final = folder / parts[-1]
        temp = folder / temp_name
        try:
            _copy(source, temp)
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
                    placed = True
                    return Placement(rival, kept_existing=True)
            # The data reaches the disk before the file takes its final name, so that a power
            # cut never leaves a truncated file under a name the library trusts.
            fsync_file(temp)
            faultpoints.reached("import.before_rename")
            os.replace(temp, final)
            placed = True
            with contextlib.suppress(OSError):
                fsync_dir(folder)
        except OSError as exc:
            raise ImportFailed(_write_failure(final, exc)) from None
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
    finally:
        if not placed:
            for made in reversed(created):
                with contextlib.suppress(OSError):
                    made.rmdir()  # only when empty: another import may be filling it
    removed = []
    for rival in rivals:
        if rival == final:
            continue
        try:
            rival.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            # The better file is in place already; the worse one stays, and so does its row.
            log.warning("kept %s beside %s: SoulSync may not delete it (%s)", rival, final,
                        exc.strerror or exc)
            continue
        removed.append(rival)
    return Placement(final, kept_existing=False, removed=tuple(removed))


def _remove_empty_folders(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty. Blocking."""
    if not folder.is_relative_to(root):
        return
    while folder != root:
        try:
            folder.rmdir()  # only when empty: another import may be filling it
        except OSError:
            return
        folder = folder.parent


def temp_name(destination: Path, download_id: int) -> str:
    """Return the hidden name a download's file has beside ``destination`` until its rename."""
    return f".soulsync-{download_id}-{destination.name}"


class Importer:
    """The import steps, each awaitable; the service decides the order and what to persist."""

    def __init__(self, library: LibraryService):
        self._library = library

    async def locate(self, client: DownloadClient, transfer: Transfer, wait_s: float) -> Path:
        """Return the completed transfer's file once it exists and its size holds still.

        Looks at least twice; gives up ``wait_s`` seconds after the first look with
        ImportFailed naming where it looked (a wrong ``soulseek.download_path`` is the usual
        cause), and at once with the client's reason when the client refuses the file it
        found (slskd: one reached through a symbolic link out of its downloads folder).
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
                raise ImportFailed(f"{transfer.username} sent {transfer.filename!r}, but it cannot "
                                   f"be imported: {exc}") from None
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
            # A file SoulSync may not read is the set-up's fault, not the file's: mutagen would
            # call it unreadable audio and the next candidate would fail the same way.
            await asyncio.to_thread(_readable, path)
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
        try:
            return await asyncio.to_thread(_place, source, root, parts,
                                           temp_name(destination, download_id), tag_set(wanted),
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

    async def drop_temporary(self, destination: Path, download_id: int) -> None:
        """Delete the temporary file an import killed before its rename left beside
        ``destination`` (a resumed import that succeeds writes over it; one that fails must
        not leave it in the library). Failures are logged, never raised."""
        leftover = destination.with_name(temp_name(destination, download_id))
        try:
            await asyncio.to_thread(leftover.unlink)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete the unfinished import %s: %s", leftover,
                        exc.strerror or exc)
            return
        # The killed import made the artist and album folders for it; empty now, they go too.
        await asyncio.to_thread(_remove_empty_folders, destination.parent,
                                self._library.music_dir())

    async def discard(self, path: Path) -> str | None:
        """Delete the client's copy of a file that was imported, refused or is not needed.

        Returns None when it is gone (or was gone already), else a warning saying why it is
        still there: the client's folder may be read-only for SoulSync (another owner, a
        read-only mount, outside the unit's ``ReadWritePaths=``), which never fails an import.
        """
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return (f"slskd's copy {path} was left in place: SoulSync may not delete it "
                    f"({exc.strerror or exc}); delete it in slskd, or give SoulSync's user write "
                    "access to slskd's downloads folder")
        return None
