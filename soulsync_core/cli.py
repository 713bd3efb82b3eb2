"""The ``soulsync`` command: ``serve`` the daemon, ``scan`` the library, manage ``keys``,
connect streaming accounts (``auth``), ``backup`` and ``restore`` the database on the box."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from soulsync_core import __version__
from soulsync_core.apikeys import InvalidLabel
from soulsync_core.backup import JOB_KIND as BACKUP_JOB
from soulsync_core.backup import DaemonRunning, restore
from soulsync_core.config import ConfigFileError, SettingError
from soulsync_core.core import Core
from soulsync_core.datalock import read_holder
from soulsync_core.db.migrate import MigrationError
from soulsync_core.db.snapshot import SnapshotError
from soulsync_core.hooks import LoginFailed, ProviderError
from soulsync_core.jobs import JobConflict
from soulsync_core.library.scanner import ScanError, ScanProgress
from soulsync_core.library.service import JOB_KIND
from soulsync_core.logs import escape_controls, setup_logging
from soulsync_core.models import Account
from soulsync_core.paths import data_dir_id, default_data_dir


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="state directory (default: $SOULSYNC_DATA_DIR or ~/.local/share/soulsync)")
    common.add_argument("--config", type=Path, default=None,
                        help="TOML config file, which must exist (default: $SOULSYNC_CONFIG, "
                             "read only if it exists)")

    parser = argparse.ArgumentParser(prog="soulsync", description="SoulSync music automation daemon.")
    parser.add_argument("--version", action="version", version=f"soulsync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the daemon")
    serve.add_argument("--host", help="listen address (default: the server.host setting, 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: the server.port setting, 8008)")

    commands.add_parser("scan", parents=[common],
                        help="scan the music folder (library.music_dir) into the library")

    keys = commands.add_parser("keys", help="manage API keys on this machine")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--label", default="CLI", help="label shown in key lists")
    create.add_argument("--profile", type=int, metavar="N",
                        help="bind the key to profile N: it then acts only as that profile")
    key_commands.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("key_id")

    auth = commands.add_parser("auth", parents=[common],
                               help="connect a streaming account (spotify, tidal) for playlists")
    auth.add_argument("account", help="the account to connect: spotify or tidal")
    auth.add_argument("--profile", type=int, default=1, metavar="N",
                      help="connect the account of profile N (default 1, the admin)")
    what = auth.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="show who is connected and stop")
    what.add_argument("--logout", action="store_true", help="forget the account's tokens")
    what.add_argument("--response", metavar="URL",
                      help="finish the login in progress (begun by GET /api/v1/auth/<account> or "
                           "an interrupted run) with this redirect address or code")

    backup = commands.add_parser("backup", parents=[common],
                                 help="back up the database now (also while the daemon runs)")
    backup.add_argument("--to", type=Path, metavar="FILE",
                        help="write the backup to FILE (default: a new file in backup.dir)")
    restore_command = commands.add_parser(
        "restore", parents=[common],
        help="replace the database with a backup (stop the daemon first)")
    restore_command.add_argument("file", type=Path, help="the backup file to restore")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad configuration)."""
    args = _parser().parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    # Command output goes to stdout (a created key can be captured); logs of commands go to stderr.
    setup_logging("INFO" if args.command == "serve" else "WARNING",
                  sys.stdout if args.command == "serve" else sys.stderr)
    config = args.config or _optional_config(os.environ)
    if args.command != "serve" and args.data_dir is None:
        # Said when not chosen on the command line: run by another user (another $HOME) or
        # without SOULSYNC_DATA_DIR, a command silently used another database than the daemon.
        origin = "SOULSYNC_DATA_DIR" if os.environ.get("SOULSYNC_DATA_DIR") else "the default"
        print(f"soulsync: using the data directory {data_dir} ({origin}; choose another with "
              "--data-dir)", file=sys.stderr)
    refusal = _root_on_anothers_data_dir(data_dir)
    if refusal is not None:
        print(f"soulsync: {refusal}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            from soulsync_core.daemon import serve

            return asyncio.run(serve(data_dir, config, args.host, args.port))
        if args.command == "scan":
            return asyncio.run(_with_core(data_dir, config, _scan))
        if args.command == "auth":
            return asyncio.run(_with_core(data_dir, config, lambda core: _auth(core, args)))
        if args.command == "backup":
            if args.to is not None:  # relative to where the command runs
                args.to = Path(os.path.abspath(args.to.expanduser()))
            return asyncio.run(_with_core(data_dir, config, lambda core: _backup(core, args)))
        if args.command == "restore":
            return _restore(data_dir, args.file)
        action = {"create": _keys_create, "list": _keys_list, "revoke": _keys_revoke}[args.keys_command]
        return asyncio.run(_with_core(data_dir, config, lambda core: action(core, args)))
    except (ConfigFileError, SettingError, MigrationError) as exc:
        print(f"soulsync: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        # The data directory is private to the daemon's user (0700).
        print(f"soulsync: cannot open {exc.filename or data_dir}: permission denied; run this "
              "as the user that owns the data directory (e.g. sudo -u soulsync …) or pass "
              "another --data-dir", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _root_on_anothers_data_dir(data_dir: Path) -> str | None:
    """Return why root may not use ``data_dir`` (None: it may).

    Run as root, SQLite creates the ``-wal``/``-shm`` files (and backups, logs) owned by root,
    and the daemon's own user then cannot open its database. Like Nextcloud's occ, refuse and
    name the owner to run as, rather than quietly changing users.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        owner = data_dir.stat().st_uid
    except OSError:
        return None  # not there yet: root creates its own
    if owner == 0:
        return None
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (ImportError, KeyError):
        name = f"#{owner}"
    return (f"the data directory {data_dir} belongs to user {name}; run this as that user "
            f"(sudo -u {name} soulsync …), because files root creates there (the database's "
            "-wal and -shm files) would lock that user out")


def _optional_config(environ: Mapping[str, str]) -> Path | None:
    """Return ``$SOULSYNC_CONFIG`` when that file exists, else None (built-in defaults).

    The systemd unit names /etc/soulsync/soulsync.toml this way, so the service starts on a
    fresh install that has no config file yet; ``--config`` given by hand must exist.
    """
    raw = environ.get("SOULSYNC_CONFIG")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if path.exists():
        return path
    logging.getLogger("soulsync").info("no config file %s (SOULSYNC_CONFIG); using the other "
                                       "settings layers", path)
    return None


async def _with_core(data_dir: Path, config: Path | None,
                     action: Callable[[Core], Awaitable[int]]) -> int:
    holder = await asyncio.to_thread(read_holder, data_dir)
    # A daemon on this directory may listen where `serve --port` said: a login begun here
    # must send the browser back to that port.
    overrides = {"server.port": holder.port} if holder is not None and holder.port else None
    core = await Core.open(data_dir, config_path=config, overrides=overrides)
    try:
        if holder is None:
            await _warn_if_daemon_elsewhere(core)
        return await action(core)
    finally:
        await core.close()


PING_TIMEOUT_SECONDS = 1.0


async def _warn_if_daemon_elsewhere(core: Core) -> None:
    """Warn on stderr when a daemon listens on the configured port but uses another data dir
    (call when no daemon holds ``core``'s own)."""
    port = core.settings.get("server.port")
    try:
        timeout = aiohttp.ClientTimeout(total=PING_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(f"http://127.0.0.1:{port}/ping") as response:
            pong = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return  # nothing (or nothing of ours) listens there
    theirs = pong.get("data_dir_id") if isinstance(pong, dict) else None
    if isinstance(theirs, str) and theirs != data_dir_id(core.data_dir):
        print(f"soulsync: warning: the SoulSync daemon listening on port {port} uses another "
              f"data directory than {core.data_dir}, so it will not see what this command "
              "does. Pass that daemon's --data-dir (or set SOULSYNC_DATA_DIR) to work on its "
              "database.", file=sys.stderr)


async def _keys_create(core: Core, args: argparse.Namespace) -> int:
    if args.profile is not None and not await core.profiles.exists(args.profile):
        print(f"soulsync: there is no profile {args.profile}; the profiles are listed at "
              "GET /api/v1/profiles", file=sys.stderr)
        return 1
    try:
        new = await core.keys.create(args.label, args.profile)
    except InvalidLabel as exc:
        print(f"soulsync: {exc}", file=sys.stderr)
        return 2
    print(new.key)
    bound = f", bound to profile {new.profile_id}" if new.profile_id is not None else ""
    print(f"id {new.id}, label {new.label!r}{bound}. This key is shown once: store it now.",
          file=sys.stderr)
    return 0


async def _keys_list(core: Core, args: argparse.Namespace) -> int:
    keys = await core.keys.list()
    if not keys:
        print("no API keys; create one with `soulsync keys create`", file=sys.stderr)
        return 0
    print(f"{'ID':36}  {'PREFIX':11}  {'CREATED':25}  {'LAST USED':25}  {'PROFILE':7}  LABEL")
    for key in keys:
        print(f"{key.id:36}  {key.key_prefix:11}  {key.created_at:25}  "
              f"{key.last_used_at or 'never':25}  {key.profile_id or '-'!s:7}  "
              f"{escape_controls(key.label)}")
    return 0


async def _keys_revoke(core: Core, args: argparse.Namespace) -> int:
    revoked = await core.keys.revoke(args.key_id)
    if revoked is None:
        print(f"soulsync: no API key with id {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {revoked.key_prefix}… ({escape_controls(revoked.label)})")
    return 0


async def _auth(core: Core, args: argparse.Namespace) -> int:
    """Connect, show or forget a streaming account; the tokens go to the shared database, so
    a running daemon uses them from its next request."""
    if args.profile != 1 and not await core.profiles.exists(args.profile):
        print(f"soulsync: there is no profile {args.profile}; the profiles are listed at "
              "GET /api/v1/profiles", file=sys.stderr)
        return 1
    logins = await core.logins_of(args.profile)
    login = logins.get(args.account)
    if login is None:
        known = ", ".join(sorted(logins)) or "none (install a plugin such as soulsync-spotify)"
        print(f"soulsync: no account login named {args.account!r}; accounts: {known}",
              file=sys.stderr)
        return 1
    try:
        if args.status or args.logout:
            if args.logout:
                await login.logout()
            account = await login.account()
            print(_account_line(login.name, account))
            return 0
        response = args.response
        if response is None:
            start = await core.begin_login(login, args.profile)
            print(f"1. Open this address in a browser on any device and approve SoulSync:\n\n"
                  f"   {start.url}\n\n2. Your browser is then sent to {start.redirect_uri}?… "
                  "(the page may fail to load; that is fine).\n   Copy the whole address from "
                  "the address bar and paste it here.\n", file=sys.stderr, flush=True)
            # The prompt goes to stderr like the instructions: stdout carries only the result.
            print("Address (or code): ", end="", file=sys.stderr, flush=True)
            response = await asyncio.to_thread(sys.stdin.readline)
            if not response.strip():
                print("soulsync: no address given; run the command again", file=sys.stderr)
                return 1
        # With --response: finish the login in progress (begun by the API or an earlier run).
        account = await core.finish_login(login, response.strip())
    except (LoginFailed, ProviderError) as exc:
        print(f"soulsync: {exc}", file=sys.stderr)
        return 1
    finally:
        await login.close()
    print(_account_line(login.name, account))
    return 0


def _account_line(name: str, account: Account) -> str:
    if not account.connected:
        return f"{name}: not connected"
    return f"{name}: connected as {account.display_name or account.user_id or 'unknown user'}"


PROGRESS_REFRESH_SECONDS = 0.2


def progress_line(progress: Mapping[str, Any], width: int = 30) -> str:
    """Return the one-line progress bar of a scan from its job progress (for a terminal)."""
    total = progress.get("files_total")
    seen = progress.get("files_seen", 0)
    if total is None:
        return f"counting files in {progress.get('music_dir', 'the music folder')}..."
    done = min(width, width * seen // total) if total else width
    counts = (f"read {progress.get('files_read', 0):,}, unchanged {progress.get('files_unchanged', 0):,}, "
              f"skipped {progress.get('files_skipped', 0):,}")
    return f"[{'#' * done}{'.' * (width - done)}] {seen:,}/{total:,} files ({counts})"


async def _scan(core: Core) -> int:
    try:
        info = await core.library.start_scan("cli")
    except ScanError as exc:
        print(f"soulsync: {exc}", file=sys.stderr)
        return 1
    out: TextIO | None = sys.stderr if sys.stderr.isatty() else None
    try:
        while core.jobs.running(JOB_KIND) is not None:
            if out is not None:
                out.write("\r\x1b[K" + progress_line(info.progress))
                out.flush()
            await asyncio.sleep(PROGRESS_REFRESH_SECONDS)
        await core.jobs.wait(JOB_KIND)
    except asyncio.CancelledError:
        await core.jobs.shutdown()  # Ctrl-C: the job stops and its row says so before we close
        raise
    finally:
        if out is not None:
            out.write("\r\x1b[K")
    final = await core.jobs.get(info.id)
    if final is None or final.state != "completed":
        print(f"soulsync: the scan {final.state if final else 'vanished'}: "
              f"{final.error if final else ''}", file=sys.stderr)
        return 1
    result = final.result or {}
    print(f"Scanned {result.get('music_dir')}: {_summary(result)}")
    return 0


def _summary(result: Mapping[str, Any]) -> str:
    known = {k: v for k, v in result.items() if k in ScanProgress.__dataclass_fields__}
    return ScanProgress(**known).summary()


async def _backup(core: Core, args: argparse.Namespace) -> int:
    target: Path | None = args.to
    if target is not None:
        if await asyncio.to_thread(target.exists):
            print(f"soulsync: {target} exists; name a new file", file=sys.stderr)
            return 1
    try:
        info = await core.backups.start(to=target, reason="cli")
    except JobConflict as exc:
        print(f"soulsync: {exc}; wait for it to finish", file=sys.stderr)
        return 1
    await core.jobs.wait(BACKUP_JOB)
    final = await core.jobs.get(info.id)
    if final is None or final.state != "completed" or final.result is None:
        print(f"soulsync: the backup {final.state if final else 'vanished'}: "
              f"{final.error if final else ''}", file=sys.stderr)
        return 1
    result = final.result
    print(f"{result['path']} ({result['size_bytes']:,} bytes, schema version "
          f"{result['schema_version']}, integrity ok)")
    return 0


def _restore(data_dir: Path, backup: Path) -> int:
    try:
        done = restore(data_dir, backup.expanduser())
    except (DaemonRunning, SnapshotError) as exc:
        print(f"soulsync: cannot restore: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"soulsync: cannot restore into {data_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    kept = f"; the database it replaced is {done.replaced}" if done.replaced else ""
    print(f"restored {backup} (schema version {done.schema_version}) into {data_dir}{kept}. "
          "Start SoulSync again; it upgrades an older backup's schema at start.")
    return 0
