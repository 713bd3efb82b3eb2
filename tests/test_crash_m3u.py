"""A playlist file survives a power cut: its data is on disk before it takes the real name.

A SIGKILL cannot show this (the page cache outlives the process), so the test records the
order of ``fsync`` and ``replace`` calls: the temporary file must be flushed before the rename.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from soulsync_core.playlists import m3u


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        seen.append(("replace", str(source)))
        real_replace(source, target)

    monkeypatch.setattr(m3u.os, "fsync", fsync)
    monkeypatch.setattr(m3u.os, "replace", replace)
    return seen


def test_a_written_playlist_is_flushed_before_its_rename(tmp_path: Path,
                                                         calls: list[tuple[str, str]]) -> None:
    playlist = tmp_path / "Playlists" / "Mix.m3u8"
    assert m3u.write_playlist(playlist, [m3u.Entry("../a/01 - A.flac", 3, "A - A")],
                              append=False) == 1
    temporary = str(playlist.with_name(".Mix.m3u8.tmp"))
    assert calls == [("fsync", temporary), ("replace", temporary)]
    assert "../a/01 - A.flac" in playlist.read_text()


def test_a_retargeted_playlist_is_flushed_before_its_rename(tmp_path: Path,
                                                            calls: list[tuple[str, str]]) -> None:
    playlist = tmp_path / "Playlists" / "Mix.m3u8"
    m3u.write_playlist(playlist, [m3u.Entry("../a/01 - A.mp3", 3, "A - A")], append=False)
    calls.clear()
    assert m3u.retarget(playlist, str(tmp_path / "a" / "01 - A.mp3"),
                        str(tmp_path / "a" / "01 - A.flac")) == 1
    temporary = str(playlist.with_name(".Mix.m3u8.tmp"))
    assert calls == [("fsync", temporary), ("replace", temporary)]
    assert "../a/01 - A.flac" in playlist.read_text()
