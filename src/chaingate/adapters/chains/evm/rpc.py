"""JSON-RPC over HTTP to a list of EVM nodes, with failover.

Failover policy, in one place:
- Transport errors, timeouts, any non-2xx HTTP status, bodies that are not the JSON-RPC shape we
  asked for (bad JSON, wrong or missing or duplicated ids) mean "this node is broken now": it is
  put in back-off and the next node is tried.
- A JSON-RPC error object is the node's considered answer. Errors in the server range
  (-32000..-32099, which geth and anvil use for "header not found", "unknown block", rate limits)
  and -32603 internal error are node-side conditions another node may not share: failover.
  Everything else (-32600 invalid request, -32601 method not found, -32602 invalid params,
  3 execution reverted, ...) would be the same on every node: raised at once as RpcError.
- When every node failed, NodeUnavailable names each node's reason; the caller retries later.

A sequence of calls that must see ONE node's consistent view (a block scan) runs inside
`on_one_node`: the work is restarted from scratch on the next node if its node fails.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.failover import NodeRotation, redact_url
from chaingate.domain.chain import NodeUnavailable

T = TypeVar("T")
RpcCall = tuple[str, Sequence[Any]]

_SERVER_ERROR_RANGE = range(-32099, -32000 + 1)
_INTERNAL_ERROR = -32603


class RpcError(Exception):
    """A JSON-RPC error object the node answered with."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def node_side(self) -> bool:
        """True when another node may well answer the same request successfully."""
        return self.code == _INTERNAL_ERROR or self.code in _SERVER_ERROR_RANGE


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


class NodeEndpoint:
    """One node. Its methods raise NodeUnavailable (or BadNodeAnswer) when the node fails,
    RpcError for an error object."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        max_response_bytes: int,
        max_batch: int,
        ids: itertools.count[int],
    ) -> None:
        self.url = url
        self.label = redact_url(url)
        self._http = http
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._max_batch = max_batch
        self._ids = ids

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """The `result` of one call."""
        request_id = next(self._ids)
        answer = await self._post(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
        )
        if not isinstance(answer, dict):
            raise BadNodeAnswer(f"{self.label}: {method}: expected a JSON-RPC object")
        _check_id(answer, {request_id}, self.label)
        return _result(answer)

    async def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        """Results of `calls`, in order. Sent as JSON-RPC batches of at most `max_batch` calls."""
        results: list[Any] = []
        for first in range(0, len(calls), self._max_batch):
            results.extend(await self._batch_once(calls[first : first + self._max_batch]))
        return results

    async def _batch_once(self, calls: Sequence[RpcCall]) -> list[Any]:
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
            for request_id, (method, params) in zip(ids, calls, strict=True)
        ]
        answer = await self._post(payload)
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise BadNodeAnswer(f"{self.label}: batch answer does not match the request")
        by_id: dict[int, dict[str, Any]] = {}
        expected = set(ids)
        for item in answer:
            if not isinstance(item, dict):
                raise BadNodeAnswer(f"{self.label}: batch item is not an object")
            request_id = _check_id(item, expected, self.label)
            if request_id in by_id:
                raise BadNodeAnswer(f"{self.label}: batch answer repeats id {request_id}")
            by_id[request_id] = item
        # Raise a node-side error first, so one bad item fails over rather than surfacing as
        # the caller's fault.
        errors = [_error(by_id[i]) for i in ids if "error" in by_id[i]]
        if errors:
            raise min(errors, key=lambda e: not e.node_side)
        return [_result(by_id[i]) for i in ids]

    async def _post(self, payload: object) -> Any:
        body = json.dumps(payload).encode()
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "POST",
                    self.url,
                    content=body,
                    headers={"content-type": "application/json"},
                    timeout=self._timeout,
                ) as response:
                    if not response.is_success:
                        raise NodeUnavailable(f"{self.label}: HTTP {response.status_code}")
                    raw = await self._read_capped(response)
        except TimeoutError as exc:
            raise NodeUnavailable(f"{self.label}: timed out after {self._timeout}s") from exc
        except httpx.HTTPError as exc:
            raise NodeUnavailable(f"{self.label}: {type(exc).__name__}: {exc}") from exc
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise BadNodeAnswer(f"{self.label}: answer is not valid JSON") from exc

    async def _read_capped(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_response_bytes:
                raise BadNodeAnswer(
                    f"{self.label}: answer larger than {self._max_response_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _check_id(item: dict[str, Any], expected: set[int], label: str) -> int:
    request_id = item.get("id")
    # `type(...) is int`: JSON `true` would otherwise pass as id 1.
    if type(request_id) is not int or request_id not in expected:
        raise BadNodeAnswer(f"{label}: answer carries an id we did not send")
    if ("result" in item) == ("error" in item):
        raise BadNodeAnswer(f"{label}: answer must hold exactly one of result and error")
    return request_id


def _error(item: dict[str, Any]) -> RpcError:
    error = item["error"]
    if not isinstance(error, dict):
        raise BadNodeAnswer("error member is not an object")
    code, message = error.get("code"), error.get("message")
    if type(code) is not int or not isinstance(message, str):
        raise BadNodeAnswer("error object without an integer code and a message")
    return RpcError(code, message[:500], error.get("data"))


def _result(item: dict[str, Any]) -> Any:
    if "error" in item:
        raise _error(item)
    return item["result"]


class JsonRpcClient:
    """JSON-RPC to several nodes of one network, first healthy node first.

    `timeout` bounds each HTTP exchange as a whole; back-off and node order: `NodeRotation`.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float,
        backoff_seconds: float = 2.0,
        max_backoff_seconds: float = 60.0,
        max_batch: int = 500,
        max_response_bytes: int = 256 * 1024 * 1024,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_keepalive_connections=8)
        )
        ids = itertools.count(1)
        endpoints = [
            NodeEndpoint(
                url,
                self._http,
                timeout=timeout,
                max_response_bytes=max_response_bytes,
                max_batch=max_batch,
                ids=ids,
            )
            for url in urls
        ]
        self._nodes = NodeRotation(
            endpoints, backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds
        )

    @property
    def endpoints(self) -> list[NodeEndpoint]:
        """All nodes in configuration order."""
        return self._nodes.nodes

    def is_healthy(self, endpoint: NodeEndpoint) -> bool:
        return self._nodes.is_healthy(endpoint)

    async def on_one_node(self, work: Callable[[NodeEndpoint], Awaitable[T]]) -> T:
        """Run `work` against one node; if that node fails, run it again on the next.

        Raises NodeUnavailable when it failed on every node. RpcErrors that are not node-side,
        and any other exception from `work` (ReorgDetected, ...), propagate at once.
        """
        return await self._nodes.on_one_node(work, _node_side)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """The `result` of `method` from the first node that answers properly."""
        return await self.on_one_node(lambda node: node.call(method, params))

    async def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        """The results of `calls` (in order) from one node, as JSON-RPC batch requests."""
        return await self.on_one_node(lambda node: node.batch(calls))

    async def close(self) -> None:
        """Close the HTTP connections (unless the HTTP client was passed in)."""
        if self._owns_http:
            await self._http.aclose()


def _node_side(exc: Exception) -> bool:
    return isinstance(exc, RpcError) and exc.node_side
