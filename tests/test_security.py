"""Secrets stay secret and outside names stay inside their folders.

* Raw API keys are never in the database file, its WAL, a backup or the log, after keys were
  created and used both as a Bearer header and as ``?api_key=``.
* Configured secrets (the slskd API key, client secrets, notification target URLs, OAuth
  tokens) are redacted in GET /settings, /settings/schema, /system/status, /system/health,
  error messages and events.
* Every place a name from outside becomes a path keeps it inside its folder: peer filenames,
  tags filled into the path template, playlist names for M3U8 files, backup labels.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import soulsync_slskd.plugin
from soulsync_core.api.app import create_app
from soulsync_core.downloads.naming import DEFAULT_PATH_TEMPLATE, render_path
from soulsync_core.logs import ACCESS_LOGGER, AccessLogger, setup_logging
from soulsync_core.playlists.m3u import file_name
from soulsync_core.testing import ApiClient, OpenApiChecker, free_port
from soulsync_slskd.layout import find_download, relative_parts
from soulsync_spotify import plugin as spotify_plugin

SLSKD_KEY = "slskd-key-0f9e8d7c6b5a"
SPOTIFY_SECRET = "spotify-secret-1a2b3c4d5e"
TARGET_TOKEN = "tg-token-9z8y7x6w5v"
TARGET = f"tgram://123456:{TARGET_TOKEN}/4242"
SECRETS = (SLSKD_KEY, SPOTIFY_SECRET, TARGET_TOKEN)


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """The daemon's real log (the scrubbing formatter) at DEBUG into a buffer; restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    setup_logging("DEBUG", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _files_of(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data directory (database, WAL, backups, …) by its relative name."""
    return {str(path.relative_to(data_dir)): path.read_bytes()
            for path in sorted(data_dir.rglob("*")) if path.is_file()}


async def test_raw_keys_are_in_no_database_wal_backup_or_log(aiohttp_client, core, openapi_doc,
                                                              log_text):
    # The daemon's own access logger, so the line of a ?api_key= request is written as in serve.
    client = await aiohttp_client(create_app(core), server_kwargs={
        "access_log_class": AccessLogger, "access_log": logging.getLogger(ACCESS_LOGGER)})
    api = ApiClient(client, OpenApiChecker(openapi_doc))
    first = await api.bootstrap()
    created = await api.post("/api/v1/api-keys", {"label": "bot"})
    assert created.status == 201, created.json
    second = created.data["key"]
    assert (await api.get("/api/v1/system/stats", key=second)).status == 200
    assert (await api.get("/api/v1/library/artists", auth=False,
                          params={"api_key": first})).status == 200
    assert (await api.get("/api/v1/downloads", auth=False,
                          params={"api_key": first + "x"})).status == 403
    await core.keys.flush_last_used()
    reply = await api.post("/api/v1/system/backups")
    assert reply.status == 202, reply.json
    await core.jobs.wait(reply.data["job"]["kind"])

    files = _files_of(core.data_dir)
    assert any(name.endswith("-wal") for name in files), sorted(files)  # the WAL is read too
    assert any(name.startswith("backups/") for name in files), sorted(files)
    log = log_text.getvalue()
    assert "/api/v1/library/artists?api_key=***" in log  # the access line is there, scrubbed
    for raw in (first, second):
        for name, content in files.items():
            assert raw.encode() not in content, f"a raw key is in {name}"
        assert raw[3:] not in log
    await client.close()


async def test_configured_secrets_are_redacted_everywhere_they_could_show(soulsync_factory):
    closed = f"http://127.0.0.1:{free_port()}"
    api: ApiClient = await soulsync_factory(
        plugins=[("slskd", soulsync_slskd.plugin), ("spotify", spotify_plugin)], environ={
            "SOULSYNC_SOULSEEK__SLSKD_URL": closed, "SOULSYNC_SOULSEEK__API_KEY": SLSKD_KEY,
            "SOULSYNC_SPOTIFY__CLIENT_ID": "client-id",
            "SOULSYNC_SPOTIFY__CLIENT_SECRET": SPOTIFY_SECRET,
            "SOULSYNC_SPOTIFY__ACCOUNTS_URL": closed, "SOULSYNC_SPOTIFY__API_URL": closed})
    subscription, _ = api.core.events.subscribe()
    patch = await api.patch("/api/v1/settings", {"notifications.targets": [{"url": TARGET, "name": "phone"}]})
    assert patch.status == 200, patch.json
    await api.core.health.check_all()  # both services are down: their errors are shown
    seen: list[str] = []
    for path in ("/api/v1/settings", "/api/v1/settings/schema", "/api/v1/system/status",
                 "/api/v1/system/health", "/api/v1/system/plugins", "/api/v1/notifications"):
        reply = await api.get(path)
        assert reply.status == 200, (path, reply.json)
        seen.append(json.dumps(reply.json))
    shown = (await api.get("/api/v1/settings")).data["settings"]
    assert shown["soulseek"]["api_key"] == "***REDACTED***"
    assert shown["spotify"]["client_secret"] == "***REDACTED***"
    assert shown["notifications"]["targets"] == "***REDACTED***"
    # Errors: a search through the failing source, a wrong value next to a secret, a test send.
    failed = await api.post("/api/v1/search/tracks", {"query": "x", "source": "spotify"})
    assert failed.status == 503
    bad = await api.patch("/api/v1/settings", {"notifications.targets": [{"url": TARGET, "name": 5}]})
    assert bad.status == 400
    sent = await api.post("/api/v1/notifications/test", {})
    seen += [json.dumps(failed.json), json.dumps(bad.json), json.dumps(sent.json)]
    seen += [item.event.json().decode() for item in _drain(subscription)]
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, (secret, text[:300])


def _drain(subscription: Any) -> list[Any]:
    """Return the events queued on ``subscription`` (without waiting for more)."""
    items = []
    while subscription.pending():
        items.append(subscription._queue.popleft())
    return items


# --- names from outside become paths ----------------------------------------------------------


@pytest.mark.parametrize("remote", [
    "@@peer\\Music\\..\\..\\..\\etc\\passwd", "@@peer/Music/../../x.flac", "..\\..\\x.flac",
    "/etc/passwd", "C:\\Windows\\system32\\x.flac", "@@peer\\Music\\..", "@@peer\\..\\x.flac"])
def test_a_peer_filename_never_names_a_file_outside_the_downloads_folder(tmp_path, remote):
    root = tmp_path / "downloads"
    root.mkdir()
    outside = tmp_path / "x.flac"
    outside.write_bytes(b"fLaC")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0")
    parts = relative_parts(remote)
    if parts is not None:
        directory, name = parts
        assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
        assert directory not in (".", "..") and "/" not in directory and "\\" not in directory
    found = find_download(root, remote, 4)
    assert found is None or found.resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize("evil", ["../../etc", "..", ".", "/etc/passwd", "..\\..\\Windows",
                                  "a/../../b", "\x00../x", "CON", " .. "])
def test_tags_filled_into_the_path_template_stay_one_folder_each(tmp_path, evil):
    values = {"artist": evil, "albumartist": evil, "album": evil, "title": evil,
              "track": "1", "disc": "1", "year": "2001", "ext": "flac"}
    components = render_path(DEFAULT_PATH_TEMPLATE, values)
    for part in components:
        assert part not in ("", ".", "..") and not part.startswith(".")
        assert "/" not in part and "\\" not in part and "\x00" not in part
    music = tmp_path / "music"
    target = music.joinpath(*components)
    assert target.resolve().is_relative_to(music.resolve())


@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "..", "/etc/passwd", "..\\..\\x",
                                  "a/b", ".hidden", "", "\x00"])
def test_a_playlist_name_makes_one_m3u8_file_inside_the_playlists_folder(tmp_path, name):
    made = file_name(name)
    assert made.endswith(".m3u8") and "/" not in made and "\\" not in made
    assert not made.startswith(".") and "\x00" not in made
    folder = tmp_path / "playlists"
    assert (folder / made).resolve().parent == folder.resolve()


@pytest.mark.parametrize("label", ["../../etc", "/abs", "a/b", "..", "a\\b", "x.db"])
async def test_a_backup_label_cannot_leave_the_backup_folder(api, key, core, label):
    reply = await api.post("/api/v1/system/backups", {"label": label})
    assert reply.status == 400 and "label" in reply.error["message"]
    assert not (core.data_dir / "backups").exists() or not any((core.data_dir / "backups").iterdir())
