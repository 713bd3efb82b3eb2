"""What a download is: the wanted track, its ranked candidates, its attempts, its API objects.

These msgspec structs are stored as JSON in the ``downloads`` table and returned by the API,
so the OpenAPI document describes exactly what is stored.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from soulsync_core.matching import Scored, TrackInfo
from soulsync_core.models import Candidate

Status = Literal["queued", "searching", "downloading", "post_processing", "completed", "failed",
                 "not_found", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "searching", "downloading", "post_processing", "completed",
                             "failed", "not_found", "cancelled")
# Statuses that hold a concurrency slot: the download is being searched, transferred or imported.
ACTIVE: tuple[str, ...] = ("searching", "downloading", "post_processing")
UNFINISHED: tuple[str, ...] = ("queued", *ACTIVE)
FINISHED: tuple[str, ...] = ("completed", "failed", "not_found", "cancelled")

# Sources whose ids the library has tag names and columns for (see library.tags.PROVIDER_TAGS).
TAGGED_SOURCES = ("spotify", "itunes", "deezer")


class Wanted(msgspec.Struct, omit_defaults=True):
    """The track to fetch, as a metadata source described it.

    ``artists`` in credit order (at least one); ``album_artist`` "" means the first artist;
    ``duration_ms`` 0 when unknown (the duration checks are then skipped); ``track_id`` and
    ``album_id`` are ids of ``source`` (``spotify``, ``itunes`` …) when known.
    """

    title: str
    artists: list[str]
    album: str = ""
    album_artist: str = ""
    duration_ms: int = 0
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    release_date: str | None = None
    isrc: str | None = None
    track_id: str | None = None
    album_id: str | None = None
    source: str | None = None
    compilation: bool = False
    # The release's number of discs (album requests know it from the tracklist).
    disc_total: int | None = None

    def track_info(self) -> TrackInfo:
        """Return the wanted track as the matching module compares it."""
        return TrackInfo(self.title, tuple(self.artists), self.album, self.duration_ms, self.isrc,
                         self.compilation)

    @property
    def artist(self) -> str:
        """The credit as one string: ``"Daft Punk, Romanthony"``."""
        return ", ".join(self.artists)

    @property
    def year(self) -> str:
        """The release year, "" when unknown."""
        text = (self.release_date or "")[:4]
        return text if text.isdigit() else ""


class CandidateInfo(msgspec.Struct):
    """One search result and the verdict on it (see :class:`soulsync_core.matching.Scored`).

    ``accepted`` results are in download order; ``reasons`` say why a result was refused.
    Scores are in [0, 1]; ``duration_delta_s`` is the file's length minus the wanted one;
    ``quality_rank`` is the index of the quality profile entry the file meets (lower is
    better), null when the profile refuses it.
    """

    username: str
    filename: str
    size: int
    accepted: bool
    reasons: list[str]
    confidence: float
    quality: str
    quality_rank: int | None
    title_score: float
    artist_score: float
    album_score: float | None
    duration_delta_s: float | None
    peer_score: float
    title: str
    artist: str
    album: str
    versions: list[str]
    extension: str = ""
    bitrate: int | None = None
    bit_depth: int | None = None
    sample_rate: int | None = None
    duration_s: int | None = None
    has_free_slot: bool = False
    queue_length: int = 0
    upload_speed: int = 0

    @classmethod
    def from_scored(cls, scored: Scored) -> CandidateInfo:
        c = scored.candidate
        return cls(c.username, c.filename, c.size, scored.accepted, list(scored.reasons),
                   scored.confidence, scored.quality, scored.quality_rank, scored.title_score,
                   scored.artist_score, scored.album_score, scored.duration_delta_s,
                   scored.peer_score, scored.title, scored.artist, scored.album,
                   list(scored.versions), c.extension, c.bitrate, c.bit_depth, c.sample_rate,
                   c.duration_s, c.has_free_slot, c.queue_length, c.upload_speed)

    def candidate(self) -> Candidate:
        """Return the search result this verdict is about, to rank or enqueue it again."""
        return Candidate(self.username, self.filename, self.size, self.extension, self.bitrate,
                         self.bit_depth, self.sample_rate, self.duration_s, self.has_free_slot,
                         self.queue_length, self.upload_speed)

    @property
    def key(self) -> tuple[str, str]:
        return self.username, self.filename


class Attempt(msgspec.Struct):
    """A file that was asked for and did not end up in the library, and why."""

    username: str
    filename: str
    outcome: str
    at: str


class Download(msgspec.Struct):
    """A row of ``downloads`` (see the migration ``0003_downloads.sql`` for the columns)."""

    id: int
    status: Status
    track_key: str
    wanted: Wanted
    client: str
    queries: list[str]
    next_query: int
    candidates: list[CandidateInfo]
    tried: list[Attempt]
    attempts: int
    username: str | None
    filename: str | None
    size: int | None
    quality: str | None
    transfer_id: str | None
    transfer_state: str | None
    progress: float
    bytes_transferred: int
    speed: float
    error: str | None
    note: str | None
    final_path: str | None
    library_track_id: int | None
    tagged: bool
    created_at: str
    updated_at: str
    status_changed_at: float
    finished_at: str | None

    def tried_keys(self) -> set[tuple[str, str]]:
        """Return the (username, filename) pairs asked for already, the current one included."""
        keys = {(a.username, a.filename) for a in self.tried}
        if self.username is not None and self.filename is not None:
            keys.add((self.username, self.filename))
        return keys


class DownloadObject(msgspec.Struct, tag_field="kind", tag="track"):
    """A download as the API shows it (the public server's fields, filled properly, and more).

    ``id`` is SoulSync's download id (what ``/downloads/{id}/cancel`` takes). ``username``,
    ``filename`` and ``size`` are those of the current (or last) attempt; ``progress`` is
    0 to 100; ``retry_count`` counts the files tried after the first; ``transfer_state`` is the
    client's view of the current transfer (``queued``, ``downloading``, ``completed``,
    ``failed``, ``cancelled``). ``batch_id`` and ``track_index`` are always null (downloads are
    not batched). ``status_change_time`` is epoch seconds; the ``*_at`` fields ISO-8601 UTC.
    ``kind`` is ``track`` (album downloads are ``album``, see ``album_store``).
    """

    id: int
    status: Status
    track_name: str
    artist_name: str
    album_name: str | None
    username: str | None
    filename: str | None
    progress: int
    size: int | None
    error: str | None
    batch_id: None
    track_index: None
    retry_count: int
    metadata_enhanced: bool
    status_change_time: float
    attempts: int
    quality: str | None
    transfer_id: str | None
    transfer_state: str | None
    bytes_transferred: int
    speed: float
    note: str | None
    final_path: str | None
    library_track_id: int | None
    track_id: str | None
    source: str | None
    created_at: str
    updated_at: str
    finished_at: str | None


class DownloadDetail(DownloadObject):
    """A download with the track asked for, every search result's verdict, and past attempts."""

    track: Wanted
    queries: list[str]
    candidates: list[CandidateInfo]
    tried: list[Attempt]


def download_object(d: Download) -> DownloadObject:
    """Return the API object of a download."""
    return DownloadObject(**_object_fields(d))


def download_detail(d: Download) -> DownloadDetail:
    """Return the API object of a download with its track, candidates and attempts."""
    return DownloadDetail(**_object_fields(d), track=d.wanted, queries=d.queries,
                          candidates=d.candidates, tried=d.tried)


def _object_fields(d: Download) -> dict[str, object]:
    progress = 100 if d.status == "completed" else max(0, min(100, int(d.progress)))
    return dict(
        id=d.id, status=d.status, track_name=d.wanted.title, artist_name=d.wanted.artist,
        album_name=d.wanted.album or None, username=d.username, filename=d.filename,
        progress=progress, size=d.size, error=d.error, batch_id=None, track_index=None,
        retry_count=max(0, d.attempts - 1), metadata_enhanced=d.tagged,
        status_change_time=d.status_changed_at, attempts=d.attempts, quality=d.quality,
        transfer_id=d.transfer_id, transfer_state=d.transfer_state,
        bytes_transferred=d.bytes_transferred, speed=d.speed, note=d.note,
        final_path=d.final_path, library_track_id=d.library_track_id, track_id=d.wanted.track_id,
        source=d.wanted.source, created_at=d.created_at, updated_at=d.updated_at,
        finished_at=d.finished_at,
    )
