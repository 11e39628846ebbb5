"""JSON-RPC over HTTP to Bitcoin Core-compatible nodes, with failover and Core's auth.

Differences from the EVM transport, in one place:
- Core answers an error object with HTTP 500 (404 for an unknown method): such bodies are read
  as the node's JSON-RPC answer; other non-2xx statuses (401, 403, 502, ...) mean "node broken".
- Auth is HTTP Basic with rpc_user/rpc_password, or the `.cookie` file Core writes at start;
  the cookie is re-read after a 401 (the node restarted and rotated it).
- Amounts are JSON numbers with 8 decimals: parsed as Decimal, never float.
- Any failure of a node (transport, timeout, malformed answer, JSON-RPC error) puts it in
  back-off and the same work runs on the next node; NodeUnavailable when all failed. Callers
  that expect an error (a height beyond the tip) catch RpcError inside their work.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx

from chaingate.adapters.chains.failover import NodeRotation, redact_url
from chaingate.domain.chain import NodeUnavailable

T = TypeVar("T")
RpcCall = tuple[str, Sequence[Any]]

# Core's codes for "this node cannot answer now": warming up, in IBD, not connected, internal.
NODE_SIDE_CODES = frozenset({-28, -10, -9, -1, -32603})


class BadNodeAnswer(NodeUnavailable):
    """The node answered, but not in the shape or with the values we asked for."""


class RpcError(Exception):
    """A JSON-RPC error object the node answered with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message


def _reject_constant(name: str) -> Decimal:
    raise ValueError(f"non-standard JSON constant {name}")


@dataclass(frozen=True, slots=True)
class RpcAuth:
    user: str | None = None
    password: str | None = None
    cookie_file: Path | None = None

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for HTTP Basic, read from the cookie file when configured.

        Raises NodeUnavailable when the cookie cannot be read (node not started yet).
        """
        if self.cookie_file is not None:
            try:
                text = self.cookie_file.read_text().strip()
            except OSError as exc:
                raise NodeUnavailable(f"cannot read the RPC cookie file: {exc}") from exc
            user, sep, password = text.partition(":")
            if not sep:
                raise NodeUnavailable("the RPC cookie file is not user:password")
            return user, password
        if self.user is not None:
            return self.user, self.password or ""
        return None


class NodeEndpoint:
    """One node. Methods raise NodeUnavailable (BadNodeAnswer) when the node fails, RpcError for
    an error object."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        auth: RpcAuth,
        *,
        timeout: float,
        max_response_bytes: int,
        ids: itertools.count[int],
    ) -> None:
        self.url = url
        self.label = redact_url(url)
        self._http = http
        self._auth = auth
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._ids = ids
        self._credentials: tuple[str, str] | None = None

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """The `result` of one call."""
        request_id = next(self._ids)
        answer = await self._post(
            {"jsonrpc": "1.0", "id": request_id, "method": method, "params": list(params)}
        )
        if not isinstance(answer, dict):
            raise BadNodeAnswer(f"{self.label}: {method}: expected a JSON-RPC object")
        return _result(answer, request_id, self.label)

    async def batch(self, calls: Sequence[RpcCall]) -> list[Any]:
        """Results of `calls` in order, as one JSON-RPC batch. Raises the first error."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "1.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        answer = await self._post(payload)
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise BadNodeAnswer(f"{self.label}: batch answer does not match the request")
        by_id: dict[int, dict[str, Any]] = {}
        for item in answer:
            request_id = item.get("id") if isinstance(item, dict) else None
            if type(request_id) is not int or request_id not in ids or request_id in by_id:
                raise BadNodeAnswer(f"{self.label}: batch answer ids do not match the request")
            by_id[request_id] = item
        return [_result(by_id[i], i, self.label) for i in ids]

    async def _post(self, payload: object) -> Any:
        body = json.dumps(payload).encode()
        for attempt in range(2):
            if self._credentials is None:
                self._credentials = self._auth.credentials()
            try:
                async with asyncio.timeout(self._timeout):
                    status, raw = await self._exchange(body)
            except TimeoutError as exc:
                raise NodeUnavailable(f"{self.label}: timed out after {self._timeout}s") from exc
            except httpx.HTTPError as exc:
                raise NodeUnavailable(f"{self.label}: {type(exc).__name__}: {exc}") from exc
            if status == 401 and attempt == 0 and self._auth.cookie_file is not None:
                self._credentials = None  # the node restarted and wrote a new cookie
                continue
            if status not in (200, 404, 500):
                raise NodeUnavailable(f"{self.label}: HTTP {status}")
            try:
                return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
            except (ValueError, RecursionError) as exc:
                raise BadNodeAnswer(f"{self.label}: HTTP {status}, not JSON-RPC") from exc
        raise NodeUnavailable(f"{self.label}: HTTP 401 (check rpc_user/rpc_password/cookie)")

    async def _exchange(self, body: bytes) -> tuple[int, bytes]:
        async with self._http.stream(
            "POST",
            self.url,
            content=body,
            headers={"content-type": "application/json"},
            auth=self._credentials or httpx.USE_CLIENT_DEFAULT,
            timeout=self._timeout,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise BadNodeAnswer(
                        f"{self.label}: answer larger than {self._max_response_bytes} bytes"
                    )
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


def _result(item: dict[str, Any], request_id: int, label: str) -> Any:
    if item.get("id") != request_id or type(item.get("id")) is not int:
        raise BadNodeAnswer(f"{label}: answer carries an id we did not send")
    error = item.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise BadNodeAnswer(f"{label}: error member is not an object")
        code, message = error.get("code"), error.get("message")
        if type(code) is not int or not isinstance(message, str):
            raise BadNodeAnswer(f"{label}: error object without an integer code and a message")
        raise RpcError(code, message[:500])
    if "result" not in item:
        raise BadNodeAnswer(f"{label}: answer without a result")
    return item["result"]


class BitcoinRpcClient:
    """JSON-RPC to several nodes of one network, first healthy node first (see module doc)."""

    def __init__(
        self,
        urls: Sequence[str],
        auth: RpcAuth,
        *,
        timeout: float,
        backoff_seconds: float = 2.0,
        max_backoff_seconds: float = 60.0,
        max_response_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._http = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_keepalive_connections=8)
        )
        ids = itertools.count(1)
        endpoints = [
            NodeEndpoint(
                url,
                self._http,
                auth,
                timeout=timeout,
                max_response_bytes=max_response_bytes,
                ids=ids,
            )
            for url in urls
        ]
        self._nodes = NodeRotation(
            endpoints, backoff_seconds=backoff_seconds, max_backoff_seconds=max_backoff_seconds
        )

    @property
    def endpoints(self) -> list[NodeEndpoint]:
        return self._nodes.nodes

    async def on_one_node(self, work: Callable[[NodeEndpoint], Awaitable[T]]) -> T:
        """Run `work` against one node; if that node fails (NodeUnavailable or an RpcError the
        work did not handle), run it again on the next. Other exceptions propagate at once.

        Raises NodeUnavailable naming each node's reason when every node failed.
        """
        return await self._nodes.on_one_node(work, lambda exc: isinstance(exc, RpcError))

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return await self.on_one_node(lambda node: node.call(method, params))

    async def close(self) -> None:
        await self._http.aclose()
