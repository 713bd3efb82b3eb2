"""Fake Spotify: the accounts service (app and user logins) and the Web API SoulSync uses.

Accounts service:

- ``GET /authorize`` (``client_id``, ``response_type=code``, ``redirect_uri``, ``state``,
  ``scope``, optional ``code_challenge``/``code_challenge_method=S256``) approves at once, as
  the seeded user, and answers 302 to ``redirect_uri?code=…&state=…``; with ``deny_login`` it
  answers ``redirect_uri?error=access_denied&state=…`` like a user who clicked Cancel.
- ``POST /api/token`` for ``client_credentials`` (Basic auth, checked against
  ``client_id``/``client_secret``), ``authorization_code`` (Basic auth, or PKCE: ``client_id``
  plus a ``code_verifier`` whose S256 must equal the challenge; codes are single-use and the
  ``redirect_uri`` must be the one given to ``/authorize``) and ``refresh_token`` (the answer
  omits ``refresh_token`` like the sample, or rotates it with ``rotate_refresh_token``). Errors
  are the real 400 bodies: ``invalid_grant``, ``invalid_client``, ``unsupported_grant_type``.

Web API, behind a Bearer token it issued: ``GET /v1/search``, ``/v1/artists/{id}/albums``,
``/v1/albums/{id}``, ``/v1/albums/{id}/tracks``, and with a user's token ``/v1/me``,
``/v1/me/playlists``, ``/v1/me/tracks``, ``/v1/playlists/{id}`` and
``/v1/playlists/{id}/items`` (with a null item, a local file and a podcast episode). Answers
are shaped like the samples in ``wire/spotify``: paging objects whose ``href``/``next``/
``previous`` carry the fake's own address (so clients follow them here), the real error bodies
for a bad limit (400 ``Invalid limit``, with the Development Mode caps of February 2026), an
unknown id (404), a user endpoint called with an app token (401) and an expired token (401).
429, 5xx, latency and dropped connections come from :func:`tests.fakes.base.with_faults`.

Seed data: the user ``musicfan42`` ("Music Fan") with two playlists of its own ("French Touch",
12 items, and "Gym", 118 items in three pages; both hold a null item, a local file and a podcast
episode), one it follows
(owned by ``djfriend``, who has no display name) and 60 liked songs.

``app[SPOTIFY].expire_next = N`` makes the next N API calls answer 401 "The access token
expired" and revokes the token each carried, so only a new token gets past. Tokens also expire
``expires_in`` seconds after they were issued.

By hand: ``python -m tests.fakes.spotify --port 8102`` (it prints these steps), then::

    curl -s -u fakeclientid:fakeclientsecret -d grant_type=client_credentials \\
         http://127.0.0.1:8102/api/token       # copy access_token into TOKEN
    curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8102/v1/search?q=daft+punk&type=track&limit=5'

and for a user login set ``spotify.accounts_url``/``spotify.api_url`` to the fake and open the
address ``soulsync auth spotify`` prints: the fake sends the browser straight back with a code.

``POST /_fake/spotify`` with a JSON object sets the fields of :class:`SpotifyState` above.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import itertools
import re
import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from tests.fakes.base import load_wire, run_standalone, with_faults

Json = dict[str, Any]

CLIENT_ID = "fakeclientid"
CLIENT_SECRET = "fakeclientsecret"
ALBUM_TRACKS_MAX_LIMIT = 50
PAGE_MAX_LIMIT = 50          # /me/playlists, /playlists/{id}/items, /me/tracks
EMBEDDED_ITEMS_LIMIT = 100   # the first page of items inside GET /playlists/{id}
GROUP_ORDER = ("album", "single", "appears_on", "compilation")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def error_body(status: int, message: str) -> Json:
    """The Web API's error object, e.g. ``{"error": {"status": 404, "message": "…"}}``."""
    return {"error": {"status": status, "message": message}}


def _error(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status)


def _sample_error(name: str) -> web.Response:
    body = load_wire("spotify", name)
    return web.json_response(body, status=body["error"]["status"])


def spotify_id(seed: str) -> str:
    """Return a stable 22-character base62 id (Spotify's alphabet: no ``-`` or ``_``)."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(chars)


# --- the catalogue ---------------------------------------------------------------------------

DAFT_PUNK = "4tZwfgrHOc3mvqYlEYSvVi"
DISCOVERY = "2noRn2Aes5aoNVsU6iWThc"
DISCOVERY_TITLES = (
    "One More Time", "Aerodynamic", "Digital Love", "Harder, Better, Faster, Stronger",
    "Crescendolls", "Nightvision", "Superheroes", "High Life", "Something About Us", "Voyager",
    "Veridis Quo", "Short Circuit", "Face to Face", "Too Long")
# Releases beyond the samples' four, so the discography needs several pages in every group.
MORE_RELEASES = (
    ("Homework", "1997-01-20", "album", 16), ("Alive 1997", "2001-10-01", "album", 1),
    ("Daft Club", "2003-12-01", "album", 15), ("Human After All", "2005-03-14", "album", 10),
    ("Human After All (Remixes)", "2006-03-29", "album", 12),
    ("TRON: Legacy", "2010-12-03", "album", 22),
    ("TRON: Legacy Reconfigured", "2011-04-01", "album", 15),
    ("Random Access Memories (Drumless Edition)", "2023-11-17", "album", 13),
    ("Da Funk", "1995", "single", 2), ("Around the World", "1997-03-17", "single", 2),
    ("Burnin'", "1997-09-29", "single", 3), ("Revolution 909", "1998-02-16", "single", 4),
    ("One More Time", "2000-11-13", "single", 3), ("Aerodynamic", "2001-03-26", "single", 2),
    ("Digital Love", "2001-06-11", "single", 3),
    ("Harder, Better, Faster, Stronger", "2001-10-13", "single", 3),
    ("Robot Rock", "2005-02-21", "single", 2), ("Technologic", "2005-06-06", "single", 2),
    ("Get Lucky", "2013-04-19", "single", 1), ("Lose Yourself to Dance", "2013-07-15", "single", 1),
    ("Musique Vol. 1 1993-2005", "2006-04-03", "compilation", 15),
)


def _items(sample: str, key: str | None = None) -> list[Json]:
    """The ``items`` of the paging object in a sample (under ``key`` when it is wrapped)."""
    body = load_wire("spotify", sample)
    return (body[key] if key else body)["items"]


def _strip_group(album: Json) -> Json:
    return {k: v for k, v in album.items() if k != "album_group"}


@dataclass
class Catalogue:
    """Artists, albums (simplified objects with ``album_group``) and each album's tracks."""

    artists: dict[str, Json] = field(default_factory=dict)
    albums: dict[str, Json] = field(default_factory=dict)
    tracks: dict[str, list[Json]] = field(default_factory=dict)   # album id -> simplified tracks
    searchable_tracks: list[Json] = field(default_factory=list)   # full track objects

    @classmethod
    def from_samples(cls) -> Catalogue:
        """The samples' artist, albums and tracks, plus generated releases and tracks."""
        cat = cls()
        for artist in _items("search_artist.GET_v1_search_type_artist.json", "artists"):
            cat.artists[artist["id"]] = artist
        for item in _items("artist_albums.GET_v1_artists_id_albums.json"):
            cat.albums[item["id"]] = item
        for item in _items("search_album.GET_v1_search_type_album.json", "albums"):
            cat.albums.setdefault(item["id"], {**item, "album_group": item["album_type"]})
        search_tracks = _items("search_track.GET_v1_search_type_track.json", "tracks")
        known = [*_items("album_tracks.GET_v1_albums_id_tracks.json"),
                 *_items("album.GET_v1_albums_id.json", "tracks"), *search_tracks]
        for album_id, album in cat.albums.items():
            titles = DISCOVERY_TITLES if album_id == DISCOVERY else None
            cat.tracks[album_id] = cat._make_tracks(album, titles, known)
        for name, date, group, count in MORE_RELEASES:
            cat.add_album(name, date, group, count, template=cat.albums[DISCOVERY])
        seen = {t["id"] for t in search_tracks}
        cat.searchable_tracks = [*search_tracks,
                                 *(t for t in cat.full_tracks(DISCOVERY) if t["id"] not in seen)]
        return cat

    def add_album(self, name: str, release_date: str, group: str = "album", track_count: int = 10,
                  discs: int = 1, template: Json | None = None) -> str:
        """Add a release by the template's artists (Daft Punk) with generated tracks; return its id."""
        template = template or next(iter(self.albums.values()))
        album_id = spotify_id(f"album:{name}:{release_date}:{group}")
        album = copy.deepcopy(template)
        album.update(
            id=album_id, name=name, release_date=release_date, total_tracks=track_count,
            release_date_precision={4: "year", 7: "month"}.get(len(release_date), "day"),
            album_type=group if group in ("album", "single", "compilation") else "album",
            album_group=group, uri=f"spotify:album:{album_id}",
            href=f"https://api.spotify.com/v1/albums/{album_id}",
            external_urls={"spotify": f"https://open.spotify.com/album/{album_id}"})
        for image in album["images"]:
            size = image["width"]
            image["url"] = f"https://i.scdn.co/image/{spotify_id(f'{album_id}:{size}')}"
        self.albums[album_id] = album
        self.tracks[album_id] = self._make_tracks(album, None, [], discs)
        return album_id

    def _make_tracks(self, album: Json, titles: tuple[str, ...] | None, known: list[Json],
                     discs: int = 1) -> list[Json]:
        """Simplified tracks for ``album``: sample tracks where one fits, generated ones else."""
        count = album["total_tracks"]
        per_disc = -(-count // discs)
        by_title = {t["name"]: t for t in known}
        tracks = []
        for index in range(count):
            disc, number = index // per_disc + 1, index % per_disc + 1
            if titles:
                title = titles[index]
            elif index == 0 and album["album_group"] == "single":
                title = album["name"]
            else:
                title = f"{album['name']} (Track {index + 1})"
            if title in by_title:
                tracks.append(_simplified(by_title[title]))
                continue
            track_id = spotify_id(f"track:{album['id']}:{index}")
            tracks.append({
                "artists": album["artists"], "disc_number": disc,
                "duration_ms": 180_000 + 7_919 * index, "explicit": False,
                "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
                "href": f"https://api.spotify.com/v1/tracks/{track_id}", "id": track_id,
                "is_local": False, "is_playable": True, "name": title, "preview_url": None,
                "track_number": number, "type": "track", "uri": f"spotify:track:{track_id}"})
        return tracks

    def full_tracks(self, album_id: str) -> list[Json]:
        """The album's tracks as full track objects (with ``album`` and ``external_ids``)."""
        album = _strip_group(self.albums[album_id])
        return [{**track, "album": album,
                 "external_ids": {"isrc": f"GBDUW{spotify_id(track['id'])[:7].upper()}"}}
                for track in self.tracks[album_id]]


def _simplified(track: Json) -> Json:
    return {k: v for k, v in track.items() if k not in ("album", "external_ids", "popularity")}


# --- users, playlists, liked songs --------------------------------------------------------------

USER_ID = "musicfan42"
USER_NAME = "Music Fan"
FRIEND_ID = "djfriend"          # owns the followed playlist; has no display name
FRENCH_TOUCH = "3cEYpjA9oz9GiPac4AsH4n"
GYM = "1VxF2Jr8yXq4Wm0aT6bNcD"
FOLLOWED = spotify_id("playlist:friday night")
GYM_TRACKS = 118
LIKED_SONGS = 60


def user_object(user_id: str, display_name: str | None) -> Json:
    """A public user object, as ``owner`` and ``added_by`` carry it (the sample's shape)."""
    return {"display_name": display_name,
            "external_urls": {"spotify": f"https://open.spotify.com/user/{user_id}"},
            "href": f"https://api.spotify.com/v1/users/{user_id}", "id": user_id,
            "type": "user", "uri": f"spotify:user:{user_id}"}


def track_entry(track: Json, added_by: Json | None, added_at: str) -> Json:
    """A playlist item carrying ``track`` under both ``item`` (new) and ``track`` (deprecated)."""
    return {"added_at": added_at, "added_by": added_by, "is_local": bool(track.get("is_local")),
            "primary_color": None, "item": track, "track": track, "video_thumbnail": {"url": None}}


def episode_entry(added_by: Json, added_at: str) -> Json:
    """A podcast episode in a playlist (served as an episode or in the legacy track form)."""
    episode_id = spotify_id("episode:robots")
    episode = {"type": "episode", "id": episode_id, "name": "Robots Talk: The Making of Discovery",
               "duration_ms": 2_400_000, "explicit": False, "release_date": "2021-02-22",
               "uri": f"spotify:episode:{episode_id}", "is_local": False,
               "show": {"id": spotify_id("show:robots"), "name": "Robots Talk", "type": "show"},
               "images": [], "external_urls": {"spotify": f"https://open.spotify.com/episode/{episode_id}"}}
    return {"added_at": added_at, "added_by": added_by, "is_local": False, "primary_color": None,
            "item": episode, "track": episode, "video_thumbnail": {"url": None}}


def _as_legacy_track(episode: Json) -> Json:
    """An episode as Spotify sends it to a client that did not ask for episodes."""
    return {**episode, "type": "track", "episode": True, "track": False, "artists": [],
            "album": {"name": episode["show"]["name"], "images": [], "type": "album", "id": None}}


def _stamp(index: int) -> str:
    return f"2025-{1 + index // 28 % 12:02d}-{1 + index % 28:02d}T12:00:00Z"


@dataclass
class Library:
    """The users' playlists (owned and followed, in the user's order) and liked songs."""

    users: dict[str, Json] = field(default_factory=dict)
    playlists: dict[str, Json] = field(default_factory=dict)     # id -> {…playlist, "entries"}
    followed: dict[str, list[str]] = field(default_factory=dict)  # user id -> playlist ids
    saved: dict[str, list[Json]] = field(default_factory=dict)    # user id -> [{added_at, track}]
    versions: dict[str, int] = field(default_factory=dict)        # playlist id -> snapshot number

    @classmethod
    def seeded(cls, catalogue: Catalogue) -> Library:
        """One user with French Touch (odd items), Gym (118 tracks), a followed playlist and
        60 liked songs, all made of the catalogue's tracks."""
        lib = cls()
        me = lib.add_user(USER_ID, USER_NAME)
        friend = lib.add_user(FRIEND_ID, None)
        pool = [t for album_id in catalogue.albums for t in catalogue.full_tracks(album_id)]
        first_two = _items("playlist_items.GET_v1_playlists_id_items.json")
        local, null = _items("playlist_items_local_file.GET_v1_playlists_id_items.json")
        odd = [*first_two, *(track_entry(t, me, _stamp(i)) for i, t in enumerate(pool[2:8])),
               null, local, episode_entry(me, _stamp(9)), track_entry(pool[8], me, _stamp(10))]
        sample = {p["id"]: p for p in _items("me_playlists.GET_v1_me_playlists.json")}
        lib.add_playlist("French Touch", odd, owner=USER_ID, playlist_id=FRENCH_TOUCH,
                         template=sample[FRENCH_TOUCH])
        gym = [track_entry(t, me, _stamp(i)) for i, t in enumerate(itertools.islice(
            itertools.cycle(pool[20:]), GYM_TRACKS - 3))]
        # Odd items at the page edges (50 a page): the last of page 1, the first of page 2.
        gym[49:49] = [null, local]
        gym.insert(99, episode_entry(me, _stamp(99)))
        lib.add_playlist("Gym", gym, owner=USER_ID, playlist_id=GYM, template=sample[GYM])
        friday = [track_entry(t, friend, _stamp(i)) for i, t in enumerate(pool[40:47])]
        lib.add_playlist("Friday Night", friday, owner=FRIEND_ID, playlist_id=FOLLOWED,
                         follower=USER_ID)
        lib.saved[USER_ID] = [{"added_at": _stamp(LIKED_SONGS - i), "track": t}
                              for i, t in enumerate(pool[60:60 + LIKED_SONGS])]
        return lib

    def add_user(self, user_id: str, display_name: str | None) -> Json:
        self.users[user_id] = user_object(user_id, display_name)
        self.followed.setdefault(user_id, [])
        self.saved.setdefault(user_id, [])
        return self.users[user_id]

    def add_playlist(self, name: str, entries: list[Json], owner: str = USER_ID,
                     playlist_id: str | None = None, follower: str | None = None,
                     template: Json | None = None) -> str:
        """Add a playlist owned by ``owner`` and listed by ``follower`` (the owner by default);
        return its id. ``entries`` are playlist items (see :func:`track_entry`)."""
        playlist_id = playlist_id or spotify_id(f"playlist:{name}:{len(self.playlists)}")
        playlist = {k: v for k, v in (template or {}).items() if k not in ("items", "tracks")}
        playlist.update(
            collaborative=False, description=playlist.get("description", ""), id=playlist_id,
            name=name, owner=self.users[owner], primary_color=None, public=False, type="playlist",
            images=playlist.get("images") or [{"height": 640, "width": 640, "url":
                    f"https://image-cdn-ak.spotifycdn.com/image/{spotify_id(playlist_id)}"}],
            external_urls={"spotify": f"https://open.spotify.com/playlist/{playlist_id}"},
            href=f"https://api.spotify.com/v1/playlists/{playlist_id}",
            uri=f"spotify:playlist:{playlist_id}", entries=list(entries))
        self.playlists[playlist_id] = playlist
        self.versions[playlist_id] = 0
        self.followed[follower or owner].append(playlist_id)
        return playlist_id

    def snapshot_id(self, playlist_id: str) -> str:
        return spotify_id(f"snapshot:{playlist_id}:{self.versions[playlist_id]}") * 2

    def changed(self, playlist_id: str) -> None:
        """Call after editing a playlist's ``entries``: its snapshot id changes."""
        self.versions[playlist_id] += 1


# --- state -----------------------------------------------------------------------------------


@dataclass
class SpotifyState:
    """Credentials it accepts, tokens it issued, caps it enforces, and what it was asked."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    expires_in: int = 3600
    expire_next: int = 0               # the next N API calls answer 401 "The access token expired"
    search_max_limit: int = 10         # Development Mode caps (February 2026); 50 for Extended Quota
    artist_albums_max_limit: int = 10
    login_user: str = USER_ID          # who /authorize logs in
    deny_login: bool = False           # /authorize answers error=access_denied
    rotate_refresh_token: bool = False  # a refresh answers a new refresh token (else omits it)
    tokens: list[str] = field(default_factory=list)      # app tokens issued, oldest first
    revoked: list[str] = field(default_factory=list)
    api_calls: list[str] = field(default_factory=list)   # "path?query" of each API request
    # What each POST /api/token carried (grant type, client auth, PKCE), never the secrets.
    token_requests: list[Json] = field(default_factory=list)
    codes: dict[str, Json] = field(default_factory=dict)           # code -> the /authorize request
    user_tokens: dict[str, str] = field(default_factory=dict)      # access token -> user id
    refresh_tokens: dict[str, Json] = field(default_factory=dict)  # refresh token -> {user, pkce}
    token_expiry: dict[str, float] = field(default_factory=dict)   # access token -> time.time()
    # Set by every token request: tests await it instead of polling for a background one.
    token_requested: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    catalogue: Catalogue = field(default_factory=Catalogue.from_samples, repr=False)
    library: Library = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.library = Library.seeded(self.catalogue)

    def grants(self, grant_type: str) -> int:
        """How many token requests of ``grant_type`` were made."""
        return sum(1 for r in self.token_requests if r["grant_type"] == grant_type)


SPOTIFY = web.AppKey("spotify", SpotifyState)


# --- accounts service --------------------------------------------------------------------------


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _new_secret(prefix: str, state: SpotifyState) -> str:
    return f"{prefix}{len(state.token_requests):04d}{secrets.token_hex(12)}"


async def authorize(request: web.Request) -> web.Response:
    """``GET /authorize``: approve at once (or decline) and send the browser back."""
    state = request.app[SPOTIFY]
    query = request.query
    if query.get("client_id") != state.client_id:
        return web.Response(status=400, text="INVALID_CLIENT: Invalid client")
    redirect_uri = query.get("redirect_uri", "")
    if not redirect_uri.startswith(("http://", "https://")):
        return web.Response(status=400, text="INVALID_CLIENT: Invalid redirect URI")

    def back(**params: str) -> web.Response:
        parts = urlsplit(redirect_uri)
        joined = "&".join(filter(None, [parts.query, urlencode(params)]))
        return web.Response(status=302, headers={"Location": urlunsplit(parts._replace(query=joined))})

    answer_state = {"state": query["state"]} if "state" in query else {}
    if query.get("response_type") != "code":
        return back(error="unsupported_response_type", **answer_state)
    challenge = query.get("code_challenge")
    if challenge and query.get("code_challenge_method") != "S256":
        return back(error="invalid_request", **answer_state)
    if state.deny_login:
        return back(error="access_denied", **answer_state)
    code = "AQ" + secrets.token_hex(40)
    state.codes[code] = {"user": state.login_user, "redirect_uri": redirect_uri,
                         "code_challenge": challenge, "scope": query.get("scope", "")}
    return back(code=code, **answer_state)


def _client_credentials(state: SpotifyState, form: Any, basic: tuple[str, str] | None) -> web.Response:
    credentials = basic or (str(form.get("client_id", "")), str(form.get("client_secret", "")))
    if credentials[0] != state.client_id:
        return _oauth_error("invalid_client", "Invalid client")
    if credentials[1] != state.client_secret:
        return web.json_response(load_wire("spotify", "token_error.POST_accounts_api_token.400.json"),
                                 status=400)
    body = load_wire("spotify", "token_client_credentials.POST_accounts_api_token.json")
    body["access_token"] = f"BQDfaketoken{len(state.tokens):04d}{spotify_id(str(len(state.tokens)))}"
    body["expires_in"] = state.expires_in
    state.tokens.append(body["access_token"])
    state.token_expiry[body["access_token"]] = time.time() + state.expires_in
    return web.json_response(body)


def _check_client(state: SpotifyState, form: Any, basic: tuple[str, str] | None,
                  public: bool) -> web.Response | None:
    """Authenticate the client: Basic id and secret, or (``public``, a PKCE login) the id alone."""
    if basic is not None:
        if basic[0] != state.client_id:
            return _oauth_error("invalid_client", "Invalid client")
        if basic[1] != state.client_secret:
            return _oauth_error("invalid_client", "Invalid client secret")
        return None
    if public and form.get("client_id") == state.client_id:
        return None
    return _oauth_error("invalid_client", "Invalid client")


def _user_token_body(state: SpotifyState, sample: str, user: str, scope: str) -> Json:
    body = load_wire("spotify", sample)
    body["access_token"] = _new_secret("BQCfakeUser", state)
    body["expires_in"] = state.expires_in
    body["scope"] = scope
    state.user_tokens[body["access_token"]] = user
    state.token_expiry[body["access_token"]] = time.time() + state.expires_in
    return body


def _authorization_code(state: SpotifyState, form: Any, basic: tuple[str, str] | None) -> web.Response:
    grant = state.codes.pop(str(form.get("code", "")), None)  # single-use, even when refused
    if grant is None:
        return web.json_response(
            load_wire("spotify", "token_error_bad_code.POST_accounts_api_token.400.json"), status=400)
    pkce = bool(grant["code_challenge"])
    if (refused := _check_client(state, form, basic, public=pkce)) is not None:
        return refused
    if pkce:
        verifier = str(form.get("code_verifier", ""))
        if not verifier:
            return _oauth_error("invalid_request", "code_verifier required")
        if _s256(verifier) != grant["code_challenge"]:
            return _oauth_error("invalid_grant", "code_verifier was incorrect")
    if form.get("redirect_uri") != grant["redirect_uri"]:
        return _oauth_error("invalid_grant", "Invalid redirect URI")
    body = _user_token_body(state, "token_authorization_code.POST_accounts_api_token.json",
                            grant["user"], grant["scope"])
    body["refresh_token"] = _new_secret("AQBfakeRefresh", state)
    state.refresh_tokens[body["refresh_token"]] = {"user": grant["user"], "pkce": pkce,
                                                   "scope": grant["scope"]}
    return web.json_response(body)


def _refresh(state: SpotifyState, form: Any, basic: tuple[str, str] | None) -> web.Response:
    presented = str(form.get("refresh_token", ""))
    grant = state.refresh_tokens.get(presented)
    if grant is None:
        return _oauth_error("invalid_grant", "Invalid refresh token")
    if (refused := _check_client(state, form, basic, public=grant["pkce"])) is not None:
        return refused
    body = _user_token_body(state, "token_refresh.POST_accounts_api_token.json", grant["user"],
                            grant["scope"])
    if state.rotate_refresh_token:
        del state.refresh_tokens[presented]
        body["refresh_token"] = _new_secret("AQBfakeRefresh", state)
        state.refresh_tokens[body["refresh_token"]] = grant
    return web.json_response(body)


async def token(request: web.Request) -> web.Response:
    """``POST /api/token``: app tokens, code exchanges and refreshes, or the real 400 bodies."""
    state = request.app[SPOTIFY]
    form = await request.post()
    state.token_requested.set()  # nothing below awaits, so the answer is decided already
    basic = _basic_credentials(request.headers.get("Authorization", ""))
    grant_type = str(form.get("grant_type", ""))
    state.token_requests.append({"grant_type": grant_type, "basic_auth": basic is not None,
                                 "client_id": form.get("client_id") or (basic or ("",))[0],
                                 "code_verifier": "code_verifier" in form,
                                 "redirect_uri": form.get("redirect_uri")})
    if grant_type == "client_credentials":
        return _client_credentials(state, form, basic)
    if grant_type == "authorization_code":
        return _authorization_code(state, form, basic)
    if grant_type == "refresh_token":
        return _refresh(state, form, basic)
    return _oauth_error("unsupported_grant_type", "grant_type parameter is missing")


USER = web.RequestKey("user", str)


@web.middleware
async def bearer_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Checks the Bearer token of every ``/v1/`` call, plays the expiry switch, and notes the
    user of a user's token (``/v1/me…`` needs one)."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    state = request.app[SPOTIFY]
    state.api_calls.append(request.path_qs)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not presented:
        return _error(401, "No token provided")
    if presented not in state.tokens and presented not in state.user_tokens:
        return _error(401, "Invalid access token")
    if state.expire_next > 0:
        state.expire_next -= 1
        state.revoked.append(presented)
    if presented in state.revoked or time.time() >= state.token_expiry.get(presented, float("inf")):
        return _sample_error("error_401_expired.json")
    user = state.user_tokens.get(presented)
    if request.path.startswith("/v1/me") and user is None:
        return _error(401, "Valid user authentication required")
    if user is not None:
        request[USER] = user
    return await handler(request)


# --- Web API -----------------------------------------------------------------------------------


class _BadRequest(Exception):
    def __init__(self, response: web.Response):
        self.response = response


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not low <= value <= high:
        if name == "limit":
            raise _BadRequest(_sample_error("error_400_invalid_limit.json"))
        raise _BadRequest(_error(400, f"Invalid {name}"))
    return value


def _here(request: web.Request, path: str | None = None) -> str:
    """This fake's own address plus ``path`` (the request's path by default)."""
    return f"{request.url.origin()}{path or request.path}"


def _paging(base: str, items: list[Json], offset: int, limit: int,
            query: dict[str, str] | None = None) -> Json:
    """A paging object of ``items`` whose links point at ``base`` (the real ones at Spotify)."""

    def link(at: int) -> str:
        return f"{base}?{urlencode({'offset': at, 'limit': limit, **(query or {})})}"

    total = len(items)
    return {"href": link(offset), "items": items[offset:offset + limit], "limit": limit,
            "next": link(offset + limit) if offset + limit < total else None, "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None, "total": total}


def _words(query: str) -> list[str]:
    # Field filters (artist:, album:, track:, year: …) are matched like free text here.
    text = re.sub(r"\b\w+:", " ", query.lower()).replace('"', " ")
    return text.split()


def _matches(words: list[str], item: Json) -> bool:
    parts = [item.get("name", ""), *(a["name"] for a in item.get("artists", []))]
    if "album" in item:
        parts.append(item["album"]["name"])
    haystack = " ".join(parts).lower()
    return all(word in haystack for word in words)


async def search(request: web.Request) -> web.Response:
    """``GET /v1/search?q=&type=track,album,artist&limit=&offset=``."""
    state = request.app[SPOTIFY]
    query = request.query.get("q") or request.query.get("query")  # next links use "query"
    if not query:
        return _error(400, "No search query")
    kinds = [k for k in request.query.get("type", "").split(",") if k]
    if not kinds:
        return _error(400, "Missing parameter type")
    try:
        limit = _int_param(request, "limit", min(5, state.search_max_limit), 0, state.search_max_limit)
        offset = _int_param(request, "offset", 0, 0, 1000)
    except _BadRequest as bad:
        return bad.response
    cat = state.catalogue
    pools = {"track": cat.searchable_tracks,
             "album": [_strip_group(a) for a in cat.albums.values()],
             "artist": list(cat.artists.values())}
    words = _words(query)
    body: Json = {}
    for kind in kinds:
        if kind not in pools:
            return _error(400, f"Bad search type field {kind}")
        found = [item for item in pools[kind] if _matches(words, item)]
        body[f"{kind}s"] = _paging(_here(request, "/v1/search"), found, offset, limit,
                                   {"query": query, "type": ",".join(kinds)})
    return web.json_response(body)


def _check_id(value: str) -> web.Response | None:
    if not re.fullmatch(r"[0-9A-Za-z]{22}", value):
        return _error(400, "Invalid base62 id")
    return None


async def artist_albums(request: web.Request) -> web.Response:
    """``GET /v1/artists/{id}/albums?include_groups=&limit=&offset=``, newest first per group."""
    state = request.app[SPOTIFY]
    artist_id = request.match_info["id"]
    if (bad := _check_id(artist_id)) or artist_id not in state.catalogue.artists:
        return bad or _sample_error("error_404.json")
    groups = [g for g in request.query.get("include_groups", ",".join(GROUP_ORDER)).split(",") if g]
    try:
        limit = _int_param(request, "limit", state.artist_albums_max_limit, 1,
                           state.artist_albums_max_limit)
        offset = _int_param(request, "offset", 0, 0, 10_000)
    except _BadRequest as bad_request:
        return bad_request.response
    releases = [a for a in state.catalogue.albums.values()
                if artist_id in {x["id"] for x in a["artists"]} and a["album_group"] in groups]
    releases.sort(key=lambda a: a["release_date"], reverse=True)
    releases.sort(key=lambda a: GROUP_ORDER.index(a["album_group"]))  # stable: groups, then dates
    return web.json_response(_paging(_here(request), releases, offset, limit,
                                     {"include_groups": ",".join(groups)}))


def _album_or_error(request: web.Request) -> tuple[str, web.Response | None]:
    album_id = request.match_info["id"]
    if (bad := _check_id(album_id)) or album_id not in request.app[SPOTIFY].catalogue.albums:
        return album_id, bad or _sample_error("error_404.json")
    return album_id, None


async def album(request: web.Request) -> web.Response:
    """``GET /v1/albums/{id}``: the full album with its first 50 tracks embedded."""
    album_id, bad = _album_or_error(request)
    if bad:
        return bad
    cat = request.app[SPOTIFY].catalogue
    body = {**_strip_group(cat.albums[album_id]), "copyrights": [], "genres": [],
            "external_ids": {"upc": spotify_id(album_id)[:12]}, "label": "Daft Life",
            "tracks": _paging(_here(request, f"/v1/albums/{album_id}/tracks"), cat.tracks[album_id],
                              0, ALBUM_TRACKS_MAX_LIMIT)}
    body["href"] = _here(request)
    return web.json_response(body)


async def album_tracks(request: web.Request) -> web.Response:
    """``GET /v1/albums/{id}/tracks?limit=&offset=`` (spotipy adds a trailing slash)."""
    album_id, bad = _album_or_error(request)
    if bad:
        return bad
    try:
        limit = _int_param(request, "limit", 20, 1, ALBUM_TRACKS_MAX_LIMIT)
        offset = _int_param(request, "offset", 0, 0, 10_000)
    except _BadRequest as bad_request:
        return bad_request.response
    tracks = request.app[SPOTIFY].catalogue.tracks[album_id]
    return web.json_response(_paging(_here(request).rstrip("/"), tracks, offset, limit))


# --- the user's Web API ----------------------------------------------------------------------------


def _page_params(request: web.Request) -> tuple[int, int]:
    """``limit`` (1 to 50, default 20) and ``offset`` of a user list; raises _BadRequest."""
    return (_int_param(request, "limit", 20, 1, PAGE_MAX_LIMIT),
            _int_param(request, "offset", 0, 0, 100_000))


async def me(request: web.Request) -> web.Response:
    """``GET /v1/me`` (spotipy asks for ``/v1/me/``): the user of the token."""
    user = request.app[SPOTIFY].library.users[request[USER]]
    body = load_wire("spotify", "me.GET_v1_me.json")
    body.update({k: user[k] for k in ("display_name", "external_urls", "href", "id", "uri")})
    return web.json_response(body)


def _simplified_playlist(request: web.Request, playlist: Json) -> Json:
    library = request.app[SPOTIFY].library
    body = {k: v for k, v in playlist.items() if k != "entries"}
    link = _here(request, f"/v1/playlists/{playlist['id']}")
    count = len(playlist["entries"])
    body.update(snapshot_id=library.snapshot_id(playlist["id"]), href=link,
                items={"href": f"{link}/items", "total": count},
                tracks={"href": f"{link}/tracks", "total": count})
    return body


async def my_playlists(request: web.Request) -> web.Response:
    """``GET /v1/me/playlists?limit=&offset=``: owned and followed playlists, in the user's order."""
    library = request.app[SPOTIFY].library
    try:
        limit, offset = _page_params(request)
    except _BadRequest as bad:
        return bad.response
    listed = [_simplified_playlist(request, library.playlists[pid])
              for pid in library.followed[request[USER]]]
    return web.json_response(_paging(_here(request), listed, offset, limit))


def _entries(request: web.Request, playlist: Json) -> list[Json]:
    """The playlist's items; episodes in the legacy track form unless the client asked for them."""
    wants_episodes = "episode" in request.query.get("additional_types", "").split(",")
    entries = []
    for entry in playlist["entries"]:
        item = entry.get("item")
        if item and item.get("type") == "episode" and not wants_episodes:
            legacy = _as_legacy_track(item)
            entry = {**entry, "item": legacy, "track": legacy}
        entries.append(entry)
    return entries


def _playlist_or_error(request: web.Request) -> tuple[Json | None, web.Response | None]:
    playlist_id = request.match_info["id"]
    if bad := _check_id(playlist_id):
        return None, bad
    playlist = request.app[SPOTIFY].library.playlists.get(playlist_id)
    return playlist, None if playlist else _sample_error("error_404.json")


async def playlist(request: web.Request) -> web.Response:
    """``GET /v1/playlists/{id}``: the full playlist with its first 100 items embedded."""
    found, bad = _playlist_or_error(request)
    if found is None:
        return bad or _sample_error("error_404.json")
    body = _simplified_playlist(request, found)
    items = _paging(f"{body['href']}/items", _entries(request, found), 0, EMBEDDED_ITEMS_LIMIT)
    body.update(items=items, tracks=items, followers={"href": None, "total": 0})
    return web.json_response(body)


async def playlist_items(request: web.Request) -> web.Response:
    """``GET /v1/playlists/{id}/items?limit=&offset=&additional_types=``."""
    found, bad = _playlist_or_error(request)
    if found is None:
        return bad or _sample_error("error_404.json")
    try:
        limit, offset = _page_params(request)
    except _BadRequest as bad_request:
        return bad_request.response
    query = {"additional_types": request.query["additional_types"]} if (
        "additional_types" in request.query) else {}
    return web.json_response(_paging(_here(request), _entries(request, found), offset, limit, query))


async def saved_tracks(request: web.Request) -> web.Response:
    """``GET /v1/me/tracks?limit=&offset=``: the user's liked songs, newest first."""
    try:
        limit, offset = _page_params(request)
    except _BadRequest as bad:
        return bad.response
    saved = request.app[SPOTIFY].library.saved[request[USER]]
    return web.json_response(_paging(_here(request), saved, offset, limit))


async def _set_state(request: web.Request) -> web.Response:
    state = request.app[SPOTIFY]
    settable = {f.name for f in fields(SpotifyState)} - {
        "tokens", "revoked", "api_calls", "catalogue", "token_requested", "token_requests", "codes",
        "user_tokens", "refresh_tokens", "token_expiry", "library"}
    changes = await request.json()
    for key, value in changes.items():
        if key not in settable:
            return web.json_response({"error": f"unknown field {key!r}; known: {sorted(settable)}"},
                                     status=400)
        setattr(state, key, value)
    return web.json_response({key: getattr(state, key) for key in sorted(settable)})


def make_app(client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> web.Application:
    """Return the fake; ``app[SPOTIFY]`` is its state, ``app[FAULTS]`` its fault switches."""
    app = web.Application(middlewares=[bearer_middleware])
    app[SPOTIFY] = SpotifyState(client_id=client_id, client_secret=client_secret)
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/api/token", token)
    app.router.add_get("/v1/search", search)
    app.router.add_get("/v1/artists/{id}/albums", artist_albums)
    app.router.add_get("/v1/albums/{id}", album)
    app.router.add_get("/v1/albums/{id}/tracks", album_tracks)
    app.router.add_get("/v1/albums/{id}/tracks/", album_tracks)
    app.router.add_get("/v1/me", me)
    app.router.add_get("/v1/me/", me)
    app.router.add_get("/v1/me/playlists", my_playlists)
    app.router.add_get("/v1/me/tracks", saved_tracks)
    app.router.add_get("/v1/playlists/{id}", playlist)
    app.router.add_get("/v1/playlists/{id}/items", playlist_items)
    app.router.add_post("/_fake/spotify", _set_state)
    return with_faults(app)


USAGE = f"""\
Spotify fake: app credentials {CLIENT_ID} / {CLIENT_SECRET}; user {USER_ID} ({USER_NAME}).
To use it from SoulSync set spotify.api_url and spotify.accounts_url to this address and
spotify.client_id to {CLIENT_ID} (spotify.client_secret {CLIENT_SECRET}, or empty for PKCE).
A login (`soulsync auth spotify`) is approved at once: the authorize address sends the browser
straight back with a code. POST /_fake/spotify {{"deny_login": true}} makes it decline, and
POST /_fake/faults {{"rate_limit_count": 1, "retry_after": 30}} answers one 429."""


if __name__ == "__main__":
    print(USAGE)
    run_standalone(make_app, "spotify", 8102)
