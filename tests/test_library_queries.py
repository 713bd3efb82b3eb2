"""Every query the library endpoints run uses an index or the FTS5 trigram index.

The test records each SQL statement the endpoints send to the database while answering a
broad set of requests, then asks SQLite for its plan (EXPLAIN QUERY PLAN). A library table
(artists, albums, tracks, folders) may only be *scanned* as the outer loop of an unfiltered
query whose LIMIT stops the scan early because rows come in the order asked for (a page of
names in index order, the newest rows by id), or as a deliberate walk of an artists or albums
name index (``INDEXED BY``, rows in index order, stopped by a LIMIT: the common-term artist
search); anything else must be a SEARCH through an index or an FTS match. Tracks are never
walked.
Dropping an index or writing a query that reads a whole table fails this test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from soulsync_core.library.objects import EMPTY
from tests.library_fixtures import open_core, record

A = "/api/v1/library"
LIBRARY_TABLES = {"artists", "albums", "tracks", "folders"}
_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?$")
WALKABLE_TABLES = {"artists", "albums"}


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
        table = table_of(match.group(1), sql)
        if table not in LIBRARY_TABLES:
            continue
        sorted_later = any(p == parent and "USE TEMP B-TREE FOR ORDER BY" in d for _n, p, d in plan)
        index = match.group(2)
        walk = (table in WALKABLE_TABLES and index is not None and f"INDEXED BY {index} " in sql
                and " LIMIT " in sql)
        if not ((unfiltered_page or walk) and not sorted_later):
            problems.append(detail)
    return problems


async def test_the_plan_checker_catches_a_table_scan(core):
    for sql, params in [("SELECT t.id FROM tracks t WHERE t.title LIKE ?", ("%x%",)),
                        ("SELECT t.id FROM albums al JOIN tracks t ON t.album_id = al.id", ()),
                        ("SELECT count(*) FROM tracks", ()),
                        ("SELECT * FROM artists a ORDER BY a.name LIMIT 5", ()),
                        ("SELECT a.id FROM artists a WHERE a.genres = ? ORDER BY a.name_fold LIMIT 5",
                         ("[]",)),
                        ("SELECT t.id FROM tracks t INDEXED BY tracks_title WHERE instr(t.title_fold, ?) "
                         "ORDER BY t.title_fold LIMIT 5", ("x",)),
                        ("SELECT a.id FROM artists a INDEXED BY artists_name WHERE instr(a.name_fold, ?) "
                         "ORDER BY a.id DESC LIMIT 5", ("x",))]:
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


# ------------------------------------------------------- stored JSON, search ways, cache


async def assert_stored_json_is_built_json(db) -> int:
    """Compare, row by row, the stored artist and album text with the json_object() one."""
    from soulsync_core.library.objects import STORED_ALBUM, STORED_ARTIST, built_json_sql

    checked = 0
    for sql in (f"SELECT {STORED_ARTIST}, {built_json_sql('artist')} FROM artists a",
                f"SELECT {STORED_ALBUM}, {built_json_sql('album')} FROM albums al "
                "JOIN artists ar ON ar.id = al.artist_id"):
        for stored, built in await db.fetchall(sql):
            assert stored == built
            checked += 1
    return checked


async def test_stored_json_stays_equal_to_the_built_objects(core):
    store, db = core.library.store, core.db
    assert await assert_stored_json_is_built_json(db) == 8 + 16 + 1 + 1
    # New rows, genres and provider ids arriving later, a year change, a move, removals.
    await store.save([record("Artist 1", "Album 0", "New", number=9, genres=["Jazz", "Ünïcode"],
                             year=1971, deezer_artist_id="dz1", spotify_album_id='sp"al'),
                      record("Brand New", "Fresh", "Song", genres=["Pop"], year=2020)])
    moved_id = await store.track_id("/music/Artist 2/Album 1", "01 - Harbor Night 2 1 1.flac")
    assert moved_id is not None
    await store.save([], moved={moved_id: record("Artist 3", "Album 9", "Moved", year=1990)})
    removed = await db.fetchall("SELECT id FROM tracks WHERE artist_id = "
                                "(SELECT id FROM artists WHERE name = 'Artist 4')")
    await store.remove_tracks([row[0] for row in removed][:4])
    await db.execute("UPDATE artists SET name = 'Artist Renamed' WHERE name = 'Artist 5'")
    await db.execute("INSERT INTO watchlist_artists (source, artist_id, artist_name, name_fold, date_added, "
                     "updated_at) "
                     "VALUES ('spotify', 'spa6', 'Artist 6', 'artist 6', '', '')")
    rows = await db.fetchval("SELECT (SELECT count(*) FROM artists) + (SELECT count(*) FROM albums)")
    assert await assert_stored_json_is_built_json(db) == rows
    from soulsync_core.library.objects import STORED_ARTIST

    watched = await db.fetchall(f"SELECT {STORED_ARTIST} FROM artists a WHERE a.name = 'Artist 6'")
    assert '"is_watched":true' in watched[0][0]


async def album_titles_and_tracks(db) -> list[tuple[list[str], list[str]]]:
    """Return, per album, its stored titles text and its tracks' folded titles, both sorted."""
    rows = await db.fetchall("SELECT y.titles, (SELECT json_group_array(t.title_fold) FROM tracks t "
                             "WHERE t.album_id = al.id) FROM albums al JOIN album_titles y "
                             "ON y.artist_id = al.artist_id AND y.album_id = al.id ORDER BY al.id")
    assert len(rows) == await db.fetchval("SELECT count(*) FROM album_titles") == await db.fetchval(
        "SELECT count(*) FROM albums")
    return [(sorted(filter(None, text.split("\n"))), sorted(filter(None, json.loads(titles))))
            for text, titles in rows]


async def test_album_titles_follow_their_tracks(core, monkeypatch):
    """The per-album titles text (migration 0024) holds exactly its tracks' titles through
    new tracks, a retitled file, a move and removals, and the title-and-artist search that
    filters by it finds a retitled track by its new title only."""
    from dataclasses import replace

    from soulsync_core.library import queries as queries_module

    store, db, queries = core.library.store, core.db, core.library.queries
    monkeypatch.setattr(queries_module, "_ARTIST_FIRST_MAX", 10**6)  # always the album walk

    def same_everywhere(pairs: list[tuple[list[str], list[str]]]) -> bool:
        return all(text == titles for text, titles in pairs)

    async def titles(title: str, artist: str) -> list[str]:
        return [t["title"] for t in json.loads(
            (await queries.search_tracks(title, artist, 50)).data)]

    before = await album_titles_and_tracks(db)
    assert same_everywhere(before) and sum(len(titles) for _, titles in before) == 49
    old = record("Artist 1", "Album 0", "Harbor Night 1 0 2", number=2, genres=["Rock"])
    assert await titles("night 1 0 2", "artist 1") == ["Harbor Night 1 0 2"]
    # The same file, retagged: its row is updated in place, with a new title.
    await store.save([replace(old, title="Lighthouse Keeper").finish(),
                      record("Artist 1", "Album 0", "Brand New", number=7)])
    moved_id = await store.track_id("/music/Artist 2/Album 1", "01 - Harbor Night 2 1 1.flac")
    assert moved_id is not None
    await store.save([], moved={moved_id: record("Artist 3", "Album 9", "Moved Harbor", year=1990)})
    removed = await db.fetchall("SELECT id FROM tracks WHERE artist_id = "
                                "(SELECT id FROM artists WHERE name = 'Artist 4')")
    await store.remove_tracks([row[0] for row in removed][:4])  # an album and a half
    after = await album_titles_and_tracks(db)
    assert same_everywhere(after) and ["lighthouse keeper"] in [
        [t for t in titles if t.startswith("lighthouse")] for _, titles in after]
    assert await titles("lighthouse", "artist 1") == ["Lighthouse Keeper"]
    assert await titles("night 1 0 2", "artist 1") == []
    assert await titles("moved harbor", "artist 3") == ["Moved Harbor"]


async def test_artist_letter_counts_follow_the_artists(api, key, core):
    """The per-letter artist counts (migration 0025) equal counting the artists through new
    artists, a new letter, and an artist removed with its last track; a letter page's total
    is that count."""
    store, db = core.library.store, core.db

    async def counts_agree() -> dict[str, int]:
        kept = dict(await db.fetchall("SELECT letter, artists FROM artist_letters WHERE artists > 0"))
        assert kept == dict(await db.fetchall("SELECT letter, count(*) FROM artists GROUP BY letter"))
        return kept

    assert (await counts_agree())["a"] == 8
    await store.save([record("Zebra Crossing", "Z", "Zed"), record("99 Luftballons", "N", "Nena"),
                      record("Another Artist", "A", "Again")])
    assert (await counts_agree())["z"] == 1
    removed = await db.fetchall("SELECT id FROM tracks WHERE artist_id IN "
                                "(SELECT id FROM artists WHERE name IN ('Artist 4', 'Zebra Crossing'))")
    await store.remove_tracks([row[0] for row in removed])
    counts = await counts_agree()
    assert counts["a"] == 8 and "z" not in counts
    reply = await api.get(f"{A}/artists", params={"letter": "a", "limit": "2"})
    assert reply.json["pagination"]["total"] == 8
    reply = await api.get(f"{A}/artists", params={"letter": "z"})
    assert reply.json["pagination"]["total"] == 0 and reply.data["artists"] == []


async def test_artist_search_gives_the_same_page_both_ways(core, monkeypatch):
    from soulsync_core.library import queries as queries_module

    queries = core.library.queries
    await core.library.store.save([record(f"Nightly {n}", "X", "Y") for n in range(30)])
    for term, offset, limit in [("night", 0, 5), ("night", 3, 4), ("rtist", 6, 50), ("ist 7", 0, 50),
                                ("none", 0, 5), ("nightly 2", 25, 10)]:
        pages = []
        for ratio in (0, 10**9):  # never walk; always walk
            monkeypatch.setattr(queries_module, "_WALK_RATIO", ratio)
            pages.append(await queries.artists(search=term, letter="all", watchlist="all",
                                               offset=offset, limit=limit))
        assert pages[0] == pages[1], term
    assert pages[0] == (EMPTY, 11)  # "nightly 2" and "nightly 20" to "nightly 29"


async def test_a_title_and_artist_search_walks_the_artists_up_to_a_share_of_the_library(
        core, monkeypatch):
    """The bound on the artists' tracks to walk grows with the library (the trigram index's cost
    does). The tracks are estimated from the library's mean, 49 tracks / 9 artists = 5 each:
    with a floor of 1 track and a share of 1/2 (24), "Artist 1" (5) is walked, the 8 "Artist"
    names (40) go to the trigram index of tracks. Both ways give the same tracks; emptying that
    index shows which way each search took."""
    from soulsync_core.library import queries as queries_module

    queries = core.library.queries
    monkeypatch.setattr(queries_module, "_ARTIST_FIRST_MAX", 1)
    monkeypatch.setattr(queries_module, "_ARTIST_FIRST_SHARE", 2)
    by_index = await queries.search_tracks("night", "artist", 50)
    one_artist = await queries.search_tracks("night", "artist 1", 50)
    monkeypatch.setattr(queries_module, "_ARTIST_FIRST_SHARE", 1)  # 49
    walked = await queries.search_tracks("night", "artist", 50)
    assert walked == by_index and len(walked) == 48 and len(one_artist) == 6

    await core.db.execute("INSERT INTO tracks_fts (tracks_fts) VALUES ('delete-all')")
    assert await queries.search_tracks("night", "artist", 50) == walked  # share 1/1: walked
    monkeypatch.setattr(queries_module, "_ARTIST_FIRST_SHARE", 2)
    assert await queries.search_tracks("night", "artist 1", 50) == one_artist  # walked
    assert await queries.search_tracks("night", "artist", 50) == EMPTY  # the emptied index


def test_the_answer_cache_is_bounded_in_bytes(tmp_path):
    import sqlite3

    from soulsync_core.db.changes import ChangeCounter
    from soulsync_core.library.queries import AnswerCache

    path = tmp_path / "x.db"
    sqlite3.connect(path).close()
    changes = ChangeCounter(path)
    cache = AnswerCache(changes, 10_000)
    version = cache.version()
    for n in range(100):
        cache.put(f"/k{n}", version, b"x" * 500, 500)
        assert cache.size <= 10_000
    assert cache.get("/k99", version) == b"x" * 500 and cache.get("/k0", version) is None
    cache.put("/huge", version, b"x" * 5000, 5000)  # over a quarter of the cache: not kept
    assert cache.get("/huge", version) is None
    writer = sqlite3.connect(path)
    writer.execute("CREATE TABLE t (x)")
    writer.commit()
    writer.close()
    assert cache.version() != version and cache.size == 0
    assert cache.get("/k99", cache.version()) is None
    changes.close()


def test_the_answer_cache_holds_no_read_transaction(tmp_path):
    """Its version check must not pin a WAL snapshot: that would stop every checkpoint."""
    import sqlite3

    from soulsync_core.db.changes import ChangeCounter
    from soulsync_core.library.queries import AnswerCache

    path = tmp_path / "x.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("CREATE TABLE t (x)")
    changes = ChangeCounter(path)
    cache = AnswerCache(changes, 10_000)
    versions = set()
    for _ in range(3):
        writer.execute("INSERT INTO t VALUES (1)")
        versions.add(cache.version())
    assert len(versions) == 3
    assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0][0] == 0  # not busy
    assert (tmp_path / "x.db-wal").stat().st_size == 0
    changes.close()
    writer.close()
