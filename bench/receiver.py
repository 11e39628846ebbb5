"""A webhook receiver inside the benchmark process that notes when each event arrived.

It answers 200 at once, reads the JSON body, and resolves the waiter registered for
(event type, invoice id) with the arrival time, taken the moment the full request was read.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, cast

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@dataclass(frozen=True)
class Arrival:
    monotonic: float
    wall: float
    event: dict[str, Any]


class Receiver:
    """Listens on 127.0.0.1:`port`; `expect(type, invoice_id)` returns a future Arrival."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], asyncio.Future[Arrival]] = {}
        self._server: asyncio.Server | None = None
        self.received = 0

    async def start(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Protocol(self), "127.0.0.1", port)

    def expect(self, event_type: str, invoice_id: str) -> asyncio.Future[Arrival]:
        future: asyncio.Future[Arrival] = asyncio.get_running_loop().create_future()
        self._waiters[(event_type, invoice_id)] = future
        return future

    def arrived(self, body: bytes, monotonic: float, wall: float) -> None:
        self.received += 1
        event = json.loads(body)
        key = (str(event.get("type")), str(event.get("data", {}).get("id")))
        future = self._waiters.pop(key, None)
        if future is not None and not future.done():
            future.set_result(Arrival(monotonic, wall, event))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _Protocol(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._transport is None:
            return
        length = 0
        for line in bytes(self._buffer[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self._buffer) < end + 4 + length:
            return
        monotonic, wall = time.monotonic(), time.time()
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        self._transport.write(_OK)
        self._transport.close()
        self._transport = None
        self._receiver.arrived(body, monotonic, wall)
