"""Test-only pause points, so a crash test can SIGKILL the daemon at an exact step.

``SOULSYNC_TEST_PAUSE_AT=<point>`` (one name, or several separated by commas) and
``SOULSYNC_TEST_PAUSE_MARKER=<file>`` make the daemon, on reaching that named point, write the
point's name into the marker file and then wait forever; the test waits for the file and kills
the process. Nothing else reads these variables, and they are read once at import: with them
unset (every real run) :func:`reached` and :func:`areached` return at once.

The points, named where they are in the code:

* ``download.searched``: a Soulseek search returned, its results not saved yet.
* ``download.enqueued``: slskd accepted the transfer, its id not saved yet.
* ``import.before_rename``: the file is copied, tagged and flushed under its temporary name.
* ``import.renamed``: the file has its final name; ``tagged`` is not saved yet.
* ``scan.chunk_written``: a library scan wrote one chunk of rows (more to come).
* ``wishlist.requested``: a wishlist run asked for a download, the link not saved yet.
* ``playlist.wanted``: a playlist sync put a missing track on the wishlist; its state and
  M3U8 are not saved yet.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

_POINTS = frozenset(filter(None, os.environ.get("SOULSYNC_TEST_PAUSE_AT", "").split(",")))
_MARKER = os.environ.get("SOULSYNC_TEST_PAUSE_MARKER", "")


def _mark(point: str) -> bool:
    """Write the marker for ``point``; return True when the caller must then wait."""
    if point not in _POINTS:
        return False
    if _MARKER:
        Path(_MARKER).write_text(point)
    return True


def reached(point: str) -> None:
    """Wait forever at ``point`` when a test asked for it (blocking: for worker threads)."""
    if _POINTS and _mark(point):
        threading.Event().wait()


async def areached(point: str) -> None:
    """Wait forever at ``point`` when a test asked for it (awaitable: for the event loop)."""
    if _POINTS and _mark(point):
        await asyncio.Event().wait()
