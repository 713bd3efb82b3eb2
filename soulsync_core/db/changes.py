"""The database's change number: lets in-memory caches prove they are not stale.

SQLite's ``PRAGMA data_version`` on a connection changes whenever another connection commits,
this process's writer and any other process (``soulsync scan``, ``soulsync keys revoke``)
alike. A value computed after reading number N is therefore current for as long as the number
is still N. Reading it runs on the calling (event loop) thread, on a connection of its own:
it reads the WAL index in shared memory (~5-10 us, cheaper than the round trip to a database
thread that a cache saves) and never waits (busy timeout 0).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class ChangeCounter:
    """Reads ``PRAGMA data_version`` of one database file; the connection opens on first use."""

    def __init__(self, path: Path | str):
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def version(self) -> int | None:
        """Return the current change number, None when it cannot be read (callers then do
        not cache)."""
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._path, isolation_level=None,
                                             check_same_thread=False)
                self._conn.execute("PRAGMA busy_timeout = 0")
                self._conn.execute("PRAGMA query_only = ON")
            # fetchall: the statement runs to its end, so no read transaction stays open (one
            # would hold back every checkpoint).
            return int(self._conn.execute("PRAGMA data_version").fetchall()[0][0])
        except sqlite3.Error:
            return None

    def close(self) -> None:
        """Close the connection (a later :meth:`version` opens it again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
