"""What a webhook receiver answered, and a trap that SIGKILLs the sender mid-request.

`Audit.wrap(behaviour)` serves a Receiver path and remembers the status of every reply. When
armed with a pid, the next request to any wrapped path kills that process before answering:
the gateway has sent the webhook but can never record the attempt — the moment at-least-once
delivery exists for.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import threading
from dataclasses import dataclass

from tests.support.webhook_receiver import Behaviour, Received, Reply


@dataclass(frozen=True)
class Answered:
    request: Received
    status: int | None  # None: the sender was killed before any answer


class Audit:
    def __init__(self) -> None:
        self.answers: list[Answered] = []
        self._lock = threading.Lock()
        self._armed_pid: int | None = None
        self.fired = threading.Event()

    def arm(self, pid: int) -> None:
        with self._lock:
            self._armed_pid = pid
            self.fired.clear()

    def disarm(self) -> bool:
        """Disarm; True if the trap had already fired."""
        with self._lock:
            self._armed_pid = None
        return self.fired.is_set()

    def wrap(self, behaviour: Behaviour) -> Behaviour:
        def serve(request: Received, earlier: list[Received]) -> Reply:
            with self._lock:
                pid, self._armed_pid = self._armed_pid, None
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pid = None
                if pid is not None:
                    reply = Reply(200)  # nobody is left to read it
                elif len(request.body) < int(request.headers.get("content-length", "0")):
                    reply = Reply(400)  # its sender died mid-body: a receiver refuses a torso
                else:
                    reply = behaviour(request, earlier)
                self.answers.append(Answered(request, None if pid is not None else reply.status))
            if pid is not None:
                self.fired.set()
            return reply

        return serve

    def answered(self, path: str) -> list[Answered]:
        with self._lock:
            return [a for a in self.answers if a.request.path == path]


def signature_valid(secret: str, header: str, body: bytes) -> bool:
    """The README's recipe, written independently of the gateway's code (no time window)."""
    parts = dict(item.strip().split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


def flaky_for_some(seed: str) -> Behaviour:
    """503 on the first attempt of about a third of the event ids (chosen by hash), then 200."""

    def behaviour(request: Received, earlier: list[Received]) -> Reply:
        unlucky = hashlib.sha256((seed + request.event_id).encode()).digest()[0] % 3 == 0
        seen = any(r.event_id == request.event_id for r in earlier)
        return Reply(503) if unlucky and not seen else Reply(200)

    return behaviour
