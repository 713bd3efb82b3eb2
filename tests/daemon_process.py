"""Run the real ``soulsync`` command as a subprocess, the way a user would.

:class:`DaemonProcess` starts ``python -m soulsync_core serve`` on a free port of 127.0.0.1
with a clean environment (no ``SOULSYNC_*`` variable, ``HOME`` in a temp dir), its stdout and
stderr in a log file, and waits for ``GET /ping``. :func:`run_cli` runs any other subcommand.
Only temp paths and free ports are used, so tests using this run in parallel safely.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import pytest

READY_DEADLINE = 15.0
STOP_DEADLINE = 10.0
# A port picked free can be taken by another process before the daemon binds it; the daemon
# then exits with 1 and "cannot listen", and we try again with another port.
BIND_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(home: Path) -> dict[str, str]:
    """Return ``os.environ`` without any ``SOULSYNC_*`` variable and with ``HOME=home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOULSYNC_")}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    # Not under systemd: plain timestamped log lines, whatever the test runner inherited.
    env.pop("JOURNAL_STREAM", None)
    return env


def command(*args: str | Path) -> list[str]:
    """Return the argv of ``python -m soulsync_core <args>``."""
    return [sys.executable, "-m", "soulsync_core", *map(str, args)]


async def run_cli(args: Sequence[str | Path], home: Path, seconds: float = 20.0,
                  env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m soulsync_core <args>`` to completion (``env`` added to the clean
    environment); return its exit code and output."""
    proc = await asyncio.create_subprocess_exec(
        *command(*args), env=clean_env(home) | dict(env or {}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"soulsync {' '.join(map(str, args))} did not finish in {seconds} s") from None
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(map(str, args)), proc.returncode, out.decode(), err.decode())


class DaemonProcess:
    """One ``soulsync serve`` subprocess. Always call :meth:`kill` when done (fixture finalizer)."""

    def __init__(self, data_dir: Path, log_path: Path, home: Path,
                 env: Mapping[str, str] | None = None):
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.log_path = log_path
        self.home = home
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.sigterm_at: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        """Return everything the process wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def spawn(self) -> None:
        """Start the process on a fresh free port without waiting for it."""
        self.port = free_port()
        argv = command("serve", "--data-dir", self.data_dir, "--host", "127.0.0.1",
                       "--port", str(self.port))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=clean_env(self.home) | self.env,
                                         stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)

    async def start(self) -> DaemonProcess:
        """Start the daemon and wait until ``GET /ping`` answers 200; fail with the log if not."""
        for attempt in range(BIND_ATTEMPTS):
            self.spawn()
            code = await self._wait_ready()
            if code is None:
                return self
            if code == 1 and "cannot listen" in self.log_text() and attempt + 1 < BIND_ATTEMPTS:
                continue
            pytest.fail(f"soulsync serve exited with code {code} before answering /ping; "
                        f"log:\n{self.log_text()}")
        raise AssertionError("unreachable")

    async def _wait_ready(self) -> int | None:
        """Poll /ping; return None once it answers 200, or the exit code if the process died."""
        assert self.proc is not None
        deadline = time.monotonic() + READY_DEADLINE
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    return code
                try:
                    async with session.get(f"{self.base_url}/ping") as response:
                        if response.status == 200:
                            return None
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        self.kill()
        pytest.fail(f"soulsync serve did not answer /ping within {READY_DEADLINE} s; "
                    f"log:\n{self.log_text()}")

    def terminate(self) -> None:
        """Send SIGTERM (as systemd does) and remember when."""
        assert self.proc is not None
        self.sigterm_at = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)

    async def wait(self, seconds: float) -> int:
        """Wait for the process to exit; fail with the log if it is still running after ``seconds``."""
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"soulsync serve still running {seconds:g} s later; log:\n{self.log_text()}")

    async def stop(self, seconds: float = STOP_DEADLINE) -> int:
        """SIGTERM the daemon and return its exit code; fail if it takes longer than ``seconds``."""
        self.terminate()
        return await self.wait(seconds)

    def kill(self) -> None:
        """Kill the process if it still runs and reap it (idempotent; for finalizers)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill is not refused
            pass
