"""Where SoulSync keeps its state by default (XDG base directories)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``$SOULSYNC_DATA_DIR``, else ``$XDG_DATA_HOME/soulsync``, else ``~/.local/share/soulsync``."""
    env = os.environ if environ is None else environ
    if env.get("SOULSYNC_DATA_DIR"):
        return Path(env["SOULSYNC_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "soulsync"
