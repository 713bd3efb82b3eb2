"""The watchlist: artists whose new releases are wanted, and the scans that find them.

A scan (a ``watchlist_scan`` job, one at a time) asks, for each watched artist, the metadata
provider that owns the artist's id — through :meth:`MetadataSearch.call`, so that provider's
timeout and rate-limit cool-down apply — for the artist's releases, newest first, and keeps:

* releases dated **on or after the date** of the artist's last complete scan (dates are
  compared, not times, so a release dated the day of the previous scan is not missed; the
  wishlist and library checks below make seeing it twice harmless); a never-scanned artist
  looks back ``watchlist.lookback_days``;
* not releases dated after today: they wait for a scan on or after their date; nor undated
  ones, which would otherwise pull in a whole back catalogue;
* of the types the artist's ``include_*`` flags allow (1-3 tracks: single, 4-6: EP, 7 or more:
  album; compilations by type or name), and tracks passing the live/remix/acoustic filters.

Every such track that is neither in the library nor already wanted is added to the wishlist
(``source_type`` ``watchlist``); the wishlist processor downloads it. At most
``watchlist.max_tracks_per_scan`` tracks are added per scan: the scan stops there. An artist's
``last_scan_at`` moves to the scan's start only when all its releases were looked at (no
provider error, cap not reached, not a dry run), so nothing is skipped by a partial scan. One
artist's provider error (also a provider that is not installed or not configured) is recorded
in its outcome and the scan goes on; each artist is an item of the job's outcome rule
(:mod:`soulsync_core.jobs`): a scan where every artist failed is ``failed``.
"""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from typing import Any

import msgspec

from soulsync_core.activity import Activity
from soulsync_core.db import Database, Row
from soulsync_core.downloads.albums import AlbumInLibrary
from soulsync_core.events import EventBus
from soulsync_core.jobs import JobConflict, JobContext, JobInfo, JobRunner
from soulsync_core.library.folding import fold as library_fold
from soulsync_core.models import Album, Track
from soulsync_core.profiles import DEFAULT_PROFILE, join, leave, visible_to
from soulsync_core.schedule import Clock, Schedule, iso, parse_iso, utc_now
from soulsync_core.search import MetadataSearch, SourceUnavailable, UnknownSource
from soulsync_core.settings import Settings
from soulsync_core.wishlist import AlbumRequests, WishlistService, match_key

log = logging.getLogger(__name__)

JOB_KIND = "watchlist_scan"
# Releases asked for per artist (newest first): far more than a lookback ever needs.
RELEASES_PER_ARTIST = 50
INCLUDE_FLAGS = ("include_albums", "include_eps", "include_singles", "include_live",
                 "include_remixes", "include_acoustic", "include_compilations")
DEFAULT_FLAGS = {"include_albums": True, "include_eps": True, "include_singles": True,
                 "include_live": False, "include_remixes": False, "include_acoustic": False,
                 "include_compilations": False}
SOURCE_ALIASES = {"apple": "itunes", "apple_music": "itunes", "applemusic": "itunes",
                  "spotify_public": "spotify"}
# Watchlist sources whose ids the library's artists carry (library column for each).
LIBRARY_ARTIST_COLUMNS = {"spotify": "spotify_artist_id", "itunes": "itunes_artist_id",
                          "deezer": "deezer_id"}
FOUND_REASON = "Missing from library (found by watchlist scan)"

_LIVE = re.compile(r"[(\[-]\s*live\b|\blive (at|from|in|on|version|session|recording|"
                   r"performance)\b|\bin concert\b|\bon stage\b|\bunplugged\b")
_REMIX = re.compile(r"\b(remix(es|ed)?|rmx|mix|edit|dub)\b")
_REMASTER = re.compile(r"\bremaster(ed)?\b")
_ACOUSTIC = re.compile(r"\b(acoustic|stripped|piano version|unplugged)\b")
_COMPILATION = re.compile(r"\b(greatest hits|best of|anthology|compilation|the essential|"
                          r"very best|definitive collection)\b")


class WatchlistInputError(ValueError):
    """Bad input for the watchlist; ``str()`` says what to fix."""


class NotWatched(WatchlistInputError, LookupError):
    """Artist ids asked for that are not on the watchlist (a 404, not bad input)."""


class WatchlistArtist(msgspec.Struct):
    """A watched artist. ``artist_id`` is the id at ``source``, the metadata provider that
    owns it; the ``*_artist_id`` fields repeat it under the public server's names. Timestamps
    are ISO-8601 UTC; ``last_scan_timestamp`` is the start of the last complete scan."""

    id: int
    artist_id: str
    source: str
    artist_name: str
    spotify_artist_id: str | None
    itunes_artist_id: str | None
    deezer_artist_id: str | None
    image_url: str | None
    date_added: str
    created_at: str
    updated_at: str
    last_scan_timestamp: str | None
    include_albums: bool
    include_eps: bool
    include_singles: bool
    include_live: bool
    include_remixes: bool
    include_acoustic: bool
    include_compilations: bool
    profile_id: int = 1


class ReleaseOutcome(msgspec.Struct):
    """A release a scan kept: ``missing`` tracks were neither in the library nor wanted;
    ``added`` of them went to the wishlist (0 in a dry run)."""

    artist_name: str
    album_id: str
    album_name: str
    release_date: str | None
    release_type: str
    tracks: int
    missing: int
    added: int


class ArtistOutcome(msgspec.Struct):
    """What a scan did for one artist. ``status``: ``ok`` (every release looked at),
    ``partial`` (an album failed, or the cap stopped the scan), ``error`` (the releases could
    not be listed), ``skipped`` (the cap was reached before this artist), ``pending`` (not
    reached yet). ``upcoming`` counts releases dated after today."""

    artist_id: str
    source: str
    artist_name: str
    status: str = "pending"
    error: str | None = None
    cutoff: str | None = None
    releases_found: int = 0
    tracks_missing: int = 0
    tracks_added: int = 0
    upcoming: int = 0
    undated: int = 0


class ScanStatus(msgspec.Struct):
    """The running or last watchlist scan; ``state`` is ``idle`` when none ever ran."""

    state: str
    job_id: str | None = None
    dry_run: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    partial: bool = False
    artists_total: int = 0
    artists_scanned: int = 0
    releases_found: int = 0
    tracks_missing: int = 0
    tracks_added: int = 0
    cap_reached: bool = False
    artists: list[ArtistOutcome] = msgspec.field(default_factory=list)
    releases: list[ReleaseOutcome] = msgspec.field(default_factory=list)


def scan_status(job: JobInfo | None) -> ScanStatus:
    """Return the :class:`ScanStatus` of a scan job row (``idle`` for None)."""
    if job is None:
        return ScanStatus("idle")
    known = set(ScanStatus.__struct_fields__) - {"state", "job_id", "started_at", "finished_at",
                                                 "error", "dry_run", "partial"}
    fields = {k: v for k, v in ({**job.progress, **(job.result or {})}).items() if k in known}
    status = msgspec.convert({"state": job.state, "job_id": job.id,
                              "dry_run": bool(job.params.get("dry_run")),
                              "started_at": job.created_at, "finished_at": job.finished_at,
                              "error": job.error, "partial": job.partial, **fields}, ScanStatus)
    return status


def release_day(text: str | None) -> date | None:
    """Return the day of a ``YYYY[-MM[-DD]]`` release date (a bare year is 1 January, a month
    its 1st; a time part is ignored), None when there is none or it cannot be read."""
    if not text:
        return None
    parts = text.strip()[:10].split("-")
    try:
        numbers = [int(p) for p in parts[:3]]
        return date(numbers[0], numbers[1] if len(numbers) > 1 else 1,
                    numbers[2] if len(numbers) > 2 else 1)
    except (ValueError, IndexError):
        return None


def release_type(album: Album, track_count: int) -> str:
    """Return ``compilation``, ``single`` (1-3 tracks), ``ep`` (4-6) or ``album`` (7+)."""
    if album.album_type == "compilation" or _COMPILATION.search(album.name.lower()):
        return "compilation"
    if track_count <= 3:
        return "single"
    return "ep" if track_count <= 6 else "album"


# New releases of these kinds are requested as albums (from one peer's folder); singles and
# compilations stay tracks on the wishlist.
ALBUM_KINDS = ("album", "ep")
_TYPE_FLAG = {"compilation": "include_compilations", "single": "include_singles",
              "ep": "include_eps", "album": "include_albums"}


def content_allowed(flags: dict[str, bool], track_name: str, album_name: str) -> bool:
    """Return whether a track passes the live, remix and acoustic filters of ``flags``."""
    text = f"{track_name} {album_name}".lower()
    if not flags["include_live"] and _LIVE.search(text):
        return False
    if not flags["include_remixes"] and _REMIX.search(track_name.lower()) \
            and not _REMASTER.search(track_name.lower()):
        return False
    return flags["include_acoustic"] or not _ACOUSTIC.search(text)


def track_object(track: Track, album: Album, source: str, track_count: int) -> dict[str, Any]:
    """Return the wishlist's (Spotify-shaped) track object for a provider's track."""
    return {
        "id": track.id, "name": track.name,
        "artists": [{"name": name} for name in track.artists],
        "album": {"id": album.id, "name": album.name, "album_type": album.album_type,
                  "release_date": album.release_date,
                  "total_tracks": album.total_tracks or track_count,
                  "images": [{"url": album.image_url}] if album.image_url else [],
                  "artists": [{"name": name} for name in album.artists]},
        "duration_ms": track.duration_ms, "track_number": track.track_number,
        "disc_number": track.disc_number, "isrc": track.isrc, "explicit": track.explicit,
        "provider": source,
    }


class WatchlistService:
    """The watchlist table, scans and their schedule.

    ``clock`` returns the current aware UTC time: it dates scans and decides which releases are
    new or still to come, so tests set it instead of waiting.
    """

    def __init__(self, db: Database, settings: Settings, jobs: JobRunner, activity: Activity,
                 search: MetadataSearch, wishlist: WishlistService, clock: Clock = utc_now,
                 events: EventBus | None = None):
        self._db = db
        self._events = events or EventBus()
        self._settings = settings
        self._jobs = jobs
        self._activity = activity
        self._search = search
        self._wishlist = wishlist
        # Set by the core: new albums and EPs are requested whole (None: as wishlist tracks).
        self.albums: AlbumRequests | None = None
        self.clock = clock
        self.schedule = Schedule(db, JOB_KIND,
                                 lambda: settings.get("watchlist.interval_hours") * 3600.0,
                                 self._start_scheduled, lambda: self.clock(), first_delay=300.0)
        settings.on_change("watchlist.interval_hours", lambda _c: self.schedule.reschedule())

    # --------------------------------------------------------------------- the list

    def resolve_source(self, artist_id: str, source: str | None) -> str:
        """Return the provider that owns ``artist_id``: ``source`` or, when absent, iTunes for
        an all-digit id, else Spotify; raise WatchlistInputError when that provider is not
        registered (a derived one as much as an explicit one: a scan could never ask it)."""
        derived = source is None or not source.strip()
        if derived:
            name = "itunes" if artist_id.isdigit() else "spotify"
        else:
            name = source.strip().lower()  # type: ignore[union-attr]
            name = SOURCE_ALIASES.get(name, name)
        if name not in self._search.names():
            known = ", ".join(self._search.names()) or "none installed"
            given = (f"without a source, the id {artist_id!r} means {name}, which is not "
                     "installed; send source" if derived else f"{source!r} is not one")
            raise WatchlistInputError(f"source must be a registered metadata provider "
                                      f"({known}); {given}.")
        return name

    async def add(self, artist_id: str, artist_name: str, source: str | None = None,
                  profile_id: int = DEFAULT_PROFILE) -> tuple[WatchlistArtist, bool]:
        """Watch an artist for ``profile_id``; return ``(artist, created)``, ``created`` saying
        it is new to that profile. Watching it again returns the same row unchanged; an artist
        two profiles watch is one row (one scan, one set of filters). Raises
        WatchlistInputError for an empty id or name or unknown source."""
        artist_id, artist_name = artist_id.strip(), artist_name.strip()
        if not artist_id:
            raise WatchlistInputError("artist_id is required: the artist's id at its metadata "
                                      "provider.")
        if not artist_name:
            raise WatchlistInputError("artist_name is required: the artist's name.")
        provider = self.resolve_source(artist_id, source)
        now = iso(self.clock())
        async with self._db.write() as conn:
            cursor = await conn.execute(
                "INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, "
                "date_added, updated_at, profile_id) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, artist_id) DO NOTHING",
                (provider, artist_id, artist_name, library_fold(artist_name), now, now,
                 profile_id))
            created = cursor.rowcount > 0
            if not created:
                cursor = await conn.execute(
                    "SELECT id FROM watchlist_artists WHERE source = ? AND artist_id = ?",
                    (provider, artist_id))
                existing = await cursor.fetchone()
                assert existing is not None  # the conflict was with it
                created = await join(conn, "watchlist_artists", existing[0], profile_id)
        row = await self._db.fetchone(
            "SELECT * FROM watchlist_artists WHERE source = ? AND artist_id = ?",
            (provider, artist_id))
        assert row is not None
        return _artist(row, profile_id), created

    async def artists(self, profile_id: int = DEFAULT_PROFILE) -> list[WatchlistArtist]:
        """Return the artists ``profile_id`` watches, most recently added first."""
        condition, params = visible_to("watchlist_artists", profile_id)
        rows = await self._db.fetchall(
            f"SELECT * FROM watchlist_artists WHERE {condition} ORDER BY date_added DESC, id DESC",
            params)
        return [_artist(row, profile_id) for row in rows]

    async def remove(self, artist_id: str, profile_id: int = DEFAULT_PROFILE) -> bool:
        """Stop watching the artist(s) with that id for ``profile_id`` (a row stays while
        another profile watches it); return whether the profile watched one."""
        condition, params = visible_to("watchlist_artists", profile_id)
        async with self._db.write() as conn:
            cursor = await conn.execute(
                f"SELECT id FROM watchlist_artists WHERE artist_id = ? AND {condition}",
                (artist_id, *params))
            rows = await cursor.fetchall()
            for (row_id,) in rows:
                await leave(conn, "watchlist_artists", row_id, profile_id)
        return bool(rows)

    async def set_filters(self, artist_id: str, flags: dict[str, bool],
                          profile_id: int = DEFAULT_PROFILE) -> WatchlistArtist | None:
        """Update ``include_*`` flags of the artist(s) with that id that ``profile_id``
        watches; return the first, or None when it watches none. ``flags`` keys must be among
        :data:`INCLUDE_FLAGS`."""
        assignments = ", ".join(f"{key} = ?" for key in flags)  # keys checked by the caller
        condition, params = visible_to("watchlist_artists", profile_id)
        async with self._db.write() as conn:
            cursor = await conn.execute(
                f"UPDATE watchlist_artists SET {assignments}, updated_at = ? "
                f"WHERE artist_id = ? AND {condition}",
                (*(int(v) for v in flags.values()), iso(self.clock()), artist_id, *params))
            changed = cursor.rowcount
        if not changed:
            return None
        row = await self._db.fetchone(
            f"SELECT * FROM watchlist_artists WHERE artist_id = ? AND {condition} "
            "ORDER BY id LIMIT 1", (artist_id, *params))
        return _artist(row, profile_id) if row else None

    async def count(self) -> int:
        """Return how many artists are watched."""
        return int(await self._db.fetchval("SELECT count(*) FROM watchlist_artists") or 0)

    # ----------------------------------------------------------------------------- scans

    async def start_scan(self, *, dry_run: bool = False, artist_ids: list[str] | None = None,
                         reason: str = "api") -> JobInfo:
        """Start a scan (of ``artist_ids`` only, when given) and return its job row.

        Raises JobConflict while one runs, WatchlistInputError naming ids not watched.
        """
        if artist_ids is not None:
            watched = {row[0] for row in await self._db.fetchall(
                "SELECT artist_id FROM watchlist_artists")}
            unknown = [a for a in artist_ids if a not in watched]
            if unknown:
                raise NotWatched(f"artist_ids not on the watchlist: {', '.join(unknown)}.")
        return await self._jobs.start(JOB_KIND, self._scan, {
            "dry_run": dry_run, "artist_ids": artist_ids, "reason": reason})

    async def status(self) -> ScanStatus:
        """Return the running scan, else the latest one, else ``idle``."""
        return scan_status(await self._jobs.latest(JOB_KIND))

    async def _start_scheduled(self) -> None:
        try:
            await self.start_scan(reason="interval")
        except JobConflict:
            log.info("scheduled watchlist scan skipped: one is already running")

    async def run_scheduler(self) -> None:
        """Scan every ``watchlist.interval_hours`` (0: never); until cancelled."""
        await self.schedule.run_forever()

    async def _scan(self, ctx: JobContext) -> dict[str, Any]:
        dry_run = bool(ctx.params.get("dry_run"))
        ids = ctx.params.get("artist_ids")
        rows = await self._db.fetchall("SELECT * FROM watchlist_artists ORDER BY id")
        if ids is not None:
            rows = [row for row in rows if row["artist_id"] in ids]
        scan = _Scan(self, ctx, dry_run, rows)
        try:
            await scan.run()
        except Exception as exc:
            await self._activity.record("watchlist.scan_failed", "Watchlist Scan Failed", str(exc))
            raise
        status = scan.status
        state, _partial, error = ctx.outcome()
        if state == "failed":
            await self._activity.record("watchlist.scan_failed", "Watchlist Scan Failed",
                                        error or "")
            return scan.progress()
        errors = sum(1 for a in status.artists if a.status == "error")
        verb = "would be added (dry run)" if dry_run else "added to the wishlist"
        await self._activity.record(
            "watchlist.scan_completed", "Watchlist Scan Complete",
            f"{status.tracks_missing if dry_run else status.tracks_added} new tracks {verb} from "
            f"{status.releases_found} releases of {status.artists_scanned} artists"
            + (f"; {errors} artists failed" if errors else "")
            + ("; stopped at the per-scan cap" if status.cap_reached else ""))
        self._events.publish("watchlist.scan.finished",
                             msgspec.structs.replace(status, state="completed", job_id=ctx.info.id))
        return scan.progress()


class _Scan:
    """One scan's state; :meth:`progress` is what the job row stores."""

    def __init__(self, service: WatchlistService, ctx: JobContext, dry_run: bool,
                 rows: list[Row]):
        self._service = service
        self._ctx = ctx
        self._dry_run = dry_run
        self._rows = rows
        self.started = service.clock()
        self._cap = service._settings.get("watchlist.max_tracks_per_scan")
        self._lookback = timedelta(days=service._settings.get("watchlist.lookback_days"))
        self._seen: set[str] = set()
        self._watchers_of: dict[int, list[int]] = {}
        self.status = ScanStatus("running", dry_run=dry_run, artists_total=len(rows), artists=[
            ArtistOutcome(row["artist_id"], row["source"], row["artist_name"]) for row in rows])

    def progress(self) -> dict[str, Any]:
        data = msgspec.to_builtins(self.status)
        return {k: v for k, v in data.items()
                if k not in ("state", "job_id", "dry_run", "started_at", "finished_at", "error",
                             "partial")}

    def _report(self) -> None:
        self._ctx.progress(**self.progress())

    @property
    def _counted(self) -> int:
        # A dry run adds nothing; the cap then bounds what it reports as missing instead.
        return self.status.tracks_missing if self._dry_run else self.status.tracks_added

    async def run(self) -> None:
        self._report()
        for row, outcome in zip(self._rows, self.status.artists, strict=True):
            if self.status.cap_reached:
                outcome.status = "skipped"
                continue
            await self._artist(row, outcome)
            self.status.artists_scanned += 1
            if outcome.status != "error":
                self._ctx.item_done()
            if outcome.error:
                self._ctx.item_failed(f"{outcome.artist_name} ({outcome.source} "
                                      f"{outcome.artist_id})", outcome.error)
            self._report()

    async def _artist(self, row: Row, outcome: ArtistOutcome) -> None:
        service = self._service
        last = parse_iso(row["last_scan_at"])
        cutoff = last.date() if last else (self.started - self._lookback).date()
        today = self.started.date()
        outcome.cutoff = cutoff.isoformat()
        flags = {key: bool(row[key]) for key in INCLUDE_FLAGS}
        try:
            albums: list[Album] = await service._search.call(
                row["source"], "artist_albums", row["artist_id"], RELEASES_PER_ARTIST)
        except (SourceUnavailable, UnknownSource) as exc:
            outcome.status, outcome.error = "error", _provider_error(row["source"], exc)
            return
        complete = True
        for album in albums:
            day = release_day(album.release_date)
            if day is None:
                outcome.undated += 1
                continue
            if day > today:
                outcome.upcoming += 1
                continue
            if day < cutoff:
                continue
            if album.total_tracks and not flags[_TYPE_FLAG[release_type(album, album.total_tracks)]]:
                continue
            try:
                tracks: list[Track] = await service._search.call(row["source"], "album_tracks",
                                                                 album.id)
            except (SourceUnavailable, UnknownSource) as exc:
                outcome.error = f"{album.name}: {_provider_error(row['source'], exc)}"
                complete = False
                continue
            kind = release_type(album, len(tracks))
            if not tracks or not flags[_TYPE_FLAG[kind]]:
                continue
            if not await self._release(row, album, tracks, kind, flags, outcome):
                complete = False
                break
        outcome.status = "ok" if complete else "partial"
        if complete and not self._dry_run:
            now = iso(service.clock())
            await service._db.execute(
                "UPDATE watchlist_artists SET last_scan_at = ?, updated_at = ? WHERE id = ?",
                (iso(self.started), now, row["id"]))

    async def _release(self, row: Row, album: Album, tracks: list[Track], kind: str,
                       flags: dict[str, bool], outcome: ArtistOutcome) -> bool:
        """Add the release's missing tracks; return False when the cap stopped it."""
        wishlist = self._service._wishlist
        release = ReleaseOutcome(row["artist_name"], album.id, album.name, album.release_date,
                                 kind, len(tracks), 0, 0)
        self.status.releases.append(release)
        self.status.releases_found += 1
        outcome.releases_found += 1
        for track in tracks:
            if not content_allowed(flags, track.name, album.name):
                continue
            key = match_key(track.name, track.artists)
            if key in self._seen:
                continue  # on two releases of this scan (a single, then its album)
            data = track_object(track, album, row["source"], len(tracks))
            # Missing for the profiles watching the artist that do not want it yet.
            lacking = [p for p in await self._watchers(row["id"], row["profile_id"])
                       if not await wishlist.is_wanted(track.id, track.name, track.artists, p)]
            if not lacking or await wishlist.in_library(data):
                continue
            if self._counted >= self._cap:
                self.status.cap_reached = True
                self._found(release)
                return False
            self._seen.add(key)
            release.missing += 1
            outcome.tracks_missing += 1
            self.status.tracks_missing += 1
            if self._dry_run:
                continue
            for profile_id in lacking:
                await wishlist.add(data, failure_reason=FOUND_REASON, source_type="watchlist",
                                   source_info={"watchlist_artist_name": row["artist_name"],
                                                "watchlist_artist_id": row["artist_id"],
                                                "source": row["source"], "album_id": album.id,
                                                "album_name": album.name,
                                                "release_date": album.release_date,
                                                "scan_run_id": self._ctx.info.id,
                                                "scan_timestamp": iso(self.started)},
                                   profile_id=profile_id)
            release.added += 1
            outcome.tracks_added += 1
            self.status.tracks_added += 1
        self._found(release)
        if release.added and kind in ALBUM_KINDS and self._service.albums is not None:
            await self._request_album(row["source"], album)
        return True

    async def _request_album(self, source: str, album: Album) -> None:
        """Request a new album or EP whole (its tracks, also on the wishlist, leave the list as
        they complete); a failure leaves the tracks to the wishlist runs."""
        albums = self._service.albums
        assert albums is not None  # checked by the caller
        try:
            await albums.request_from_source(source, album)
        except AlbumInLibrary:
            log.info("watchlist: the library already has every track of the new release %s (%s)",
                     album.name, album.id)
        except Exception as exc:
            log.warning("watchlist: the new release %s (%s) could not be requested as an album: "
                        "%s; its tracks stay on the wishlist", album.name, album.id, exc)

    def _found(self, release: ReleaseOutcome) -> None:
        if release.added:
            self._service._events.publish("watchlist.release_found", release)


    async def _watchers(self, row_id: int, first: int) -> list[int]:
        """Return the profiles watching the artist of row ``row_id``, ``first`` first."""
        if row_id not in self._watchers_of:
            rows = await self._service._db.fetchall(
                "SELECT profile_id FROM watchlist_profiles WHERE watchlist_id = ? "
                "ORDER BY profile_id", (row_id,))
            self._watchers_of[row_id] = [first, *(r[0] for r in rows)]
        return self._watchers_of[row_id]


def _provider_error(source: str, exc: Exception) -> str:
    if isinstance(exc, UnknownSource):
        return f"the metadata provider {source!r} is not installed"
    return str(exc)


def _artist(row: Row, profile_id: int | None = None) -> WatchlistArtist:
    source, artist_id = row["source"], row["artist_id"]
    return WatchlistArtist(
        row["id"], artist_id, source, row["artist_name"],
        artist_id if source == "spotify" else None, artist_id if source == "itunes" else None,
        artist_id if source == "deezer" else None, row["image_url"], row["date_added"],
        row["date_added"], row["updated_at"], row["last_scan_at"],
        *(bool(row[key]) for key in INCLUDE_FLAGS),
        row["profile_id"] if profile_id is None else profile_id)
