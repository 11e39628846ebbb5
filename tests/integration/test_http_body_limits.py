"""Body limits over real HTTP (uvicorn), where clients control the framing: chunked bodies with
no Content-Length, lying lengths, bodies cut off mid-way, and PATCH as well as POST.

(In-process cases — malformed, deep and oversized JSON on POST — are in test_api.py.)
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.db.tables import idempotency_keys, invoices
from tests.support.gateway import Gateway
from tests.support.served import ServedGateway, served_gateway

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
MAX_BODY = 65_536  # the default CHAINGATE_MAX_BODY_BYTES
INVOICE = b'{"amount": "1", "currency": "ETH", "network": "anvil"}'


@dataclass
class Shop:
    api_key: str
    endpoint_id: str


async def prepare(gateway: Gateway) -> Shop:
    shop = await gateway.merchant()
    hook = await shop.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    return Shop(shop.api_key, hook.json()["id"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway[Shop]]:
    database = tmp_path_factory.mktemp("limits") / "chaingate.db"
    with served_gateway(f"sqlite+aiosqlite:///{database}", [NETWORK], prepare) as server:
        yield server


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    content_type: str


def exchange(served: ServedGateway[Shop], head: str, body_parts: list[bytes]) -> Answer:
    """Send a raw request (head, then each part as written) and read the answer.

    The server may answer and close before the client has sent everything: that is allowed.
    """
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        try:
            sock.sendall(head.encode())
            for part in body_parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early; the answer is waiting in our receive buffer
        response = http.client.HTTPResponse(sock)
        response.begin()
        raw = response.read()
        return Answer(
            response.status,
            json.loads(raw) if raw else {},
            response.getheader("content-type") or "",
        )


def request_head(served: ServedGateway[Shop], method: str, path: str, **headers: str) -> str:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {served.host}:{served.port}",
        f"Authorization: Bearer {served.prepared.api_key}",
        "Content-Type: application/json",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunked(payload: bytes, size: int = 4096) -> list[bytes]:
    parts = [
        b"%x\r\n%s\r\n" % (len(payload[i : i + size]), payload[i : i + size])
        for i in range(0, len(payload), size)
    ]
    return [*parts, b"0\r\n\r\n"]


def count(served: ServedGateway[Shop], table: Any) -> int:
    async def query() -> int:
        async with served.gateway.container.db.engine.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(table))
            return int(result.scalar_one())

    return int(served.run(query()))


def padded_invoice(size: int) -> bytes:
    """A valid invoice body whose metadata pads it to about `size` bytes."""
    return b'{"amount": "1", "currency": "ETH", "network": "anvil", "metadata": {"pad": "%s"}}' % (
        b"x" * size
    )


def deep(levels: int) -> bytes:
    return b'{"amount": "1", "currency": "ETH", "network": "anvil", "metadata": ' + (
        b'{"a": ' * levels + b"1" + b"}" * levels + b"}"
    )


def test_a_small_chunked_body_is_accepted(served: ServedGateway[Shop]) -> None:
    before = count(served, invoices)
    head = request_head(served, "POST", "/v1/invoices", Transfer_Encoding="chunked")
    answer = exchange(served, head, chunked(INVOICE, size=7))
    assert answer.status == 201, answer.body
    assert count(served, invoices) == before + 1


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(
    served: ServedGateway[Shop],
) -> None:
    before = count(served, invoices), count(served, idempotency_keys)
    head = request_head(
        served, "POST", "/v1/invoices", Transfer_Encoding="chunked", Idempotency_Key="big-1"
    )
    answer = exchange(served, head, chunked(padded_invoice(4 * MAX_BODY)))
    assert (answer.status, answer.body["code"]) == (413, "payload_too_large")
    assert answer.content_type == "application/problem+json"
    assert (count(served, invoices), count(served, idempotency_keys)) == before


def test_a_length_claiming_more_than_the_limit_is_refused_without_the_rest(
    served: ServedGateway[Shop],
) -> None:
    before = count(served, invoices)
    head = request_head(served, "POST", "/v1/invoices", Content_Length=str(100 * MAX_BODY))
    # Only a little more than the limit is ever sent: the answer must not wait for the rest.
    answer = exchange(served, head, [padded_invoice(MAX_BODY + 1024)])
    assert (answer.status, answer.body["code"]) == (413, "payload_too_large")
    assert count(served, invoices) == before


def test_deep_json_in_chunks_is_refused(served: ServedGateway[Shop]) -> None:
    before = count(served, invoices)
    head = request_head(served, "POST", "/v1/invoices", Transfer_Encoding="chunked")
    answer = exchange(served, head, chunked(deep(2000), size=5))  # a bracket may straddle chunks
    assert (answer.status, answer.body["code"]) == (422, "json_too_deep")
    assert count(served, invoices) == before


def test_patch_bodies_have_the_same_limits_and_change_nothing(
    served: ServedGateway[Shop],
) -> None:
    path = f"/v1/webhooks/{served.prepared.endpoint_id}"
    deep_patch = b'{"description": "x", "events": ' + b"[" * 100 + b"]" * 100 + b"}"
    big_patch = b'{"description": "%s"}' % (b"y" * (MAX_BODY + 1))
    for payload, status, code in [
        (deep_patch, 422, "json_too_deep"),
        (big_patch, 413, "payload_too_large"),
    ]:
        head = request_head(served, "PATCH", path, Content_Length=str(len(payload)))
        answer = exchange(served, head, [payload])
        assert (answer.status, answer.body["code"]) == (status, code)
        chunked_answer = exchange(
            served,
            request_head(served, "PATCH", path, Transfer_Encoding="chunked"),
            chunked(payload),
        )
        assert (chunked_answer.status, chunked_answer.body["code"]) == (status, code)
    head = request_head(served, "GET", path)
    endpoint = exchange(served, head, []).body
    assert (endpoint["description"], endpoint["events"]) == (None, [])  # as registered


def test_a_body_cut_off_mid_way_writes_nothing_and_the_server_carries_on(
    served: ServedGateway[Shop],
) -> None:
    before = count(served, invoices)
    payload = padded_invoice(1000)
    head = request_head(served, "POST", "/v1/invoices", Content_Length=str(len(payload)))
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        sock.sendall(head.encode() + payload[:300])  # then hang up
    head = request_head(served, "POST", "/v1/invoices", Content_Length=str(len(INVOICE)))
    assert exchange(served, head, [INVOICE]).status == 201  # the next client is served
    assert count(served, invoices) == before + 1
