"""``/settings``: read the effective settings (secrets redacted) and patch them live."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from soulsync_core.api.body_rules import NON_EMPTY_OBJECT, rules
from soulsync_core.api.endpoints import Routes, core_of
from soulsync_core.api.envelope import ApiError, bad_request, ok
from soulsync_core.config import SettingError, flatten, nest
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
