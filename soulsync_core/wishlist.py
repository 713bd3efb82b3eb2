"""The wishlist: tracks wanted but not in the library yet, and the runs that fetch them.

* **Adding** (:meth:`WishlistService.add`): the API, the watchlist scan and anything else
  store a track object (Spotify shape: ``id``, ``name``, ``artists``, ``album``); the same
  ``id`` again updates the row instead of adding a second one.
* **Runs** (:meth:`WishlistService.start_run`) are ``wishlist`` jobs of the
  :class:`~soulsync_core.jobs.JobRunner` (one at a time; a second start is a JobConflict). A
  run first settles the tracks whose download ended while no run was watching (after a
  restart), removes tracks now in the library (the shared matching module decides), then
  requests a download for each track that is due, at most ``wishlist.concurrency`` at once,
  and waits for each to finish: a completed download removes the track, a failed one adds a
  failure (``retry_count``, ``last_attempted``, ``failure_reason``).
* **Back-off**: automatic runs skip a track whose last failure is too recent: with 0 or 1
  failures it is tried every run, after 2 it waits ``wishlist.retry_hours_after_2_failures``,
  after 3 ``…_after_3_failures``, after more ``…_after_more_failures``. Manual runs try every
  track. No track is ever given up.
* **Crash safety**: there is no "processing" state. A track being fetched carries only the id
  of its download, which is a persisted row the download pipeline finishes after a restart;
  the next run (or the completion listener) settles the track from that row.
* **Whole albums** (:meth:`WishlistService.add_album`): an album wanted as a whole is a row of
  ``kind`` ``album`` (``track_id`` ``album:<source>:<album id>``, the album object as its
  data). A run requests it through the album downloads (one search, one peer's folder) and
  waits for that album download: completed removes the row, failed or cancelled counts a
  failure with the same back-off as a track's. ``category=albums`` lists these rows beside
  the tracks whose album type is ``album``; every row says its ``kind``.
* A download completed by any path (playlist, manual) removes the wishlist track with the
  same id or the same folded artist and title (:meth:`WishlistService.download_completed`).
* **Profiles**: each profile has its own list (``profile_id`` of :meth:`~WishlistService.add`,
  :meth:`~WishlistService.page`, :meth:`~WishlistService.remove`); a track two profiles want
  is one row shared through :mod:`soulsync_core.profiles`, fetched once. Runs and completed
  downloads serve every profile at once: the library is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from soulsync_core import faultpoints
from soulsync_core.activity import Activity
from soulsync_core.db import Database, Row
from soulsync_core.downloads.album_store import ALBUM_FINISHED
from soulsync_core.downloads.albums import AlbumInLibrary
from soulsync_core.downloads.models import FINISHED, Download, Wanted
from soulsync_core.downloads.service import NoDownloadClient
from soulsync_core.downloads.wanted import guess_source
from soulsync_core.events import EventBus
from soulsync_core.jobs import JobConflict, JobContext, JobFailed, JobInfo, JobRunner
from soulsync_core.library.matcher import LibraryMatcher
from soulsync_core.matching import fold
from soulsync_core.models import Album
from soulsync_core.music_folder import MusicFolderMissing, require_music_folder
from soulsync_core.profiles import DEFAULT_PROFILE, join, leave, visible_to
from soulsync_core.schedule import Clock, Schedule, iso, parse_iso, utc_now
from soulsync_core.settings import Settings

log = logging.getLogger(__name__)

JOB_KIND = "wishlist"
# How often a run re-reads a download it waits for; completions wake it at once (listener),
# failures are only seen by reading the row.
DOWNLOAD_POLL_SECONDS = 5.0
# Names listed in one activity note before "and N more".
NOTE_NAMES = 5

Category = Literal["all", "singles", "albums"]


class WishlistInputError(ValueError):
    """A track object that cannot be stored; ``str()`` says which field and what it must be."""


class NoDownloadPath(JobFailed):
    """A run found no download client to fetch with; ``str()`` says what to set up."""


class Downloads(Protocol):
    """The narrow part of the download pipeline the wishlist uses."""

    async def request(self, wanted: Wanted) -> tuple[Download, bool]:
        """Queue (or find the unfinished) download of ``wanted``; return ``(download, created)``."""

    async def get(self, download_id: int) -> Download | None:
        """Return the stored download, or None."""

    def on_completed(self, listener: Callable[[Download], Awaitable[None] | None]) -> None:
        """Call ``listener`` after each download that completes."""


class AlbumRequests(Protocol):
    """The part of the album downloads the wishlist and the watchlist use."""

    async def request_from_source(self, source: str, album: Album) -> tuple[Any, bool]:
        """Request a whole album of a metadata source; return ``(album download, created)``."""

    async def get(self, album_download_id: int) -> Any:
        """Return the album download (its ``status`` and ``error`` current), or None."""

    def on_finished(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(album download id)`` when an album download ends."""


class WishlistTrack(msgspec.Struct):
    """A wishlist track as the API returns it.

    ``track_id`` and ``spotify_track_id`` are the provider's track id (the second name is the
    public server's); ``track_data``/``spotify_data`` the stored track object. ``next_retry_at``
    is when an automatic run tries the track again (null: the next run). ``download_id`` is the
    download fetching it now, if any. Timestamps are ISO-8601 UTC.

    ``kind`` is ``track``, or ``album`` for an album wanted as a whole: then ``track_id`` is
    ``album:<source>:<album id>``, ``track_name`` and ``album_name`` the album's name,
    ``track_data`` the album object and ``album_download_id`` the album download fetching it.
    """

    id: int
    track_id: str
    spotify_track_id: str
    track_name: str
    artist_name: str
    album_name: str | None
    track_data: dict[str, Any]
    spotify_data: dict[str, Any]
    provider: str | None
    failure_reason: str | None
    retry_count: int
    last_attempted: str | None
    next_retry_at: str | None
    download_id: int | None
    date_added: str
    source_type: str
    source_info: dict[str, Any]
    profile_id: int = 1
    kind: Literal["track", "album"] = "track"
    album_download_id: int | None = None


class RunStatus(msgspec.Struct):
    """The running or last wishlist run; ``state`` is ``idle`` when none ever ran.

    Counters: ``total`` tracks on the list at the start, ``due`` of them tried this run,
    ``waiting`` skipped for their back-off or because their download is still running,
    ``in_library`` removed because the library has them, ``downloaded``, ``failed``;
    ``albums_requested`` albums requested whole because ``downloads.album_threshold`` or more
    due tracks shared one (those tracks leave the list as their album's tracks complete).
    """

    state: str
    job_id: str | None = None
    manual: bool | None = None
    total: int = 0
    due: int = 0
    waiting: int = 0
    in_library: int = 0
    downloaded: int = 0
    failed: int = 0
    albums_requested: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    partial: bool = False


def run_status(job: JobInfo | None) -> RunStatus:
    """Return the :class:`RunStatus` of a wishlist job row (``idle`` for None)."""
    if job is None:
        return RunStatus("idle")
    known = set(RunStatus.__struct_fields__) - {"state", "job_id", "started_at", "finished_at",
                                                 "error", "manual", "partial"}
    counts = {k: v for k, v in ({**job.progress, **(job.result or {})}).items() if k in known}
    return RunStatus(job.state, job.id, bool(job.params.get("manual")),
                     started_at=job.created_at, finished_at=job.finished_at, error=job.error,
                     partial=job.partial, **counts)


# ------------------------------------------------------------------------ track objects


def _artist_names(data: dict[str, Any]) -> list[str]:
    names = []
    for artist in data.get("artists") or []:
        name = artist.get("name") if isinstance(artist, dict) else artist
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def normalize_track(data: Any, field: str = "track_data") -> dict[str, Any]:
    """Return the track object to store, checked; raise WishlistInputError naming the problem.

    Needs ``id`` (string or integer) and ``name``; ``artists`` may be ``[{"name": …}]`` or
    ``["…"]``; ``album`` an object, a name or absent (then the track's name, as the public
    server does, so that a single files under its own title).
    """
    if not isinstance(data, dict):
        raise WishlistInputError(f"{field} must be an object with at least 'id' and 'name'.")
    track = dict(data)
    raw_id = track.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise WishlistInputError(f"{field}.id is required: the provider's track id "
                                 "(a non-empty string or integer).")
    track["id"] = str(raw_id).strip()
    name = track.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WishlistInputError(f"{field}.name is required: the track title (a non-empty string).")
    track["name"] = name.strip()
    artists = track.get("artists", [])
    if artists is None:
        artists = []
    if not isinstance(artists, list) or not all(
            isinstance(a, str) or (isinstance(a, dict) and isinstance(a.get("name"), str))
            for a in artists):
        raise WishlistInputError(f'{field}.artists must be a list of names or {{"name": …}} '
                                 'objects, e.g. [{"name": "Daft Punk"}].')
    track["artists"] = [a if isinstance(a, dict) else {"name": a} for a in artists]
    album = track.get("album")
    if album is None or isinstance(album, str):
        album = {"name": (album or "").strip(), "images": []}
    if not isinstance(album, dict):
        raise WishlistInputError(f"{field}.album must be an object like "
                                 '{"name": "Discovery", "album_type": "album"}, or a name.')
    album = dict(album)
    if not isinstance(album.get("name"), str) or album["name"].strip() in ("", "Unknown Album"):
        album["name"] = track["name"]
    track["album"] = album
    for key in ("duration_ms", "track_number", "disc_number"):
        value = track.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or value < 0):
            raise WishlistInputError(f"{field}.{key} must be a number of at least 0 when given.")
    provider = track.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise WishlistInputError(f"{field}.provider must be a string (e.g. spotify) when given.")
    return track


ALBUM_PREFIX = "album:"


def album_entry_id(source: str, album_id: str) -> str:
    """Return the ``track_id`` of the wishlist row wanting album ``album_id`` of ``source``."""
    return f"{ALBUM_PREFIX}{source}:{album_id}"


def normalize_album(data: Any, source: str) -> dict[str, Any]:
    """Return the album object to store for a whole-album entry, checked (WishlistInputError).

    Needs ``id`` and ``name``; ``artists`` names or ``{"name": …}`` objects (stored as
    objects); ``source`` is the metadata source the id belongs to.
    """
    if not isinstance(data, dict):
        raise WishlistInputError("album must be an object with at least 'id' and 'name'.")
    album = dict(data)
    raw_id = album.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise WishlistInputError("album.id is required: the metadata source's album id.")
    album["id"] = str(raw_id).strip()
    name = album.get("name")
    if not isinstance(name, str) or not name.strip():
        raise WishlistInputError("album.name is required: the album title (a non-empty string).")
    album["name"] = name.strip()
    artists = album.get("artists") or []
    if not isinstance(artists, list) or not all(
            isinstance(a, str) or (isinstance(a, dict) and isinstance(a.get("name"), str))
            for a in artists):
        raise WishlistInputError('album.artists must be a list of names or {"name": …} objects.')
    album["artists"] = [a if isinstance(a, dict) else {"name": a} for a in artists]
    album["source"] = source
    return album


def album_of(data: dict[str, Any]) -> Album:
    """Return the album a whole-album entry's stored object names (see :func:`normalize_album`)."""
    total = data.get("total_tracks")
    return Album(str(data["id"]), data["name"], _artist_names(data), data.get("release_date"),
                 total if isinstance(total, int) and not isinstance(total, bool) else 0,
                 data.get("album_type") or "album", data.get("image_url"))


def match_key(title: str, artists: list[str]) -> str:
    """Return the key two wanted tracks share when they are the same title by the same artist."""
    return f"{fold(artists[0]) if artists else ''}|{fold(title)}"


def wanted_of(track: dict[str, Any]) -> Wanted:
    """Return the download request for a stored track object (see :func:`normalize_track`)."""
    album = track.get("album") or {}
    track_id = str(track["id"])
    album_artists = _artist_names(album) if isinstance(album, dict) else []
    return Wanted(
        title=track["name"], artists=_artist_names(track) or album_artists,
        album=album.get("name") or "", album_artist=album_artists[0] if album_artists else "",
        duration_ms=round(track.get("duration_ms") or 0),
        track_number=track.get("track_number") or None, disc_number=track.get("disc_number") or None,
        release_date=album.get("release_date") or track.get("release_date"),
        # A Spotify track object (what shazarr and the public API send) keeps it under external_ids.
        isrc=track.get("isrc") or (track.get("external_ids") or {}).get("isrc") or None,
        track_id=track_id,
        album_id=str(album["id"]) if album.get("id") is not None else None,
        source=track.get("provider") or guess_source(track_id),
        compilation=album.get("album_type") == "compilation",
    )


def _label(row: Row) -> str:
    """Return how a job's item errors name a wishlist track: ``Artist - Title``."""
    return f"{row['artist_name']} - {row['track_name']}"


def _names_note(names: list[str]) -> str:
    shown = ", ".join(names[:NOTE_NAMES])
    return shown + (f" and {len(names) - NOTE_NAMES} more" if len(names) > NOTE_NAMES else "")


# ------------------------------------------------------------------------------ service


class WishlistService:
    """The wishlist table, its runs and their schedule, and its share of the stats.

    ``clock`` returns the current aware UTC time; it dates failures and decides back-offs, so
    tests move it instead of sleeping. ``poll_seconds`` is how often a run re-reads a download
    it waits for (completions wake it at once).
    """

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, activity: Activity,
                 matcher: LibraryMatcher, downloads: Downloads, music_dir: Callable[[], Path],
                 clock: Clock = utc_now, events: EventBus | None = None):
        self._db = db
        self._events = events or EventBus()
        self._settings = settings
        self._jobs = jobs
        self._activity = activity
        # The one way to find a track in the library (shared with playlist sync).
        self._matcher = matcher
        self.downloads = downloads
        self._music_dir = music_dir
        self._albums: AlbumRequests | None = None
        self._album_waiters: dict[int, asyncio.Event] = {}
        self.clock = clock
        self.poll_seconds = DOWNLOAD_POLL_SECONDS
        self._waiters: dict[int, asyncio.Event] = {}
        self.schedule = Schedule(db, JOB_KIND,
                                 lambda: settings.get("wishlist.interval_minutes") * 60.0,
                                 self._start_scheduled, lambda: self.clock(), first_delay=60.0)
        settings.on_change("wishlist.interval_minutes", lambda _c: self.schedule.reschedule())
        downloads.on_completed(self.download_completed)

    @property
    def albums(self) -> AlbumRequests | None:
        """The album downloads (set by the core): whole-album entries, and whole albums for
        tracks that share one (None: tracks only)."""
        return self._albums

    @albums.setter
    def albums(self, albums: AlbumRequests | None) -> None:
        self._albums = albums
        if albums is not None:
            albums.on_finished(self._album_finished)

    def _album_finished(self, album_download_id: int) -> None:
        event = self._album_waiters.get(album_download_id)
        if event is not None:
            event.set()

    # --------------------------------------------------------------------- the list

    async def add(self, data: Any, *, failure_reason: str | None = None,
                  source_type: str = "api", source_info: dict[str, Any] | None = None,
                  field: str = "track_data", profile_id: int = DEFAULT_PROFILE,
                  ) -> tuple[WishlistTrack, bool]:
        """Store a track on the wishlist of ``profile_id``; return ``(track, created)``, where
        ``created`` says it is new on that profile's list; the same id again updates the row.

        An update replaces the track object, reason and source, and keeps the row's id, date,
        failures and any running download. Raises WishlistInputError for a bad track object.
        """
        track = normalize_track(data, field)
        names = _artist_names(track)
        album = track["album"]
        now = iso(self.clock())
        values = (msgspec.json.encode(track).decode(), track["name"], ", ".join(names),
                  album.get("name"), int(album.get("album_type") == "album"),
                  track.get("provider"), match_key(track["name"], names), failure_reason,
                  source_type, msgspec.json.encode(source_info or {}).decode())
        async with self._db.write() as conn:
            cursor = await conn.execute("SELECT id FROM wishlist_tracks WHERE track_id = ?",
                                        (track["id"],))
            existing = await cursor.fetchone()
            if existing is None:
                cursor = await conn.execute(
                    "INSERT INTO wishlist_tracks (track_data, track_name, artist_name, album_name, "
                    "is_album, provider, match_key, failure_reason, source_type, source_info, "
                    "track_id, date_added, profile_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, track["id"], now, profile_id))
                row_id = cursor.lastrowid
                created = True
            else:
                row_id = existing[0]
                created = await join(conn, "wishlist_tracks", row_id, profile_id)
                await conn.execute(
                    "UPDATE wishlist_tracks SET track_data = ?, track_name = ?, artist_name = ?, "
                    "album_name = ?, is_album = ?, provider = ?, match_key = ?, "
                    "failure_reason = coalesce(?, failure_reason), source_type = ?, "
                    "source_info = ? WHERE id = ?", (*values, row_id))
        return await self._written(int(row_id or 0), profile_id, created)

    async def add_album(self, data: Any, source: str, *, failure_reason: str | None = None,
                        source_type: str = "api", source_info: dict[str, Any] | None = None,
                        profile_id: int = DEFAULT_PROFILE) -> tuple[WishlistTrack, bool]:
        """Put album ``data`` of metadata source ``source`` on the wishlist of ``profile_id``
        as a whole (see the module docstring); return ``(entry, created)`` as :meth:`add`.

        Raises WishlistInputError for a bad album object.
        """
        album = normalize_album(data, source)
        names = _artist_names(album)
        entry_id = album_entry_id(source, album["id"])
        now = iso(self.clock())
        values = (msgspec.json.encode(album).decode(), album["name"], ", ".join(names),
                  album["name"], source, f"album|{match_key(album['name'], names)}",
                  failure_reason, source_type, msgspec.json.encode(source_info or {}).decode())
        async with self._db.write() as conn:
            cursor = await conn.execute("SELECT id FROM wishlist_tracks WHERE track_id = ?",
                                        (entry_id,))
            existing = await cursor.fetchone()
            if existing is None:
                cursor = await conn.execute(
                    "INSERT INTO wishlist_tracks (track_data, track_name, artist_name, album_name, "
                    "provider, match_key, failure_reason, source_type, source_info, track_id, "
                    "date_added, profile_id, is_album, kind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 'album')",
                    (*values, entry_id, now, profile_id))
                row_id, created = cursor.lastrowid, True
            else:
                row_id = existing[0]
                created = await join(conn, "wishlist_tracks", row_id, profile_id)
                await conn.execute(
                    "UPDATE wishlist_tracks SET track_data = ?, track_name = ?, artist_name = ?, "
                    "album_name = ?, provider = ?, match_key = ?, "
                    "failure_reason = coalesce(?, failure_reason), source_type = ?, "
                    "source_info = ? WHERE id = ?", (*values, row_id))
        return await self._written(int(row_id or 0), profile_id, created)

    async def _written(self, row_id: int, profile_id: int,
                       created: bool) -> tuple[WishlistTrack, bool]:
        """Return ``(the entry just written, created)``, announcing a new one."""
        added = await self.get(row_id, profile_id)
        assert added is not None  # just written
        if created:
            self._events.publish("wishlist.added", added)
        return added, created

    async def get(self, row_id: int, profile_id: int | None = None) -> WishlistTrack | None:
        """Return one wishlist track by row id (None when there is none, or when
        ``profile_id`` is given and that profile does not want it)."""
        where, params = "", ()
        if profile_id is not None:
            condition, params = visible_to("wishlist_tracks", profile_id)
            where = f" AND {condition}"
        row = await self._db.fetchone(f"SELECT * FROM wishlist_tracks WHERE id = ?{where}",
                                      (row_id, *params))
        return self._track(row, profile_id) if row else None

    async def page(self, category: Category, offset: int, limit: int,
                   profile_id: int = DEFAULT_PROFILE) -> tuple[list[WishlistTrack], int]:
        """Return ``(tracks oldest first, total)`` of the wishlist of ``profile_id``;
        ``albums`` are the whole-album entries and the tracks whose album type is ``album``,
        ``singles`` everything else."""
        where, params = visible_to("wishlist_tracks", profile_id)
        if category != "all":
            where, params = f"{where} AND is_album = ?", (*params, int(category == "albums"))
        total = await self._db.fetchval(f"SELECT count(*) FROM wishlist_tracks WHERE {where}",
                                        params)
        rows = await self._db.fetchall(
            f"SELECT * FROM wishlist_tracks WHERE {where} ORDER BY date_added, id "
            "LIMIT ? OFFSET ?", (*params, limit, offset))
        return [self._track(row, profile_id) for row in rows], int(total or 0)

    async def remove(self, track_id: str, profile_id: int = DEFAULT_PROFILE) -> bool:
        """Take the track with that provider id off the wishlist of ``profile_id`` (the row
        stays while another profile wants it); return whether that profile had it."""
        async with self._db.write() as conn:
            cursor = await conn.execute("SELECT id FROM wishlist_tracks WHERE track_id = ?",
                                        (track_id,))
            row = await cursor.fetchone()
            removed = row is not None and await leave(conn, "wishlist_tracks", row[0], profile_id)
        if removed:
            self._events.publish("wishlist.removed", {"track_id": track_id, "profile_id": profile_id})
        return removed

    async def is_wanted(self, track_id: str, title: str, artists: list[str],
                        profile_id: int | None = None) -> bool:
        """Return whether the wishlist (of ``profile_id`` when given, else of any profile)
        holds this track (same id, or same artist and title)."""
        where, params = "", ()
        if profile_id is not None:
            condition, params = visible_to("wishlist_tracks", profile_id)
            where = f" AND {condition}"
        return await self._db.fetchval(
            f"SELECT 1 FROM wishlist_tracks WHERE (track_id = ? OR match_key = ?){where} LIMIT 1",
            (track_id, match_key(title, artists), *params)) is not None

    async def counts(self) -> dict[str, int]:
        """Return ``{"total", "downloading", "failed"}``: all tracks, those with a download
        running, those that failed at least once."""
        row = await self._db.fetchone(
            "SELECT count(*), count(download_id), coalesce(sum(retry_count > 0), 0) "
            "FROM wishlist_tracks")
        assert row is not None
        return {"total": row[0], "downloading": row[1], "failed": row[2]}

    def _track(self, row: Row, profile_id: int | None = None) -> WishlistTrack:
        data = msgspec.json.decode(row["track_data"])
        retry = self._next_retry(row["retry_count"], row["last_attempted"])
        return WishlistTrack(
            row["id"], row["track_id"], row["track_id"], row["track_name"], row["artist_name"],
            row["album_name"], data, data, row["provider"], row["failure_reason"],
            row["retry_count"], row["last_attempted"], iso(retry) if retry else None,
            row["download_id"], row["date_added"], row["source_type"],
            msgspec.json.decode(row["source_info"]),
            row["profile_id"] if profile_id is None else profile_id, row["kind"],
            row["album_download_id"])

    # ------------------------------------------------------------------- library check

    async def in_library(self, track: dict[str, Any]) -> bool:
        """Return whether the library has this track (see :class:`LibraryMatcher`: by the
        provider's id or ISRC, else by title and artist through the shared matching module)."""
        return await self._matcher.match(wanted_of(track)) is not None

    # ------------------------------------------------------------------------- back-off

    def backoff(self, retry_count: int) -> timedelta:
        """Return how long an automatic run waits after the last failure of a track."""
        if retry_count <= 1:
            return timedelta(0)
        key = {2: "after_2_failures", 3: "after_3_failures"}.get(retry_count, "after_more_failures")
        return timedelta(hours=self._settings.get(f"wishlist.retry_hours_{key}"))

    def _next_retry(self, retry_count: int, last_attempted: str | None) -> datetime | None:
        last = parse_iso(last_attempted)
        wait = self.backoff(retry_count)
        if last is None or not wait:
            return None  # never tried, unreadable or no back-off: due at the next run
        return last + wait

    def is_due(self, retry_count: int, last_attempted: str | None, now: datetime) -> bool:
        """Return whether an automatic run tries a track with this failure history at ``now``."""
        retry = self._next_retry(retry_count, last_attempted)
        return retry is None or now >= retry

    # ----------------------------------------------------------------------------- runs

    async def start_run(self, *, manual: bool = True) -> JobInfo:
        """Start a run and return its job row; raise JobConflict while one runs.

        A manual run tries every track; an automatic one respects the back-off.
        """
        return await self._jobs.start(JOB_KIND, self._run, {"manual": manual})

    async def status(self) -> RunStatus:
        """Return the running run, else the latest one, else ``idle``."""
        return run_status(await self._jobs.latest(JOB_KIND))

    async def _start_scheduled(self) -> None:
        try:
            await self.start_run(manual=False)
        except JobConflict:
            log.info("scheduled wishlist run skipped: one is already running")

    async def run_scheduler(self) -> None:
        """Run automatically every ``wishlist.interval_minutes`` (0: never); until cancelled."""
        await self.schedule.run_forever()

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        manual = bool(ctx.params.get("manual"))
        counts = {"total": 0, "due": 0, "waiting": 0, "in_library": 0, "downloaded": 0,
                  "failed": 0, "albums_requested": 0}
        try:
            # Downloads are filed into it: without it every one would fail at the end.
            await require_music_folder(self._music_dir())
            await self._settle(counts, ctx)
            due = await self._prune_and_pick(manual, counts, ctx)
            await self._fetch(due, counts, ctx)
        except (NoDownloadPath, MusicFolderMissing) as exc:
            await self._activity.record("wishlist.failed", "Wishlist Run Failed", str(exc))
            raise
        state, _partial, error = ctx.outcome()
        if state == "failed":
            await self._activity.record("wishlist.failed", "Wishlist Run Failed", error or "")
            return counts
        await self._activity.record(
            "wishlist.completed", "Wishlist Run Completed",
            f"{counts['downloaded']} downloaded, {counts['failed']} failed, "
            f"{counts['in_library']} already in the library, {counts['waiting']} waiting "
            f"({'manual' if manual else 'automatic'} run, {counts['total']} tracks)")
        self._events.publish("wishlist.processed", {"job_id": ctx.info.id, "manual": manual, **counts})
        return counts

    async def _settle(self, counts: dict[str, int], ctx: JobContext) -> None:
        """Settle tracks whose download ended while no run waited for it (e.g. a restart)."""
        await self._settle_albums(counts, ctx)
        rows = await self._db.fetchall(
            "SELECT id, download_id, artist_name, track_name FROM wishlist_tracks "
            "WHERE download_id IS NOT NULL")
        for row in rows:
            download = await self.downloads.get(row["download_id"])
            if download is None:
                await self._db.execute("UPDATE wishlist_tracks SET download_id = NULL WHERE id = ?",
                                       (row["id"],))
            elif download.status == "completed":
                await self._delete(row["id"])
                counts["downloaded"] += 1
                ctx.item_done()
            elif download.status in FINISHED:
                reason = await self._record_failure(row["id"], download)
                counts["failed"] += 1
                ctx.item_failed(_label(row), reason)
        ctx.progress(**counts)

    async def _settle_albums(self, counts: dict[str, int], ctx: JobContext) -> None:
        """Settle whole-album entries whose album download ended while no run waited for it."""
        rows = await self._db.fetchall(
            "SELECT id, album_download_id, artist_name, track_name FROM wishlist_tracks "
            "WHERE album_download_id IS NOT NULL")
        for row in rows:
            album = await self.albums.get(row["album_download_id"]) if self.albums else None
            await self._album_ended(row, album, counts, ctx)

    async def _album_ended(self, row: Row, album: Any, counts: dict[str, int],
                           ctx: JobContext) -> bool:
        """Settle a whole-album entry from its album download (None: vanished); return False
        while that download is unfinished."""
        if album is None:
            await self._db.execute("UPDATE wishlist_tracks SET album_download_id = NULL "
                                   "WHERE id = ?", (row["id"],))
        elif album.status == "completed":
            await self._delete(row["id"])
            counts["downloaded"] += 1
            ctx.item_done()
        elif album.status in ALBUM_FINISHED:
            reason = await self._record_failure(
                row["id"], None, album.error or f"album download {album.id} {album.status}")
            counts["failed"] += 1
            ctx.item_failed(_label(row), reason)
        else:
            return False
        return True

    async def _prune_and_pick(self, manual: bool, counts: dict[str, int],
                              ctx: JobContext) -> list[Row]:
        """Remove tracks the library has; return the rest that are due, oldest first
        (whole-album entries are not looked up: their album download skips what the library
        has)."""
        rows = await self._db.fetchall("SELECT * FROM wishlist_tracks ORDER BY date_added, id")
        counts["total"] = len(rows)
        now = self.clock()
        due: list[Row] = []
        albums = [row for row in rows if row["kind"] == "album"]
        rows = [row for row in rows if row["kind"] != "album"]
        for row in albums:
            if row["album_download_id"] is not None:
                counts["waiting"] += 1
            elif manual or self.is_due(row["retry_count"], row["last_attempted"], now):
                due.append(row)
            else:
                counts["waiting"] += 1
        owned: list[str] = []
        # One batch for the whole list: the matcher shares its SQL across the tracks.
        found = await self._matcher.match_many(
            [wanted_of(msgspec.json.decode(row["track_data"])) for row in rows])
        for row, match in zip(rows, found, strict=True):
            if match is not None:
                if await self._delete(row["id"]):
                    owned.append(_label(row))
                    ctx.item_done()
            elif row["download_id"] is not None:
                counts["waiting"] += 1  # its download still runs; it settles when it ends
            elif manual or self.is_due(row["retry_count"], row["last_attempted"], now):
                due.append(row)
            else:
                counts["waiting"] += 1
        counts["in_library"] = len(owned)
        counts["due"] = len(due)
        ctx.progress(**counts)
        if owned:
            await self._activity.record(
                "wishlist.in_library", "Wishlist Tracks Already in the Library",
                f"Removed {len(owned)} from the wishlist: {_names_note(owned)}")
        return due

    async def _request_albums(self, rows: list[Row], counts: dict[str, int]) -> list[Row]:
        """Request whole albums for groups of ``downloads.album_threshold`` or more due tracks of
        one album (the source's album id); return the rows left to fetch one by one.

        A group whose album cannot be requested (its source is down, say) is fetched as tracks.
        """
        threshold = self._settings.get("downloads.album_threshold")
        if not threshold or self.albums is None:
            return rows
        groups: dict[tuple[str, str], list[tuple[Row, Wanted]]] = {}
        for row in rows:
            wanted = wanted_of(msgspec.json.decode(row["track_data"]))
            if wanted.album_id and wanted.source:
                groups.setdefault((wanted.source, wanted.album_id), []).append((row, wanted))
        taken: set[int] = set()
        for (source, album_id), group in groups.items():
            if len(group) < threshold:
                continue
            first = group[0][1]
            album = Album(album_id, first.album, [first.album_artist or first.artists[0]],
                          first.release_date)
            try:
                await self.albums.request_from_source(source, album)
            except NoDownloadClient as exc:
                raise NoDownloadPath(f"No track could be downloaded: {exc}") from None
            except Exception as exc:
                log.warning("wishlist: the album %s of %s could not be requested whole (%s); its "
                            "tracks are fetched one by one", album_id, source, exc)
                continue
            now = iso(self.clock())
            for row, _wanted in group:
                await self._db.execute("UPDATE wishlist_tracks SET last_attempted = ? WHERE id = ?",
                                       (now, row["id"]))
                taken.add(row["id"])
            counts["albums_requested"] += 1
        return [row for row in rows if row["id"] not in taken]

    async def _fetch(self, rows: list[Row], counts: dict[str, int], ctx: JobContext) -> None:
        albums = [row for row in rows if row["kind"] == "album"]
        rows = await self._request_albums([row for row in rows if row["kind"] != "album"], counts)
        if not rows and not albums:
            return
        gate = asyncio.Semaphore(self._settings.get("wishlist.concurrency"))
        unavailable: list[str] = []

        async def fetch(row: Row) -> None:
            async with gate:
                if unavailable:
                    return
                if row["kind"] == "album":
                    await self._fetch_album(row, counts, ctx, unavailable)
                    return
                try:
                    download, _created = await self.downloads.request(
                        wanted_of(msgspec.json.decode(row["track_data"])))
                except NoDownloadClient as exc:
                    unavailable.append(str(exc))
                    return
                except Exception as exc:
                    log.exception("wishlist track %d: the download request failed", row["id"])
                    reason = await self._record_failure(row["id"], None,
                                                        f"download request failed: {exc}")
                    counts["failed"] += 1
                    ctx.item_failed(_label(row), reason)
                    return
                await faultpoints.areached("wishlist.requested")
                # The link is saved before waiting: after a crash the next run settles it.
                await self._db.execute(
                    "UPDATE wishlist_tracks SET download_id = ?, last_attempted = ? WHERE id = ?",
                    (download.id, iso(self.clock()), row["id"]))
                finished = await self._wait(download.id)
                if finished is None or finished.status == "completed":
                    await self._delete(row["id"])
                    counts["downloaded"] += finished is not None
                    ctx.item_done()
                    if finished is None:
                        log.warning("download %d of wishlist track %d vanished", download.id,
                                    row["id"])
                else:
                    reason = await self._record_failure(row["id"], finished)
                    counts["failed"] += 1
                    ctx.item_failed(_label(row), reason)
                ctx.progress(**counts)

        async with asyncio.TaskGroup() as group:
            for row in [*albums, *rows]:
                group.create_task(fetch(row))
        if unavailable:
            raise NoDownloadPath(f"No track could be downloaded: {unavailable[0]}")

    async def _fetch_album(self, row: Row, counts: dict[str, int], ctx: JobContext,
                           unavailable: list[str]) -> None:
        """Request a whole-album entry as an album download and wait until it ends."""
        data = msgspec.json.decode(row["track_data"])
        try:
            if self.albums is None:
                raise RuntimeError("album downloads are not available")
            album, _created = await self.albums.request_from_source(row["provider"] or "",
                                                                    album_of(data))
        except NoDownloadClient as exc:
            unavailable.append(str(exc))
            return
        except AlbumInLibrary:
            await self._delete(row["id"])
            counts["in_library"] += 1
            ctx.item_done()
            return
        except Exception as exc:
            log.warning("wishlist album %d: the album request failed: %s", row["id"], exc)
            reason = await self._record_failure(row["id"], None, f"album request failed: {exc}")
            counts["failed"] += 1
            ctx.item_failed(_label(row), reason)
            return
        # The link is saved before waiting: after a crash the next run settles it.
        await self._db.execute(
            "UPDATE wishlist_tracks SET album_download_id = ?, last_attempted = ? WHERE id = ?",
            (album.id, iso(self.clock()), row["id"]))
        counts["albums_requested"] += 1
        event = self._album_waiters.setdefault(album.id, asyncio.Event())
        try:
            while True:
                event.clear()
                if await self._album_ended(row, await self.albums.get(album.id), counts, ctx):
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await event.wait()
        finally:
            self._album_waiters.pop(album.id, None)
        ctx.progress(**counts)

    async def _wait(self, download_id: int) -> Download | None:
        """Return the download once finished (None when it vanished)."""
        event = self._waiters.setdefault(download_id, asyncio.Event())
        try:
            while True:
                download = await self.downloads.get(download_id)
                if download is None or download.status in FINISHED:
                    return download
                event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await event.wait()
        finally:
            self._waiters.pop(download_id, None)

    async def _delete(self, row_id: int) -> bool:
        track_id = await self._db.fetchval("SELECT track_id FROM wishlist_tracks WHERE id = ?",
                                           (row_id,))
        deleted = await self._db.execute("DELETE FROM wishlist_tracks WHERE id = ?", (row_id,)) > 0
        if deleted:
            self._events.publish("wishlist.removed", {"track_id": track_id})
        return deleted

    async def _record_failure(self, row_id: int, download: Download | None,
                              reason: str = "") -> str:
        """Count a failure of the track and return its reason (the download's error)."""
        if download is not None:
            reason = download.error or f"download {download.status.replace('_', ' ')}"
        await self._db.execute(
            "UPDATE wishlist_tracks SET retry_count = retry_count + 1, last_attempted = ?, "
            "failure_reason = ?, download_id = NULL, album_download_id = NULL WHERE id = ?",
            (iso(self.clock()), reason, row_id))
        return reason

    async def download_completed(self, download: Download) -> None:
        """Remove the wishlist tracks a completed download satisfies (any path: playlist,
        manual, a run), and wake the run waiting for it."""
        wanted = download.wanted
        removed = await self._db.fetchall(
            "SELECT track_name, artist_name, track_id FROM wishlist_tracks "
            "WHERE download_id = ? OR track_id = ? OR match_key = ?",
            (download.id, wanted.track_id or "", match_key(wanted.title, wanted.artists)))
        if removed:
            await self._db.execute(
                "DELETE FROM wishlist_tracks WHERE download_id = ? OR track_id = ? OR match_key = ?",
                (download.id, wanted.track_id or "", match_key(wanted.title, wanted.artists)))
            await self._activity.record(
                "wishlist.downloaded", "Wishlist Track Downloaded",
                f"Removed from the wishlist: "
                f"{_names_note([f'{r[1]} - {r[0]}' for r in removed])}")
            for row in removed:
                self._events.publish("wishlist.removed", {"track_id": row["track_id"]})
        event = self._waiters.get(download.id)
        if event is not None:
            event.set()
