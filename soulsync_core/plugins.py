"""Loading plugins from the ``soulsync.plugins`` entry-point group and collecting what they offer.

Each plugin is loaded, registered and validated on its own, and each of its hooks is called on
its own, so a plugin that fails to import, misspells a hook or raises in one is reported in
``GET /system/plugins`` and the daemon goes on serving with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from importlib import metadata
from typing import Any

import msgspec
import pluggy

from soulsync_core import hooks
from soulsync_core.config import Section

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "soulsync.plugins"
PROVIDER_HOOKS = {
    "metadata_providers": hooks.MetadataProvider,
    "download_clients": hooks.DownloadClient,
    "playlist_sources": hooks.PlaylistSource,
}


class PluginInfo(msgspec.Struct):
    """What ``GET /system/plugins`` shows of one plugin."""

    name: str
    version: str | None
    hooks: list[str]
    providers: list[str]
    error: str | None = None


def allow_list(environ: Mapping[str, str], setting: list[str]) -> set[str] | None:
    """Return the plugin names to load (``SOULSYNC_PLUGINS`` beats ``plugins.enabled``); None = all."""
    raw = environ.get("SOULSYNC_PLUGINS")
    names = [n.strip() for n in raw.split(",")] if raw is not None else setting
    chosen = {n for n in names if n}
    return chosen or None


class PluginHost:
    """The plugin manager and a report of every plugin it tried to load."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hooks.PROJECT)
        self.pm.add_hookspecs(hooks)
        self.infos: dict[str, PluginInfo] = {}

    @classmethod
    def load(cls, *, allow: Collection[str] | None = None, entry_points: bool = True,
             extra: Iterable[tuple[str, object]] = ()) -> PluginHost:
        """Load entry-point plugins (those in ``allow``, or all) and the ``extra`` modules."""
        host = cls()
        if entry_points:
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                if allow is not None and entry_point.name not in allow:
                    log.info("plugin %s is installed but not enabled", entry_point.name)
                    continue
                version = entry_point.dist.version if entry_point.dist else None
                try:
                    module = entry_point.load()
                except Exception as exc:
                    host._failed(entry_point.name, version, f"failed to import: {exc!r}")
                    continue
                host.register(entry_point.name, module, version)
        for name, module in extra:
            host.register(name, module, None)
        return host

    def register(self, name: str, module: object, version: str | None) -> None:
        """Register one plugin and check its hooks against the specs; record any failure."""
        if name in self.infos:
            self._failed(name, version, "another plugin already uses this name")
            return
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as exc:
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._failed(name, version, f"invalid plugin: {exc}")
            return
        implemented = sorted(impl for impl in PROVIDER_HOOKS.keys() | {"settings_sections", "event_listeners"}
                             if any(i.plugin_name == name for i in
                                    getattr(self.pm.hook, impl).get_hookimpls()))
        self.infos[name] = PluginInfo(name, version, implemented, [])
        log.info("loaded plugin %s%s", name, f" {version}" if version else "")

    def _failed(self, name: str, version: str | None, error: str) -> None:
        log.error("plugin %s: %s", name, error)
        self.infos[name] = PluginInfo(name, version, [], [], error)

    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook separately; a raising plugin is recorded."""
        results: list[tuple[str, Any]] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            log.debug("calling hook %s of plugin %s", hook_name, impl.plugin_name)
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                self._note_error(impl.plugin_name, f"{hook_name} raised {exc!r}")
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def _note_error(self, name: str, error: str) -> None:
        log.error("plugin %s: %s", name, error)
        info = self.infos[name]
        info.error = error if info.error is None else f"{info.error}; {error}"

    def sections(self) -> list[Section]:
        """Return every plugin's settings sections."""
        sections: list[Section] = []
        for name, result in self._call_each("settings_sections"):
            for section in result:
                if isinstance(section, Section):
                    sections.append(section)
                else:
                    self._note_error(name, f"settings_sections returned {section!r}, not a Section")
        return sections

    def providers(self, hook_name: str, settings: hooks.SettingsReader,
                  accounts: hooks.Accounts) -> list[Any]:
        """Return the providers of one provider hook; names are unique across plugins.

        One object returned by several hooks (a service that searches and lists playlists)
        is one provider; its name is unique within each hook.
        """
        protocol = PROVIDER_HOOKS[hook_name]
        taken: set[str] = set()
        providers: list[Any] = []
        for name, result in self._call_each(hook_name, settings=settings, accounts=accounts):
            for provider in result:
                if not isinstance(provider, protocol):
                    self._note_error(name, f"{hook_name} returned {provider!r}, which lacks "
                                           f"the {protocol.__name__} methods")
                elif provider.name in taken:
                    self._note_error(name, f"a provider named {provider.name!r} already exists")
                else:
                    taken.add(provider.name)
                    providers.append(provider)
                    self.infos[name].providers.append(provider.name)
        return providers

    def listeners(self, settings: hooks.SettingsReader) -> list[tuple[str, hooks.EventListener]]:
        """Return ``(plugin name, listener)`` for every callable of the event_listeners hook."""
        found: list[tuple[str, hooks.EventListener]] = []
        for name, result in self._call_each("event_listeners", settings=settings):
            for listener in result:
                if callable(listener):
                    found.append((name, listener))
                else:
                    self._note_error(name, f"event_listeners returned {listener!r}, not a callable")
        return found

    def report(self) -> list[PluginInfo]:
        """Return every plugin's info, sorted by name."""
        return [self.infos[name] for name in sorted(self.infos)]

