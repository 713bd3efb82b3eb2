"""Read-only connections in reader processes, talked to over sockets the event loop watches.

Why processes and not threads: under load the cost of a read was not its SQL (10-100 us for
most library queries) but the trip to a database thread. The thread and the event loop take
turns with the GIL at every SQLite call and every system call of the loop, and each turn is a
context switch (~100 us of server CPU per request; even a ``stat()`` on the loop cost ~70 us
while a reader thread waited for the GIL). A reader process has its own GIL: the loop only
writes requests to a socket and reads the answers as it reads HTTP requests, and the SQL runs
on another core.

Requests made in the same turn of the loop go out in one ``send``; the process answers all
that have arrived in one ``send`` too when they are quick (see :mod:`read_worker`), so a burst
of reads costs one wake-up of each side, and a burst of slower reads is shared by the readers
(see ``_QUEUE_S``). Each statement still runs on its own: a failing one fails only its
caller, with the ``sqlite3`` exception class it raised in the reader.

A reader that ends (killed, out of memory) fails the reads it held with
:class:`sqlite3.OperationalError`; the next read starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import marshal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soulsync_core.db import read_worker

log = logging.getLogger(__name__)

_WORKER = Path(read_worker.__file__)
_HEADER = read_worker.HEADER
# A reader that has answered nothing for this long while reads wait on it is running a slow
# statement: later reads go to the next reader. Most library reads take under 1 ms.
_HELD_UP_S = 0.002
# A reader takes more reads while the reads waiting on it should take less than this in all
# (by the recent mean time of a read): a burst of quick reads goes to one reader, so one
# wake-up of each process answers it, and a burst of slower ones is shared, so both readers
# run while the loop answers the first of them.
_QUEUE_S = 0.0005
# Weight of the newest read in the mean time of a read.
_COST_WEIGHT = 0.05
# How long a reader may take to stop after its socket closes before it is killed.
_STOP_TIMEOUT_S = 5.0


class Row(tuple):  # type: ignore[type-arg]
    """A result row: a tuple that is also indexed by column name, as ``sqlite3.Row`` is."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if type(key) is str:
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """Return the column names, in order (so that ``dict(row)`` works)."""
        return list(self._index)


_ROW_TYPES: dict[tuple[str, ...], type[Row]] = {}


def _row_type(columns: tuple[str, ...]) -> type[Row]:
    """Return the :class:`Row` class of one set of columns (made once per set)."""
    cls = _ROW_TYPES.get(columns)
    if cls is None:
        # The first of two same-named columns wins, as with sqlite3.Row.
        index: dict[str, int] = {}
        for position, name in enumerate(columns):
            index.setdefault(name, position)
        cls = type("Row", (Row,), {"__slots__": (), "_index": index})
        _ROW_TYPES[columns] = cls
    return cls


def _error(name: str, message: str) -> Exception:
    """Return the exception a reader reported, as the ``sqlite3`` class of that name."""
    cls = getattr(sqlite3, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return sqlite3.OperationalError(f"{name}: {message}")


class _ReadCost:
    """The recent mean time a read takes in a reader (a moving average), shared by a pool."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def observe(self, seconds: float) -> None:
        self.seconds += (seconds - self.seconds) * _COST_WEIGHT


class _Reader(asyncio.Protocol):
    """One reader process and the loop's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], cost: _ReadCost):
        self.process = process
        self.cost = cost
        self.waiting: dict[int, asyncio.Future[list[Row]]] = {}
        self.lost = False
        self._transport: asyncio.Transport | None = None
        self._outgoing: list[bytes] = []
        self._received = bytearray()
        self._ids = itertools.count()
        self._flushing = False
        # When the reader last showed progress: its last answer, or the first read sent to it
        # while it was idle.
        self._progress_at = 0.0

    def held_up(self, now: float) -> bool:
        """Whether reads have waited on this reader for over ``_HELD_UP_S`` with no answer."""
        return bool(self.waiting) and now - self._progress_at > _HELD_UP_S

    def has_room(self, now: float) -> bool:
        """Whether this reader should take another read: not held up, and the reads waiting
        on it should take under ``_QUEUE_S`` in all."""
        return not self.held_up(now) and len(self.waiting) * self.cost.seconds < _QUEUE_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send(self, sql: str, params: Sequence[Any]) -> asyncio.Future[list[Row]]:
        """Queue one statement; return the future of its rows.

        Raises :class:`sqlite3.OperationalError` when the reader has ended.
        """
        if self.lost:
            raise sqlite3.OperationalError("the database reader process ended")
        loop = asyncio.get_running_loop()
        request_id = next(self._ids)
        try:
            # A list of parameters travels as a tuple; marshal refuses what it cannot carry
            # (sqlite3 would refuse most of it too), before anything is queued.
            payload = marshal.dumps((request_id, sql, tuple(params)
                                     if isinstance(params, list) else params))
        except ValueError as exc:
            raise sqlite3.ProgrammingError(f"a parameter the database cannot take: {exc}") from exc
        future: asyncio.Future[list[Row]] = loop.create_future()
        if not self.waiting:
            self._progress_at = loop.time()
        self.waiting[request_id] = future
        self._outgoing.append(len(payload).to_bytes(_HEADER, "little") + payload)
        if not self._flushing:
            # Sent at the end of this turn of the loop, with whatever else is asked in it.
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flushing = False
        if self._transport is not None and not self.lost and self._outgoing:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def data_received(self, data: bytes) -> None:
        self._progress_at = asyncio.get_running_loop().time()
        self._received += data
        start, received = 0, self._received
        while len(received) - start >= _HEADER:
            end = start + _HEADER + int.from_bytes(received[start:start + _HEADER], "little")
            if end > len(received):
                break
            answer = marshal.loads(received[start + _HEADER:end])
            start = end
            self.cost.observe(answer[4])
            future = self.waiting.pop(answer[0], None)
            if future is None or future.done():
                continue  # its caller was cancelled
            if answer[1] == 0:
                make = _row_type(answer[2])
                future.set_result([make(row) for row in answer[3]])
            else:
                future.set_exception(_error(answer[2], answer[3]))
        del received[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(sqlite3.OperationalError(
                    "the database reader process ended before answering"))
        self.waiting.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class ReadPool:
    """Reader processes of one database; create with :meth:`open`, end with :meth:`close`."""

    def __init__(self, path: Path, setup: Sequence[str]):
        self._path = path
        self._setup = list(setup)
        self._readers: list[_Reader] = []
        self._cost = _ReadCost()
        self._replacing = asyncio.Lock()  # one replacement of lost readers at a time
        self._closed = False

    @classmethod
    async def open(cls, path: Path, count: int, setup: Sequence[str]) -> ReadPool:
        """Start ``count`` readers of ``path``, each after running the ``setup`` PRAGMAs.

        Raises :class:`sqlite3.Error` when a reader cannot open the database.
        """
        pool = cls(path, setup)
        try:
            for _ in range(count):
                pool._readers.append(await pool._start())
            for reader in pool._readers:
                await reader.send("SELECT 1", ())  # the reader opened the database
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _start(self) -> _Reader:
        parent, child = socket.socketpair()
        try:
            args = [sys.executable, "-I", "-S", str(_WORKER), str(child.fileno()), str(self._path),
                    json.dumps(self._setup)]
            # Popen forks and execs: in a thread, so the loop does not wait for it.
            process = await asyncio.to_thread(
                subprocess.Popen, args, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        reader = _Reader(process, self._cost)
        try:
            await asyncio.get_running_loop().create_unix_connection(lambda: reader, sock=parent)
        except BaseException:
            parent.close()
            process.kill()
            raise
        return reader

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Return every row of ``sql`` (read-only), run by the first reader not held up."""
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        if any(reader.lost for reader in self._readers):
            await self._replace_lost()
        # The first reader with room takes the read (see _Reader.has_room): under load one
        # reader then answers many quick reads per wake-up (spreading them evenly cost each
        # request twice the wake-ups), slower ones keep both readers busy, and a slow search
        # does not delay the quick reads behind it, which go to the next reader.
        now = asyncio.get_running_loop().time()
        reader = next((r for r in self._readers if r.has_room(now)), None)
        if reader is None:
            reader = min(self._readers, key=lambda r: len(r.waiting))
        return await reader.send(sql, params)

    async def _replace_lost(self) -> None:
        async with self._replacing:
            for position, reader in enumerate(self._readers):
                if reader.lost and not self._closed:
                    log.warning("a database reader process ended (exit code %s); starting another",
                                reader.process.poll())
                    await _stop(reader)
                    self._readers[position] = await self._start()

    async def close(self) -> None:
        """Stop the readers once the reads already asked are answered (for up to
        ``_STOP_TIMEOUT_S``; later ones fail); wait for their processes to end."""
        self._closed = True
        readers, self._readers = self._readers, []
        waiting = [future for reader in readers for future in reader.waiting.values()]
        if waiting:
            await asyncio.wait(waiting, timeout=_STOP_TIMEOUT_S)
        await asyncio.gather(*(_stop(reader) for reader in readers))


async def _stop(reader: _Reader) -> None:
    reader.close()  # the reader's socket ends, so it finishes its batch and exits

    def wait() -> None:
        try:
            reader.process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            reader.process.kill()
            reader.process.wait()

    with contextlib.suppress(OSError):
        await asyncio.to_thread(wait)
