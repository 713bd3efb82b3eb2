"""Settings: schema validation, redaction, live changes, persistence and precedence."""

from __future__ import annotations

import logging

import pytest

from soulsync_core.api.app import create_app
from soulsync_core.api.endpoints import CORE
from soulsync_core.config import (
    REDACTED,
    ConfigFileError,
    Section,
    Setting,
    SettingError,
    core_schema,
    read_env,
)
from soulsync_core.core import Core
from soulsync_core.testing import OpenApiChecker
from tests.conftest import Api

DEMO = Section("demo", (
    Setting("demo.token", str, "", "A secret token.", secret=True),
    Setting("demo.timeout", int, 30, "Seconds.", minimum=1, maximum=600),
))


@pytest.fixture
async def demo_api(aiohttp_client, data_dir, openapi_doc) -> Api:
    core = await Core.open(data_dir, environ={}, entry_points=False, sections=[DEMO])
    api = Api(await aiohttp_client(create_app(core)), OpenApiChecker(openapi_doc))
    api.key = (await api.post("/api/v1/api-keys/bootstrap")).data["key"]
    return api


async def test_get_returns_every_section_nested_with_sources(api, key):
    reply = await api.get("/api/v1/settings")
    assert reply.status == 200
    settings = reply.data["settings"]
    assert settings["server"]["port"] == 8008
    assert settings["server"]["host"] == "0.0.0.0"
    assert settings["api"]["rate_limits"] == {"system": 120, "search": 20, "downloads": 10,
                                              "write": 30, "read": 60}
    assert settings["logging"]["level"] == "INFO"
    assert settings["library"]["music_dir"] == "~/Music"
    assert set(reply.data["sources"].values()) == {"default"}
    assert "api_keys" not in settings


async def test_patch_dotted_and_nested_applies_live(api, key):
    root = logging.getLogger()
    reply = await api.patch("/api/v1/settings", {"logging.level": "debug",
                                                  "api": {"rate_limits": {"read": 90}}})
    assert reply.status == 200
    assert reply.data == {"message": "Settings updated.",
                          "updated_keys": ["logging.level", "api.rate_limits.read"],
                          "restart_required": []}
    assert root.level == logging.DEBUG  # the next log line already uses it
    settings = (await api.get("/api/v1/settings")).data
    assert settings["settings"]["logging"]["level"] == "DEBUG"
    assert settings["sources"]["api.rate_limits.read"] == "api"
    await api.patch("/api/v1/settings", {"logging.level": "INFO"})
    assert root.level == logging.INFO


async def test_patch_says_which_keys_need_a_restart(api, key):
    reply = await api.patch("/api/v1/settings", {"server.port": 9000})
    assert reply.data["restart_required"] == ["server.port"]


@pytest.mark.parametrize(("patch", "needle"), [
    ({"logging.levle": "DEBUG"}, "Unknown setting 'logging.levle'. Keys in section 'logging': "),
    ({"nosuch.key": 1}, "Unknown setting 'nosuch.key'. Known sections: "),
    ({"server.port": "8008"}, "server.port must be an integer between 1 and 65535, not a string."),
    ({"server.port": 70000}, "server.port must be an integer between 1 and 65535."),
    ({"server.port": True}, "server.port must be an integer between 1 and 65535, not a boolean."),
    ({"logging.level": "LOUD"}, "logging.level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."),
    ({"logging.access_log": "yes"}, "logging.access_log must be true or false, not a string."),
    ({"server.trusted_proxies": "10.0.0.1"}, "server.trusted_proxies must be a list of strings"),
    ({"server.trusted_proxies": ["nope"]}, "'nope' is not an IP address or CIDR network"),
])
async def test_bad_patch_is_400_naming_the_key_and_nothing_is_applied(api, key, patch, needle):
    before = (await api.get("/api/v1/settings")).data
    reply = await api.patch("/api/v1/settings", {"logging.level": "ERROR", **patch})
    assert reply.status == 400
    assert reply.error["code"] == "BAD_REQUEST"
    assert needle in reply.error["message"]
    assert (await api.get("/api/v1/settings")).data == before
    assert logging.getLogger().level != logging.ERROR


async def test_empty_and_non_object_bodies_are_400(api, key):
    reply = await api.patch("/api/v1/settings", {})
    assert reply.status == 400 and "Empty body" in reply.error["message"]
    reply = await api.request("PATCH", "/api/v1/settings", raw=b'["logging.level"]')
    assert reply.status == 400 and "JSON object" in reply.error["message"]


async def test_null_resets_to_default(api, key):
    await api.patch("/api/v1/settings", {"api.rate_limits.read": 90})
    reply = await api.patch("/api/v1/settings", {"api.rate_limits.read": None})
    assert reply.status == 200
    view = (await api.get("/api/v1/settings")).data
    assert view["settings"]["api"]["rate_limits"]["read"] == 60
    assert view["sources"]["api.rate_limits.read"] == "default"


async def test_secrets_are_redacted_and_redacted_value_is_ignored_on_write(demo_api):
    api = demo_api
    assert (await api.get("/api/v1/settings")).data["settings"]["demo"]["token"] == REDACTED
    reply = await api.patch("/api/v1/settings", {"demo.token": "hunter2", "demo.timeout": 60})
    assert reply.data["updated_keys"] == ["demo.token", "demo.timeout"]
    view = await api.get("/api/v1/settings")
    assert view.data["settings"]["demo"] == {"token": REDACTED, "timeout": 60}
    assert "hunter2" not in str(view.json)
    reply = await api.patch("/api/v1/settings", {"demo.token": REDACTED})
    assert reply.status == 200 and reply.data["updated_keys"] == []
    core = api.client.app[CORE]
    assert core.settings.get("demo.token") == "hunter2"
    feed = (await api.get("/api/v1/system/activity")).data["activities"]
    assert feed[0]["type"] == "settings.updated" and "hunter2" not in str(feed)


async def test_changes_persist_across_restart(data_dir):
    core = await Core.open(data_dir, environ={}, entry_points=False)
    changes = core.settings.validate_patch({"logging.level": "WARNING", "server.max_body_kb": 64})
    await core.settings.apply(changes)
    await core.close()
    core = await Core.open(data_dir, environ={}, entry_points=False)
    try:
        assert core.settings.get("logging.level") == "WARNING"
        assert core.settings.get("server.max_body_kb") == 64
    finally:
        await core.close()


async def test_precedence_env_over_file_over_api_over_default(data_dir, tmp_path):
    core = await Core.open(data_dir, environ={}, entry_points=False)
    await core.settings.apply({"api.rate_limits.read": 61, "api.rate_limits.write": 31,
                               "api.rate_limits.system": 121})
    await core.close()
    config = tmp_path / "soulsync.toml"
    config.write_text("[api.rate_limits]\nwrite = 32\nsystem = 122\n")
    env = {"SOULSYNC_API__RATE_LIMITS__SYSTEM": "123"}
    core = await Core.open(data_dir, config_path=config, environ=env, entry_points=False)
    try:
        get, source = core.settings.get, core.settings.source
        assert (get("api.rate_limits.search"), source("api.rate_limits.search")) == (20, "default")
        assert (get("api.rate_limits.read"), source("api.rate_limits.read")) == (61, "api")
        assert (get("api.rate_limits.write"), source("api.rate_limits.write")) == (32, "file")
        assert (get("api.rate_limits.system"), source("api.rate_limits.system")) == (123, "env")
    finally:
        await core.close()


async def test_keys_fixed_by_env_or_file_cannot_be_patched(aiohttp_client, data_dir, tmp_path,
                                                          openapi_doc):
    config = tmp_path / "soulsync.toml"
    config.write_text('[logging]\nlevel = "WARNING"\n')
    core = await Core.open(data_dir, config_path=config,
                           environ={"SOULSYNC_API__RATE_LIMITS__READ": "99"}, entry_points=False)
    api = Api(await aiohttp_client(create_app(core)), OpenApiChecker(openapi_doc))
    api.key = (await api.post("/api/v1/api-keys/bootstrap")).data["key"]
    reply = await api.patch("/api/v1/settings", {"api.rate_limits.read": 5})
    assert reply.status == 409
    assert "SOULSYNC_API__RATE_LIMITS__READ" in reply.error["message"]
    reply = await api.patch("/api/v1/settings", {"logging.access_log": False, "logging.level": "DEBUG"})
    assert reply.status == 409 and str(config) in reply.error["message"]
    assert core.settings.get("logging.access_log") is True  # nothing applied
    view = (await api.get("/api/v1/settings")).data
    assert view["settings"]["api"]["rate_limits"]["read"] == 99
    assert view["sources"]["logging.level"] == "file"


async def test_command_line_address_is_what_settings_show_and_callbacks_use(aiohttp_client,
                                                                          data_dir, openapi_doc):
    # `soulsync serve --host 127.0.0.1 --port 9123` with the port also in the environment:
    # the command line wins, and says so.
    core = await Core.open(data_dir, environ={"SOULSYNC_SERVER__PORT": "8100"},
                           entry_points=False,
                           overrides={"server.host": "127.0.0.1", "server.port": 9123})
    api = Api(await aiohttp_client(create_app(core)), OpenApiChecker(openapi_doc))
    api.key = (await api.post("/api/v1/api-keys/bootstrap")).data["key"]
    view = (await api.get("/api/v1/settings")).data
    assert view["settings"]["server"]["port"] == 9123
    assert view["settings"]["server"]["host"] == "127.0.0.1"
    assert view["sources"]["server.port"] == "cli" and view["sources"]["server.host"] == "cli"
    assert core.callback_url("spotify") == "http://127.0.0.1:9123/auth/spotify/callback"
    reply = await api.patch("/api/v1/settings", {"server.port": 9000})
    assert reply.status == 409 and "command line" in reply.error["message"]


async def test_a_bad_command_line_value_names_the_command_line(data_dir):
    with pytest.raises(SettingError, match=r"command line: server\.port must be an integer "
                                           r"between 1 and 65535"):
        await Core.open(data_dir, environ={}, entry_points=False, overrides={"server.port": 0})


def test_env_values_are_parsed_and_validated():
    schema = core_schema()
    assert read_env(schema, {"SOULSYNC_LOGGING__ACCESS_LOG": "off",
                             "SOULSYNC_SERVER__TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
                             "SOULSYNC_SERVER__PORT": "9000"}) == {
        "logging.access_log": False, "server.trusted_proxies": ["10.0.0.1", "192.168.0.0/16"],
        "server.port": 9000}
    with pytest.raises(SettingError, match="SOULSYNC_SERVER__PORT must be an integer"):
        read_env(schema, {"SOULSYNC_SERVER__PORT": "http"})
    with pytest.raises(SettingError, match=r"server\.port must be an integer between 1 and 65535"):
        read_env(schema, {"SOULSYNC_SERVER__PORT": "0"})


async def test_config_file_errors_are_clear(data_dir, tmp_path, caplog):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n")
    with pytest.raises(ConfigFileError, match=r"server\.port must be an integer"):
        await Core.open(data_dir, config_path=bad, environ={}, entry_points=False)
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigFileError, match="cannot be read"):
        await Core.open(data_dir, config_path=broken, environ={}, entry_points=False)
    with pytest.raises(ConfigFileError, match="does not exist"):
        await Core.open(data_dir, config_path=tmp_path / "missing.toml", environ={}, entry_points=False)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[someplugin]\nkey = 1\n")
    core = await Core.open(data_dir, config_path=unknown, environ={}, entry_points=False)
    await core.close()
    assert "ignoring unknown setting someplugin.key" in caplog.text


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(SettingError, match=r"^SOULSYNC_LOGGING__LEVEL='LOUD': logging\.level must "
                                           r"be one of DEBUG, INFO"):
        read_env(core_schema(), {"SOULSYNC_LOGGING__LEVEL": "LOUD"})


async def test_daemon_refuses_a_bad_environment_value_naming_the_variable(tmp_path):
    from tests.daemon_process import run_cli

    result = await run_cli(["keys", "list", "--data-dir", tmp_path / "data"], tmp_path / "home",
                           env={"SOULSYNC_LOGGING__LEVEL": "LOUD"})
    assert result.returncode == 2
    assert "SOULSYNC_LOGGING__LEVEL='LOUD'" in result.stderr and "Traceback" not in result.stderr
