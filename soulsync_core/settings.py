"""Effective settings at run time: layered sources, persistence of API changes, change listeners.

Precedence, lowest first: schema default < API change (stored in SQLite) < config file <
environment variable < command line (``serve --host/--port``). Values that the operator fixed
in the config file, the environment or on the command line cannot be changed through the API
(``PATCH`` answers 409 and names where it was set), so a running daemon never silently
disagrees with its own configuration.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from soulsync_core.config import (
    REDACTED,
    Schema,
    Section,
    SettingError,
    read_config_file,
    read_env,
)
from soulsync_core.db import Database
from soulsync_core.timefmt import utc_now_iso

log = logging.getLogger(__name__)

Source = Literal["default", "api", "file", "env", "cli"]
Listener = Callable[[dict[str, Any]], Awaitable[None] | None]


class SettingPinnedError(SettingError):
    """The key is fixed by the config file or the environment and cannot be changed by the API."""


class Settings:
    """The effective value of every setting. Build with :meth:`load`."""

    def __init__(self, schema: Schema, db: Database, config_path: Path | None,
                 environ: Mapping[str, str] | None, overrides: Mapping[str, Any] | None = None):
        self.schema = schema
        self._db = db
        self._config_path = config_path
        self._environ = environ
        self._api: dict[str, Any] = {}
        self._file: dict[str, Any] = {}
        self._env: dict[str, Any] = {}
        self._overrides = dict(overrides or {})
        self._cli: dict[str, Any] = {}
        self._unknown_in_file: list[str] = []
        self._listeners: list[tuple[str, Listener]] = []

    @classmethod
    async def load(cls, schema: Schema, db: Database, *, config_path: Path | None = None,
                   environ: Mapping[str, str] | None = None,
                   overrides: Mapping[str, Any] | None = None) -> Settings:
        """Read every layer. Raise ConfigFileError / SettingError for a bad file, variable or
        command-line value (``overrides``: ``{dotted key: value}`` given on the command line).

        Stored API values that no longer validate (a plugin changed its schema) are skipped with
        a warning and kept in the database, so reinstalling the plugin brings them back.
        Unknown keys of the config file are logged by :meth:`warn_unknown`, once every
        section is known.
        """
        settings = cls(schema, db, config_path, environ, overrides)
        await settings._read_layers()
        return settings

    async def _read_layers(self) -> None:
        if self._config_path is not None:
            self._file, self._unknown_in_file = read_config_file(self._config_path, self.schema)
        self._env = read_env(self.schema, self._environ)
        self._cli = {}
        for key, value in self._overrides.items():
            try:
                self._cli[key] = self.schema.coerce(key, value)
            except SettingError as exc:
                raise SettingError(key, f"command line: {exc}") from None
        self._api = {}
        for row in await self._db.fetchall("SELECT key, value FROM settings"):
            key = row["key"]
            if key not in self.schema:
                continue
            try:
                self._api[key] = self.schema.coerce(key, msgspec.json.decode(row["value"]))
            except (SettingError, msgspec.DecodeError) as exc:
                log.warning("ignoring stored setting %s: %s", key, exc)

    async def add_sections(self, sections: Iterable[Section]) -> None:
        """Add plugins' sections after start-up and read their values from every layer."""
        for section in sections:
            self.schema.add_section(section)
        await self._read_layers()

    def warn_unknown(self) -> None:
        """Log each key of the config file that no section declares (once all are added)."""
        for key in self._unknown_in_file:
            log.warning("config file %s: ignoring unknown setting %s", self._config_path, key)

    def get(self, key: str) -> Any:
        """Return the effective value of ``key`` (KeyError for an unknown key)."""
        for layer in (self._cli, self._env, self._file, self._api):
            if key in layer:
                return layer[key]
        return self.schema[key].default

    def source(self, key: str) -> Source:
        """Return which layer the effective value of ``key`` comes from."""
        if key in self._cli:
            return "cli"
        if key in self._env:
            return "env"
        if key in self._file:
            return "file"
        if key in self._api:
            return "api"
        return "default"

    @property
    def config_path(self) -> Path | None:
        """The TOML config file the daemon was started with, if any."""
        return self._config_path

    def effective(self) -> dict[str, Any]:
        """Return ``{dotted_key: effective value}`` for every key, secrets included."""
        return {key: self.get(key) for key in self.schema.keys()}

    def redacted(self) -> dict[str, Any]:
        """Return :meth:`effective` with every secret replaced by ``***REDACTED***``."""
        return {k: (REDACTED if self.schema.is_secret(k) else v) for k, v in self.effective().items()}

    def on_change(self, prefix: str, listener: Listener) -> None:
        """Call ``listener({key: new value})`` after a change to any key starting with ``prefix``."""
        self._listeners.append((prefix, listener))

    def validate_patch(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a flat patch whole; return ``{key: new value or None for reset}``.

        ``***REDACTED***`` given for a secret leaves it unchanged and is dropped from the result.
        ``None`` resets the key to its default. Raises SettingError (first bad key) or
        SettingPinnedError; nothing is applied in either case.
        """
        changes: dict[str, Any] = {}
        for key, value in patch.items():
            if key not in self.schema:
                raise SettingError(key, self.schema.unknown_key_message(key))
            if self.schema.is_secret(key) and value == REDACTED:
                continue
            pinned = self.source(key)
            if pinned == "cli":
                raise SettingPinnedError(
                    key, f"{key} is set on the command line of this daemon (soulsync serve); "
                    "restart it without that option to change this setting through the API.")
            if pinned == "env":
                raise SettingPinnedError(
                    key, f"{key} is set by the environment variable {self.schema[key].env_var}; "
                    "unset it to change this setting through the API.")
            if pinned == "file":
                raise SettingPinnedError(
                    key, f"{key} is set in the config file {self._config_path}; remove it there "
                    "to change this setting through the API.")
            changes[key] = None if value is None else self.schema.coerce(key, value)
        return changes

    async def apply(self, changes: Mapping[str, Any]) -> list[str]:
        """Persist validated changes in one transaction, then notify listeners.

        Returns the keys written, in the order given; listeners hear only of keys whose
        effective value actually changed.
        """
        now = utc_now_iso()
        async with self._db.write() as conn:
            for key, value in changes.items():
                if value is None:
                    await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
                else:
                    await conn.execute(
                        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                        "updated_at = excluded.updated_at",
                        (key, msgspec.json.encode(value).decode(), now),
                    )
        before = {key: self.get(key) for key in changes}
        for key, value in changes.items():
            if value is None:
                self._api.pop(key, None)
            else:
                self._api[key] = value
        changed = {key: self.get(key) for key in changes if self.get(key) != before[key]}
        await self._notify(changed)
        return list(changes)

    async def _notify(self, changed: dict[str, Any]) -> None:
        for prefix, listener in self._listeners:
            relevant = {k: v for k, v in changed.items() if k.startswith(prefix)}
            if not relevant:
                continue
            try:
                result = listener(relevant)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A failing listener must not undo a committed change or hide it from others.
                log.exception("settings listener for %r failed", prefix)
