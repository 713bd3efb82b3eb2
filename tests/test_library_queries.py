"""Every query the library endpoints run uses an index or the FTS5 trigram index.

The test records each SQL statement the endpoints send to the database while answering a
broad set of requests, then asks SQLite for its plan (EXPLAIN QUERY PLAN). A library table
(artists, albums, tracks, folders) may only be *scanned* as the outer loop of an unfiltered
query whose LIMIT stops the scan early because rows come in the order asked for (a page of
names in index order, the newest rows by id); anything else must be a SEARCH through an index
or an FTS match.
Dropping an index or writing a query that reads a whole table fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.library_fixtures import open_core, record

A = "/api/v1/library"
LIBRARY_TABLES = {"artists", "albums", "tracks", "folders"}
_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX \w+)?$")


@pytest.fixture
async def core(data_dir: Path, tmp_path: Path):
    core = await open_core(data_dir, tmp_path / "music")
    records = [record(f"Artist {a}", f"Album {b}", f"Harbor Night {a} {b} {t}", number=t,
                      genres=["Rock"], isrc=f"ISRC{a}{b}{t}", spotify_track_id=f"sp{a}{b}{t}",
                      musicbrainz_release_id=f"mb{a}{b}", spotify_artist_id=f"spa{a}")
               for a in range(8) for b in range(2) for t in range(1, 4)]
    records.append(record("Wave Harbor", "Sea", "Harbor", track_artist="Wavelength"))
    await core.library.store.save(records)
    yield core
    await core.close()


def table_of(alias_or_table: str, sql: str) -> str:
    """Return the table an alias in ``sql`` stands for (``t`` -> ``tracks``)."""
    match = re.search(rf"\b(?:FROM|JOIN) (\w+) (?:AS )?{re.escape(alias_or_table)}\b", sql)
    if alias_or_table in LIBRARY_TABLES or match is None:
        return alias_or_table
    return match.group(1)


def _without_unlimited_subqueries(sql: str) -> str:
    """Return ``sql`` without its sub-selects that have no LIMIT (counts, id lists)."""
    while True:
        stripped = re.sub(r"\((SELECT [^()]*)\)",
                          lambda m: f"[{m.group(1)}]" if " LIMIT " in m.group(1) else "", sql)
        if stripped == sql:
            return sql
        sql = stripped


def plan_problems(sql: str, plan: list[tuple[int, int, str]]) -> list[str]:
    """Return the plan lines that read a library table without an index (empty when fine).

    A SCAN passes only in a query without WHERE that has a LIMIT and whose rows at that level
    are not sorted afterwards (no temp B-tree beside it): the scan then stops after the page.
    """
    outer = _without_unlimited_subqueries(sql)
    unfiltered_page = " WHERE " not in outer and " LIMIT " in outer
    problems = []
    for _node, parent, detail in plan:
        match = _SCAN.match(detail)
        if not match or "VIRTUAL TABLE" in detail:
            continue
        if table_of(match.group(1), sql) not in LIBRARY_TABLES:
            continue
        sorted_later = any(p == parent and "USE TEMP B-TREE FOR ORDER BY" in d for _n, p, d in plan)
        if not (unfiltered_page and not sorted_later):
            problems.append(detail)
    return problems


async def test_the_plan_checker_catches_a_table_scan(core):
    for sql, params in [("SELECT t.id FROM tracks t WHERE t.title LIKE ?", ("%x%",)),
                        ("SELECT t.id FROM albums al JOIN tracks t ON t.album_id = al.id", ()),
                        ("SELECT count(*) FROM tracks", ()),
                        ("SELECT * FROM artists a ORDER BY a.name LIMIT 5", ()),
                        ("SELECT a.id FROM artists a WHERE a.genres = ? ORDER BY a.name_fold LIMIT 5",
                         ("[]",))]:
        plan = [(r[0], r[1], r[3]) for r in
                await core.db.fetchall("EXPLAIN QUERY PLAN " + sql, params)]
        assert plan_problems(sql, plan), sql


async def test_every_library_query_uses_an_index_or_fts(api, key, core):
    statements: list[tuple[str, tuple]] = []
    db = core.db
    originals = {name: getattr(db, name) for name in ("fetchall", "fetchone", "fetchval")}

    def recording(name):
        async def call(sql, params=()):
            statements.append((sql, tuple(params)))
            return await originals[name](sql, params)
        return call

    for name in originals:
        setattr(db, name, recording(name))
    try:
        bjork = (await api.get(f"{A}/artists", params={"search": "artist 3"})).data["artists"][0]["id"]
        album = (await api.get(f"{A}/artists/{bjork}/albums")).data["albums"][0]["id"]
        track = (await api.get(f"{A}/albums/{album}/tracks")).data["tracks"][0]["id"]
        requests = [
            ("artists", {}), ("artists", {"page": "3", "limit": "2"}),
            ("artists", {"search": "night"}), ("artists", {"search": "artist"}),
            ("artists", {"search": "ar"}), ("artists", {"letter": "a", "page": "2", "limit": "2"}),
            ("artists", {"letter": "#"}), ("artists", {"letter": "w", "search": "harbor"}),
            ("artists", {"letter": "w", "search": "wa"}), ("artists", {"search": "zzz", "page": "9"}),
            (f"artists/{bjork}", {}), (f"artists/{bjork}/albums", {}), ("artists/999/albums", {}),
            ("albums", {}), ("albums", {"search": "album 1"}), ("albums", {"search": "al"}),
            ("albums", {"artist_id": str(bjork)}), ("albums", {"year": "2000"}),
            ("albums", {"search": "album", "artist_id": str(bjork), "year": "1990"}),
            (f"albums/{album}", {}), (f"albums/{album}/tracks", {}), ("albums/999/tracks", {}),
            ("tracks", {"title": "harbor", "artist": "wave"}), ("tracks", {"title": "harbor night"}),
            ("tracks", {"artist": "wavelength"}), ("tracks", {"title": "ha"}),
            ("tracks", {"artist": "wa"}), ("tracks", {"title": "harbor", "artist": "w"}),
            ("tracks", {"title": "ha", "artist": "wave"}), ("tracks", {"title": "ha", "artist": "w"}),
            ("tracks", {"title": "nothing - at all"}), (f"tracks/{track}", {}),
            ("recently-added", {"type": "artists"}), ("recently-added", {"type": "albums"}),
            ("recently-added", {"type": "tracks"}), ("genres", {}), ("genres", {"source": "albums"}),
            ("lookup", {"type": "track", "provider": "isrc", "id": "ISRC011"}),
            ("lookup", {"type": "track", "provider": "spotify", "id": "sp011"}),
            ("lookup", {"type": "album", "provider": "musicbrainz", "id": "mb01"}),
            ("lookup", {"type": "artist", "provider": "spotify", "id": "spa1"}),
            ("lookup", {"type": "artist", "provider": "musicbrainz", "id": "x"}),
            ("stats", {}),
        ]
        for path, params in requests:
            reply = await api.get(f"{A}/{path}", params=params)
            assert reply.status in (200, 404), (path, params, reply.json)
        await api.get("/api/v1/system/stats")
    finally:
        for name, original in originals.items():
            setattr(db, name, original)

    library_sql = [(sql, params) for sql, params in statements
                   if re.search(r"\b(artists|albums|tracks|folders|library_\w+)\b", sql)]
    assert len({sql for sql, _ in library_sql}) >= 30
    problems = {}
    for sql, params in library_sql:
        plan = [(r[0], r[1], r[3]) for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params)]
        if found := plan_problems(sql, plan):
            problems[sql] = found
    assert problems == {}
