"""A background `eth_subscribe newHeads` subscription that wakes the tracker early.

The announcement is only a hint to look now: its content is not trusted or even parsed beyond
"this is our subscription". The tracker still reads and verifies blocks over HTTP. While the
socket is down the waiter simply sleeps its timeout, so polling continues unharmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from chaingate.adapters.chains.failover import redact_url

log = logging.getLogger(__name__)

_SUBSCRIBE_ID = 1


class NewHeadsListener:
    """Keeps one newHeads subscription open, reconnecting with exponential back-off."""

    def __init__(
        self,
        ws_url: str,
        *,
        open_timeout: float = 10.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._url = ws_url
        self._label = redact_url(ws_url)
        self._open_timeout = open_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._head_seen = asyncio.Event()
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether the subscription is live right now."""
        return self._connected

    def start(self) -> None:
        """Start the background subscription (idempotent). Needs a running event loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"newHeads {self._label}"
            )

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - the port's signature
        """True as soon as a head was announced since the last wait; False after `timeout`."""
        self.start()
        try:
            async with asyncio.timeout(timeout):
                await self._head_seen.wait()
        except TimeoutError:
            return False
        # Cleared only on return: a head announced while the tracker was busy scanning still
        # wakes the next wait at once instead of being lost.
        self._head_seen.clear()
        return True

    async def close(self) -> None:
        """Stop the subscription and wait for the background task to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self._min_backoff
        while True:
            try:
                async with connect(
                    self._url, open_timeout=self._open_timeout, max_size=1024 * 1024
                ) as socket:
                    subscription = await self._subscribe(socket)
                    self._connected = True
                    delay = self._min_backoff
                    log.info("newHeads subscription open on %s", self._label)
                    async for message in socket:
                        if _is_head(message, subscription):
                            self._head_seen.set()
            except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                log.warning("newHeads on %s: %s; reconnecting in %.1fs", self._label, exc, delay)
            except Exception:
                # Only a hint channel: whatever went wrong, keep polling alive and try again.
                log.exception("newHeads on %s failed; reconnecting in %.1fs", self._label, delay)
            finally:
                self._connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def _subscribe(self, socket: ClientConnection) -> str:
        request = {
            "jsonrpc": "2.0",
            "id": _SUBSCRIBE_ID,
            "method": "eth_subscribe",
            "params": ["newHeads"],
        }
        await socket.send(json.dumps(request))
        async with asyncio.timeout(self._open_timeout):
            while True:
                answer = _json(await socket.recv())
                if isinstance(answer, dict) and answer.get("id") == _SUBSCRIBE_ID:
                    subscription = answer.get("result")
                    if not isinstance(subscription, str):
                        raise ValueError(f"eth_subscribe refused: {str(answer)[:200]}")
                    return subscription


def _json(message: str | bytes) -> Any:
    return json.loads(message)


def _is_head(message: str | bytes, subscription: str) -> bool:
    try:
        note = _json(message)
    except ValueError:
        return False
    if not isinstance(note, dict) or note.get("method") != "eth_subscription":
        return False
    params = note.get("params")
    return isinstance(params, dict) and params.get("subscription") == subscription
