"""JSON-RPC failover against fake nodes (httpx.MockTransport): which failures move on to the
next node, which are raised, and that batches come back in request order.

The failover's clock (adapters/chains/failover.py reads `time.monotonic`) is a `FrozenTime`
the tests move by hand, so a node's back-off lasts exactly until a test says it is over, however
slow the machine.

The same failover is shown against a real anvil with a dead first URL in
tests/integration/test_evm_client.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains import failover
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.rpc import JsonRpcClient, NodeEndpoint, RpcError
from chaingate.adapters.chains.failover import redact_url
from chaingate.domain.chain import NodeUnavailable

A = "http://node-a.test:8545/v3/SECRETKEY"
B = "http://node-b.test:8545"


def answer(request_body: Any) -> Any:
    """A correct node: eth_blockNumber is 0x10, eth_chainId 0x1, anything else echoes params."""

    def one(call: dict[str, Any]) -> dict[str, Any]:
        results = {"eth_blockNumber": "0x10", "eth_chainId": "0x1"}
        result = results.get(call["method"], call["params"])
        return {"jsonrpc": "2.0", "id": call["id"], "result": result}

    if isinstance(request_body, list):
        return [one(c) for c in request_body]
    return one(request_body)


def good(body: Any) -> httpx.Response:
    return httpx.Response(200, json=answer(body))


class FakeNodes:
    """Routes each request to the behaviour configured for its host; counts requests."""

    def __init__(self) -> None:
        self.behaviour: dict[str, Callable[[Any], Any]] = {}
        self.requests: dict[str, int] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.requests[host] = self.requests.get(host, 0) + 1
        body = json.loads(request.content)
        behave: Callable[[Any], Any] = self.behaviour.get(host, good)
        outcome = behave(body)
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        assert isinstance(outcome, httpx.Response)
        return outcome


class FrozenTime:
    """Stands in for the `time` module inside failover.py: monotonic() moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> FrozenTime:
    clock = FrozenTime()
    monkeypatch.setattr(failover, "time", clock)
    return clock


@pytest.fixture
def nodes() -> FakeNodes:
    return FakeNodes()


@pytest.fixture
async def rpc(nodes: FakeNodes) -> AsyncIterator[JsonRpcClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(nodes))
    client = JsonRpcClient([A, B], timeout=0.5, backoff_seconds=0.2, http_client=http)
    yield client
    await client.close()
    await http.aclose()


def raising(exc: Exception) -> Callable[[Any], Any]:
    def behave(body: Any) -> Any:
        raise exc

    return behave


def responding(
    status: int = 200, content: bytes | None = None, payload: Callable[[Any], Any] | None = None
) -> Callable[[Any], httpx.Response]:
    def behave(body: Any) -> httpx.Response:
        if payload is not None:
            return httpx.Response(status, json=payload(body))
        return httpx.Response(status, content=content or b"")

    return behave


async def test_a_healthy_first_node_answers(rpc: JsonRpcClient, nodes: FakeNodes) -> None:
    assert await rpc.call("eth_blockNumber") == "0x10"
    assert nodes.requests == {"node-a.test": 1}


@pytest.mark.parametrize(
    "failure",
    [
        raising(httpx.ConnectError("refused")),
        raising(httpx.ReadTimeout("slow")),
        responding(500, b"oops"),
        responding(429, b"slow down"),
        responding(200, b"<html>not json</html>"),
        responding(200, b"NaN"),
        responding(200, payload=lambda body: {"jsonrpc": "2.0", "id": 999, "result": "0x1"}),
        responding(200, payload=lambda body: {"jsonrpc": "2.0", "result": "0x1"}),
        responding(200, payload=lambda body: {"jsonrpc": "2.0", "id": True, "result": "0x1"}),
        responding(200, payload=lambda body: {"jsonrpc": "2.0", "id": body["id"]}),
        responding(200, payload=lambda body: [answer(body)]),
        responding(
            200,
            payload=lambda body: {
                "jsonrpc": "2.0",
                "id": body["id"],
                "error": {"code": -32000, "message": "header not found"},
            },
        ),
        responding(
            200,
            payload=lambda body: {
                "jsonrpc": "2.0",
                "id": body["id"],
                "error": {"code": -32603, "message": "internal error"},
            },
        ),
        responding(
            200,
            payload=lambda body: {"jsonrpc": "2.0", "id": body["id"], "error": "broken"},
        ),
    ],
)
async def test_node_failures_move_on_to_the_next_node(
    rpc: JsonRpcClient, nodes: FakeNodes, failure: Callable[[Any], Any]
) -> None:
    nodes.behaviour["node-a.test"] = failure
    assert await rpc.call("eth_blockNumber") == "0x10"
    assert nodes.requests == {"node-a.test": 1, "node-b.test": 1}
    assert not rpc.is_healthy(rpc.endpoints[0])
    assert rpc.is_healthy(rpc.endpoints[1])


async def test_a_hanging_node_times_out_and_fails_over(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    async def hang(body: Any) -> httpx.Response:
        await asyncio.sleep(5)
        return good(body)

    nodes.behaviour["node-a.test"] = hang
    assert await rpc.call("eth_blockNumber") == "0x10"


async def test_a_callers_mistake_is_raised_without_failover(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    nodes.behaviour["node-a.test"] = responding(
        200,
        payload=lambda body: {
            "jsonrpc": "2.0",
            "id": body["id"],
            "error": {"code": -32601, "message": "Method not found"},
        },
    )
    with pytest.raises(RpcError) as caught:
        await rpc.call("eth_nonsense")
    assert (caught.value.code, caught.value.message, caught.value.node_side) == (
        -32601,
        "Method not found",
        False,
    )
    assert nodes.requests == {"node-a.test": 1}
    assert rpc.is_healthy(rpc.endpoints[0])


async def test_every_node_failing_raises_node_unavailable_without_secrets(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    nodes.behaviour["node-a.test"] = responding(502, b"")
    nodes.behaviour["node-b.test"] = raising(httpx.ConnectError("refused"))
    with pytest.raises(NodeUnavailable) as caught:
        await rpc.call("eth_blockNumber")
    message = str(caught.value)
    assert "node-a.test" in message
    assert "node-b.test" in message
    assert "HTTP 502" in message
    assert "SECRETKEY" not in message


async def test_a_resting_node_is_tried_last_then_again_after_its_backoff(
    rpc: JsonRpcClient, nodes: FakeNodes, frozen_time: FrozenTime
) -> None:
    nodes.behaviour["node-a.test"] = responding(500, b"")
    await rpc.call("eth_blockNumber")
    del nodes.behaviour["node-a.test"]
    frozen_time.advance(0.19)  # within the 0.2 s back-off
    await rpc.call("eth_blockNumber")
    assert nodes.requests == {"node-a.test": 1, "node-b.test": 2}  # A rests
    frozen_time.advance(0.01)  # the back-off is over
    await rpc.call("eth_blockNumber")
    assert nodes.requests == {"node-a.test": 2, "node-b.test": 2}  # A is back first


async def test_back_off_doubles_with_each_failure_up_to_its_cap(
    nodes: FakeNodes, frozen_time: FrozenTime
) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(nodes))
    client = JsonRpcClient(
        [A, B], timeout=0.5, backoff_seconds=1.0, max_backoff_seconds=3.0, http_client=http
    )
    nodes.behaviour["node-a.test"] = responding(500, b"")
    try:
        for expected_rest in (1.0, 2.0, 3.0, 3.0):  # 1, 2, 4 -> capped at 3, 3
            frozen_time.advance(10)  # A is due again: it is asked first, and fails
            await client.call("eth_blockNumber")
            frozen_time.advance(expected_rest - 0.001)
            assert not client.is_healthy(client.endpoints[0])
            frozen_time.advance(0.001)
            assert client.is_healthy(client.endpoints[0])
        assert nodes.requests["node-a.test"] == 4
    finally:
        await client.close()
        await http.aclose()


async def test_resting_nodes_are_still_asked_when_all_rest(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    nodes.behaviour["node-a.test"] = responding(500, b"")
    nodes.behaviour["node-b.test"] = responding(500, b"")
    with pytest.raises(NodeUnavailable):
        await rpc.call("eth_blockNumber")
    nodes.behaviour.clear()
    assert await rpc.call("eth_blockNumber") == "0x10"


async def test_batch_results_come_back_in_request_order(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    nodes.behaviour["node-a.test"] = responding(
        200, payload=lambda body: list(reversed(answer(body)))
    )
    results = await rpc.batch([("echo", [i]) for i in range(5)])
    assert results == [[0], [1], [2], [3], [4]]
    assert nodes.requests == {"node-a.test": 1}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda items: items[:-1],  # one answer missing
        lambda items: [*items[:-1], items[0]],  # one id twice
        lambda items: {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "x"}},
        lambda items: [*items[:-1], "not an object"],
    ],
)
async def test_malformed_batch_answers_fail_over(
    rpc: JsonRpcClient, nodes: FakeNodes, mangle: Callable[[list[Any]], Any]
) -> None:
    nodes.behaviour["node-a.test"] = responding(200, payload=lambda body: mangle(answer(body)))
    assert await rpc.batch([("echo", [i]) for i in range(3)]) == [[0], [1], [2]]
    assert nodes.requests == {"node-a.test": 1, "node-b.test": 1}


async def test_a_node_side_error_in_one_batch_item_fails_the_batch_over(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    def one_bad(body: Any) -> Any:
        items = answer(body)
        items[1] = {
            "jsonrpc": "2.0",
            "id": items[1]["id"],
            "error": {"code": -32000, "message": "unknown block"},
        }
        return items

    nodes.behaviour["node-a.test"] = responding(200, payload=one_bad)
    assert await rpc.batch([("echo", [i]) for i in range(3)]) == [[0], [1], [2]]


async def test_large_batches_are_split_and_stay_in_order(nodes: FakeNodes) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(nodes))
    rpc = JsonRpcClient([B], timeout=1, max_batch=2, http_client=http)
    try:
        assert await rpc.batch([("echo", [i]) for i in range(5)]) == [[i] for i in range(5)]
        assert await rpc.batch([]) == []
    finally:
        await http.aclose()
    assert nodes.requests == {"node-b.test": 3}


async def test_oversized_answers_are_refused(nodes: FakeNodes) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(nodes))
    rpc = JsonRpcClient([B], timeout=1, max_response_bytes=100, http_client=http)
    try:
        with pytest.raises(NodeUnavailable) as caught:
            await rpc.call("echo", ["x" * 200])
    finally:
        await http.aclose()
    assert isinstance(caught.value.__cause__, BadNodeAnswer)


async def test_work_pinned_to_one_node_restarts_on_the_next(
    rpc: JsonRpcClient, nodes: FakeNodes
) -> None:
    seen: list[str] = []

    async def two_reads(node: NodeEndpoint) -> tuple[Any, Any]:
        seen.append(node.label)
        first = await node.call("eth_blockNumber")
        if node.url == A:
            raise BadNodeAnswer("inconsistent view")
        return first, await node.call("eth_chainId")

    assert await rpc.on_one_node(two_reads) == ("0x10", "0x1")
    assert seen == ["http://node-a.test:8545", "http://node-b.test:8545"]


def test_urls_are_redacted_to_scheme_host_and_port() -> None:
    assert redact_url("https://user:pw@rpc.example.org/v3/KEY?x=1") == "https://rpc.example.org"
    assert redact_url(A) == "http://node-a.test:8545"


def test_at_least_one_url_is_required() -> None:
    with pytest.raises(ValueError, match="URL"):
        JsonRpcClient([], timeout=1)
