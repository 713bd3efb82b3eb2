"""LibraryMatcher: finding wanted tracks in a real (small) library, through the indexes only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from soulsync_core.downloads.models import Wanted
from soulsync_core.library import matcher as matcher_module
from soulsync_core.library.matcher import LibraryMatch, LibraryMatcher, matcher_statements
from tests.library_fixtures import open_core, record

LIBRARY_TABLES = ("tracks", "albums", "artists", "folders")
# Plan lines that read a library table row by row (aliases as the matcher writes them).
_TABLE_SCAN = re.compile(r"^SCAN (?:tracks|albums|artists|folders|t|al|ar|a|f)\b(?! VIRTUAL)")


@pytest.fixture
async def core(data_dir: Path, tmp_path: Path):
    core = await open_core(data_dir, tmp_path / "music")
    await core.library.store.save([
        record("Daft Punk", "Discovery", "One More Time", duration=320_000, spotify_track_id="sp-omt",
               isrc="GBDUW0000053"),
        record("Daft Punk", "Random Access Memories", "Get Lucky (feat. Pharrell Williams & Nile Rodgers)",
               track_artist="Daft Punk feat. Pharrell Williams", duration=369_000, number=8),
        record("Queen", "A Night at the Opera", "Bohemian Rhapsody", duration=355_000, number=11),
        record("Queen", "Live at Wembley '86", "Bohemian Rhapsody", duration=357_000, number=7),
        record("Björk", "Homogenic", "Jóga", duration=305_000, number=2),
        record("The Beatles", "Help!", "Yesterday", duration=125_000, number=13),
        record("Various Artists", "Notting Hill", "Ain't No Sunshine", track_artist="Bill Withers",
               duration=125_000, number=4),
        record("Guns N' Roses", "Appetite for Destruction", "Sweet Child O' Mine", duration=356_000,
               number=9),
        record("The Jimi Hendrix Experience", "Are You Experienced", "Purple Haze", duration=171_000,
               number=1),
        # The same recording twice: a FLAC and an MP3 copy.
        record("Radiohead", "OK Computer", "Karma Police", duration=264_000, number=6,
               folder="/music/Radiohead/OK Computer [MP3]", format="MP3", bitrate=320),
        record("Radiohead", "OK Computer", "Karma Police", duration=264_000, number=6,
               folder="/music/Radiohead/OK Computer", format="FLAC", bitrate=900, bit_depth=16),
    ])
    yield core
    await core.close()


@pytest.fixture
def matcher(core) -> LibraryMatcher:
    return LibraryMatcher(core.db, core.settings)


async def _track_id(core, title: str, album: str) -> int:
    return int(await core.db.fetchval(
        "SELECT t.id FROM tracks t JOIN albums al ON al.id = t.album_id WHERE t.title = ? AND al.title = ?",
        (title, album)))


async def test_a_provider_id_wins_whatever_the_names(core, matcher):
    found = await matcher.match(Wanted("Something Else", ["Someone"], source="spotify", track_id="sp-omt"))
    assert found == LibraryMatch(await _track_id(core, "One More Time", "Discovery"), 1.0, "id",
                                 "/music/Daft Punk/Discovery/01 - One More Time.flac")


async def test_an_isrc_in_any_spelling_finds_the_recording(core, matcher):
    found = await matcher.match(Wanted("One More Time - Radio Edit", ["Daft Punk"], isrc="gb-duw-00-00053",
                                       source="itunes", track_id="123"))
    assert found is not None and (found.method, found.confidence) == ("isrc", 1.0)
    assert found.track_id == await _track_id(core, "One More Time", "Discovery")


async def test_exact_title_and_artist(core, matcher):
    found = await matcher.match(Wanted("Bohemian Rhapsody", ["Queen"], "A Night at the Opera",
                                       duration_ms=354_000))
    assert found is not None and found.method == "exact" and found.confidence >= 0.95
    assert found.track_id == await _track_id(core, "Bohemian Rhapsody", "A Night at the Opera")


@pytest.mark.parametrize(("wanted", "title", "album"), [
    (Wanted("Yesterday - Remastered 2009", ["Beatles"], "Help! (Remastered)", duration_ms=126_000),
     "Yesterday", "Help!"),
    (Wanted("JOGA", ["Bjork"], "Homogenic", duration_ms=306_000), "Jóga", "Homogenic"),
    (Wanted("Get Lucky", ["Pharrell Williams", "Daft Punk"], "Random Access Memories",
            duration_ms=368_000), "Get Lucky (feat. Pharrell Williams & Nile Rodgers)",
     "Random Access Memories"),
    (Wanted("Ain't No Sunshine", ["Bill Withers"], "Just As I Am", duration_ms=125_000),
     "Ain't No Sunshine", "Notting Hill"),
    (Wanted("Sweet Child o Mine", ["Guns N Roses"], duration_ms=355_000),
     "Sweet Child O' Mine", "Appetite for Destruction"),
    (Wanted("Purple Haze", ["Jimi Hendrix"], duration_ms=170_000), "Purple Haze", "Are You Experienced"),
])
async def test_fuzzy_matches_of_the_same_recording(core, matcher, wanted, title, album):
    found = await matcher.match(wanted)
    assert found is not None and found.method in ("exact", "fuzzy")
    assert found.track_id == await _track_id(core, title, album)


async def test_a_live_version_is_not_the_studio_one(core, matcher):
    live = await matcher.match(Wanted("Bohemian Rhapsody - Live at Wembley '86", ["Queen"],
                                      "Live at Wembley '86", duration_ms=356_000))
    assert live is not None and live.track_id == await _track_id(core, "Bohemian Rhapsody",
                                                                 "Live at Wembley '86")
    assert await matcher.match(Wanted("Yesterday (Live)", ["The Beatles"], duration_ms=125_000)) is None
    assert await matcher.match(Wanted("Jóga - Live", ["Björk"], "Homogenic", duration_ms=305_000)) is None


async def test_no_match_gives_none(matcher):
    assert await matcher.match(Wanted("Nothing Like This", ["Nobody At All"], duration_ms=200_000)) is None
    assert await matcher.match(Wanted("One More Time", ["Daft Punk"], duration_ms=360_000)) is None
    assert await matcher.match(Wanted("Harder Better Faster Stronger", ["Daft Punk"])) is None
    assert await matcher.match(Wanted("One More Time", [])) is None


async def test_the_better_file_wins_a_tie(matcher):
    found = await matcher.match(Wanted("Karma Police", ["Radiohead"], "OK Computer", duration_ms=264_000))
    assert found is not None and found.path == "/music/Radiohead/OK Computer/06 - Karma Police.flac"


@pytest.mark.parametrize("batch", [2, matcher_module.BATCH])
async def test_match_many_keeps_the_order(core, matcher, monkeypatch, batch):
    monkeypatch.setattr(matcher_module, "BATCH", batch)
    wanted = [
        Wanted("Nothing Like This", ["Nobody"]),
        Wanted("Joga", ["Björk"]),
        Wanted("x", ["y"], source="spotify", track_id="sp-omt"),
        Wanted("Yesterday (Live)", ["The Beatles"], duration_ms=125_000),
        Wanted("Bohemian Rhapsody", ["Queen"], "A Night at the Opera", duration_ms=355_000),
    ]
    found = await matcher.match_many(wanted)
    assert [f.track_id if f else None for f in found] == [
        None, await _track_id(core, "Jóga", "Homogenic"), await _track_id(core, "One More Time", "Discovery"),
        None, await _track_id(core, "Bohemian Rhapsody", "A Night at the Opera")]
    assert await matcher.match_many([]) == []


async def test_every_matcher_query_uses_indexes(core):
    for sql in matcher_statements():
        plan = await core.db.fetchall(f"EXPLAIN QUERY PLAN {sql}", ["[]"] * sql.count("?"))
        details = [row[3] for row in plan]
        assert details, sql
        assert not [d for d in details if _TABLE_SCAN.match(d)], (sql, details)
        # An FTS table is only ever read through a MATCH (index ":M…"), never walked whole.
        assert not [d for d in details if "_fts VIRTUAL TABLE" in d and ":M" not in d], details
        # The library tables are reached by SEARCH (an index or the rowid) or an FTS match.
        assert any(d.startswith("SEARCH ") for d in details), details


async def test_short_and_odd_names_are_safe(matcher):
    odd = [Wanted("One", ["U2"]), Wanted("?", ["?"]), Wanted('Say "Hi"', ['The "Quoted" Band']),
           Wanted("Intro", ["Various Artists"]), Wanted("A", ["B"], album_artist="Various Artists")]
    assert await matcher.match_many(odd) == [None] * len(odd)
