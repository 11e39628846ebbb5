"""A minimal HTTP sink, run as its own OS process: `python -m bench.sink PORT COUNT_FILE`.

Answers every request with 200 "ok" as fast as asyncio (uvloop when installed) allows, honours
keep-alive and `Connection: close`, and on SIGTERM writes how many requests it answered to
COUNT_FILE. It parses no more than the request head and a Content-Length body.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import cast

_KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n"
    b"Connection: close\r\n\r\nok"
)


class _Counter:
    answered = 0


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip() == b"content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            _Counter.answered += 1
            if b"connection: close" in head:
                self._transport.write(_CLOSE)
                self._transport.close()
                self._transport = None
            else:
                self._transport.write(_KEEP)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(port: int) -> int:
    """Answer on `port` until SIGTERM/SIGINT; returns how many requests were answered."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(_Sink, "127.0.0.1", port, backlog=1024)
    try:
        await stop.wait()
    finally:
        server.close()
    return _Counter.answered


def main() -> None:
    port, count_file = int(sys.argv[1]), Path(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        answered = asyncio.run(serve(port))
    else:
        answered = uvloop.run(serve(port))
    count_file.write_text(str(answered))


if __name__ == "__main__":
    main()
