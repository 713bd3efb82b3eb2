"""The daemon's state in one place: database, settings, keys, activity, health, jobs, limits.

The API, the CLI and the tests all build a :class:`Core` with :meth:`Core.open` and release it
with :meth:`Core.close`; background work runs between :meth:`start` and :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from soulsync_core import __version__
from soulsync_core.accounts import Accounts, AccountStore, service_title
from soulsync_core.activity import Activity
from soulsync_core.apikeys import ApiKeys
from soulsync_core.backup import BackupService
from soulsync_core.config import Section, core_schema
from soulsync_core.db import Database
from soulsync_core.downloads.albums import AlbumService
from soulsync_core.downloads.service import DownloadService
from soulsync_core.downloads.upgrades import UpgradeService
from soulsync_core.events import EventBus, feed
from soulsync_core.health import ServiceHealth
from soulsync_core.hooks import (
    AccountLogin,
    DownloadClient,
    LoginFailed,
    MetadataProvider,
    PlaylistSource,
)
from soulsync_core.jobs import JobRunner
from soulsync_core.library import LibraryService
from soulsync_core.library.matcher import LibraryMatcher
from soulsync_core.logs import set_access_log, set_level
from soulsync_core.metrics import Metrics
from soulsync_core.models import Account, Health, LoginStart
from soulsync_core.notifications.service import Notifier
from soulsync_core.playlists.service import PlaylistService
from soulsync_core.playlists.store import PlaylistStore
from soulsync_core.plugins import PluginHost, allow_list
from soulsync_core.profiles import DEFAULT_PROFILE, ProfileService
from soulsync_core.ratelimit import CATEGORIES, IPNetwork, RateLimiter, parse_networks
from soulsync_core.search import MetadataSearch
from soulsync_core.settings import Settings
from soulsync_core.stats import StatsContributor, SystemStats
from soulsync_core.timefmt import iso_from_epoch
from soulsync_core.track_requests import TrackRequestService
from soulsync_core.watchlist import WatchlistService
from soulsync_core.wishlist import WishlistService

log = logging.getLogger(__name__)

# Which profile began each login in progress (by its one-time ``state``), so the browser's
# callback, which carries no key, finishes the login of the profile that started it.
LOGIN_PROFILES_ACCOUNT = "soulsync.login_profiles"
# A login not finished by then is over (the plugins give 10 minutes); its record is dropped.
LOGIN_PROFILE_TTL_SECONDS = 3600


@dataclass
class Core:
    data_dir: Path
    db: Database
    settings: Settings
    activity: Activity
    keys: ApiKeys
    health: ServiceHealth
    jobs: JobRunner
    limiter: RateLimiter
    trusted_proxies: list[IPNetwork]
    plugins: PluginHost
    search: MetadataSearch
    download_clients: list[DownloadClient]
    playlist_sources: list[PlaylistSource]
    started_at: float = field(default_factory=time.monotonic)
    stats_contributors: list[StatsContributor] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    library: LibraryService = field(init=False)
    downloads: DownloadService = field(init=False)
    albums: AlbumService = field(init=False)
    wishlist: WishlistService = field(init=False)
    watchlist: WatchlistService = field(init=False)
    playlists: PlaylistService = field(init=False)
    profiles: ProfileService = field(init=False)
    track_requests: TrackRequestService = field(init=False)
    events: EventBus = field(init=False)
    notifier: Notifier = field(init=False)
    backups: BackupService = field(init=False)
    upgrades: UpgradeService = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Playlist sources (and their logins) of profiles other than 1, built on first use.
    _profile_sources: dict[int, list[PlaylistSource]] = field(default_factory=dict)
    _profile_sources_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, data_dir: Path, *, config_path: Path | None = None,
                   environ: Mapping[str, str] | None = None,
                   sections: Iterable[Section] = (), entry_points: bool = True,
                   plugins: Iterable[tuple[str, object]] = (),
                   overrides: Mapping[str, Any] | None = None,
                   apply_logging: bool = False) -> Core:
        """Open the database in ``data_dir``, load plugins and settings from every layer.

        ``entry_points`` loads installed plugins (filtered by the allow-list); ``plugins`` adds
        ``(name, module)`` pairs directly, as tests and embedders do. ``overrides`` are the
        settings given on the command line (``serve --port``), above every other layer.
        ``apply_logging`` sets the log level from the settings before plugins load (the
        daemon), so DEBUG shows their hook calls. Raises SchemaTooNewError/MigrationError for
        the database and ConfigFileError/SettingError for a bad config file, environment
        variable or command-line value.
        """
        environ = os.environ if environ is None else environ
        db = await Database.open(data_dir)
        try:
            settings = await Settings.load(core_schema(sections), db, config_path=config_path,
                                           environ=environ, overrides=overrides)
            if apply_logging:
                set_level(settings.get("logging.level"))
            host = PluginHost.load(allow=allow_list(environ, settings.get("plugins.enabled")),
                                   entry_points=entry_points, extra=plugins)
            await settings.add_sections(host.sections())
            settings.warn_unknown()
            events = EventBus(settings.get("events.buffer_size"))
            await events.open(db)
        except BaseException:
            await db.close()
            raise
        activity = Activity(db)
        health = ServiceHealth(events=events)
        limiter = RateLimiter({c: settings.get(f"api.rate_limits.{c}") for c in CATEGORIES})
        accounts = Accounts(db)
        metadata: list[MetadataProvider] = host.providers("metadata_providers", settings, accounts)
        metrics = Metrics()
        metrics.watch_database(db)
        search = MetadataSearch(metadata, settings, health, metrics=metrics)
        settings.schema.add_check("search.auto_order", search.check_order)
        core = cls(data_dir, db, settings, activity, ApiKeys(db, activity, events), health,
                   JobRunner(db), limiter, parse_networks(settings.get("server.trusted_proxies")),
                   host, search,
                   host.providers("download_clients", settings, accounts),
                   host.providers("playlist_sources", settings, accounts), metrics=metrics)
        core.profiles = ProfileService(db, activity)
        core.events = events
        core.notifier = Notifier(db, settings, events)
        core.library = LibraryService(db, settings, core.jobs, activity, events=events,
                                      metrics=metrics)
        core.stats_contributors.append(core.library.contribute_stats)
        matcher = LibraryMatcher(db, settings)
        core.downloads = DownloadService(db, settings, activity, core.library, core.download_clients,
                                         matcher=matcher, health=health, events=events,
                                         metrics=metrics)
        core.stats_contributors.append(core.downloads.contribute_stats)
        core.albums = AlbumService(db, settings, activity, core.downloads, core.search)
        core.wishlist = WishlistService(db, settings, core.jobs, activity, matcher,
                                        core.downloads, core.library.music_dir, events=events)
        core.wishlist.albums = core.albums
        core.watchlist = WatchlistService(db, settings, core.jobs, activity, core.search,
                                          core.wishlist, events=events)
        core.watchlist.albums = core.albums
        core.stats_contributors.append(core._contribute_watch_stats)
        core.playlists = PlaylistService(
            PlaylistStore(db), settings, core.jobs, activity,
            matcher, core.wishlist, core.downloads,
            core.library.music_dir, core.playlist_sources, core.playlist_sources_of,
            events=events)
        core.track_requests = TrackRequestService(db, settings, core.search, matcher,
                                                  core.downloads, core.library.queries)
        core.backups = BackupService(db, settings, core.jobs, data_dir)
        core.upgrades = UpgradeService(db, settings, core.jobs, activity, core.library,
                                       core.downloads.client, data_dir,
                                       core.playlists.track_file_replaced, events=events,
                                       enqueue_folder=core.albums.enqueue_folder)
        core._listen()
        return core

    def providers(self) -> list[MetadataProvider | DownloadClient | PlaylistSource]:
        """Return every provider object (one object may serve several roles), each once."""
        seen: dict[int, MetadataProvider | DownloadClient | PlaylistSource] = {}
        for provider in (*self.search.providers(), *self.download_clients,
                         *self.playlist_sources):
            seen.setdefault(id(provider), provider)
        return list(seen.values())

    def logins(self) -> dict[str, AccountLogin]:
        """Return the providers that log in a user account, by name (``spotify``, ``tidal``)."""
        return {p.name: p for p in self.providers() if isinstance(p, AccountLogin)}

    async def playlist_sources_of(self, profile_id: int) -> list[PlaylistSource]:
        """Return the playlist sources of a profile: those of :attr:`playlist_sources` for
        profile 1, else ones built (and started) once for the profile's own accounts, so each
        profile lists and syncs the playlists of its own login."""
        if profile_id == DEFAULT_PROFILE:
            return self.playlist_sources
        async with self._profile_sources_lock:
            sources = self._profile_sources.get(profile_id)
            if sources is None:
                sources = self.plugins.providers("playlist_sources", self.settings,
                                                 Accounts(self.db, profile_id))
                for source in sources:
                    await self._start_profile_source(source)
                self._profile_sources[profile_id] = sources
        return sources

    async def logins_of(self, profile_id: int) -> dict[str, AccountLogin]:
        """Return the account logins of a profile by name (see :meth:`playlist_sources_of`)."""
        if profile_id == DEFAULT_PROFILE:
            return self.logins()
        return {p.name: p for p in await self.playlist_sources_of(profile_id)
                if isinstance(p, AccountLogin)}

    async def begin_login(self, login: AccountLogin, profile_id: int) -> LoginStart:
        """Begin a login of a profile's account (see :meth:`callback_login`); the plugin's
        errors (NotConfigured, ProviderError) pass."""
        start = await login.begin_login(self.callback_url(login.name))
        if profile_id != DEFAULT_PROFILE:
            await AccountStore(self.db, LOGIN_PROFILES_ACCOUNT).put(
                start.state, {"profile_id": profile_id})
            # Logins finished by pasting (or never) leave their record; keep the table small.
            await self.db.execute("DELETE FROM account_data WHERE account = ? AND updated_at < ?",
                                  (LOGIN_PROFILES_ACCOUNT,
                                   iso_from_epoch(time.time() - LOGIN_PROFILE_TTL_SECONDS)))
        return start

    async def callback_login(self, name: str, url: str) -> AccountLogin | None:
        """Return the login of account ``name`` of the profile that began the login whose
        ``state`` the callback address carries (profile 1 when none is recorded), None when
        no such account login exists. Raises LoginFailed when that profile was deleted."""
        state = (parse_qs(urlsplit(url).query).get("state") or [""])[0]
        store = AccountStore(self.db, LOGIN_PROFILES_ACCOUNT)
        begun = await store.get(state) if state else None
        profile_id = int(begun["profile_id"]) if begun else DEFAULT_PROFILE
        if begun:
            await store.delete(state)
        if profile_id != DEFAULT_PROFILE and not await self.profiles.exists(profile_id):
            raise LoginFailed(f"The profile that began this login (profile {profile_id}) was "
                              "deleted; begin a new login.")
        return (await self.logins_of(profile_id)).get(name)

    async def forget_profile(self, profile_id: int) -> None:
        """Close and drop the providers built for a profile (after it was deleted)."""
        async with self._profile_sources_lock:
            sources = self._profile_sources.pop(profile_id, [])
        for source in sources:
            await self._close_provider(source)

    async def _start_profile_source(self, source: PlaylistSource) -> None:
        try:
            async with asyncio.timeout(10):
                await source.start()
        except Exception as exc:
            # Its requests then fail with the provider's own error; other profiles are fine.
            log.error("provider %s of a profile failed to start: %r", source.name, exc)
        if isinstance(source, AccountLogin):
            # As in _start_provider: a login-only provider counts as configured from the start.
            with contextlib.suppress(Exception):
                await source.account()

    def callback_url(self, name: str) -> str:
        """Return the daemon's own OAuth callback address for the account ``name``."""
        return f"http://127.0.0.1:{self.settings.get('server.port')}/auth/{name}/callback"

    async def finish_login(self, login: AccountLogin, response: str) -> Account:
        """Finish a login from what the user copied, record it and re-check the service's
        health (so ``/system/status`` follows at once). LoginFailed and ProviderError pass."""
        account = await login.finish_login(response)
        who = account.display_name or account.user_id or "an account"
        title = service_title(login.name)
        await self.activity.record("account.connected", f"{title} Account Connected",
                                   f"Connected as {who}")
        await self.health.check(login.name)
        return account

    def apply_logging_settings(self) -> None:
        """Set the log level and access log from the settings (the daemon does this at start)."""
        set_level(self.settings.get("logging.level"))
        set_access_log(self.settings.get("logging.access_log"))

    def _listen(self) -> None:
        self.settings.on_change("logging.level", lambda c: set_level(c["logging.level"]))
        self.settings.on_change("logging.access_log",
                                lambda c: set_access_log(c["logging.access_log"]))

        def limits_changed(changed: dict[str, Any]) -> None:
            for key, value in changed.items():
                self.limiter.set_limit(key.rsplit(".", 1)[1], value)

        def proxies_changed(changed: dict[str, Any]) -> None:
            self.trusted_proxies = parse_networks(changed["server.trusted_proxies"])

        self.settings.on_change("api.rate_limits.", limits_changed)
        self.settings.on_change("server.trusted_proxies", proxies_changed)
        # Keys only: values may be secrets.
        self.settings.on_change("", lambda c: self.events.publish("settings.changed", {"keys": sorted(c)}))
        self.settings.on_change("events.buffer_size", lambda c: self.events.resize(c["events.buffer_size"]))

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def start(self) -> None:
        """Recover interrupted jobs, record the start, and start the background loops."""
        interrupted = await self.jobs.recover()
        if interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown", interrupted)
        await self.activity.record("system.started", "System Started",
                                   f"SoulSync {__version__} started")
        for provider in self.providers():
            await self._start_provider(provider)
        self._spawn(self.health.run_forever(
            lambda: self.settings.get("health.check_interval_seconds"),
            lambda: self.settings.get("health.retry_interval_seconds")), "health checks")
        self._spawn(self.keys.run_flusher(), "api key last-used flusher")
        self._spawn(self.library.run_scheduler(), "library scan schedule")
        self._spawn(self.library.run_index_upkeep(), "library search index upkeep")
        # After the providers started: resumed downloads talk to their client at once.
        self._spawn(self.downloads.run(), "download monitor")
        self._spawn(self.albums.recover(), "album downloads")
        self._spawn(self.wishlist.run_scheduler(), "wishlist schedule")
        self._spawn(self.watchlist.run_scheduler(), "watchlist scan schedule")
        self._spawn(self.track_requests.run(), "track requests")
        await self.notifier.start()
        for name, listener in self.plugins.listeners(self.settings):
            subscription, _ = self.events.subscribe(queue_size=self.settings.get("events.queue_size"))
            self._spawn(feed(subscription, listener, name), f"event listener of {name}")
        self._spawn(self.backups.run_scheduler(), "backup schedule")
        self._spawn(self.upgrades.run_scheduler(), "quality upgrade schedule")

    async def _start_provider(self, provider: MetadataProvider | DownloadClient | PlaylistSource) -> None:
        try:
            async with asyncio.timeout(10):
                await provider.start()
        except Exception as exc:
            # A provider that cannot start is reported unhealthy; the daemon serves regardless.
            log.error("provider %s failed to start: %r", provider.name, exc)
        if isinstance(provider, AccountLogin):
            # Reading the stored account lets a provider that works only with a user login
            # (no app secret) count as configured before its first request.
            with contextlib.suppress(Exception):
                await provider.account()

        async def check() -> Health | bool:
            # An unconfigured provider is simply off: false, with no error to retry on.
            return await provider.health() if provider.configured else False

        self.health.register(provider.name, check)
        # A new URL, key or login makes the last check stale: check again at once.
        self.settings.on_change(f"{provider.name}.",
                                lambda _changed: self.health.recheck(provider.name))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        """Stop background loops and jobs, and save what is only in memory."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.track_requests.stop()
        await self.health.close()
        await self.albums.stop()
        await self.downloads.stop()  # before the clients it uses close
        await self.jobs.shutdown()
        await self.notifier.stop()
        await self.events.close()
        for provider in self.providers():
            await self._close_provider(provider)
        for profile_id in list(self._profile_sources):
            await self.forget_profile(profile_id)
        await self.keys.flush_last_used()

    @staticmethod
    async def _close_provider(provider: MetadataProvider | DownloadClient | PlaylistSource) -> None:
        try:
            async with asyncio.timeout(5):
                await provider.close()
        except Exception as exc:
            log.warning("provider %s did not close cleanly: %r", provider.name, exc)

    async def close(self) -> None:
        """Close the database (call after :meth:`stop`)."""
        await self.db.close()

    async def _contribute_watch_stats(self, stats: SystemStats) -> None:
        counts = await self.wishlist.counts()
        stats.wishlist.total = counts["total"]
        stats.wishlist.downloading = counts["downloading"]
        stats.wishlist.failed = counts["failed"]
        stats.watchlist.artists = await self.watchlist.count()
        stats.downloads.failed = await self.downloads.store.count(("failed", "not_found"))

    async def stats(self) -> SystemStats:
        """Return system stats: database size here, the rest from each feature's contributor."""
        stats = SystemStats()
        stats.database.size_mb = round(self.db.size_bytes() / (1024 * 1024), 2)
        for contribute in self.stats_contributors:
            await contribute(stats)
        return stats

