"""Hostile input answers 4xx (or is clamped as docs/api.md says), never 500, and loses nothing.

Integers beyond 64 bits, JSON nested 100,000 levels deep, control characters and full-text
query syntax in search terms, and methods sent to a fixed path that a templated one also
matches (issue 11, defects 5, 14 and 17).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soulsync_core.api.endpoints import INLINE_BODY_BYTES, MAX_INT, MAX_JSON_DEPTH
from soulsync_core.api.paging import MAX_PAGE
from tests.library_fixtures import open_core, record

A = "/api/v1/library"
HUGE = str(2**63)
HUGER = str(10**40)


@pytest.fixture
async def core(data_dir: Path, music: Path):
    """Overrides conftest's core: the same, with library.music_dir set to ``music``."""
    core = await open_core(data_dir, music)
    yield core
    await core.close()


# Names holding what would be FTS5 syntax outside a string literal.
SYNTAX_ARTISTS = ['"Weird Al" Yankovic', "Sunn O)))", "AC/DC", "Ke$ha*", "NEAR Miss", "A AND B",
                  "Blink-182", "^Caret", "Key:Value", "(Parens)", "Björk"]


@pytest.fixture
async def library(core):
    records = [record(artist, f"{artist} Album", f"{artist} Song", year=2001)
               for artist in SYNTAX_ARTISTS]
    await core.library.store.save(records)
    return core


async def get(api, path: str, **params: str):
    return await api.get(path, params=params)


# ------------------------------------------------------------------ integers beyond 64 bits


@pytest.mark.parametrize("value", [HUGE, HUGER, "-" + HUGER])
async def test_paging_integers_beyond_64_bits_are_400_naming_the_parameter(api, key, library, value):
    for path in (f"{A}/artists", f"{A}/albums", "/api/v1/downloads", "/api/v1/wishlist",
                 "/api/v1/system/activity"):
        for name in ("page", "limit"):
            reply = await get(api, path, **{name: value})
            assert reply.status == 400, (path, name, reply.json)
            assert reply.error["message"].startswith(f"{name} must be an integer between ")


@pytest.mark.parametrize("name", ["year", "artist_id"])
async def test_filter_integers_beyond_64_bits_are_400(api, key, library, name):
    reply = await get(api, f"{A}/albums", **{name: HUGE})
    assert reply.status == 400
    assert reply.error["message"] == (f"{name} must be an integer between -9223372036854775808 "
                                      "and 9223372036854775807.")


async def test_largest_64_bit_values_are_clamped_or_match_nothing(api, key, library):
    page = await get(api, f"{A}/artists", page=str(MAX_INT), limit=str(MAX_INT))
    assert page.status == 200
    assert page.data["artists"] == []
    assert (page.json["pagination"]["page"], page.json["pagination"]["limit"]) == (MAX_PAGE, 200)
    for name in ("year", "artist_id"):
        reply = await get(api, f"{A}/albums", **{name: str(MAX_INT)})
        assert reply.status == 200 and reply.data["albums"] == [], name
    downloads = await get(api, "/api/v1/downloads", page=str(MAX_INT))
    assert downloads.status == 200 and downloads.data["downloads"] == []


async def test_body_integers_beyond_64_bits_are_400_naming_the_field(api, key):
    reply = await api.post("/api/v1/search/tracks", raw=b'{"query": "x", "limit": ' + HUGER.encode() + b"}")
    assert reply.status == 400
    assert reply.error["message"].startswith("limit must be an integer between ")
    nested = (b'{"name": "x", "artists": ["y"], "album": {"name": "z", "total_tracks": '
              + HUGE.encode() + b"}}")
    reply = await api.post("/api/v1/downloads", raw=nested)
    assert reply.status == 400
    assert reply.error["message"].startswith("album.total_tracks must be an integer between ")
    reply = await api.post("/api/v1/playlists/p1/sync/matches", raw=b'{"position": ' + HUGE.encode() + b"}")
    assert reply.status == 400
    assert reply.error["message"].startswith("position must be an integer between ")


async def test_undeclared_body_fields_are_ignored_whatever_they_hold(api, key):
    reply = await api.post("/api/v1/api-keys", raw=b'{"label": "x", "extra": [' + HUGER.encode() + b"]}")
    assert reply.status == 201


# ------------------------------------------------------------------------- deep JSON


def _nested(levels: int) -> bytes:
    return b'{"label": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("path,method", [("/api/v1/api-keys", "POST"), ("/api/v1/settings", "PATCH"),
                                         ("/api/v1/wishlist", "POST"), ("/api/v1/search/tracks", "POST")])
async def test_json_nested_100000_levels_is_400_and_changes_nothing(api, key, path, method):
    before = (await api.get("/api/v1/settings")).data
    reply = await api.request(method, path, raw=_nested(100_000))
    assert reply.status == 400, reply.json
    assert reply.error["message"] == (f"Request body nests deeper than {MAX_JSON_DEPTH} levels "
                                      "of objects and lists.")
    assert (await api.get("/api/v1/settings")).data == before
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1


async def test_json_just_past_the_depth_limit_is_400_and_at_it_is_read(api, key):
    # The label is the first level; MAX_JSON_DEPTH - 1 lists inside it is exactly the limit.
    at_limit = await api.request("PATCH", "/api/v1/settings", raw=_nested(MAX_JSON_DEPTH - 1))
    assert at_limit.status == 400 and "nests deeper" not in at_limit.error["message"]
    past = await api.request("PATCH", "/api/v1/settings", raw=_nested(MAX_JSON_DEPTH))
    assert past.status == 400 and "nests deeper" in past.error["message"]


# ------------------------------------------------------------- control characters, FTS


@pytest.mark.parametrize("params", [
    {"path": f"{A}/artists", "name": "search"}, {"path": f"{A}/albums", "name": "search"},
    {"path": f"{A}/tracks", "name": "title"}, {"path": f"{A}/tracks", "name": "artist"},
])
@pytest.mark.parametrize("term", ["bjo\x00rk", "\x00\x00\x00", "abc\x1f", "ab\x7fcd"])
async def test_control_characters_in_search_terms_are_400(api, key, library, params, term):
    reply = await get(api, params["path"], **{params["name"]: term})
    assert reply.status == 400, reply.json
    position = next(i for i, c in enumerate(term) if ord(c) < 32 or ord(c) == 127) + 1
    assert reply.error["message"] == (f"{params['name']} must not contain control characters "
                                      f"(U+{ord(term[position - 1]):04X} at position {position}).")


@pytest.mark.parametrize("term", ['"weird al"', '"', 'al" OR "x', "o)))", "ke$ha*", "*", "near",
                                  "NEAR(a b)", "a and b", "AND", "blink-182", "-182", "^caret",
                                  "key:value", "title_fold : x", "(parens)", "((("])
async def test_fts_syntax_in_search_terms_is_plain_text(api, key, library, term):
    artists = await get(api, f"{A}/artists", search=term)
    assert artists.status == 200, artists.json
    albums = await get(api, f"{A}/albums", search=term)
    assert albums.status == 200, albums.json
    for name in ("title", "artist"):
        tracks = await get(api, f"{A}/tracks", **{name: term})
        assert tracks.status == 200, (name, tracks.json)
    folded = term.lower()
    # Terms of three or more characters match anywhere in a name, shorter ones its start.
    expected = sorted(a for a in SYNTAX_ARTISTS if folded in a.lower()
                      and (len(folded) >= 3 or a.lower().startswith(folded)))
    assert sorted(a["name"] for a in artists.data["artists"]) == expected


async def test_each_syntax_name_is_found_by_its_own_name(api, key, library):
    for name in SYNTAX_ARTISTS:
        found = await get(api, f"{A}/artists", search=name)
        assert [a["name"] for a in found.data["artists"]] == [name], name
        tracks = await get(api, f"{A}/tracks", title=f"{name} Song", artist=name)
        assert [t["title"] for t in tracks.data["tracks"]] == [f"{name} Song"], name


# ------------------------------------------------------------------- fixed paths win


@pytest.mark.parametrize("method,path,allowed", [
    ("OPTIONS", "/api/v1/api-keys/bootstrap", "POST"),
    ("DELETE", "/api/v1/api-keys/bootstrap", "POST"),
    ("GET", "/api/v1/downloads/cancel-all", "POST"),
    ("PATCH", "/api/v1/watchlist/scan", "GET, POST"),
    ("DELETE", "/api/v1/watchlist/scan", "GET, POST"),
    ("DELETE", "/api/v1/wishlist/process", "GET, POST"),
])
async def test_a_fixed_path_answers_405_with_only_its_own_methods(api, key, method, path, allowed):
    reply = await api.request(method, path)
    assert reply.status == 405, reply.json
    assert reply.error["code"] == "METHOD_NOT_ALLOWED"
    assert reply.headers["Allow"] == allowed
    assert len((await api.get("/api/v1/api-keys")).data["keys"]) == 1


async def test_templated_paths_still_answer_their_own_methods(api, key):
    assert (await api.delete("/api/v1/api-keys/not-a-key")).status == 404
    assert (await api.get("/api/v1/downloads/12345")).status == 404
    assert (await api.delete("/api/v1/watchlist/some-artist")).status == 404
    assert (await api.delete("/api/v1/wishlist/some-track")).status == 404


async def test_a_nul_reaching_the_library_queries_is_no_fts_syntax_error(api, key, library):
    queries = library.library.queries
    artists, total = await queries.artists(search="bjo\x00rk", letter="all", watchlist="all",
                                           offset=0, limit=10)
    assert total == 1 and len(artists) == 1
    assert len(await queries.search_tracks("bjork\x00 song", "bj\x00ork", 10)) == 1


async def test_a_large_body_is_read_in_a_thread_with_the_same_rules(api, key):
    filler = b'"' + b"x" * (INLINE_BODY_BYTES + 10) + b'"'
    nested = b"[" * 100 + b"]" * 100
    deep = await api.request("POST", "/api/v1/api-keys",
                             raw=b'{"label": "x", "filler": ' + filler + b', "n": ' + nested + b"}")
    assert deep.status == 400 and "nests deeper" in deep.error["message"]
    # position 5.0 is the integer 5: the body is read, and the pin refused only as never synced.
    pin = await api.request("POST", "/api/v1/playlists/p1/sync/matches",
                            raw=b'{"position": 5.0, "pinned": false, "filler": ' + filler + b"}")
    assert pin.status == 404 and "never synced" in pin.error["message"], pin.json


async def test_a_repeated_query_parameter_counts_once_by_its_last_value(api, key, library):
    reply = await api.get(f"{A}/artists?search=%00&search=bjork")
    assert reply.status == 200
    assert [a["name"] for a in reply.data["artists"]] == ["Björk"]


@pytest.mark.parametrize("blank", [" ", "\u2003\u00a0", "\x1c\x1f", "\x85\t"])
async def test_a_query_of_whitespace_only_is_400_as_the_document_says(api, key, openapi_doc, blank):
    reply = await api.post("/api/v1/search/tracks", {"query": blank})
    assert reply.status == 400 and reply.error["message"] == "query must be a non-empty string."
    pattern = openapi_doc["components"]["schemas"]["SearchBody"]["properties"]["query"]["pattern"]
    assert re.search(pattern, blank) is None


async def test_every_api_path_answers_options_with_exactly_its_documented_methods(api, key, openapi_doc):
    for template, operations in openapi_doc["paths"].items():
        if not template.startswith("/api/v1/"):
            continue
        path = re.sub(r"{\w+}", "1", template)
        reply = await api.request("OPTIONS", path)
        assert reply.status == 405, (path, reply.json)
        assert reply.headers["Allow"] == ", ".join(sorted(m.upper() for m in operations)), path
