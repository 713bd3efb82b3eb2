"""``/settings``: read the effective settings (secrets redacted) and patch them live."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
from aiohttp import web

from soulsync_core.api.admin import require_admin_key
from soulsync_core.api.body_rules import NON_EMPTY_OBJECT, rules
from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, bad_request, ok
from soulsync_core.config import REDACTED, SettingError, flatten, nest
from soulsync_core.settings import SettingPinnedError, Source

routes = Routes("settings")


class SettingsView(msgspec.Struct):
    settings: dict[str, Any]
    sources: dict[str, Source]


class SettingsUpdated(msgspec.Struct):
    message: str
    updated_keys: list[str]
    restart_required: list[str]


@routes.get("/settings", "Effective settings, nested by section; secrets are redacted.",
            response=SettingsView)
async def get_settings(request: web.Request) -> web.Response:
    settings = core_of(request).settings
    sources = {key: settings.source(key) for key in settings.schema.keys()}
    return ok(SettingsView(nest(settings.redacted()), sources))


@routes.patch("/settings",
              "Change settings by dotted key or nested object; validated whole, applied live. "
              "null resets a key to its default; ***REDACTED*** leaves a secret unchanged.",
              body=rules(dict[str, Any], {**NON_EMPTY_OBJECT, "x-registered": "setting"}),
              response=SettingsUpdated, errors=(409,))
async def patch_settings(request: web.Request, body: dict[str, Any]) -> web.Response:
    await require_admin_key(request, "change settings")
    core = core_of(request)
    if not body:
        raise bad_request('Empty body: send at least one setting, e.g. {"logging.level": "DEBUG"}.')
    try:
        # In a thread: a check may be slow (notification URLs are parsed by Apprise).
        changes = await asyncio.to_thread(core.settings.validate_patch,
                                          flatten(body, core.settings.schema))
    except SettingPinnedError as exc:
        raise ApiError(409, "CONFLICT", str(exc)) from None
    except SettingError as exc:
        raise bad_request(str(exc)) from None
    updated = await core.settings.apply(changes)
    if updated:
        await core.activity.record("settings.updated", "Settings Updated", ", ".join(updated))
    restart = [key for key in updated if core.settings.schema[key].restart_required]
    return ok(SettingsUpdated("Settings updated.", updated, restart))


class SettingField(msgspec.Struct):
    """What a form needs to edit one setting.

    ``type`` is ``string``, ``integer``, ``number``, ``boolean`` or ``list`` (of strings);
    ``choices`` makes a string an enum. ``default`` and ``value`` of a secret are redacted.
    ``fixed_by`` is ``file`` or ``env`` when the operator set the key there (PATCH refuses it),
    and ``fixed_where`` then names the config file or the environment variable.
    """

    key: str
    section: str
    type: Literal["string", "integer", "number", "boolean", "list"]
    description: str
    default: Any
    value: Any
    source: Literal["default", "api", "file", "env"]
    secret: bool
    minimum: float | None
    maximum: float | None
    choices: list[str] | None
    restart_required: bool
    env_var: str
    fixed_by: Literal["file", "env"] | None
    fixed_where: str | None


class SettingsSchema(msgspec.Struct):
    settings: list[SettingField]


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}


@routes.get("/settings/schema", "Every setting with its type, default, limits, choices, secret "
            "flag, current value (secrets redacted) and whether the config file or environment "
            "fixes it.", response=SettingsSchema)
async def settings_schema(request: web.Request) -> web.Response:
    settings = core_of(request).settings
    values = settings.redacted()
    fields = []
    for key in settings.schema.keys():
        setting = settings.schema[key]
        source = settings.source(key)
        where = {"env": setting.env_var, "file": str(settings.config_path)}.get(source)
        default = REDACTED if setting.secret and setting.default else setting.default
        fields.append(SettingField(
            key, key.split(".", 1)[0], _TYPE_NAMES[setting.type], setting.description, default,
            values[key], source, setting.secret, setting.minimum, setting.maximum,
            None if setting.choices is None else list(setting.choices), setting.restart_required,
            setting.env_var, source if source in ("file", "env") else None, where))
    return ok(SettingsSchema(fields))
