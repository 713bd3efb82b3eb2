"""The ``soulsync`` command: ``serve`` the daemon, manage ``keys`` on the box."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from soulsync_core import __version__
from soulsync_core.config import ConfigFileError, SettingError
from soulsync_core.core import Core
from soulsync_core.db.migrate import MigrationError
from soulsync_core.logs import setup_logging
from soulsync_core.paths import default_data_dir


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="state directory (default: $SOULSYNC_DATA_DIR or ~/.local/share/soulsync)")
    common.add_argument("--config", type=Path, default=None, help="TOML config file")

    parser = argparse.ArgumentParser(prog="soulsync", description="SoulSync music automation daemon.")
    parser.add_argument("--version", action="version", version=f"soulsync {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run the daemon")
    serve.add_argument("--host", help="listen address (default: the server.host setting, 0.0.0.0)")
    serve.add_argument("--port", type=int, help="listen port (default: the server.port setting, 8008)")

    keys = commands.add_parser("keys", help="manage API keys on this machine")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", parents=[common], help="create a key and print it once")
    create.add_argument("--label", default="CLI", help="label shown in key lists")
    key_commands.add_parser("list", parents=[common], help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", parents=[common], help="revoke a key by id")
    revoke.add_argument("key_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad configuration)."""
    args = _parser().parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    # Command output goes to stdout (a created key can be captured); logs of commands go to stderr.
    setup_logging("INFO" if args.command == "serve" else "WARNING",
                  sys.stdout if args.command == "serve" else sys.stderr)
    try:
        if args.command == "serve":
            from soulsync_core.daemon import serve

            return asyncio.run(serve(data_dir, args.config, args.host, args.port))
        action = {"create": _keys_create, "list": _keys_list, "revoke": _keys_revoke}[args.keys_command]
        return asyncio.run(_with_core(data_dir, args.config, lambda core: action(core, args)))
    except (ConfigFileError, SettingError, MigrationError) as exc:
        print(f"soulsync: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _with_core(data_dir: Path, config: Path | None,
                     action: Callable[[Core], Awaitable[int]]) -> int:
    core = await Core.open(data_dir, config_path=config)
    try:
        return await action(core)
    finally:
        await core.close()


async def _keys_create(core: Core, args: argparse.Namespace) -> int:
    new = await core.keys.create(args.label)
    print(new.key)
    print(f"id {new.id}, label {new.label!r}. This key is shown once: store it now.",
          file=sys.stderr)
    return 0


async def _keys_list(core: Core, args: argparse.Namespace) -> int:
    keys = await core.keys.list()
    if not keys:
        print("no API keys; create one with `soulsync keys create`", file=sys.stderr)
        return 0
    print(f"{'ID':36}  {'PREFIX':11}  {'CREATED':25}  {'LAST USED':25}  LABEL")
    for key in keys:
        print(f"{key.id:36}  {key.key_prefix:11}  {key.created_at:25}  "
              f"{key.last_used_at or 'never':25}  {key.label}")
    return 0


async def _keys_revoke(core: Core, args: argparse.Namespace) -> int:
    revoked = await core.keys.revoke(args.key_id)
    if revoked is None:
        print(f"soulsync: no API key with id {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {revoked.key_prefix}… ({revoked.label})")
    return 0
