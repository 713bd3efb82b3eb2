"""Plain data shared between the core and plugins: search results and provider health.

These dataclasses are what providers return and what the search endpoints serialise, so a
field added here appears in the API (and its OpenAPI schema) without another mapping layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AlbumType = Literal["album", "single", "ep", "compilation"]


@dataclass
class Track:
    """A track as a metadata source knows it. ``duration_ms`` is 0 when unknown.

    ``external_urls`` maps names to links or ids the source adds (Hydrabase: the result's
    ``hydrabase_soul_id`` and ``hydrabase_plugin``, the node plugin whose id ``id`` is).
    """

    id: str
    name: str
    artists: list[str]
    album: str
    duration_ms: int = 0
    popularity: int = 0
    preview_url: str | None = None
    image_url: str | None = None
    release_date: str | None = None
    album_id: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    isrc: str | None = None
    explicit: bool = False
    external_urls: dict[str, str] = field(default_factory=dict)


@dataclass
class Album:
    """An album (or single, EP, compilation). ``release_date`` is ``YYYY[-MM[-DD]]`` or None."""

    id: str
    name: str
    artists: list[str]
    release_date: str | None = None
    total_tracks: int = 0
    album_type: AlbumType = "album"
    image_url: str | None = None


@dataclass
class Artist:
    """An artist; ``external_urls`` as for :class:`Track`."""

    id: str
    name: str
    popularity: int = 0
    genres: list[str] = field(default_factory=list)
    followers: int = 0
    image_url: str | None = None
    external_urls: dict[str, str] = field(default_factory=dict)


@dataclass
class Health:
    """A provider's answer to a health check. ``details`` holds figures such as a peer count."""

    ok: bool
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Playlist:
    """A streaming playlist; ``tracks`` is empty in listings and filled by ``get_playlist``.

    ``snapshot_id`` changes whenever the playlist's contents change (Spotify's snapshot id,
    TIDAL's last-modified time), None when the source has no such marker. A track that is a
    local file of the owner (no id at the source) has ``id`` "".
    """

    id: str
    name: str
    owner: str = ""
    total_tracks: int = 0
    description: str = ""
    image_url: str | None = None
    tracks: list[Track] = field(default_factory=list)
    snapshot_id: str | None = None


@dataclass
class LoginStart:
    """The first step of an account login: the address the user opens in a browser.

    ``redirect_uri`` is where the service sends the browser back (the daemon's callback unless
    the plugin's settings name another); ``expires_in`` is how many seconds the login can be
    finished in.
    """

    url: str
    redirect_uri: str
    state: str
    expires_in: int = 600


@dataclass
class Account:
    """Who is logged in to a streaming account; ``connected`` False when nobody is."""

    connected: bool
    user_id: str | None = None
    display_name: str | None = None
    scopes: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    """A file a download client found: where it is and what the peer offers."""

    username: str
    filename: str
    size: int
    extension: str = ""
    bitrate: int | None = None
    bit_depth: int | None = None
    sample_rate: int | None = None
    duration_s: int | None = None
    has_free_slot: bool = False
    queue_length: int = 0
    upload_speed: int = 0


TransferState = Literal["queued", "downloading", "completed", "failed", "cancelled"]


@dataclass
class Transfer:
    """A download as the client reports it. ``error`` says why a failed transfer failed."""

    id: str
    username: str
    filename: str
    state: TransferState
    size: int = 0
    bytes_transferred: int = 0
    percent: float = 0.0
    average_speed: float = 0.0
    error: str | None = None
