"""Pure parts of the download pipeline: the path template and its sanitising, the monitor's
verdicts on transfers, the settings that configure them."""

from __future__ import annotations

import pytest

from soulsync_core.config import SettingError, core_schema
from soulsync_core.downloads.naming import (
    DEFAULT_PATH_TEMPLATE,
    MAX_COMPONENT_BYTES,
    check_path_template,
    render_path,
    sanitize_component,
)
from soulsync_core.downloads.transfers import VANISH_POLLS, Limits, Watch, judge
from soulsync_core.downloads.wanted import guess_source
from soulsync_core.models import Transfer

VALUES = {"albumartist": "Daft Punk", "artist": "Daft Punk, Romanthony", "album": "Discovery",
          "title": "One More Time", "track": "01", "disc": "1", "year": "2001", "ext": "flac"}


def test_default_template() -> None:
    assert render_path(DEFAULT_PATH_TEMPLATE, VALUES) == ["Daft Punk", "Discovery", "01 - One More Time.flac"]


def test_every_variable_and_the_braced_form() -> None:
    template = "${artist}/$year - $album/CD$disc/$track $title"
    assert render_path(template, VALUES) == ["Daft Punk, Romanthony", "2001 - Discovery", "CD1",
                                             "01 One More Time.flac"]


def test_empty_values_leave_no_dangling_dash_and_get_fallbacks() -> None:
    values = {**VALUES, "track": "", "albumartist": "", "album": "", "year": ""}
    assert render_path("$albumartist/$album ($year)/$track - $title.$ext", values) == [
        "Unknown Artist", "Unknown Album", "One More Time.flac"]


@pytest.mark.parametrize(("value", "component"), [
    ("AC/DC", "AC_DC"),
    ("..", "_"),
    (".", "_"),
    ("../../etc", "_.._.._etc"),
    (".hidden", "_.hidden"),
    ("C:\\Windows", "C__Windows"),
    ('a<b>c:"d|e?f*g', "a_b_c__d_e_f_g"),
    ("nul\x00byte\nline", "nul_byte_line"),
    ("CON", "_CON"),
    ("lpt1.txt", "_lpt1.txt"),
    ("Trailing dots...", "Trailing dots"),
    ("  spaced   out  ", "spaced out"),
    ("", "_"),
])
def test_sanitize_component(value: str, component: str) -> None:
    assert sanitize_component(value) == component


def test_long_names_are_cut_to_bytes_on_a_character_boundary() -> None:
    title = "Ø" * 300  # two bytes each
    [_, _, name] = render_path(DEFAULT_PATH_TEMPLATE, {**VALUES, "title": title})
    assert name.endswith(".flac") and len(name.encode()) <= MAX_COMPONENT_BYTES
    assert name.removeprefix("01 - ").removesuffix(".flac") == "Ø" * ((MAX_COMPONENT_BYTES - 10) // 2)
    folder = render_path(DEFAULT_PATH_TEMPLATE, {**VALUES, "album": "x" * 1000})[1]
    assert len(folder.encode()) == MAX_COMPONENT_BYTES


def test_the_extension_always_ends_the_file_name() -> None:
    assert render_path("$artist/$title", {**VALUES, "ext": "MP3"}) == ["Daft Punk, Romanthony",
                                                                       "One More Time.mp3"]
    assert render_path("$title.$ext", {**VALUES, "ext": "../x"})[-1] == "One More Time.x"


@pytest.mark.parametrize(("template", "problem"), [
    ("", "must not be empty"),
    ("/music/$title", "must be relative to library.music_dir"),
    ("~/$title", "must be relative to library.music_dir"),
    ("C:\\$title", "must be relative to library.music_dir"),
    ("$artist/../$title", "has an empty, '.' or '..' folder"),
    ("$artist//$title", "has an empty, '.' or '..' folder"),
    ("$artist/$name", "unknown variable $name; the variables are $albumartist, $artist"),
    ("$artist/$ title", "has a '$' that starts no variable"),
])
def test_bad_templates_are_refused_with_what_to_write(template: str, problem: str) -> None:
    assert problem in (check_path_template(template) or "")


def test_settings_validate_the_template_and_the_quality_profile() -> None:
    schema = core_schema()
    assert schema.coerce("library.path_template", "$albumartist/$year - $album/$track $title") == (
        "$albumartist/$year - $album/$track $title")
    with pytest.raises(SettingError, match=r"library.path_template: must be relative"):
        schema.coerce("library.path_template", "/etc/$title")
    with pytest.raises(SettingError, match=r"downloads.quality_profile: .*unknown format 'flacc'"):
        schema.coerce("downloads.quality_profile", ["flacc"])
    assert schema["downloads.quality_profile"].default == ["flac", "mp3>=320"]


def test_source_of_a_bare_id() -> None:
    assert guess_source("697195462") == "itunes"
    assert guess_source("4iV5W9uYEdYUVa79Axb7Rh") == "spotify"
    assert guess_source("soul:abc") is None and guess_source(None) is None


# ------------------------------------------------------------------------------ verdicts

LIMITS = Limits(queued_timeout=60, stalled_timeout=30)


def transfer(state: str, done: int = 0, error: str | None = None) -> Transfer:
    return Transfer("id", "user", "file.flac", state, size=100, bytes_transferred=done,  # type: ignore[arg-type]
                    percent=float(done), error=error)


def test_queued_too_long_is_given_up() -> None:
    watch = Watch(enqueued_at=0)
    assert judge(transfer("queued"), watch, 10, 10, LIMITS).action == "wait"
    assert judge(transfer("queued"), watch, 70, 70, LIMITS).action == "wait"
    verdict = judge(transfer("queued"), watch, 70.1, 70.1, LIMITS)
    assert (verdict.action, verdict.reason) == ("give_up", "still queued by the peer after 60 s")


def test_stall_clock_starts_when_the_transfer_starts_and_resets_on_progress() -> None:
    watch = Watch(enqueued_at=0)
    judge(transfer("queued"), watch, 0, 0, LIMITS)
    assert judge(transfer("downloading"), watch, 50, 50, LIMITS).action == "wait"  # 50 s queued first
    assert judge(transfer("downloading", 10), watch, 75, 75, LIMITS).action == "wait"
    assert judge(transfer("downloading", 10), watch, 105, 105, LIMITS).action == "wait"
    verdict = judge(transfer("downloading", 10), watch, 105.5, 105.5, LIMITS)
    assert (verdict.action, verdict.reason) == ("give_up", "stuck at 10 % for 30 s")


def test_finished_states() -> None:
    assert judge(transfer("completed", 100), Watch(0), 1, 1, LIMITS).action == "import"
    failed = judge(transfer("failed", error="Rejected: File not shared."), Watch(0), 1, 1, LIMITS)
    assert (failed.action, failed.reason) == ("give_up", "slskd reported Rejected: File not shared.")
    assert judge(transfer("cancelled"), Watch(0), 1, 1, LIMITS).reason == "cancelled in slskd"


def test_vanished_only_counts_lists_requested_after_the_enqueue() -> None:
    watch = Watch(enqueued_at=10)
    for _ in range(VANISH_POLLS + 1):
        assert judge(None, watch, 11, 9, LIMITS).action == "wait"  # list older than the enqueue
    assert judge(None, watch, 12, 12, LIMITS).action == "wait"
    assert judge(transfer("queued"), watch, 13, 13, LIMITS).action == "wait"  # seen again: reset
    assert judge(None, watch, 14, 14, LIMITS).action == "wait"
    verdict = judge(None, watch, 15, 15, LIMITS)
    assert (verdict.action, verdict.reason) == ("give_up", "vanished from slskd's transfer list")


# ------------------------------------------------------------------------------ tagging


@pytest.mark.parametrize("kind", ["flac", "mp3", "m4a", "alac", "ogg", "opus", "wav", "aiff"])
def test_written_tags_are_read_back_by_the_library_scanner(tmp_path, kind: str) -> None:
    from soulsync_core.downloads.importer import tag_set
    from soulsync_core.downloads.models import Wanted
    from soulsync_core.downloads.tagging import write_tags
    from soulsync_core.library.tags import read_track
    from tests import audio

    path = audio.make(tmp_path / "Some" / "Where" / f"file{audio.EXTENSIONS[kind]}", kind,
                      title="Peer's title", artist="Peer's artist", genre="Peer genre")
    wanted = Wanted("One More Time", ["Daft Punk", "Romanthony"], album="Discovery",
                    track_number=1, track_total=14, disc_number=1, release_date="2001-03-12",
                    isrc="GBDUW0000053", track_id="4iV5W9uYEdYUVa79Axb7Rh", album_id="2noR",
                    source="spotify")
    write_tags(str(path), tag_set(wanted))
    record = read_track(str(path), str(tmp_path), path.stat().st_size, 0)
    assert (record.title, record.artist, record.track_artist, record.album) == (
        "One More Time", "Daft Punk", "Daft Punk, Romanthony", "Discovery")
    assert (record.track_number, record.disc_number, record.year, record.isrc) == (1, 1, 2001, "GBDUW0000053")
    assert (record.spotify_track_id, record.spotify_album_id) == ("4iV5W9uYEdYUVa79Axb7Rh", "2noR")
    assert record.genres == []  # the peer's own tags are gone


async def test_artist_dash_title_query_is_searched_without_the_dash():
    from soulsync_core.downloads.wanted import resolve_query
    from soulsync_core.models import Track

    asked: list[str] = []

    class Search:
        async def search(self, kind: str, query: str, limit: int, source: str) -> tuple[list, str]:
            asked.append(query)
            return [Track("1", "One More Time", ["Daft Punk"], "Discovery", 320000)], "itunes"

    wanted = await resolve_query(Search(), "Daft Punk - One More Time")  # type: ignore[arg-type]
    assert asked == ["Daft Punk One More Time"]
    assert wanted is not None
