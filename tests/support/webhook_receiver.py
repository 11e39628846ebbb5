"""A real HTTP server that receives webhooks in tests, and a clock the tests move by hand."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived

    @property
    def event_id(self) -> str:
        return self.headers["chaingate-event-id"]


@dataclass(frozen=True)
class Reply:
    status: int
    delay: float = 0.0  # seconds to hold the answer (to provoke client timeouts)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


Behaviour = Callable[[Received, list[Received]], Reply]
"""Decides the reply from the request and every earlier request to the same path."""


class Receiver:
    """A ThreadingHTTPServer on a free port of `host` (a loopback address); each path gets its
    own behaviour."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self._behaviours: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.monotonic(),
                )
                reply = receiver._record(request)
                if reply.delay:
                    receiver._release.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected here

        self._server = Server((host, 0), Handler)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Serve `path` with `behaviour`; returns the URL to register."""
        self._behaviours[path] = behaviour
        return f"http://{self.host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[Received]:
        """Block until `count` requests to `path` have arrived (at most `timeout` seconds, a
        bound for a broken gateway, not a guess at its speed); returns those that did."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: sum(1 for r in self.requests if r.path == path) >= count, timeout
            )
            return [r for r in self.requests if r.path == path]

    def _record(self, request: Received) -> Reply:
        with self._lock:
            earlier = [r for r in self.requests if r.path == request.path]
            self.requests.append(request)
            self._arrived.notify_all()
        behaviour = self._behaviours.get(request.path)
        return Reply(404) if behaviour is None else behaviour(request, earlier)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def always(status: int, delay: float = 0.0, **kwargs: Any) -> Behaviour:
    return lambda _request, _earlier: Reply(status, delay, **kwargs)


class Hold:
    """A behaviour that keeps every request open until the test calls `release()` (or 60 s
    pass, so a failed test cannot hang the server), then answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._released = threading.Event()

    def __call__(self, request: Received, earlier: list[Received]) -> Reply:
        self._released.wait(60)
        return Reply(self.status)

    def release(self) -> None:
        self._released.set()


def fail_first(n: int, status: int, delay: float = 0.0) -> Behaviour:
    """`status` (after `delay`) for the first `n` attempts of each event id, then 200."""

    def behaviour(request: Received, earlier: list[Received]) -> Reply:
        seen = sum(1 for r in earlier if r.event_id == request.event_id)
        return Reply(status, delay) if seen < n else Reply(200)

    return behaviour


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class ManualClock:
    """A Clock that stands still until the test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
