"""The database reader process: runs read-only statements sent over a socket, answers them.

Started by :mod:`soulsync_core.db.reader_process` as ``python -I -S read_worker.py FD PATH
SETUP``, as a file, so that it imports nothing but the standard library (it starts in ~20 ms
and holds ~10 MB). Frames both ways are a 4-byte little-endian length and a ``marshal``
payload:

- request ``(id, sql, params)``;
- answer ``(id, 0, columns, rows, seconds)``, or ``(id, 1, exception class name, message,
  seconds)`` when the statement failed; ``seconds`` is how long it ran (the daemon estimates
  from it how much work a reader has queued).

Every request that has fully arrived is run, and the answers go back together: in one
``send`` when they take under ``FLUSH_S`` together, so a burst of quick reads costs one
wake-up of each process; otherwise every ``FLUSH_S``, so the daemon starts on the first
answers of a slow burst while the reader runs the rest. The process ends when the socket closes
(its daemon stopped or died) and ignores SIGINT, SIGTERM and SIGHUP: a Ctrl-C in a terminal
reaches the whole process group, and systemd's stop sends SIGTERM to every process of the
service, while the daemon may still be answering its last requests. The daemon decides when
this process ends (SIGKILL still ends it).
"""

from __future__ import annotations

import json
import marshal
import signal
import socket
import sqlite3
import sys
import time
from typing import Any

HEADER = 4
RECEIVE_BYTES = 1 << 16
# Answers that have taken this long together go back at once (see the module docstring).
FLUSH_S = 0.0002


def frame(value: Any) -> bytes:
    """Return ``value`` as one frame (length, then its marshal bytes)."""
    payload = marshal.dumps(value)
    return len(payload).to_bytes(HEADER, "little") + payload


def answer(conn: sqlite3.Connection, request: tuple[int, str, Any]) -> bytes:
    """Run one request; return its answer frame."""
    request_id, sql, params = request
    start = time.perf_counter()
    try:
        cursor = conn.execute(sql, params)
        try:
            rows = cursor.fetchall()
            columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
        finally:
            cursor.close()
        return frame((request_id, 0, columns, rows, time.perf_counter() - start))
    except Exception as exc:  # every failure goes back to its caller, none ends the process
        return frame((request_id, 1, type(exc).__name__, str(exc), time.perf_counter() - start))


def serve(sock: socket.socket, conn: sqlite3.Connection) -> None:
    """Answer requests until the socket closes."""
    pending = bytearray()
    while data := sock.recv(RECEIVE_BYTES):
        pending += data
        answers = []
        start = 0
        sent_at = time.perf_counter()
        while len(pending) - start >= HEADER:
            size = int.from_bytes(pending[start:start + HEADER], "little")
            end = start + HEADER + size
            if end > len(pending):
                break
            answers.append(answer(conn, marshal.loads(pending[start + HEADER:end])))
            start = end
            if time.perf_counter() - sent_at >= FLUSH_S:
                sock.sendall(b"".join(answers))
                answers.clear()
                sent_at = time.perf_counter()
        del pending[:start]
        if answers:
            sock.sendall(b"".join(answers))


def main(argv: list[str]) -> int:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    fd, path, setup = int(argv[1]), argv[2], json.loads(argv[3])
    sock = socket.socket(fileno=fd)
    # isolation_level=None: no implicit transactions, so no read transaction stays open
    # between statements (one would hold back every checkpoint).
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in setup:
        conn.execute(statement).fetchall()
    try:
        serve(sock, conn)
    except (ConnectionError, OSError):
        pass  # the daemon went away mid-answer
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
