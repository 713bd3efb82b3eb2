"""The daemon's state in one place: database, settings, keys, activity, health, jobs, limits.

The API, the CLI and the tests all build a :class:`Core` with :meth:`Core.open` and release it
with :meth:`Core.close`; background work runs between :meth:`start` and :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soulsync_core import __version__
from soulsync_core.activity import Activity
from soulsync_core.apikeys import ApiKeys
from soulsync_core.config import Section, core_schema
from soulsync_core.db import Database
from soulsync_core.health import ServiceHealth
from soulsync_core.jobs import JobRunner
from soulsync_core.logs import set_access_log, set_level
from soulsync_core.ratelimit import CATEGORIES, IPNetwork, RateLimiter, parse_networks
from soulsync_core.settings import Settings
from soulsync_core.stats import StatsContributor, SystemStats

log = logging.getLogger(__name__)


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
    started_at: float = field(default_factory=time.monotonic)
    stats_contributors: list[StatsContributor] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, data_dir: Path, *, config_path: Path | None = None,
                   environ: Mapping[str, str] | None = None,
                   sections: Iterable[Section] = ()) -> Core:
        """Open the database in ``data_dir`` and load settings from every layer.

        Raises SchemaTooNewError/MigrationError for the database and ConfigFileError/
        SettingError for a bad config file or environment variable.
        """
        db = await Database.open(data_dir)
        try:
            settings = await Settings.load(core_schema(sections), db, config_path=config_path,
                                           environ=environ)
        except BaseException:
            await db.close()
            raise
        activity = Activity(db)
        limiter = RateLimiter({c: settings.get(f"api.rate_limits.{c}") for c in CATEGORIES})
        core = cls(data_dir, db, settings, activity, ApiKeys(db, activity), ServiceHealth(),
                   JobRunner(db), limiter, parse_networks(settings.get("server.trusted_proxies")))
        core._listen()
        set_level(settings.get("logging.level"))
        set_access_log(settings.get("logging.access_log"))
        return core

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

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def start(self) -> None:
        """Recover interrupted jobs, record the start, and start the background loops."""
        interrupted = await self.jobs.recover()
        if interrupted:
            log.warning("%d job(s) were interrupted by the last shutdown", interrupted)
        await self.activity.record("system.started", "System Started",
                                   f"SoulSync {__version__} started")
        self._spawn(self.health.run_forever(), "health checks")
        self._spawn(self.keys.run_flusher(), "api key last-used flusher")

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
        await self.jobs.shutdown()
        await self.keys.flush_last_used()

    async def close(self) -> None:
        """Close the database (call after :meth:`stop`)."""
        await self.db.close()

    async def stats(self) -> SystemStats:
        """Return system stats: database size here, the rest from each feature's contributor."""
        stats = SystemStats()
        stats.database.size_mb = round(self.db.size_bytes() / (1024 * 1024), 2)
        for contribute in self.stats_contributors:
            await contribute(stats)
        return stats
