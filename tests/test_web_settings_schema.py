"""``GET /api/v1/settings/schema``: what the web UI's settings form is generated from."""

from __future__ import annotations

import soulsync_slskd.plugin
from soulsync_core.config import REDACTED

S = "/api/v1/settings/schema"
ENV = {"SOULSYNC_SOULSEEK__API_KEY": "slskd-secret-key-0123456789", "SOULSYNC_SERVER__PORT": "9000"}


async def test_every_setting_with_its_type_limits_and_source(soulsync_factory, tmp_path):
    config = tmp_path / "soulsync.toml"
    config.write_text('[logging]\nlevel = "WARNING"\n')
    api = await soulsync_factory(plugins=[("slskd", soulsync_slskd.plugin)], environ=ENV,
                                 config_path=config)
    await api.patch("/api/v1/settings", {"downloads.max_concurrent": 5})
    reply = await api.get(S)
    assert reply.status == 200, reply.json
    fields = {f["key"]: f for f in reply.data["settings"]}
    assert list(fields) == sorted(fields) and set(fields) == set(api.core.settings.schema.keys())

    assert fields["server.port"] == {
        "key": "server.port", "section": "server", "type": "integer",
        "description": "TCP port of the HTTP server.", "default": 8008, "value": 9000,
        "source": "env", "secret": False, "minimum": 1, "maximum": 65535, "choices": None,
        "restart_required": True, "env_var": "SOULSYNC_SERVER__PORT", "fixed_by": "env",
        "fixed_where": "SOULSYNC_SERVER__PORT"}
    level = fields["logging.level"]
    assert (level["type"], level["choices"], level["value"], level["default"]) == (
        "string", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], "WARNING", "INFO")
    assert (level["source"], level["fixed_by"], level["fixed_where"]) == ("file", "file", str(config))
    concurrent = fields["downloads.max_concurrent"]
    assert (concurrent["value"], concurrent["source"], concurrent["fixed_by"], concurrent["fixed_where"]) == (
        5, "api", None, None)
    assert fields["search.timeout_seconds"]["type"] == "number"
    assert fields["library.scan_on_start"]["type"] == "boolean"
    assert fields["search.auto_order"]["type"] == "list"

    secret = fields["soulseek.api_key"]
    assert (secret["secret"], secret["value"], secret["source"]) == (True, REDACTED, "env")
    assert "slskd-secret-key" not in str(reply.json)


async def test_the_schema_needs_a_key(soulsync_factory):
    api = await soulsync_factory()
    assert (await api.get(S, auth=False)).status == 401
