"""Several nodes of one network, first healthy node first: the failover both chain families use.

A failed node sits out `backoff_seconds`, doubling with consecutive failures up to
`max_backoff_seconds`; when every node is in back-off they are still tried (oldest back-off
first) rather than failing without asking. What counts as a node failure besides
NodeUnavailable is the family's call (`node_failed`): the EVM transport fails over only on
node-side JSON-RPC errors, the Bitcoin one on any.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from chaingate.domain.chain import NodeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Node(Protocol):
    label: str


N = TypeVar("N", bound=Node)


def redact_url(url: str) -> str:
    """scheme://host:port only: node URLs often carry credentials or an API key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


@dataclass(slots=True)
class _Health:
    failures: int = 0
    unhealthy_until: float = 0.0


class NodeRotation(Generic[N]):
    def __init__(
        self, nodes: Sequence[N], *, backoff_seconds: float, max_backoff_seconds: float
    ) -> None:
        if not nodes:
            raise ValueError("at least one node URL is required")
        self._nodes = list(nodes)
        self._health = {id(n): _Health() for n in self._nodes}
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds

    @property
    def nodes(self) -> list[N]:
        """All nodes in configuration order."""
        return list(self._nodes)

    def is_healthy(self, node: N) -> bool:
        return self._health[id(node)].unhealthy_until <= time.monotonic()

    def _in_order(self) -> list[N]:
        healthy = [n for n in self._nodes if self.is_healthy(n)]
        resting = sorted(
            (n for n in self._nodes if n not in healthy),
            key=lambda n: self._health[id(n)].unhealthy_until,
        )
        return healthy + resting

    def _failed(self, node: N, reason: BaseException) -> None:
        health = self._health[id(node)]
        health.failures += 1
        pause = min(self._backoff * 2 ** (health.failures - 1), self._max_backoff)
        health.unhealthy_until = time.monotonic() + pause
        log.warning("node %s failed (%s); resting %.1fs", node.label, reason, pause)

    async def on_one_node(
        self, work: Callable[[N], Awaitable[T]], node_failed: Callable[[Exception], bool]
    ) -> T:
        """Run `work` against one node; if that node fails (NodeUnavailable, or an exception
        `node_failed` says is the node's), run it again on the next. Other exceptions
        (ReorgDetected, a request every node would refuse) propagate at once.

        Raises NodeUnavailable naming each node's reason when every node failed.
        """
        reasons: list[str] = []
        last: BaseException | None = None
        for node in self._in_order():
            try:
                outcome = await work(node)
            except NodeUnavailable as exc:
                failure: Exception = exc
            except Exception as exc:
                if not node_failed(exc):
                    raise
                failure = exc
            else:
                self._health[id(node)] = _Health()
                return outcome
            self._failed(node, failure)
            reasons.append(f"{node.label}: {failure}")
            last = failure
        raise NodeUnavailable("no node answered: " + "; ".join(reasons)) from last
