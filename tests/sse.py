"""Reading a Server-Sent Events stream in tests, as an EventSource client parses it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

DEADLINE = 15.0  # a safety net against a hung test, not a measurement


@dataclass
class Message:
    """One SSE block: ``event``/``id``/``data`` fields, or only ``comments`` (a heartbeat)."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Reads messages from an open ``text/event-stream`` response."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def message(self, seconds: float = DEADLINE) -> Message | None:
        """Return the next block, or None when the server ended the stream."""
        message = Message()
        data: list[str] = []
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if message.event or message.id or data or message.comments:
                        message.data = "\n".join(data)
                        return message
                    continue
                if line.startswith(":"):
                    message.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name in ("event", "id"):
                    setattr(message, name, value)

    async def event(self, seconds: float = DEADLINE) -> Message:
        """Return the next message that is an event (heartbeats skipped); fail at the end."""
        while True:
            message = await self.message(seconds)
            assert message is not None, "the stream ended"
            if message.event is not None:
                return message

    async def events_until(self, event_type: str, seconds: float = DEADLINE) -> list[Message]:
        """Return the events up to and including the first of ``event_type``."""
        found: list[Message] = []
        while True:
            found.append(await self.event(seconds))
            if found[-1].event == event_type:
                return found


async def wait_until(condition: Callable[[], bool], what: str, seconds: float = DEADLINE) -> None:
    """Return once ``condition()`` holds (checked every 10 ms); fail after ``seconds``."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")
