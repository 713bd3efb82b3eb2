"""``/request``: the bots' "request a track" flow (see :mod:`soulsync_core.track_requests`)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from soulsync_core.api.body_rules import NON_BLANK, rules
from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import bad_request, not_found, ok
from soulsync_core.api.openapi import NO_CONTROL_CHARACTERS
from soulsync_core.track_requests import Asked, NotifyUrlRefused, RequestStatus

routes = Routes("requests")

# Longest query, title or artist accepted: far beyond any real name, short enough for logs.
MAX_TEXT = 500
# Longest notify_url accepted (what browsers and most servers handle).
MAX_URL = 2048

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)]
# Stated: blank (no notification) or http(s) with a host. Whether the host may be reached is
# known only by resolving it, which OpenAPI cannot state: the handler checks it all.
Url = Annotated[str, msgspec.Meta(max_length=MAX_URL, extra_json_schema={
    "pattern": r"^\s*$|^\s*[hH][tT][tT][pP][sS]?://[^/?#\s@]"})]
Duration = Annotated[int, msgspec.Meta(ge=0)]


class RequestBody(msgspec.Struct):
    """``query`` ("Artist - Title"), or ``title`` and ``artist`` (with ``duration_ms`` when
    known). ``metadata`` is returned as given; ``notify_url`` gets the final status (POST,
    JSON); ``force`` downloads even when the library has the track."""

    query: Text | UnsetType = UNSET
    title: Text | UnsetType = UNSET
    artist: Text | UnsetType = UNSET
    duration_ms: Duration | UnsetType = UNSET
    metadata: dict[str, Any] | None = None
    notify_url: Url | None = None
    force: bool = False


_WORDS: dict[str, Any] = {"type": "string", "allOf": [NON_BLANK, {"pattern": NO_CONTROL_CHARACTERS}]}
# What asked_from_body checks across fields: a query alone, or a title with an artist.
REQUEST_FORMS: dict[str, Any] = {
    "properties": {"query": _WORDS, "title": _WORDS, "artist": _WORDS},
    "anyOf": [{"required": ["query"], "not": {"anyOf": [{"required": ["title"]},
                                                        {"required": ["artist"]}]}},
              {"required": ["title", "artist"], "not": {"required": ["query"]}}],
}


def _text(name: str, value: str | UnsetType) -> str:
    text = "" if value is UNSET else value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise bad_request(f"{name} must not contain control characters (such as newlines).")
    return text


def asked_from_body(body: RequestBody) -> Asked:
    """Return what the body asks for; 400 saying what to send when it is incomplete."""
    query = _text("query", body.query)
    title, artist = _text("title", body.title), _text("artist", body.artist)
    duration = 0 if body.duration_ms is UNSET else body.duration_ms
    if query:
        if title or artist:
            raise bad_request("Send either query or title and artist, not both.")
        return Asked(query=query, duration_ms=duration)
    if title and artist:
        return Asked(title=title, artist=artist, duration_ms=duration)
    if title or artist:
        missing = "artist" if title else "title"
        raise bad_request(f"{missing} is required with {'title' if title else 'artist'}.")
    raise bad_request('Send {"query": "Artist - Title"} or {"title": …, "artist": …}.')


@routes.post("/request",
             "Request a track for a bot: resolve, check the library, download; 202 with its status.",
             body=rules(RequestBody, REQUEST_FORMS), response=RequestStatus, status=202)
async def create_request(request: web.Request, body: RequestBody) -> web.Response:
    asked = asked_from_body(body)
    notify_url = (body.notify_url or "").strip() or None
    service = core_of(request).track_requests
    try:
        created = await service.create(asked, metadata=body.metadata, notify_url=notify_url,
                                       force=body.force)
    except NotifyUrlRefused as exc:
        raise bad_request(str(exc)) from None
    return ok(await service.status(created), status=202)


@routes.get("/request/{request_id}", "A track request's status (found, downloading, completed …).",
            response=RequestStatus, errors=(404,))
async def get_request(request: web.Request) -> web.Response:
    request_id = request.match_info["request_id"]
    service = core_of(request).track_requests
    found = await service.get(request_id)
    if found is None:
        raise not_found(f"Request {request_id} not found.")
    return ok(await service.status(found))
