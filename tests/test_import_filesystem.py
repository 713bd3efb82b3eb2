"""The import's file system steps as a NAS has them: other owners, read-only folders, other
file systems, full disks, symbolic links; and asking for a track the library has.

The permission cases run the daemon as ``nobody`` in a subprocess (:mod:`tests.download_as_user`),
because root ignores file modes; the fake slskd, in this process, writes slskd's folder as root,
i.e. as another user. Everything else runs in process, driven step by step as in
test_downloads.py.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mutagen.flac
import pytest

import soulsync_slskd.plugin
from soulsync_core.db import DB_FILENAME
from soulsync_core.downloads import importer
from tests import audio
from tests.daemon_process import clean_env
from tests.download_fixtures import (
    ARTIST,
    FLAC_FAST,
    TITLE,
    TRACK,
    ManualClock,
    environ,
    files_under,
    flac,
    live_version_first,
    metadata_plugin,
    open_api,
    service,
)
from tests.fakes.base import FAULTS
from tests.fakes.slskd import BUSY, SLSKD, Peer, SlskdFake, make_app

D = "/api/v1/downloads"
REPO = Path(__file__).resolve().parent.parent
FINAL = Path(ARTIST) / "Discovery" / "01 - One More Time.flac"
SEARCHES = ("POST", "/api/v0/searches")
ENQUEUE = ("POST", "/api/v0/transfers/downloads/{username}")
ALBUM_FOLDER = r"@@nas\Daft Punk\Discovery"
TITLES = ("One More Time", "Aerodynamic", "Digital Love")
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="starts the daemon as nobody, which needs root")


@pytest.fixture
def slskd_downloads(tmp_path: Path) -> Path:
    path = tmp_path / "slskd" / "downloads"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def make_api(aiohttp_client, tmp_path, server, slskd_downloads, music):
    """Start a daemon on the fake (a second call is a restart: pass the first one's ``key``);
    ``music_dir`` may name another music folder."""

    async def make(music_dir: Path = music, key: str | None = None, **settings: str):
        plugins = [("slskd", soulsync_slskd.plugin), ("meta", metadata_plugin(live_version_first()))]
        return await open_api(aiohttp_client, tmp_path / "data",
                              environ(server, slskd_downloads, music_dir, **settings), plugins,
                              ManualClock(), key)

    return make


@pytest.fixture
async def api(make_api):
    return await make_api()


async def download(api, fake: SlskdFake, body: dict[str, Any] = TRACK) -> dict[str, Any]:
    """Ask for ``body``, let the fake deliver it and the monitor import it; return the detail."""
    queued = await api.post(D, body)
    assert queued.status == 202, queued.json
    await service(api).settle()
    await fake.settle()
    await service(api).poll()
    await service(api).settle()
    return (await api.get(f"{D}/{queued.data['download']['id']}")).data["download"]


async def delivered(api, fake: SlskdFake) -> int:
    """Ask for the track and let the fake deliver it, without the monitor seeing it yet."""
    queued = await api.post(D, TRACK)
    assert queued.status == 202, queued.json
    await service(api).settle()
    await fake.settle()
    return queued.data["download"]["id"]


async def imported(api, download_id: int) -> dict[str, Any]:
    await service(api).poll()
    await service(api).settle()
    return (await api.get(f"{D}/{download_id}")).data["download"]


async def library_tracks(api) -> list[dict[str, Any]]:
    return (await api.get("/api/v1/library/tracks", params={"title": TITLE})).data["tracks"]


# ------------------------------------------------------------------ as an unprivileged user


@pytest.fixture
def nas() -> Iterator[Path]:
    """A folder ``nobody`` can reach (pytest's own temp folders are root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="soulsync-nas-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def album_peer() -> Peer:
    return Peer("nasfan", [flac(rf"{ALBUM_FOLDER}\0{n} - {title}.flac")
                           for n, title in enumerate(TITLES, 1)], upload_speed=5_000_000)


def album_track(number: int) -> dict[str, Any]:
    return {"name": TITLES[number - 1], "artists": [ARTIST], "album": "Discovery",
            "duration_ms": 3000, "track_number": number}


def owned_by_nobody(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam("nobody")
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def python_for(user: pwd.struct_passwd, module: str = "tests.download_as_user") -> list[str]:
    """Return the argv start that runs ``module`` (:mod:`tests.download_as_user`) as ``user``.

    This interpreter when ``user`` may run it; else (a pyenv under /root, say) the system's
    Python of the same version, given this environment's packages. Skips the test without one.
    """
    own = Path(sys.executable).resolve()
    run_module = f"import runpy; runpy.run_module({module!r}, run_name='__main__')"
    if _may_run(user, own):
        return [sys.executable, "-c", run_module]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in ("/usr/bin", "/usr/local/bin"):
        other = Path(folder) / version
        if other.is_file() and _may_run(user, other.resolve()):
            packages = sysconfig.get_paths()["purelib"]
            return [str(other), "-c", f"import site; site.addsitedir({packages!r}); {run_module}"]
    pytest.skip(f"no {version} that {user.pw_name} may run")


def _may_run(user: pwd.struct_passwd, path: Path) -> bool:
    """True when every folder above ``path`` lets ``user`` through (others' x) and it runs."""
    if any(not folder.stat().st_mode & 0o001 for folder in path.parents if folder.stat().st_uid
           != user.pw_uid):
        return False
    return bool(path.stat().st_mode & 0o001)


async def run_as_nobody(nas: Path, module: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m <module> <plan.json>`` as nobody (no supplementary groups); return the
    JSON object it prints."""
    path = nas / "plan.json"
    path.write_text(json.dumps(plan))
    path.chmod(0o644)
    user = pwd.getpwnam("nobody")
    proc = await asyncio.create_subprocess_exec(
        *python_for(user, module), str(path), cwd=REPO,
        env={**clean_env(nas / "home"), "PYTHONDONTWRITEBYTECODE": "1"},
        user=user.pw_uid, group=user.pw_gid, extra_groups=[],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def download_as_nobody(nas: Path, server: Any, slskd_folder: Path, music: Path,
                             tracks: list[dict[str, Any]], **settings: str) -> dict[str, Any]:
    """Run :mod:`tests.download_as_user` as nobody; return its answer.

    ``settings`` are ``downloads.*`` settings, as for :func:`tests.download_fixtures.environ`.
    """
    data = owned_by_nobody(nas / "data")
    return await run_as_nobody(nas, "tests.download_as_user", {
        "data_dir": str(data), "tracks": tracks,
        "environ": environ(server, slskd_folder, music, **settings)})


@NEEDS_ROOT
async def test_slskd_copies_nobody_may_delete_leave_the_import_complete_with_a_note(
        aiohttp_server, nas):
    slskd_folder = nas / "slskd"  # root's, 0755: SoulSync may read it, not delete in it
    slskd_folder.mkdir()
    music = owned_by_nobody(nas / "music")
    server = await aiohttp_server(make_app(slskd_folder, peers=[album_peer()], search_seconds=0.05))
    answer = await download_as_nobody(nas, server, slskd_folder, music,
                                      [album_track(n) for n in (1, 2, 3)])

    sources = [slskd_folder / "Discovery" / f"0{n} - {t}.flac" for n, t in enumerate(TITLES, 1)]
    for done, source in zip(answer["downloads"], sources, strict=True):
        assert (done["status"], done["error"]) == ("completed", None), done
        assert isinstance(done["library_track_id"], int)
        assert done["note"] == (f"slskd's copy {source} was left in place: SoulSync may not delete "
                                "it (Permission denied); delete it in slskd, or give SoulSync's "
                                "user write access to slskd's downloads folder")
    assert files_under(slskd_folder) == sources
    assert files_under(music) == sorted(music / ARTIST / "Discovery" / f"0{n} - {t}.flac"
                                        for n, t in enumerate(TITLES, 1))
    note = answer["status"]["service_details"]["soulseek"]["details"]["note"]
    assert note.startswith("the last 3 downloaded files could not be deleted from the client's "
                           f"folder after their import; the latest: slskd's copy {sources[2]}")
    # Asking again finds the track in the library and downloads nothing.
    again = answer["again"]
    assert again["status"] == 200 and again["data"]["status"] == "already_in_library"
    assert again["data"]["track"]["id"] == answer["downloads"][0]["library_track_id"]
    assert server.app[SLSKD].count(*ENQUEUE) == 3


@NEEDS_ROOT
async def test_a_file_slskd_keeps_unreadable_fails_saying_so_without_trying_others(
        aiohttp_server, nas):
    slskd_folder = nas / "slskd"
    slskd_folder.mkdir()
    music = owned_by_nobody(nas / "music")
    peers = [album_peer(), Peer("second", [flac(r"@@b\Daft Punk\Discovery\01 - One More Time.flac")])]
    server = await aiohttp_server(make_app(slskd_folder, peers=peers, search_seconds=0.05))
    server.app[SLSKD].file_mode = 0o600  # slskd's umask: only its own user reads its files
    answer = await download_as_nobody(nas, server, slskd_folder, music, [album_track(1)])

    [done] = answer["downloads"]
    source = slskd_folder / "Discovery" / "01 - One More Time.flac"
    assert (done["status"], done["final_path"], done["library_track_id"]) == ("failed", None, None)
    assert done["error"] == (f"SoulSync cannot read the downloaded file {source} (Permission "
                             "denied): give its user read access to slskd's downloads folder "
                             "(soulseek.download_path) and its files")
    assert done["attempts"] == 1 and done["tried"] == []
    assert files_under(music) == [] and files_under(slskd_folder) == [source]


@NEEDS_ROOT
async def test_a_folder_slskd_keeps_closed_fails_saying_so(aiohttp_server, nas):
    slskd_folder = nas / "slskd"
    closed = slskd_folder / "Discovery"  # slskd's umask 077 on the folders it makes
    closed.mkdir(parents=True)
    closed.chmod(0o700)
    music = owned_by_nobody(nas / "music")
    server = await aiohttp_server(make_app(slskd_folder, peers=[album_peer()], search_seconds=0.05))
    answer = await download_as_nobody(nas, server, slskd_folder, music, [album_track(1)],
                                      file_wait_seconds="30")

    [done] = answer["downloads"]
    assert (done["status"], done["final_path"]) == ("failed", None)
    assert done["error"] == (
        f"nasfan sent {ALBUM_FOLDER + chr(92) + '01 - One More Time.flac'!r}, but it cannot be imported: "
        f"SoulSync may not look into {closed} (Permission denied): give its user read access to "
        f"slskd's downloads folder {slskd_folder} and the folders slskd makes in it")
    assert files_under(music) == []


@NEEDS_ROOT
async def test_a_music_folder_nobody_may_write_fails_saying_so_and_leaves_nothing(aiohttp_server, nas):
    slskd_folder = nas / "slskd"
    slskd_folder.mkdir()
    music = nas / "music"  # root's, 0755
    music.mkdir()
    server = await aiohttp_server(make_app(slskd_folder, peers=[album_peer()], search_seconds=0.05))
    answer = await download_as_nobody(nas, server, slskd_folder, music, [album_track(1)])

    [done] = answer["downloads"]
    assert (done["status"], done["final_path"], done["library_track_id"]) == ("failed", None, None)
    assert done["error"] == (f"SoulSync may not write {music / ARTIST} (Permission denied): give "
                             "its user write access to the music folder (library.music_dir; "
                             "under systemd also ReadWritePaths=)")
    assert list(music.iterdir()) == []
    assert files_under(slskd_folder) == [slskd_folder / "Discovery" / "01 - One More Time.flac"]


@NEEDS_ROOT
async def test_an_artist_folder_of_another_user_fails_saying_so(aiohttp_server, nas):
    slskd_folder = nas / "slskd"
    slskd_folder.mkdir()
    music = owned_by_nobody(nas / "music")
    (music / ARTIST).mkdir()
    (music / ARTIST).chmod(0o700)  # root's: nobody may not even look inside
    server = await aiohttp_server(make_app(slskd_folder, peers=[album_peer()], search_seconds=0.05))
    answer = await download_as_nobody(nas, server, slskd_folder, music, [album_track(1)])

    [done] = answer["downloads"]
    assert (done["status"], done["final_path"]) == ("failed", None)
    assert done["error"] == (f"SoulSync may not write {music / ARTIST / 'Discovery'} (Permission "
                             "denied): give its user write access to the music folder "
                             "(library.music_dir; under systemd also ReadWritePaths=)")


# ------------------------------------------------------------------------- in process


async def test_a_worse_file_that_may_not_be_deleted_stays_beside_the_new_one(api, fake, music,
                                                                               monkeypatch):
    old = music / ARTIST / "Discovery" / "01 - One More Time.mp3"
    audio.make(old, "mp3", seconds=3, title=TITLE, artist=ARTIST, album="Discovery")
    await api.core.library.import_file(old)
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self == old:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    done = await download(api, fake, {**TRACK, "force": True})
    assert (done["status"], done["final_path"]) == ("completed", str(music / FINAL))
    assert files_under(music) == [music / FINAL, old]
    assert sorted(t["file_path"] for t in await library_tracks(api)) == [str(music / FINAL), str(old)]


async def test_a_full_disk_mid_copy_fails_clearly_and_leaves_nothing_in_the_library(
        api, fake, music, slskd_downloads, monkeypatch):
    download_id = await delivered(api, fake)

    def half_then_full(reader, writer, length=0):
        writer.write(reader.read(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(importer.shutil, "copyfileobj", half_then_full)
    done = await imported(api, download_id)
    assert (done["status"], done["final_path"], done["library_track_id"]) == ("failed", None, None)
    assert done["error"] == (f"the music folder's disk is full (No space left on device) while "
                             f"writing {music / FINAL}; nothing was left in the library: free some "
                             "space, then ask for the track again")
    assert list(music.iterdir()) == []  # neither the half file nor the folders made for it
    assert await library_tracks(api) == []
    assert len(files_under(slskd_downloads)) == 1  # slskd's copy stays for the next try


async def test_a_full_disk_while_tagging_fails_the_import_not_the_file(api, fake, music, monkeypatch):
    download_id = await delivered(api, fake)

    def save(self, *args, **kwargs):
        # mutagen turns the OSError of a failed write into a MutagenError.
        raise mutagen.MutagenError(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(mutagen.flac.FLAC, "save", save)
    done = await imported(api, download_id)
    assert done["status"] == "failed" and done["tried"] == []
    assert done["error"].startswith("the music folder's disk is full (No space left on device)")
    assert list(music.iterdir()) == []


async def test_the_file_reaches_the_disk_before_it_takes_its_final_name(api, fake, music, monkeypatch):
    download_id = await delivered(api, fake)
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source: Any, target: Any) -> None:
        steps.append(("rename", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    done = await imported(api, download_id)
    assert done["status"] == "completed"
    folder = music / FINAL.parent
    assert [s for s in steps if s[1].startswith(str(music))] == [
        ("fsync", str(folder / f".soulsync-{download_id}-{FINAL.name}")),
        ("rename", str(music / FINAL)), ("fsync", str(folder))]


@pytest.fixture
def music_elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A music folder on another file system than slskd's (tmpfs), removed afterwards."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to put the music folder on")
    music = Path(tempfile.mkdtemp(prefix="soulsync-music-", dir=shm))
    yield music
    shutil.rmtree(music, ignore_errors=True)


async def test_a_music_folder_on_another_file_system_gets_whole_files(make_api, fake, music_elsewhere,
                                                                       slskd_downloads):
    api = await make_api(music_elsewhere)
    done = await download(api, fake)
    final = music_elsewhere / FINAL
    assert (done["status"], done["final_path"]) == ("completed", str(final))
    assert files_under(music_elsewhere) == [final]
    assert files_under(slskd_downloads) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
async def test_discarding_a_copy_on_a_read_only_folder_is_a_warning(api, tmp_path, monkeypatch, code):
    source = tmp_path / "copy.flac"
    source.write_bytes(b"x")

    def unlink(self, missing_ok=False):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "unlink", unlink)
    warning = await service(api).importer.discard(source)
    assert warning == (f"slskd's copy {source} was left in place: SoulSync may not delete it "
                       f"({os.strerror(code)}); delete it in slskd, or give SoulSync's user "
                       "write access to slskd's downloads folder")


async def test_the_status_note_comes_after_three_undeletable_copies_and_goes_with_a_deleted_one(
        api, fake, slskd_downloads, monkeypatch):
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self.is_relative_to(slskd_downloads):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        real_unlink(self, missing_ok)

    async def soulseek_note() -> str | None:
        status = (await api.get("/api/v1/system/status")).data
        return status["service_details"]["soulseek"]["details"].get("note")

    monkeypatch.setattr(Path, "unlink", unlink)
    notes = []
    for _ in range(3):  # the same file again and again: force, as the library has it
        done = await download(api, fake, {**TRACK, "force": True})
        assert done["status"] == "completed" and "was left in place" in done["note"]
        notes.append(await soulseek_note())
    assert notes[:2] == [None, None]
    assert notes[2].startswith("the last 3 downloaded files could not be deleted")
    await api.core.health.check_all()  # a health check keeps the note
    assert await soulseek_note() == notes[2]

    monkeypatch.setattr(Path, "unlink", real_unlink)
    done = await download(api, fake, {**TRACK, "force": True})
    assert done["status"] == "completed"
    assert await soulseek_note() is None
    assert len(files_under(slskd_downloads)) == 3  # the copies left before; the fourth is gone


async def test_restart_after_the_rename_with_slskds_copy_still_there_finishes_it_once(
        make_api, fake, music, slskd_downloads, tmp_path):
    first = await make_api()
    download_id = await delivered(first, fake)
    [source] = files_under(slskd_downloads)
    await first.client.close()
    # It had renamed the tagged file into place and saved that; slskd's copy was not deleted.
    final = music / FINAL
    final.parent.mkdir(parents=True)
    shutil.copyfile(source, final)
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        db.execute("UPDATE downloads SET status = 'post_processing', final_path = ?, tagged = 1",
                   (str(final),))

    second = await make_api(key=first.key)
    await service(second).settle()
    done = (await second.get(f"{D}/{download_id}")).data["download"]
    assert (done["status"], done["final_path"], done["note"]) == ("completed", str(final), None)
    assert files_under(music) == [final] and files_under(slskd_downloads) == []
    assert [t["file_path"] for t in await library_tracks(second)] == [str(final)]
    assert fake.count(*ENQUEUE) == 1


async def test_a_file_saved_through_a_symlinked_folder_is_refused_saying_why(
        api, fake, music, slskd_downloads, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = slskd_downloads / "2001 - Discovery"  # FLAC_FAST's last remote folder
    link.symlink_to(elsewhere, target_is_directory=True)
    done = await download(api, fake)
    assert done["status"] == "failed"
    assert done["error"] == (
        f"flac_fast sent {FLAC_FAST!r}, but it cannot be imported: it was saved as "
        f"{link / '01 - One More Time.flac'}, and {link} is a symbolic link leading out of slskd's "
        f"downloads folder {slskd_downloads} (to {elsewhere}); SoulSync reads nothing outside that "
        f"folder, so the file was left there: make {link} a real folder or file inside {slskd_downloads}")
    assert files_under(elsewhere) == [elsewhere / "01 - One More Time.flac"]
    assert files_under(music) == []


# --------------------------------------------------------------- already in the library


async def test_a_track_the_library_has_is_answered_from_it_unless_forced(api, fake, music):
    await download(api, fake)
    [track] = await library_tracks(api)
    for body in (TRACK, {"query": "Daft Punk - One More Time"}):
        reply = await api.post(D, body)
        assert reply.status == 200, reply.json
        assert reply.data["status"] == "already_in_library"
        assert (reply.data["created"], reply.data["download"]) == (False, None)
        assert (reply.data["track"]["id"], reply.data["track"]["file_path"]) == (
            track["id"], str(music / FINAL))
    listed = await api.get(D)
    assert listed.json["pagination"]["total"] == 1 and fake.count(*SEARCHES) == 1

    forced = await api.post(D, {**TRACK, "force": True})
    assert forced.status == 202, forced.json
    assert (forced.data["status"], forced.data["created"]) == ("queued", True)
    again = await api.post(D, {**TRACK, "force": True})
    assert (again.status, again.data["status"], again.data["download"]["id"]) == (
        202, "already_downloading", forced.data["download"]["id"])


async def test_force_must_be_a_boolean(api):
    reply = await api.post(D, {**TRACK, "force": "yes"})
    assert reply.status == 400
    assert reply.json["error"]["message"] == "force must be true or false, not a string."


# ------------------------------------------------------------------ a busy slskd (429)


async def test_slskd_asking_to_wait_hours_does_not_keep_a_download_searching(make_api, fake, server):
    api = await make_api(search_timeout_seconds="5")
    server.app[FAULTS].retry_after, server.app[FAULTS].rate_limit_count = 100000, -1
    queued = await api.post(D, TRACK)
    async with asyncio.timeout(30):  # unbounded, this waited for 100000 s
        await service(api).settle()
    done = (await api.get(f"{D}/{queued.data['download']['id']}")).data["download"]
    assert done["status"] == "failed"
    assert done["error"].startswith("searching 'Daft Punk One More Time' failed: slskd is busy")
    assert done["error"].endswith("retry in 15 s (it asked for 100000 s)")
    searching = await api.get(D, params={"status": "searching,queued"})
    assert searching.data["downloads"] == []


async def test_busy_enqueues_asking_to_wait_hours_move_on_within_the_search_timeout(make_api, fake):
    api = await make_api(search_timeout_seconds="5")
    fake.busy_enqueues, fake.busy_retry_after = -1, 100000
    queued = await api.post(D, TRACK)
    async with asyncio.timeout(30):  # unbounded, each enqueue waited for 100000 s
        await service(api).settle()
    done = (await api.get(f"{D}/{queued.data['download']['id']}")).data["download"]
    assert done["status"] == "failed"
    assert [t["username"] for t in done["tried"]] == ["flac_fast", "flac_slow", "mp3_user"]
    assert {t["outcome"] for t in done["tried"]} == {
        f"slskd is busy ({BUSY}); retry in 15 s (it asked for 100000 s)"}
    assert fake.transfers == {}
