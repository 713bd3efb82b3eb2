"""Fake slskd: the parts of REST API v0 SoulSync uses, shaped like slskd 0.24.5's answers.

What it does like slskd (see external-apis.md §1):

- ``X-API-Key`` on every ``/api/v0`` route (401 with an empty body otherwise) except the
  anonymous ``GET /api/v0/session/enabled``; error bodies are bare JSON strings.
- ``GET /api/v0/server`` and ``GET /api/v0/application`` report the ``connected`` switch;
  ``PUT``/``DELETE /api/v0/server`` flip it. While disconnected, ``POST /searches`` answers 409.
- Searches take time (``search_seconds``, or the request's ``searchTimeout``): peers of the
  catalogue whose files match every word answer one by one over the first half, the counters
  (``responseCount``, ``fileCount``, ``lockedFileCount``) grow, and ``GET .../responses`` stays
  ``[]`` until the search completes, as ``"Completed, TimedOut"``, ``"Completed,
  ResponseLimitReached"`` or, after ``PUT /searches/{id}``, ``"Completed, Cancelled"`` with what
  had arrived (``"Completed, Errored"`` when it was refused with 409). The peer filters
  (``filterResponses``, minimum upload speed, maximum queue length, minimum file count) apply as
  in Soulseek.NET. A ``POST`` while another search is still running answers 429
  (``reject_concurrent_searches``; real slskd refuses only overlapping POSTs, so a client that
  passes here passes there).
- Downloads: ``POST /transfers/downloads/{username}`` (400 for a ``..`` path segment, 500 "User
  X appears to be offline" for an unknown or offline peer, the file under ``failed`` when an
  unfinished transfer of it exists), the grouped list, one user, one transfer, and ``DELETE``
  with ``remove``. Each :meth:`SlskdFake.tick` moves every transfer one step: ``Requested`` ->
  ``Queued, Remotely`` (for as many ticks as the peer's queue is long) -> ``Initializing`` ->
  ``InProgress`` (``steps`` ticks) -> ``Completed, Succeeded``, when a REAL audio file
  (tests/audio.py: FLAC, MP3, WAV … of the catalogue's ``length`` seconds, padded to the stated
  ``size`` for FLAC and MP3) is moved from the incomplete folder to
  ``<download_dir>/<last remote folder>/<file name>``, renamed ``<stem>_<ticks>.<ext>`` when
  that exists. A file type it cannot make is written as zero bytes, i.e. a corrupt download.

Faults, per peer (``Peer.fault``) or per file (``SharedFile.fault``): ``Errored`` (after some
bytes), ``Rejected``, ``TimedOut``, ``stuck`` (queued forever), ``stalled`` (in progress at 0 %
forever), ``vanish`` (the transfer disappears from the list), ``offline`` (enqueue answers 500).
A file the peer does not share, or shares locked, is ``Rejected`` too. Plus the switches of
:mod:`tests.fakes.base` (latency, 5xx, 429, dropped connections); connection refused is a
stopped server.

Tests drive it through ``app[SLSKD]`` (a :class:`SlskdFake`: ``await fake.tick()``,
``await fake.settle()``, ``fake.count("GET", "/api/v0/searches/{id}/responses")``). A person
runs ``python -m tests.fakes.slskd --port 5030 --downloads /tmp/slskd`` (ticks every 0.5 s) and
flips switches with ``POST /_fake/slskd`` (JSON) or steps with ``POST /_fake/slskd/tick`` (one
step) and ``POST /_fake/slskd/settle`` (until nothing moves), as a test's subprocess does too.
Albums: :func:`album_peer` builds a peer sharing one album folder (complete or not, one
bitrate or mixed, extra discs, any edition name, a ``cover.jpg`` the fake writes as a real
JPEG). ``version`` is what ``GET /application`` reports (default the wire sample's 0.24.5);
from 0.26 on ``POST /transfers/downloads/batches`` enqueues one peer's files in one request as
slskd 0.26 answers it: 201 all enqueued, 207 some failed, 200 all failed (``failures`` name
the files), 400 for duplicate files or a bad GUID, 404 for an offline peer, 409 for a batch id
it has, 429 (``busy_enqueues``) while another enqueue runs. Before 0.26 that route is 404 and
the legacy per-user enqueue is the only one.
``file_mode`` gives saved files that mode, as slskd's own umask does (0o600: only slskd's user
may read them); ``busy_enqueues`` answers enqueues 429 as an overlapping one is answered, with
``busy_retry_after`` as the Retry-After a proxy in front of slskd might add.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import functools
import json
import os
import re
import struct
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tests import audio
from tests.fakes.base import FAULTS, load_wire, with_faults

SERVICE = "slskd"
DEFAULT_API_KEY = "fake-slskd-api-key-0123456789"
BUSY = "Only one concurrent operation is permitted. Wait until the previous request completes"
FAULT_KINDS = ("Errored", "Rejected", "TimedOut", "stuck", "stalled", "vanish", "offline")
REASONS = {"Errored": "Remote connection closed", "Rejected": "File not shared.",
           "TimedOut": "Inactivity timeout of 15000 milliseconds was exceeded"}
# .NET DateTime.Ticks (100 ns since 0001-01-01) at the Unix epoch: slskd's clash suffix.
TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000
SWITCHES = ("version", "connected", "api_key", "search_seconds", "reject_concurrent_searches", "steps",
            "start_delay", "file_mode", "busy_enqueues", "busy_retry_after")

Json = dict[str, Any]


# --------------------------------------------------------------------------- the catalogue


@dataclass
class SharedFile:
    """A file a peer shares; ``None`` attributes are absent from answers, as in slskd."""

    filename: str                   # the full remote path, backslashes and all
    length: int = 3                 # seconds of audio the fake writes
    size: int | None = None         # bytes; None: the size of the audio the fake writes
    bit_rate: int | None = None
    bit_depth: int | None = None
    sample_rate: int | None = None
    variable_bit_rate: bool | None = None
    locked: bool = False
    fault: str | None = None        # one of FAULT_KINDS
    reported_extension: str | None = None   # what the peer says (Nicotine+ says ""); None: real

    @classmethod
    def from_json(cls, row: Json, locked: bool = False) -> SharedFile:
        return cls(row["filename"], row.get("length", 3), row.get("size"), row.get("bitRate"),
                   row.get("bitDepth"), row.get("sampleRate"), row.get("isVariableBitRate"),
                   locked or bool(row.get("isLocked")), row.get("fault"), row.get("extension"))

    @property
    def extension(self) -> str:
        """The real extension, from the file name."""
        name = _split_remote(self.filename)[-1]
        return name.rsplit(".", 1)[1].lower() if "." in name[1:] else ""

    def stated_size(self) -> int:
        return self.size if self.size is not None else audio_size(self)

    def to_json(self) -> Json:
        row: Json = {"bitDepth": self.bit_depth, "bitRate": self.bit_rate, "code": 1,
                     "extension": self.extension if self.reported_extension is None
                     else self.reported_extension, "filename": self.filename,
                     "isVariableBitRate": self.variable_bit_rate, "length": self.length,
                     "sampleRate": self.sample_rate, "size": self.stated_size(),
                     "isLocked": self.locked}
        return {k: v for k, v in row.items() if v is not None}


@dataclass
class Peer:
    """A Soulseek user, their figures and their shared files."""

    username: str
    files: list[SharedFile] = field(default_factory=list)
    has_free_upload_slot: bool = True
    queue_length: int = 0
    upload_speed: int = 1_048_576   # bytes/s
    fault: str | None = None        # applies to every file; "offline" refuses enqueues

    @classmethod
    def from_json(cls, row: Json) -> Peer:
        files = [SharedFile.from_json(f) for f in row.get("files", [])]
        files += [SharedFile.from_json(f, locked=True) for f in row.get("lockedFiles", [])]
        return cls(row["username"], files, row.get("hasFreeUploadSlot", True),
                   row.get("queueLength", 0), row.get("uploadSpeed", 1_048_576), row.get("fault"))

    def file(self, filename: str) -> SharedFile | None:
        return next((f for f in self.files if f.filename == filename), None)


def catalogue_from_json(data: Any) -> list[Peer]:
    """Peers from slskd search responses (a list, as ``GET /searches/{id}/responses`` has it,
    optionally with ``fault`` keys), or ``{"peers": [...]}`` of the same objects."""
    rows = data["peers"] if isinstance(data, dict) else data
    return [Peer.from_json(row) for row in rows]


def sample_catalogue() -> list[Peer]:
    """The four peers of the wire sample (flacfan, speedy_mp3, nicotine user, hires_hoarder)."""
    return catalogue_from_json(load_wire(SERVICE, "search_responses.GET_api_v0_searches_id_responses.json"))


def album_peer(username: str, folder: str, titles: list[str], *, lengths: list[int] | None = None,
               extension: str = "flac", bit_rates: list[int | None] | None = None,
               numbers: list[int] | None = None, cover: bool = True, disc: str = "",
               upload_speed: int = 1_048_576, has_free_upload_slot: bool = True,
               queue_length: int = 0, fault: str | None = None) -> Peer:
    """Return a peer sharing one album folder: ``"NN - Title.ext"`` per title (``numbers``
    default 1, 2 …), under ``folder`` (``disc`` adds a sub-folder such as ``"CD1"``), with
    per-file ``bit_rates`` (None: unstated; a mixed-bitrate folder gives several), and a
    ``cover.jpg`` when ``cover``."""
    base = f"@@{username}\\Music\\{folder}" + (f"\\{disc}" if disc else "")
    lengths = lengths or [3] * len(titles)
    bit_rates = bit_rates or [None] * len(titles)
    numbers = numbers or list(range(1, len(titles) + 1))
    # Believable sizes (~1070 kbps FLAC, MP3 at its bitrate): a ranker refuses tiny "FLAC"s.
    files = [SharedFile(f"{base}\\{n:02d} - {t}.{extension}", length,
                        size=(rate or 320) * 125 * length if extension == "mp3" else 133_000 * length,
                        bit_rate=rate,
                        bit_depth=16 if extension == "flac" else None,
                        sample_rate=44100 if extension == "flac" else None)
             for t, length, rate, n in zip(titles, lengths, bit_rates, numbers, strict=True)]
    if cover:
        files.append(SharedFile(f"{base}\\cover.jpg", 0, size=len(TINY_JPEG)))
    return Peer(username, files, has_free_upload_slot, queue_length, upload_speed, fault)


# ------------------------------------------------------------------------------- audio files

# A real 1x1 baseline JPEG: what a peer's cover.jpg holds, small enough to embed anywhere.
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b"
    "080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b510"
    "0002010303020403050504040000017d01020300041105122131410613516107227114328191a1082342b1c11552"
    "d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455565758595a636465"
    "666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8"
    "b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100"
    "003f00fbd3ffd9")


def _split_remote(filename: str) -> list[str]:
    return re.split(r"[\\/]", filename)


def _make_audio(file: SharedFile, path: Path) -> None:
    """Write ``file``'s audio (unpadded) at ``path``."""
    kind = {"aif": "aiff", "aiff": "aiff", "wav": "wav", "flac": "flac", "mp3": "mp3",
            "ogg": "ogg", "opus": "opus", "m4a": "m4a"}.get(file.extension)
    if kind == "flac":
        rate = file.sample_rate if file.sample_rate in audio._RATE_CODES else 44100
        bits = file.bit_depth if file.bit_depth in (8, 16, 24) else 16
        audio.write_flac(path, seconds=file.length, rate=rate, bits=bits)
    elif kind is not None:
        audio.WRITERS[kind](path, seconds=file.length)
    elif file.extension in ("jpg", "jpeg"):
        path.write_bytes(TINY_JPEG)
    else:
        path.write_bytes(b"\x00" * (file.size or 1024))


@functools.lru_cache(maxsize=256)
def _audio_size(extension: str, length: int, sample_rate: int | None, bit_depth: int | None) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x.{extension}"
        _make_audio(SharedFile(f"x.{extension}", length, None, None, bit_depth, sample_rate), path)
        return path.stat().st_size


def audio_size(file: SharedFile) -> int:
    """Return the size of the audio the fake writes for ``file`` (before any padding)."""
    return _audio_size(file.extension, file.length, file.sample_rate, file.bit_depth)


def _flac_padding(data: bytes, extra: int) -> bytes:
    """Return FLAC ``data`` with PADDING metadata blocks adding exactly ``extra`` bytes."""
    sizes: list[int] = []
    left = extra
    while left:
        body = min(left - 4, 0xFFFFFF)
        if 0 < left - 4 - body < 4:
            body -= 4  # leave room for the next block's header
        sizes.append(body)
        left -= 4 + body
    position = 4
    while not data[position] & 0x80:  # walk to the last metadata block
        position += 4 + int.from_bytes(data[position + 1:position + 4], "big")
    end = position + 4 + int.from_bytes(data[position + 1:position + 4], "big")
    blocks = b"".join(bytes([1 | (0x80 if i == len(sizes) - 1 else 0)]) + n.to_bytes(3, "big")
                      + b"\x00" * n for i, n in enumerate(sizes))
    return data[:position] + bytes([data[position] & 0x7F]) + data[position + 1:end] + blocks + data[end:]


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def write_download(file: SharedFile, path: Path) -> None:
    """Write ``file`` at ``path``: real audio, padded to its stated size where the format allows
    (FLAC: PADDING blocks; MP3: an ID3v2.3 tag of padding; others keep their own size)."""
    _make_audio(file, path)
    extra = file.stated_size() - path.stat().st_size
    if file.extension == "flac" and extra >= 4:
        path.write_bytes(_flac_padding(path.read_bytes(), extra))
    elif file.extension == "mp3" and 10 <= extra < 1 << 28:
        tag = b"ID3" + struct.pack(">BBB", 3, 0, 0) + _syncsafe(extra - 10) + b"\x00" * (extra - 10)
        path.write_bytes(tag + path.read_bytes())


def local_relative(filename: str) -> Path:
    """slskd's ToLocalRelativeFilename: the last remote folder and the file name, NUL -> _."""
    parts = [part.replace("\x00", "_") for part in _split_remote(filename)]
    return Path(*parts[-2:]) if len(parts) > 1 and parts[-2] else Path(parts[-1])


def clash_free(path: Path) -> Path:
    """slskd's rename strategy: ``<stem>_<DateTime.UtcNow.Ticks><suffix>`` when ``path`` exists."""
    if not path.exists():
        return path
    ticks = TICKS_AT_UNIX_EPOCH + time.time_ns() // 100
    while True:
        candidate = path.with_name(f"{path.stem}_{ticks}{path.suffix}")
        if not candidate.exists():
            return candidate
        ticks += 1


# ------------------------------------------------------------------------- time and shapes


def _timestamp(moment: datetime, zulu: bool = False) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0" + ("Z" if zulu else "")


def _timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{int(seconds % 1 * 1e7):07d}"


def _now() -> datetime:
    return datetime.now(UTC)


def _message(text: str, status: int) -> web.Response:
    """slskd's error bodies: a bare message as a JSON string."""
    return web.json_response(text, status=status)


# ------------------------------------------------------------------------------- searches


@dataclass
class FakeSearch:
    id: str
    text: str
    token: int
    started_at: datetime
    started: float                  # loop time
    duration: float
    response_limit: int
    arrivals: list[tuple[float, Json]]   # (seconds after start, response), in order
    stopped: float | None = None
    errored: bool = False               # refused at the start, recorded all the same

    def _ends(self) -> tuple[float, str]:
        """When (seconds after start) and how the search ends, if nobody stops it."""
        if self.errored:
            return 0.0, "Completed, Errored"
        if len(self.arrivals) >= self.response_limit:
            return self.arrivals[self.response_limit - 1][0], "Completed, ResponseLimitReached"
        return self.duration, "Completed, TimedOut"

    def view(self, now: float) -> tuple[Json, list[Json]]:
        """Return the search record and the responses it publishes at loop time ``now``."""
        elapsed = now - self.started
        end, end_state = self._ends()
        if self.stopped is not None and self.stopped - self.started < end:
            end, end_state = self.stopped - self.started, "Completed, Cancelled"
        complete = elapsed >= end
        arrived = [r for at, r in self.arrivals if at <= min(elapsed, end)][:self.response_limit]
        record: Json = {
            "fileCount": sum(r["fileCount"] for r in arrived), "id": self.id,
            "isComplete": complete, "lockedFileCount": sum(r["lockedFileCount"] for r in arrived),
            "responseCount": len(arrived), "responses": [], "searchText": self.text,
            "startedAt": _timestamp(self.started_at), "state": end_state if complete else "InProgress",
            "token": self.token,
        }
        if complete:
            ended = datetime.fromtimestamp(self.started_at.timestamp() + end, UTC)
            record = {"endedAt": _timestamp(ended), **record}
        return record, arrived if complete else []


def _matches(text: str, filename: str) -> bool:
    """Soulseek matching: every word (2+ characters) in the path, no ``-excluded`` word."""
    path = filename.lower()
    words = [w for w in text.lower().split() if len(w.lstrip("-")) > 1]
    return all((w[1:] not in path) if w.startswith("-") else (w in path) for w in words)


def _response(peer: Peer, files: list[SharedFile], token: int) -> Json:
    unlocked = [f.to_json() for f in files if not f.locked]
    locked = [f.to_json() for f in files if f.locked]
    return {"fileCount": len(unlocked), "files": unlocked, "hasFreeUploadSlot": peer.has_free_upload_slot,
            "lockedFileCount": len(locked), "lockedFiles": locked, "queueLength": peer.queue_length,
            "token": token, "uploadSpeed": peer.upload_speed, "username": peer.username}


# ------------------------------------------------------------------------------ transfers


@dataclass
class FakeTransfer:
    id: str
    peer: Peer | None
    username: str
    filename: str
    size: int
    requested_at: datetime = field(default_factory=_now)
    state: str = "Requested"
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    bytes_transferred: int = 0
    place_in_queue: int | None = None
    exception: str | None = None
    local_path: Path | None = None  # where the completed file was written
    batch_id: str | None = None     # the batch it was enqueued in (slskd 0.26)

    @property
    def shared(self) -> SharedFile | None:
        return self.peer.file(self.filename) if self.peer else None

    @property
    def fault(self) -> str | None:
        shared = self.shared
        if shared is None or shared.locked:
            return "Rejected"
        return shared.fault or (self.peer.fault if self.peer else None)

    @property
    def completed(self) -> bool:
        return self.state.startswith("Completed")

    @property
    def progressing(self) -> bool:
        """Still moving: not finished, and not held queued or stalled by a fault."""
        return not self.completed and self.fault not in ("stuck", "stalled")

    def finish(self, outcome: str, exception: str | None = None) -> None:
        self.state, self.ended_at, self.place_in_queue = f"Completed, {outcome}", _now(), None
        self.exception = exception

    def to_json(self) -> Json:
        percent = 100.0 * self.bytes_transferred / self.size if self.size else 0.0
        elapsed = ((self.ended_at or _now()) - self.started_at).total_seconds() if self.started_at else None
        running = self.state == "InProgress"
        speed = (self.peer.upload_speed if self.peer else 0.0) if self.bytes_transferred else 0.0
        row: Json = {
            "id": self.id, "username": self.username, "direction": "Download",
            "filename": self.filename, "size": self.size, "startOffset": 0, "state": self.state,
            "stateDescription": self.state, "requestedAt": _timestamp(self.requested_at),
            "enqueuedAt": _timestamp(self.enqueued_at) if self.enqueued_at else None,
            "startedAt": _timestamp(self.started_at) if self.started_at else None,
            "endedAt": _timestamp(self.ended_at) if self.ended_at else None,
            "bytesTransferred": self.bytes_transferred, "averageSpeed": float(speed),
            "placeInQueue": self.place_in_queue, "exception": self.exception,
            "bytesRemaining": self.size - self.bytes_transferred,
            "elapsedTime": _timespan(elapsed) if elapsed is not None else None,
            "percentComplete": percent, "batchId": self.batch_id,
            "remainingTime": _timespan((self.size - self.bytes_transferred) / speed)
            if running and speed else None,
        }
        return {k: v for k, v in row.items() if v is not None}


def _grouped(transfers: list[FakeTransfer]) -> list[Json]:
    """slskd's list shape: users, then remote directories, then transfers."""
    users: dict[str, dict[str, list[Json]]] = {}
    for transfer in transfers:
        directory = transfer.filename.replace("/", "\\").rsplit("\\", 1)[0]
        users.setdefault(transfer.username, {}).setdefault(directory, []).append(transfer.to_json())
    return [{"username": user, "directories": [
                {"directory": d, "fileCount": len(files), "files": files} for d, files in dirs.items()]}
            for user, dirs in users.items()]


# ----------------------------------------------------------------------------------- state


@dataclass
class SlskdFake:
    """The fake's state and switches; tests hold it as ``app[SLSKD]``."""

    download_dir: Path
    incomplete_dir: Path
    peers: list[Peer] = field(default_factory=sample_catalogue)
    api_key: str = DEFAULT_API_KEY
    connected: bool = True
    search_seconds: float | None = None   # None: the request's searchTimeout
    reject_concurrent_searches: bool = True
    start_delay: float = 0.0              # seconds a POST /searches takes to answer
    steps: int = 4                        # InProgress ticks per download
    tick_seconds: float = 0.0             # > 0: tick by itself this often
    file_mode: int | None = None          # mode of saved files (slskd's umask); None: the default
    busy_enqueues: int = 0                # answer this many enqueues 429 BUSY (-1: all) …
    busy_retry_after: int | None = None   # … with this Retry-After (a proxy's; slskd sends none)
    version: str = "0.24.5"               # GET /application's version.current; 0.26+: batches
    batches: dict[str, Json] = field(default_factory=dict)     # batch id -> the batch enqueued
    searches: dict[str, FakeSearch] = field(default_factory=dict)
    transfers: dict[str, FakeTransfer] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)   # (method, route), in order
    search_bodies: list[Json] = field(default_factory=list)        # every POST /searches body
    early_reads: int = 0            # GET .../responses before the search completed
    server_asked: asyncio.Event = field(default_factory=asyncio.Event)    # GET /server came in
    search_started: asyncio.Event = field(default_factory=asyncio.Event)  # a search was created
    _posting: bool = False
    _token: int = 931337

    def peer(self, username: str) -> Peer | None:
        return next((p for p in self.peers if p.username == username), None)

    def count(self, method: str, route: str) -> int:
        """Requests seen for one route template, e.g. ``("GET", "/api/v0/searches/{id}")``."""
        return Counter(self.requests)[(method, route)]

    def running_searches(self) -> list[FakeSearch]:
        now = asyncio.get_running_loop().time()
        return [s for s in self.searches.values() if not s.view(now)[0]["isComplete"]]

    def new_search(self, body: Json) -> FakeSearch:
        now = asyncio.get_running_loop().time()
        duration = (self.search_seconds if self.search_seconds is not None
                    else max(body.get("searchTimeout", 15000), 5) / 1000)
        filtering = body.get("filterResponses", True)
        responses = []
        self._token += 1
        for peer in self.peers:
            files = [f for f in peer.files if _matches(body["searchText"], f.filename)]
            if not files:
                continue
            if filtering and (len(files) < body.get("minimumResponseFileCount", 1)
                              or peer.upload_speed < body.get("minimumPeerUploadSpeed", 0)
                              or peer.queue_length >= body.get("maximumPeerQueueLength", 1_000_000)):
                continue
            responses.append(_response(peer, files, self._token))
        # Peers answer one after another over the first half of the search.
        arrivals = [(duration * (i + 1) / (2 * (len(responses) + 1)), r) for i, r in enumerate(responses)]
        search = FakeSearch(body.get("id") or str(uuid.uuid4()), body["searchText"], self._token,
                            _now(), now, duration, body.get("responseLimit", 250), arrivals)
        self.searches[search.id] = search
        self.search_started.set()
        return search

    async def tick(self, count: int = 1) -> None:
        """Move every transfer ``count`` steps (writing the files of those that complete)."""
        for _ in range(count):
            for transfer in list(self.transfers.values()):
                await self._advance(transfer)

    async def settle(self, max_ticks: int = 200) -> int:
        """Tick until no transfer is still moving (stuck and stalled ones never move); return
        how many ticks that took."""
        ticks = 0
        while ticks < max_ticks and any(t.progressing for t in self.transfers.values()):
            await self.tick()
            ticks += 1
        return ticks

    async def _advance(self, transfer: FakeTransfer) -> None:
        fault, state = transfer.fault, transfer.state
        if state == "Requested":
            if fault == "vanish":
                del self.transfers[transfer.id]
            elif fault == "Rejected":
                transfer.finish("Rejected", REASONS["Rejected"])
            else:
                transfer.state, transfer.enqueued_at = "Queued, Remotely", _now()
                transfer.place_in_queue = transfer.peer.queue_length if transfer.peer else 0
        elif state == "Queued, Remotely" and fault != "stuck":
            if transfer.place_in_queue:
                transfer.place_in_queue -= 1
            else:
                transfer.state, transfer.place_in_queue = "Initializing", None
        elif state == "Initializing":
            if fault == "TimedOut":
                transfer.finish("TimedOut", REASONS["TimedOut"])
            else:
                transfer.state, transfer.started_at = "InProgress", _now()
        elif state == "InProgress" and fault != "stalled":
            chunk = -(-transfer.size // max(self.steps, 1))
            transfer.bytes_transferred = min(transfer.size, transfer.bytes_transferred + chunk)
            if fault == "Errored":
                transfer.finish("Errored", REASONS["Errored"])
            elif transfer.bytes_transferred >= transfer.size:
                transfer.local_path = await asyncio.to_thread(self._deliver, transfer)
                transfer.finish("Succeeded")

    def _deliver(self, transfer: FakeTransfer) -> Path:
        """Write the file in the incomplete folder, then move it where slskd puts it."""
        shared = transfer.shared
        assert shared is not None
        self.incomplete_dir.mkdir(parents=True, exist_ok=True)
        partial = self.incomplete_dir / f"{transfer.id}.{shared.extension or 'bin'}"
        write_download(shared, partial)
        target = clash_free(self.download_dir / local_relative(transfer.filename))
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.file_mode is not None:
            os.chmod(partial, self.file_mode)
        os.replace(partial, target)
        return target

    def enqueue(self, username: str, files: list[Json],
                batch_id: str | None = None) -> tuple[list[Json], list[str]]:
        peer = self.peer(username)
        enqueued, failed = [], []
        for item in files:
            filename = item["filename"]
            if any(t.username == username and t.filename == filename and not t.completed
                   for t in self.transfers.values()):
                failed.append(filename)
                continue
            shared = peer.file(filename) if peer else None
            size = item.get("size") or (shared.stated_size() if shared else 0)
            transfer = FakeTransfer(str(uuid.uuid4()), peer, username, filename, int(size),
                                    batch_id=batch_id)
            self.transfers[transfer.id] = transfer
            enqueued.append(transfer.to_json())
        return enqueued, failed


SLSKD = web.AppKey("slskd", SlskdFake)


# -------------------------------------------------------------------------------- handlers


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


@web.middleware
async def _api_key(request: web.Request, handler: Callable) -> web.StreamResponse:
    fake = request.app[SLSKD]
    if request.path.startswith("/api/"):
        fake.requests.append((request.method, _route(request)))
        if request.path == "/api/v0/server":
            fake.server_asked.set()
        anonymous = request.path == "/api/v0/session/enabled"
        if not anonymous and request.headers.get("X-API-Key") != fake.api_key:
            return web.Response(status=401)
    return await handler(request)


def _server(fake: SlskdFake) -> Json:
    sample = "connected" if fake.connected else "disconnected"
    return load_wire(SERVICE, f"server.GET_api_v0_server.{sample}.json")


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _get_server(request: web.Request) -> web.Response:
    return web.json_response(_server(request.app[SLSKD]))


async def _connect(request: web.Request) -> web.Response:
    request.app[SLSKD].connected = True
    return web.Response(status=200)


async def _disconnect(request: web.Request) -> web.Response:
    request.app[SLSKD].connected = False
    return web.Response(status=204)


async def _application(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    state = load_wire(SERVICE, "application.GET_api_v0_application.json")
    state["server"] = _server(fake)
    state["version"].update(current=fake.version, latest=fake.version,
                            full=f"{fake.version}.0-{state['version']['full'].rsplit('-', 1)[-1]}")
    return web.json_response(state)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


async def _version(request: web.Request) -> web.Response:
    return web.json_response(request.app[SLSKD].version)


async def _session_enabled(request: web.Request) -> web.Response:
    return web.json_response(load_wire(SERVICE, "session_enabled.GET_api_v0_session_enabled.json"))


async def _start_search(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    body = await request.json()
    fake.search_bodies.append(body)
    if not isinstance(body, dict) or not str(body.get("searchText") or "").strip():
        return _message("SearchText may not be null or empty", 400)
    if fake._posting or (fake.reject_concurrent_searches and fake.running_searches()):
        return _message(BUSY, 429)
    fake._posting = True
    try:
        if fake.start_delay:
            await asyncio.sleep(fake.start_delay)
        if not any(len(w.lstrip("-")) > 1 for w in body["searchText"].split()):
            return _message("Search query must contain at least one non-excluded term", 400)
        if body.get("id") in fake.searches:
            return _message(f"A search with ID {body['id']} already exists", 400)
        if not fake.connected:
            # slskd records the search as errored before it answers 409.
            fake.new_search(body).errored = True
            return _message("The server connection must be connected and logged in to perform "
                            "a search (currently: Disconnected)", 409)
        search = fake.new_search(body)
    finally:
        fake._posting = False
    record, _ = search.view(asyncio.get_running_loop().time())
    record["startedAt"] = _timestamp(search.started_at, zulu=True)
    return web.json_response(record)


def _search(request: web.Request) -> FakeSearch | None:
    return request.app[SLSKD].searches.get(request.match_info["id"])


async def _list_searches(request: web.Request) -> web.Response:
    now = asyncio.get_running_loop().time()
    return web.json_response([s.view(now)[0] for s in request.app[SLSKD].searches.values()])


async def _get_search(request: web.Request) -> web.Response:
    search = _search(request)
    if search is None:
        return web.Response(status=404)
    record, responses = search.view(asyncio.get_running_loop().time())
    if request.query.get("includeResponses", "").lower() == "true":
        record["responses"] = responses
    return web.json_response(record)


async def _search_responses(request: web.Request) -> web.Response:
    search = _search(request)
    if search is None:
        return web.Response(status=404)
    record, responses = search.view(asyncio.get_running_loop().time())
    if not record["isComplete"]:
        request.app[SLSKD].early_reads += 1
    return web.json_response(responses)


async def _stop_search(request: web.Request) -> web.Response:
    search = _search(request)
    if search is None:
        return web.Response(status=404)
    now = asyncio.get_running_loop().time()
    if search.view(now)[0]["isComplete"]:
        return web.Response(status=304)
    search.stopped = now
    return web.Response(status=200)


async def _delete_search(request: web.Request) -> web.Response:
    if request.app[SLSKD].searches.pop(request.match_info["id"], None) is None:
        return web.Response(status=404)
    return web.Response(status=204)


async def _enqueue(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    username = request.match_info["username"]
    files = await request.json()
    if not isinstance(files, list) or not files:
        return _message("At least one file is required", 400)
    if any(not isinstance(f, dict) or not f.get("filename") for f in files):
        return _message("One or more files in the request are null", 400)
    if any(".." in _split_remote(f["filename"]) for f in files):
        return _message("One or more files in the request contain a dangerous path traversal segment", 400)
    if fake.busy_enqueues:
        fake.busy_enqueues -= fake.busy_enqueues > 0
        headers = {} if fake.busy_retry_after is None else {"Retry-After": str(fake.busy_retry_after)}
        return web.json_response(BUSY, status=429, headers=headers)
    peer = fake.peer(username)
    if peer is None or peer.fault == "offline" or any(
            (s := peer.file(f["filename"])) is not None and s.fault == "offline" for f in files):
        return _message(f"User {username} appears to be offline", 500)
    enqueued, failed = fake.enqueue(username, files)
    return web.json_response({"enqueued": enqueued, "failed": failed}, status=201)


async def _enqueue_batch(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    if _version_tuple(fake.version) < (0, 26):
        return web.Response(status=404)  # the route does not exist before 0.26
    body = await request.json()
    files = body.get("files") if isinstance(body, dict) else None
    username = body.get("username") if isinstance(body, dict) else None
    if not username or not isinstance(files, list) or not files:
        return _message("A username and at least one file are required", 400)
    if any(not isinstance(f, dict) or not f.get("filename") for f in files):
        return _message("One or more files in the request are null", 400)
    names = [f["filename"] for f in files]
    if len(set(names)) != len(names):
        return _message("The batch contains duplicate filenames", 400)
    batch_id = body.get("id") or str(uuid.uuid4())
    if not _is_guid(batch_id):
        return _message(f"{batch_id} is not a valid GUID", 400)
    if batch_id in fake.batches:
        return _message(f"A batch with id {batch_id} already exists", 409)
    if fake.busy_enqueues:
        fake.busy_enqueues -= fake.busy_enqueues > 0
        return web.json_response(BUSY, status=429)
    peer = fake.peer(username)
    if peer is None or peer.fault == "offline":
        return _message(f"User {username} appears to be offline", 404)
    enqueued, failed = fake.enqueue(username, files, batch_id)
    batch = {"searchId": body.get("searchId"), "id": batch_id, "username": username,
             "direction": "Download", "createdAt": _timestamp(_now(), zulu=True),
             "transfers": [_as_026(row, batch_id) for row in enqueued],
             "options": body.get("options") or {}}
    fake.batches[batch_id] = batch
    failures = [{"filename": name, "message": "An active or queued download of this file exists"}
                for name in failed]
    status = 201 if not failures else 207 if enqueued else 200
    return web.json_response({"batch": batch, "failures": failures}, status=status)


def _as_026(row: Json, batch_id: str) -> Json:
    """A transfer as 0.26 shows it: ``batchId``, ``attempts``, ``removed``; no ``startOffset``
    or ``stateDescription``."""
    shown = {k: v for k, v in row.items() if k not in ("startOffset", "stateDescription")}
    return {**shown, "batchId": batch_id, "attempts": 0, "removed": False}


async def _all_downloads(request: web.Request) -> web.Response:
    return web.json_response(_grouped(list(request.app[SLSKD].transfers.values())))


async def _user_downloads(request: web.Request) -> web.Response:
    username = request.match_info["username"]
    groups = _grouped([t for t in request.app[SLSKD].transfers.values() if t.username == username])
    return web.json_response(groups[0]) if groups else web.Response(status=404)


async def _one_download(request: web.Request) -> web.Response:
    transfer_id = request.match_info["id"]
    if not _is_guid(transfer_id):
        return web.Response(status=400)
    transfer = request.app[SLSKD].transfers.get(transfer_id)
    return web.json_response(transfer.to_json()) if transfer else web.Response(status=404)


async def _cancel_download(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    transfer_id = request.match_info["id"]
    if not _is_guid(transfer_id):
        return web.Response(status=400)
    transfer = fake.transfers.get(transfer_id)
    if transfer is None:
        return web.Response(status=404)
    if not transfer.completed:
        transfer.finish("Cancelled")
    if request.query.get("remove", "false").lower() == "true":
        del fake.transfers[transfer_id]
    return web.Response(status=204)


async def _clear_completed(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    for transfer in [t for t in fake.transfers.values() if t.completed]:
        del fake.transfers[transfer.id]
    return web.Response(status=204)


async def _set_switches(request: web.Request) -> web.Response:
    fake = request.app[SLSKD]
    changes = await request.json()
    unknown = sorted(set(changes) - set(SWITCHES))
    if unknown:
        return web.json_response({"error": f"unknown switches {unknown}; known: {list(SWITCHES)}"},
                                 status=400)
    for key, value in changes.items():
        setattr(fake, key, value)
    return web.json_response({key: getattr(fake, key) for key in SWITCHES})


async def _tick(request: web.Request) -> web.Response:
    await request.app[SLSKD].tick()
    return web.json_response({"transfers": len(request.app[SLSKD].transfers)})


async def _settle(request: web.Request) -> web.Response:
    ticks = await request.app[SLSKD].settle()
    return web.json_response({"ticks": ticks, "transfers": len(request.app[SLSKD].transfers)})


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    fake = app[SLSKD]
    task = asyncio.create_task(_tick_forever(fake)) if fake.tick_seconds > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _tick_forever(fake: SlskdFake) -> None:
    while True:
        await asyncio.sleep(fake.tick_seconds)
        await fake.tick()


def make_app(download_dir: Path, api_key: str = DEFAULT_API_KEY, *, peers: list[Peer] | None = None,
             incomplete_dir: Path | None = None, tick_seconds: float = 0.0,
             search_seconds: float | None = None, connected: bool = True) -> web.Application:
    """Return the fake slskd app (with :func:`tests.fakes.base.with_faults`).

    ``peers`` defaults to the wire sample's four peers (deep-copied, so tests may change them);
    completed files go to ``download_dir`` after being written in ``incomplete_dir`` (default
    ``<download_dir>.incomplete``, beside it as slskd's own incomplete folder is).
    """
    download_dir = Path(download_dir)
    incomplete_dir = incomplete_dir or download_dir.with_name(download_dir.name + ".incomplete")
    fake = SlskdFake(download_dir, incomplete_dir,
                     copy.deepcopy(peers) if peers is not None else sample_catalogue(),
                     api_key=api_key, connected=connected, search_seconds=search_seconds,
                     tick_seconds=tick_seconds)
    app = with_faults(web.Application(middlewares=[_api_key]))
    app[SLSKD] = fake
    app.cleanup_ctx.append(_ticker)
    api = "/api/v0"
    add = app.router
    add.add_get(f"{api}/server", _get_server)
    add.add_put(f"{api}/server", _connect)
    add.add_delete(f"{api}/server", _disconnect)
    add.add_get(f"{api}/application", _application)
    add.add_get(f"{api}/application/version", _version)
    add.add_get(f"{api}/session/enabled", _session_enabled)
    add.add_post(f"{api}/searches", _start_search)
    add.add_get(f"{api}/searches", _list_searches)
    add.add_get(f"{api}/searches/{{id}}", _get_search)
    add.add_get(f"{api}/searches/{{id}}/responses", _search_responses)
    add.add_put(f"{api}/searches/{{id}}", _stop_search)
    add.add_delete(f"{api}/searches/{{id}}", _delete_search)
    add.add_get(f"{api}/transfers/downloads", _all_downloads)
    add.add_delete(f"{api}/transfers/downloads/all/completed", _clear_completed)
    add.add_post(f"{api}/transfers/downloads/batches", _enqueue_batch)
    add.add_post(f"{api}/transfers/downloads/{{username}}", _enqueue)
    add.add_get(f"{api}/transfers/downloads/{{username}}", _user_downloads)
    add.add_get(f"{api}/transfers/downloads/{{username}}/{{id}}", _one_download)
    add.add_delete(f"{api}/transfers/downloads/{{username}}/{{id}}", _cancel_download)
    add.add_post("/_fake/slskd", _set_switches)
    add.add_post("/_fake/slskd/tick", _tick)
    add.add_post("/_fake/slskd/settle", _settle)
    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.slskd --port 5030 --downloads DIR [--catalogue FILE] …``."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.slskd",
        description="Local fake of slskd's REST API for trying SoulSync by hand.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5030)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--downloads", type=Path, required=True,
                        help="slskd's downloads folder: completed files are written here")
    parser.add_argument("--incomplete", type=Path, default=None,
                        help="where files are written before completion (default: DOWNLOADS.incomplete)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the X-API-Key to accept")
    parser.add_argument("--catalogue", type=Path, default=None,
                        help="JSON: a list of slskd search responses (files, lockedFiles, peer "
                             "figures; optional 'fault' keys); default: the wire sample")
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between transfer steps")
    parser.add_argument("--search-seconds", type=float, default=None,
                        help="how long searches run (default: the request's searchTimeout)")
    parser.add_argument("--disconnected", action="store_true", help="start logged out of Soulseek")
    args = parser.parse_args(argv)
    peers = catalogue_from_json(json.loads(args.catalogue.read_text())) if args.catalogue else None
    app = make_app(args.downloads, args.api_key, peers=peers, incomplete_dir=args.incomplete,
                   tick_seconds=args.tick, search_seconds=args.search_seconds,
                   connected=not args.disconnected)
    app[FAULTS].latency = args.latency
    print(f"fake slskd on http://{args.host}:{args.port} (X-API-Key: {args.api_key}; downloads in "
          f"{args.downloads}; switches: POST /_fake/slskd, faults: POST /_fake/faults)")
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
