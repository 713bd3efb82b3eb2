"""``soulsync serve``: run the HTTP server until SIGTERM/SIGINT, then stop gracefully.

On a signal the listening socket closes at once, requests in flight get up to
``SHUTDOWN_GRACE`` seconds to finish, then background work stops and the database is
checkpointed and closed — all inside the 10 s a service manager is given to stop us.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from soulsync_core import __version__
from soulsync_core.api.app import IN_FLIGHT, create_app
from soulsync_core.api.events import close_event_streams
from soulsync_core.core import Core
from soulsync_core.datalock import DataDirLock, DataDirLocked
from soulsync_core.logs import ACCESS_LOGGER, AccessLogger

log = logging.getLogger("soulsync")

SHUTDOWN_GRACE = 7.0


async def serve(data_dir: Path, config_path: Path | None, host: str | None,
                port: int | None) -> int:
    """Serve until a stop signal; return the process exit code (1 when the data directory is
    in use by another daemon or the address cannot be listened on)."""
    lock = DataDirLock(data_dir)
    try:
        # Before the database is opened: a second daemon must not migrate, recover jobs or
        # write activity under the one running.
        await asyncio.to_thread(lock.acquire)
    except DataDirLocked as exc:
        log.error("%s", exc)
        return 1
    try:
        return await _serve(lock, data_dir, config_path, host, port)
    finally:
        lock.release()


async def _serve(lock: DataDirLock, data_dir: Path, config_path: Path | None, host: str | None,
                 port: int | None) -> int:
    # The command line's address is a settings layer of its own, so GET /settings and the
    # OAuth redirect address show what the daemon really listens on.
    overrides = {key: value for key, value in (("server.host", host), ("server.port", port))
                 if value is not None}
    core = await Core.open(data_dir, config_path=config_path, overrides=overrides,
                           apply_logging=True)
    core.apply_logging_settings()
    host = core.settings.get("server.host")
    port = core.settings.get("server.port")
    app = create_app(core)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0,
                           access_log_class=AccessLogger,
                           access_log=logging.getLogger(ACCESS_LOGGER))
    await runner.setup()
    # Before the first request can be answered: whoever sees this daemon answer (a second
    # serve, the CLI) also finds its address in the lock file.
    await asyncio.to_thread(lock.update, host, port)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        await runner.cleanup()
        return 1
    log.info("SoulSync %s listening on http://%s:%d (data in %s)", __version__, host, port,
             data_dir)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    in_flight = app[IN_FLIGHT]
    log.info("stopping: finishing %d request(s) in flight (at most %g s)", in_flight.count,
             SHUTDOWN_GRACE)
    in_flight.stopping = True
    await close_event_streams(app)  # idle event streams would hold the grace period
    for site in list(runner.sites):
        await site.stop()  # close the listener: new connections are refused from now on
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE):
            await in_flight.idle.wait()
    except TimeoutError:
        log.warning("%d request(s) still running after %g s; cancelling them", in_flight.count,
                    SHUTDOWN_GRACE)
    await runner.cleanup()
    log.info("stopped")
    return 0
