"""Fake iTunes Search API: ``/search`` and ``/lookup`` over a catalogue built from the samples.

Answers look like Apple's: ``{"resultCount": N, "results": [...]}`` labelled
``text/javascript; charset=utf-8``, the real 400 body for an unknown ``entity``, and the empty
body for ids it does not know. Every query string that reaches a handler is recorded in
``app[ITUNES].queries``; setting ``app[ITUNES].raw_body`` makes every answer that text (e.g. an
HTML page) with status 200.

By hand: ``python -m tests.fakes.itunes --port 8101`` then
``curl 'http://127.0.0.1:8101/search?term=daft+punk&entity=album&media=music&country=US'``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import load_wire, run_standalone, with_faults

CONTENT_TYPE = "text/javascript"
SEARCH_ENTITIES = {"song": "track", "album": "collection", "musicArtist": "artist"}
# With no limit Apple returns 50 search results and caps a lookup's related rows at 50.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Row = dict[str, Any]


@dataclass
class ITunesState:
    """What the fake saw and how it misbehaves beyond :class:`tests.fakes.base.Faults`."""

    queries: list[dict[str, str]] = field(default_factory=list)
    raw_body: str | None = None
    # Set at the first recorded query, so a test can wait for a client's start-up request.
    queried: asyncio.Event = field(default_factory=asyncio.Event)


ITUNES = web.AppKey("itunes", ITunesState)


@dataclass
class Catalogue:
    """Every distinct row of the samples, by kind, in the order the samples list them."""

    artists: list[Row]
    collections: list[Row]
    songs: list[Row]

    @classmethod
    def from_samples(cls) -> Catalogue:
        rows: list[Row] = []
        for name in ("search_song.GET_search_entity_song.json",
                     "search_album.GET_search_entity_album.json",
                     "search_artist.GET_search_entity_musicArtist.json",
                     "lookup_artist_albums.GET_lookup_id_entity_album.json",
                     "lookup_album_songs.GET_lookup_id_entity_song.json"):
            rows.extend(load_wire("itunes", name)["results"])
        by_kind: dict[str, dict[int, Row]] = {"artist": {}, "collection": {}, "track": {}}
        id_field = {"artist": "artistId", "collection": "collectionId", "track": "trackId"}
        for row in rows:
            kind = row["wrapperType"]
            by_kind[kind].setdefault(row[id_field[kind]], row)
        return cls(list(by_kind["artist"].values()), list(by_kind["collection"].values()),
                   list(by_kind["track"].values()))

    def rows(self, wrapper_type: str) -> list[Row]:
        return {"artist": self.artists, "collection": self.collections,
                "track": self.songs}[wrapper_type]


def _answer(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=CONTENT_TYPE,
                        charset="utf-8")


def _results(rows: list[Row]) -> web.Response:
    return _answer({"resultCount": len(rows), "results": rows})


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT))
    except ValueError:
        return DEFAULT_LIMIT


def _matches(row: Row, words: list[str]) -> bool:
    text = " ".join(str(row.get(k, "")) for k in ("artistName", "trackName", "collectionName"))
    return all(word in text.lower() for word in words)


def _record(request: web.Request) -> web.Response | None:
    """Record the query; return the forced raw answer when one is set."""
    state = request.app[ITUNES]
    state.queries.append(dict(request.query))
    state.queried.set()
    if state.raw_body is not None:
        return web.Response(text=state.raw_body, content_type="text/html")
    return None


def make_app() -> web.Application:
    """Return the fake iTunes app (with the fault switches of :func:`with_faults`)."""
    catalogue = Catalogue.from_samples()
    invalid_entity = load_wire("itunes", "error_400_invalid_entity.json")
    empty_lookup = load_wire("itunes", "lookup_empty.GET_lookup_id.json")

    async def search(request: web.Request) -> web.Response:
        forced = _record(request)
        if forced is not None:
            return forced
        wrapper_type = SEARCH_ENTITIES.get(request.query.get("entity", "song"))
        if wrapper_type is None:
            return _answer(invalid_entity, status=400)
        # Like the real service, punctuation between words ("Artist - Title") matches nothing.
        words = [w for w in request.query.get("term", "").lower().split() if any(c.isalnum() for c in w)]
        if not words:
            return _results([])
        found = [row for row in catalogue.rows(wrapper_type) if _matches(row, words)]
        return _results(found[:_limit(request)])

    async def lookup(request: web.Request) -> web.Response:
        forced = _record(request)
        if forced is not None:
            return forced
        entity = request.query.get("entity")
        if entity not in (None, "album", "song"):
            return _answer(invalid_entity, status=400)
        rows: list[Row] = []
        for raw_id in request.query.get("id", "").split(","):
            rows.extend(_lookup_one(catalogue, raw_id.strip(), entity, _limit(request)))
        return _results(rows) if rows else _answer(empty_lookup)

    app = with_faults(web.Application())
    app[ITUNES] = ITunesState()
    app.router.add_get("/search", search)
    app.router.add_get("/lookup", lookup)
    return app


def _lookup_one(catalogue: Catalogue, raw_id: str, entity: str | None, limit: int) -> list[Row]:
    """The item itself first, then its related albums or songs (as Apple orders a lookup)."""
    if not raw_id.isdigit():
        return []
    item_id = int(raw_id)
    for row in catalogue.artists:
        if row["artistId"] == item_id:
            related = {"album": catalogue.collections, "song": catalogue.songs}.get(entity or "", [])
            return [row, *[r for r in related if r["artistId"] == item_id][:limit]]
    for row in catalogue.collections:
        if row["collectionId"] == item_id:
            songs = [r for r in catalogue.songs if r["collectionId"] == item_id] if entity == "song" else []
            songs.sort(key=lambda r: (r["discNumber"], r["trackNumber"]))
            return [row, *songs[:limit]]
    return [row for row in catalogue.songs if row["trackId"] == item_id]


if __name__ == "__main__":
    run_standalone(make_app, "itunes", 8101)
