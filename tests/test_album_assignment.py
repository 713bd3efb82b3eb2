"""Assignment of folder files to tracklists, and folder verdicts (pure functions)."""

from __future__ import annotations

import itertools

import pytest

from soulsync_core.downloads.folder_scoring import folder_of, group_folders, score_folders
from soulsync_core.downloads.models import Wanted
from soulsync_core.matching import parse_quality_profile
from soulsync_core.matching.assignment import assign
from soulsync_core.models import Candidate

PROFILE = parse_quality_profile(["flac", "mp3>=320"], fallback=False)
TITLES = ["One More Time", "Aerodynamic", "Digital Love", "Harder Better Faster Stronger"]
LENGTHS = [320, 212, 301, 224]


def tracklist(titles=TITLES, lengths=LENGTHS, disc: int | None = None) -> list[Wanted]:
    return [Wanted(t, ["Daft Punk"], "Discovery", duration_ms=s * 1000, track_number=i + 1,
                   disc_number=disc) for i, (t, s) in enumerate(zip(titles, lengths, strict=True))]


def files(names: list[str], lengths: list[int], *, user: str = "flacfan",
          folder: str = "@@x\\Music\\Daft Punk\\2001 - Discovery", ext: str = "flac",
          bitrate: int | None = None) -> list[Candidate]:
    return [Candidate(user, f"{folder}\\{n}.{ext}", 30_000_000, ext, bitrate, 16, 44100, s, True, 0,
                      2_000_000) for n, s in zip(names, lengths, strict=True)]


def best(found, tracks, min_coverage=1.0):
    return score_folders(found, tracks, "Discovery", PROFILE, min_coverage=min_coverage,
                         tolerance_s=5)[0]


def test_assign_is_optimal_not_greedy():
    # Greedy takes column 0 for row 0 (cost 1) and leaves row 1 with cost 10: total 11.
    cost = [[1, 2], [1, 10]]
    assert assign(cost) == [1, 0]


@pytest.mark.parametrize("rows,cols", [(3, 3), (4, 6), (6, 4), (1, 1), (5, 5)])
def test_assign_matches_brute_force(rows, cols):
    cost = [[((r * 7 + c * 13) % 11) / 3 for c in range(cols)] for r in range(rows)]
    got = assign(cost)
    total = sum(cost[r][c] for r, c in enumerate(got) if c is not None)
    if rows <= cols:
        brute = min(sum(cost[r][p[r]] for r in range(rows))
                    for p in itertools.permutations(range(cols), rows))
    else:
        brute = min(sum(cost[p[c]][c] for c in range(cols))
                    for p in itertools.permutations(range(rows), cols))
    assert total == pytest.approx(brute)
    assert len({c for c in got if c is not None}) == min(rows, cols)


def test_assign_empty():
    assert assign([]) == []
    assert assign([[], []]) == [None, None]


def test_numbers_only_file_names():
    folder = best(files(["01", "02", "03", "04"], LENGTHS), tracklist())
    assert folder.accepted, folder.reasons
    assert [(m.track, m.filename.rsplit("\\", 1)[1]) for m in folder.matched] == [
        (0, "01.flac"), (1, "02.flac"), (2, "03.flac"), (3, "04.flac")]
    assert all(m.title_score is None for m in folder.matched)


def test_track_nn_file_names():
    folder = best(files(["Track 01", "Track 02", "Track 03", "Track 04"], LENGTHS), tracklist())
    assert folder.accepted, folder.reasons
    assert [m.track for m in folder.matched] == [0, 1, 2, 3]
    assert [m.filename.rsplit("\\", 1)[1] for m in folder.matched][3] == "Track 04.flac"


def test_reordered_numbering_follows_titles():
    # The peer numbered the files in another order: titles and lengths decide.
    names = ["01 - Digital Love", "02 - One More Time", "03 - Harder Better Faster Stronger",
             "04 - Aerodynamic"]
    folder = best(files(names, [301, 320, 224, 212]), tracklist())
    assert folder.accepted, folder.reasons
    got = {m.track: m.filename.rsplit("\\", 1)[1] for m in folder.matched}
    assert got == {0: "02 - One More Time.flac", 1: "04 - Aerodynamic.flac",
                   2: "01 - Digital Love.flac", 3: "03 - Harder Better Faster Stronger.flac"}


def test_hidden_bonus_track_is_extra_not_counted():
    names = ["01 - One More Time", "02 - Aerodynamic", "03 - Digital Love",
             "04 - Harder Better Faster Stronger", "05 - Hidden Track"]
    folder = best(files(names, [*LENGTHS, 400]), tracklist())
    assert folder.accepted and folder.coverage == 1.0
    assert [e.rsplit("\\", 1)[1] for e in folder.extra] == ["05 - Hidden Track.flac"]


def test_two_discs_are_one_folder():
    tracks = tracklist(TITLES[:2], LENGTHS[:2], disc=1) + [
        Wanted(t, ["Daft Punk"], "Discovery", duration_ms=s * 1000, track_number=i + 1, disc_number=2)
        for i, (t, s) in enumerate(zip(TITLES[2:], LENGTHS[2:], strict=True))]
    base = "@@x\\Music\\Daft Punk\\2001 - Discovery"
    found = (files(["01 - One More Time", "02 - Aerodynamic"], LENGTHS[:2], folder=base + "\\CD1")
             + files(["01 - Digital Love", "02 - Harder Better Faster Stronger"], LENGTHS[2:],
                     folder=base + "\\CD2"))
    assert folder_of(found[2].filename) == base
    assert len(group_folders(found)) == 1
    folder = best(found, tracks)
    assert folder.accepted, folder.reasons
    assert {m.track: m.filename.split("\\")[-2] for m in folder.matched} == {
        0: "CD1", 1: "CD1", 2: "CD2", 3: "CD2"}


def test_missing_track_refused_below_coverage_and_allowed_with_less():
    found = files(["01 - One More Time", "02 - Aerodynamic", "03 - Digital Love"], LENGTHS[:3])
    folder = best(found, tracklist())
    assert not folder.accepted and folder.missing == [3]
    assert folder.reasons == ["covers 3 of 4 tracks (downloads.album_min_coverage is 1)"]
    assert best(found, tracklist(), min_coverage=0.75).accepted


def test_mixed_bitrates_and_editions_are_refused():
    names = ["01 - One More Time", "02 - Aerodynamic", "03 - Digital Love",
             "04 - Harder Better Faster Stronger"]
    mixed = files(names[:2], LENGTHS[:2], user="fast", ext="mp3", bitrate=320,
                  folder="@@f\\Discovery") + files(names[2:], LENGTHS[2:], user="fast", ext="mp3",
                                                   bitrate=192, folder="@@f\\Discovery")
    live = files(names, LENGTHS, user="liveuser", folder="@@l\\Discovery (Live at Wembley)")
    remaster = files(names, LENGTHS, user="remaster", folder="@@r\\Discovery (2021 Remaster)")
    good = files(names, LENGTHS, user="slow")
    verdicts = {f.username: f for f in score_folders(mixed + live + remaster + good, tracklist(),
                                                     "Discovery", PROFILE, min_coverage=1.0,
                                                     tolerance_s=5)}
    assert verdicts["slow"].accepted
    assert verdicts["fast"].reasons[0].startswith("mixes formats or bitrates: mp3 192 kbps, mp3 320 kbps")
    assert "different edition (live)" in verdicts["liveuser"].reasons[0]
    assert "remaster" in verdicts["remaster"].reasons[0]


def test_a_vbr_folder_is_one_bitrate_tier():
    names = ["01 - One More Time", "02 - Aerodynamic", "03 - Digital Love",
             "04 - Harder Better Faster Stronger"]
    found = [c for i, rate in enumerate([245, 251, 238, 262])
             for c in files([names[i]], [LENGTHS[i]], ext="mp3", bitrate=rate)]
    profile = parse_quality_profile(["flac", "mp3>=220"], fallback=False)
    (folder,) = score_folders(found, tracklist(), "Discovery", profile, min_coverage=1.0,
                              tolerance_s=5)
    assert folder.accepted, folder.reasons
    assert folder.quality == "mp3 V0/256 kbps"


def test_wrong_titles_are_not_assigned_on_number_alone():
    names = ["01 - Something Else", "02 - Not This", "03 - Nor This", "04 - Other"]
    folder = best(files(names, LENGTHS), tracklist())
    assert folder.coverage == 0.0 and not folder.accepted


def test_cover_image_found():
    cover = Candidate("flacfan", "@@x\\Music\\Daft Punk\\2001 - Discovery\\Folder.jpg", 50_000)
    found = [*files(["01 - One More Time"], [320]), cover]
    folder = best(found, tracklist(TITLES[:1], LENGTHS[:1]))
    assert folder.cover is not None and folder.cover.endswith("Folder.jpg")
    assert folder.extra == []
