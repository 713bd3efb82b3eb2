"""Fake Spotify: the accounts service's token endpoint and the Web API a metadata source uses.

Serves ``POST /api/token`` (client credentials, checked against ``app[SPOTIFY].client_id`` and
``client_secret``; anything else gets the real 400 ``invalid_client`` body) and, behind a Bearer
token it issued, ``GET /v1/search``, ``/v1/artists/{id}/albums``, ``/v1/albums/{id}`` and
``/v1/albums/{id}/tracks``. Answers are shaped like the samples in ``wire/spotify``: paging
objects whose ``href``/``next``/``previous`` carry the fake's own address (so clients follow
them here), the real error bodies for a bad limit (400 ``Invalid limit``, with the Development
Mode caps of February 2026), an unknown id (404) and an expired token (401). 429, 5xx, latency
and dropped connections come from :func:`tests.fakes.base.with_faults`.

``app[SPOTIFY].expire_next = N`` makes the next N API calls answer 401 "The access token
expired" and revokes the token each carried, so only a new token gets past.

By hand: ``python -m tests.fakes.spotify --port 8102``, then::

    curl -s -u fakeclientid:fakeclientsecret -d grant_type=client_credentials \\
         http://127.0.0.1:8102/api/token       # copy access_token into TOKEN
    curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8102/v1/search?q=daft+punk&type=track&limit=5'

``POST /_fake/spotify`` with a JSON object sets the fields of :class:`SpotifyState` above.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.base import load_wire, run_standalone, with_faults

Json = dict[str, Any]

CLIENT_ID = "fakeclientid"
CLIENT_SECRET = "fakeclientsecret"
ALBUM_TRACKS_MAX_LIMIT = 50
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
    tokens: list[str] = field(default_factory=list)      # issued, oldest first
    revoked: list[str] = field(default_factory=list)
    api_calls: list[str] = field(default_factory=list)   # "path?query" of each API request
    # Set by every token request: tests await it instead of polling for a background one.
    token_requested: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    catalogue: Catalogue = field(default_factory=Catalogue.from_samples, repr=False)


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


async def token(request: web.Request) -> web.Response:
    """``POST /api/token``: a client-credentials token, or the real 400 error bodies."""
    state = request.app[SPOTIFY]
    form = await request.post()
    state.token_requested.set()  # nothing below awaits, so the answer is decided already
    if form.get("grant_type") != "client_credentials":
        return web.json_response({"error": "unsupported_grant_type",
                                  "error_description": "grant_type parameter is missing"}, status=400)
    credentials = _basic_credentials(request.headers.get("Authorization", "")) or (
        str(form.get("client_id", "")), str(form.get("client_secret", "")))
    if credentials[0] != state.client_id:
        return web.json_response({"error": "invalid_client", "error_description": "Invalid client"},
                                 status=400)
    if credentials[1] != state.client_secret:
        return web.json_response(load_wire("spotify", "token_error.POST_accounts_api_token.400.json"),
                                 status=400)
    body = load_wire("spotify", "token_client_credentials.POST_accounts_api_token.json")
    body["access_token"] = f"BQDfaketoken{len(state.tokens):04d}{spotify_id(str(len(state.tokens)))}"
    body["expires_in"] = state.expires_in
    state.tokens.append(body["access_token"])
    return web.json_response(body)


@web.middleware
async def bearer_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Checks the Bearer token of every ``/v1/`` call, and plays the expiry switch."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    state = request.app[SPOTIFY]
    state.api_calls.append(request.path_qs)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not presented:
        return _error(401, "No token provided")
    if presented not in state.tokens:
        return _error(401, "Invalid access token")
    if state.expire_next > 0:
        state.expire_next -= 1
        state.revoked.append(presented)
    if presented in state.revoked:
        return _sample_error("error_401_expired.json")
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


async def _set_state(request: web.Request) -> web.Response:
    state = request.app[SPOTIFY]
    settable = {f.name for f in fields(SpotifyState)} - {
        "tokens", "revoked", "api_calls", "catalogue", "token_requested"}
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
    app.router.add_post("/api/token", token)
    app.router.add_get("/v1/search", search)
    app.router.add_get("/v1/artists/{id}/albums", artist_albums)
    app.router.add_get("/v1/albums/{id}", album)
    app.router.add_get("/v1/albums/{id}/tracks", album_tracks)
    app.router.add_get("/v1/albums/{id}/tracks/", album_tracks)
    app.router.add_post("/_fake/spotify", _set_state)
    return with_faults(app)


if __name__ == "__main__":
    run_standalone(make_app, "spotify", 8102)
