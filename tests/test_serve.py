"""``soulsync serve`` as a process: its command-line address, the optional config file of the
systemd unit, and DEBUG logging from the very start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.daemon_process import DaemonProcess


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[DaemonProcess] = []

    async def start(env: dict[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path / "data", tmp_path / f"daemon-{len(started) + 1}.log",
                               tmp_path / "home", env)
        started.append(daemon)
        return await daemon.start()

    yield start
    for daemon in started:
        daemon.kill()


async def _get(session: aiohttp.ClientSession, daemon: DaemonProcess, path: str,
               key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with session.get(daemon.base_url + path, headers=headers) as response:
        return response.status, await response.json()


async def _key(session: aiohttp.ClientSession, daemon: DaemonProcess) -> str:
    async with session.post(f"{daemon.base_url}/api/v1/api-keys/bootstrap", json={}) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["data"]["key"]


async def test_settings_and_the_login_redirect_use_the_command_line_port(spawn):
    # The daemon is started with --host 127.0.0.1 --port <free port>, never the default 8008.
    daemon = await spawn({"SOULSYNC_SPOTIFY__CLIENT_ID": "client-id-for-the-test"})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        key = await _key(session, daemon)
        status, body = await _get(session, daemon, "/api/v1/settings", key)
        assert status == 200, body
        assert body["data"]["settings"]["server"]["port"] == daemon.port
        assert body["data"]["settings"]["server"]["host"] == "127.0.0.1"
        assert body["data"]["sources"]["server.port"] == "cli"
        status, body = await _get(session, daemon, "/api/v1/auth/spotify", key)
    assert status == 200, body
    expected = f"http://127.0.0.1:{daemon.port}/auth/spotify/callback"
    assert body["data"]["redirect_uri"] == expected
    assert parse_qs(urlsplit(body["data"]["url"]).query)["redirect_uri"] == [expected]


async def test_unit_config_file_is_optional_when_named_by_the_environment(spawn, tmp_path):
    absent = tmp_path / "etc" / "soulsync.toml"
    daemon = await spawn({"SOULSYNC_CONFIG": str(absent)})
    assert "no config file" in daemon.log_text()
    assert await daemon.stop() == 0, daemon.log_text()

    absent.parent.mkdir()
    absent.write_text("[api.rate_limits]\nread = 77\n")
    daemon = await spawn({"SOULSYNC_CONFIG": str(absent)})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        key = await _key(session, daemon)
        _, body = await _get(session, daemon, "/api/v1/settings", key)
    assert body["data"]["settings"]["api"]["rate_limits"]["read"] == 77
    assert body["data"]["sources"]["api.rate_limits.read"] == "file"


async def test_debug_level_shows_the_hook_calls_of_plugin_loading(spawn):
    daemon = await spawn({"SOULSYNC_LOGGING__LEVEL": "DEBUG"})
    log = daemon.log_text()
    assert "calling hook settings_sections of plugin" in log, log
    assert "calling hook metadata_providers of plugin" in log, log


async def test_config_file_warnings_are_logged_once(spawn, tmp_path):
    config = tmp_path / "soulsync.toml"
    # spotify.client_id belongs to a plugin section: known once plugins are loaded.
    config.write_text('[nosuchplugin]\nkey = 1\n\n[spotify]\nclient_id = "x"\n')
    daemon = await spawn({"SOULSYNC_CONFIG": str(config)})
    log = daemon.log_text()
    assert log.count("ignoring unknown setting nosuchplugin.key") == 1, log
    assert "spotify.client_id" not in log, log


async def test_a_login_begun_on_the_command_line_returns_to_the_running_daemons_port(spawn,
                                                                                     tmp_path):
    from tests.daemon_process import run_cli

    env = {"SOULSYNC_SPOTIFY__CLIENT_ID": "client-id-for-the-test"}
    daemon = await spawn(env)  # --port <free port>, not the configured 8008
    # No address pasted (stdin is empty): the command stops after printing the instructions.
    result = await run_cli(["auth", "spotify", "--data-dir", daemon.data_dir], tmp_path / "home",
                           env=env)
    assert result.returncode == 1, result
    assert f"http://127.0.0.1:{daemon.port}/auth/spotify/callback" in result.stderr, result.stderr
