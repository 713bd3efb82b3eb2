"""The library scan: mirror the audio files under ``library.music_dir`` into the database.

A scan walks the folder tree in a worker thread, a few hundred files at a time. For each chunk
it compares every file's size and mtime with what the database recorded for its folder:
unchanged files are not opened again; new and changed ones are read with mutagen in a bounded
thread pool (``library.scan_workers``) and written in one transaction per chunk. A new file
with the size and mtime of a known track whose file is gone is that track, moved: the row
keeps its id instead of being removed and added again. After the walk, tracks whose files
were not seen are removed, and with them albums and artists left empty.

The event loop only moves finished rows: walking, stat calls, tag parsing and folding happen
in threads, SQLite work in the database thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from soulsync_core import faultpoints
from soulsync_core.jobs import JobFailed
from soulsync_core.library.store import KnownFile, LibraryStore, SkippedFile
from soulsync_core.library.tags import AUDIO_EXTENSIONS, TrackRecord, UnreadableFile, read_track

log = logging.getLogger(__name__)

# Files per chunk: one stat comparison query, one read fan-out and one write transaction each.
CHUNK_FILES = 500


class ScanError(JobFailed):
    """The scan cannot run (or must not remove anything); ``str()`` says why and what to do."""


def missing_folder_message(root: str | os.PathLike[str]) -> str:
    return (f"The music folder {root} does not exist or is not a folder. Set library.music_dir "
            "to the folder that holds your music.")


@dataclass
class ScanProgress:
    """Counters of one scan. ``files_total`` is known after the counting phase.

    ``files_seen``: audio files found so far; ``files_read``: opened and (re)read;
    ``files_unchanged``: same size and mtime as recorded, not opened; ``files_skipped``:
    unreadable or corrupt (each warned about once, when first found or changed);
    ``files_moved``: new paths recognised as moved tracks; ``files_removed``: tracks whose
    file is gone; ``errors``: folders or files that could not be listed or stat'ed.
    """

    music_dir: str = ""
    phase: str = "starting"
    files_total: int | None = None
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_moved: int = 0
    files_removed: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """Return a one-line account of the scan for logs, the activity feed and the CLI."""
        return (f"{self.files_seen:,} files: {self.files_read:,} read, {self.files_unchanged:,} "
                f"unchanged, {self.files_skipped:,} skipped, {self.files_moved:,} moved, "
                f"{self.files_removed:,} removed, {self.errors:,} errors")


@dataclass
class _Folder:
    path: str
    files: list[tuple[str, int, int]] = field(default_factory=list)  # (name, size, mtime_ns)
    # Files that are there but could not be stat'ed: neither read nor taken for removed.
    failed: dict[str, str] = field(default_factory=dict)  # name -> why


@dataclass
class _WalkError:
    path: str
    message: str


def _is_audio(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def walk(root: str) -> Iterator[_Folder | _WalkError]:
    """Yield each folder under ``root`` that holds audio files, in name order; blocking.

    Hidden entries (``.name``, e.g. macOS ``._x.mp3`` resource forks) are ignored; symbolic
    links to files are followed, to folders are not (they could loop). A folder that cannot be
    listed yields a :class:`_WalkError` and the walk goes on.
    """
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield _WalkError(path, exc.strerror or str(exc))
            continue
        folder = _Folder(path)
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
                elif _is_audio(entry.name) and entry.is_file():
                    entry.name.encode("utf-8")  # names that are not UTF-8 cannot be stored
                    stat = entry.stat()
                    folder.files.append((entry.name, stat.st_size, stat.st_mtime_ns))
            except UnicodeEncodeError:
                yield _WalkError(entry.path.encode("utf-8", "replace").decode(),
                                 "the file name is not valid UTF-8; rename the file")
            except OSError as exc:
                folder.failed[entry.name] = exc.strerror or str(exc)
        if folder.files or folder.failed:
            yield folder
        stack.extend(reversed(subfolders))


def count_audio_files(root: str) -> int:
    """Return how many audio files :func:`walk` will find (names only, no stat); blocking."""
    total = 0
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif _is_audio(entry.name):
                        total += 1
        except OSError:
            continue
    return total


def _take(walker: Iterator[_Folder | _WalkError], files: int) -> list[_Folder | _WalkError]:
    """Return the next walk items holding about ``files`` files (empty at the end); blocking."""
    items: list[_Folder | _WalkError] = []
    count = 0
    for item in walker:
        items.append(item)
        if isinstance(item, _Folder):
            count += len(item.files)
            if count >= files:
                break
    return items


def _read(path: str, root: str, size: int, mtime: int) -> TrackRecord | SkippedFile:
    try:
        return read_track(path, root, size, mtime)
    except UnreadableFile as exc:
        reason = str(exc)
    except Exception as exc:
        # A tag layout nobody anticipated must cost one file, not the scan.
        reason = f"{type(exc).__name__}: {exc}"
    folder, _, name = path.rpartition("/")
    return SkippedFile(folder, name, size, mtime, reason)


def _missing(paths: list[str]) -> set[str]:
    return {p for p in paths if not os.path.lexists(p)}


class Scanner:
    """Runs scans of one music folder into one :class:`LibraryStore`."""

    def __init__(self, store: LibraryStore, root: Path, workers: int):
        self._store = store
        self._root = str(root)
        self._workers = workers

    async def run(self, report: Callable[[ScanProgress], None] = lambda _p: None) -> ScanProgress:
        """Scan the folder; call ``report(progress)`` after each chunk; return the final counts.

        Raises :class:`ScanError` (with nothing removed) when the folder is missing, or when it
        holds no audio file at all while the library has tracks (an unmounted share must not
        empty the library).
        """
        progress = ScanProgress(music_dir=self._root)
        if not await asyncio.to_thread(os.path.isdir, self._root):
            raise ScanError(missing_folder_message(self._root))
        progress.phase = "counting"
        report(progress)
        progress.files_total = await asyncio.to_thread(count_audio_files, self._root)
        progress.phase = "scanning"
        report(progress)
        folders = await self._store.folders()
        had_tracks = await self._store.track_count() > 0
        visited: set[str] = set()
        unreadable: list[str] = []
        vanished: dict[int, str] = {}  # track id -> path no longer found
        vanished_skipped: list[tuple[int, str]] = []
        claimed: set[int] = set()
        walker = walk(self._root)
        executor = ThreadPoolExecutor(self._workers, thread_name_prefix="library-scan")
        try:
            while items := await asyncio.to_thread(_take, walker, CHUNK_FILES):
                chunk = []
                for item in items:
                    if isinstance(item, _WalkError):
                        progress.errors += 1
                        unreadable.append(item.path)
                        log.warning("library scan: cannot read %s: %s", item.path, item.message)
                    else:
                        chunk.append(item)
                        visited.add(item.path)
                await self._scan_chunk(chunk, folders, had_tracks, vanished, vanished_skipped,
                                       claimed, executor, progress)
                report(progress)
                await faultpoints.areached("scan.chunk_written")
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

        progress.phase = "removing"
        report(progress)
        gone = [fid for path, fid in folders.items()
                if path not in visited and not _under_any(path, unreadable)]
        for known in await self._store.known_files(gone):
            if known.track_id is None:
                vanished_skipped.append((known.folder_id, known.file_name))
            elif known.track_id not in claimed:
                vanished[known.track_id] = known.file_name
        if progress.files_seen == 0 and vanished and had_tracks:
            raise ScanError(
                f"Found no audio file in {self._root}, but the library has tracks there: nothing "
                "was removed. If the music folder is a network share or a disk, check that it "
                "is mounted.")
        progress.files_removed = await self._store.remove_tracks(
            [track_id for track_id in vanished if track_id not in claimed])
        await self._store.remove_skipped(vanished_skipped)
        await self._store.remove_empty_folders(list(folders.values()))
        progress.phase = "indexing"
        report(progress)
        try:
            await self._store.merge_search_indexes()
        except (sqlite3.Error, ValueError) as exc:  # ValueError: a damaged structure record
            # The scan's writes are in; the indexes stay correct, only slower to search.
            log.warning("library scan: could not merge the search indexes: %s", exc)
        progress.phase = "done"
        report(progress)
        return progress

    async def _scan_chunk(self, chunk: list[_Folder], folders: dict[str, int], had_tracks: bool,
                          vanished: dict[int, str], vanished_skipped: list[tuple[int, str]],
                          claimed: set[int], executor: ThreadPoolExecutor,
                          progress: ScanProgress) -> None:
        known_ids = [folders[f.path] for f in chunk if f.path in folders]
        to_read: list[tuple[str, int, int]] = []
        new: list[tuple[str, int, int]] = []
        by_folder: dict[int, dict[str, KnownFile]] = {}
        for entry in await self._store.known_files(known_ids):
            by_folder.setdefault(entry.folder_id, {})[entry.file_name] = entry
        for folder in chunk:
            folder_id = folders.get(folder.path)
            known = by_folder.get(folder_id, {}) if folder_id is not None else {}
            for name, why in folder.failed.items():
                progress.errors += 1
                log.warning("library scan: cannot read %s/%s: %s", folder.path, name, why)
            for name, size, mtime in folder.files:
                progress.files_seen += 1
                entry = known.get(name)
                path = f"{folder.path}/{name}"
                if entry is None:
                    new.append((path, size, mtime))
                elif entry.file_size == size and entry.file_mtime == mtime:
                    if entry.track_id is None:
                        progress.files_skipped += 1
                    else:
                        progress.files_unchanged += 1
                else:
                    to_read.append((path, size, mtime))
            present = {name for name, _size, _mtime in folder.files} | set(folder.failed)
            for name, entry in known.items():
                if name in present:
                    continue
                if entry.track_id is None:
                    vanished_skipped.append((entry.folder_id, name))
                elif entry.track_id not in claimed:
                    vanished[entry.track_id] = f"{folder.path}/{name}"
        moves = await self._find_moves(new, claimed) if had_tracks and new else {}
        to_read.extend(item for item in new if item[0] not in moves)
        for track_id in moves.values():
            vanished.pop(track_id, None)

        loop = asyncio.get_running_loop()
        jobs = [*to_read, *((path, size, mtime) for path, size, mtime in new if path in moves)]
        results = await asyncio.gather(*(
            loop.run_in_executor(executor, _read, path, self._root, size, mtime)
            for path, size, mtime in jobs))
        records: list[TrackRecord] = []
        moved: dict[int, TrackRecord] = {}
        skipped: list[SkippedFile] = []
        for result in results:
            if isinstance(result, SkippedFile):
                skipped.append(result)
                log.warning("library scan: skipping %s/%s: %s", result.folder, result.file_name,
                            result.reason)
            elif result.path in moves:
                moved[moves[result.path]] = result
            else:
                records.append(result)
        for path in moves:
            if moves[path] not in moved:
                # The moved file is unreadable now: the old track goes, the new path is skipped.
                vanished[moves[path]] = path
        await self._store.save(records, moved)
        await self._store.save_skipped(skipped)
        progress.files_read += len(records) + len(moved)
        progress.files_moved += len(moved)
        progress.files_skipped += len(skipped)

    async def _find_moves(self, new: list[tuple[str, int, int]], claimed: set[int]) -> dict[str, int]:
        """Return ``{new path: track id}`` for new files that are known tracks whose file is gone."""
        candidates: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for track_id, old_path, size, mtime in await self._store.moved_candidates([s for _, s, _ in new]):
            if track_id not in claimed:
                candidates.setdefault((size, mtime), []).append((track_id, old_path))
        if not candidates:
            return {}
        wanted = [old for path, size, mtime in new for _, old in candidates.get((size, mtime), [])]
        missing = await asyncio.to_thread(_missing, wanted)
        moves: dict[str, int] = {}
        for path, size, mtime in new:
            for track_id, old_path in candidates.get((size, mtime), []):
                if track_id not in claimed and old_path in missing:
                    claimed.add(track_id)
                    moves[path] = track_id
                    break
        return moves


def _under_any(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
