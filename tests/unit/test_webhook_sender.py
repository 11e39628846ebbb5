"""The sender: what goes on the wire, and how every kind of failure comes back as a result.

httpx's MockTransport stands in for the network here; the integration tests use a real server
(over real TLS with a pinned address: tests/integration/test_webhook_tls.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from chaingate.adapters.ssrf import Resolver, UrlGuard
from chaingate.adapters.webhook_sender import (
    EXCERPT_BYTES,
    USER_AGENT,
    AttemptResult,
    WebhookSender,
    webhook_http_client,
)

SECRET = "whsec_unit-test-secret"
BODY = '{"id":"evt_1","type":"invoice.created","data":{}}'
T = 1_735_732_800
PUBLIC_A, PUBLIC_B = "93.184.216.34", "93.184.216.35"

Handler = Callable[[httpx.Request], httpx.Response]


def dns(table: dict[str, Sequence[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return table[host]

    return resolve


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


async def send_with(
    handler: Handler,
    seen: list[httpx.Request],
    url: str = "https://hooks.example.com/cg",
    answers: Sequence[str] = (PUBLIC_A,),
    limit_s: float = 2.0,
) -> AttemptResult:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    guard = UrlGuard(resolver=dns({"hooks.example.com": answers}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        sender = WebhookSender(client, guard, limit_s)
        result = await sender.send(url, BODY, SECRET, {"ChainGate-Event-Id": "evt_1"}, timestamp=T)
    return result


async def test_request_is_signed_pinned_and_complete(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(200, text="thanks"), seen)
    assert len(seen) == 1
    request = seen[0]
    assert request.method == "POST"
    assert request.content == BODY.encode()  # byte for byte
    mac = hmac.new(SECRET.encode(), f"{T}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert request.headers["ChainGate-Signature"] == f"t={T},v1={mac}"
    assert request.headers["ChainGate-Event-Id"] == "evt_1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    # Connected to the address the guard approved, under the merchant's host name.
    assert request.url.host == PUBLIC_A
    assert request.url.path == "/cg"
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert result.status_code == 200
    assert result.response_excerpt == "thanks"
    assert result.error is None
    assert not result.network_error


async def test_a_non_default_port_stays_in_the_host_header(seen: list[httpx.Request]) -> None:
    await send_with(lambda r: httpx.Response(204), seen, url="http://hooks.example.com:8080/x")
    assert seen[0].headers["Host"] == "hooks.example.com:8080"
    assert seen[0].url.port == 8080
    assert seen[0].url.host == PUBLIC_A
    assert "sni_hostname" not in seen[0].extensions  # plain http


async def test_redirects_are_not_followed(seen: list[httpx.Request]) -> None:
    redirect = httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})
    result = await send_with(lambda r: redirect, seen)
    assert len(seen) == 1
    assert result.status_code == 302
    assert "redirect not followed" in str(result.error)
    assert "169.254.169.254" in str(result.error)
    assert not result.network_error


async def test_http_errors_come_back_with_their_status(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(503, text="busy"), seen)
    assert (result.status_code, result.error, result.response_excerpt) == (503, None, "busy")
    assert result.duration_ms >= 0


async def test_a_refused_address_is_never_contacted(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(200), seen, answers=["10.0.0.8"])
    assert seen == []
    assert result.status_code is None
    assert str(result.error).startswith("refused:")
    assert result.network_error
    assert "10.0.0.8" not in str(result.error)


async def test_an_unresolvable_host_is_a_retryable_failure(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(200), seen, url="https://gone.example/")
    assert seen == []
    assert result.network_error
    assert "could not be resolved" in str(result.error)


async def test_connection_errors_try_the_next_address(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_A:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200)

    result = await send_with(handler, seen, answers=[PUBLIC_A, PUBLIC_B])
    assert [r.url.host for r in seen] == [PUBLIC_A, PUBLIC_B]
    assert result.status_code == 200


async def test_network_errors_come_back_as_results(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = await send_with(handler, seen)
    assert result.status_code is None
    assert result.network_error
    assert result.error == "ConnectError: [Errno 111] Connection refused"


async def test_httpx_timeouts_come_back_as_results(seen: list[httpx.Request]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    result = await send_with(handler, seen, limit_s=1.5)
    assert result.network_error
    assert result.error == "timed out after 1.5s"


async def test_the_whole_attempt_is_bounded_by_the_timeout() -> None:
    async def slow_body() -> AsyncIterator[bytes]:
        while True:  # drips forever: per-read timeouts alone would never fire
            await asyncio.sleep(0.01)
            yield b""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=slow_body())

    guard = UrlGuard(resolver=dns({"hooks.example.com": [PUBLIC_A]}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await WebhookSender(client, guard, 0.2).send(
            "https://hooks.example.com/", BODY, SECRET, {}
        )
    assert result.network_error
    assert result.error == "timed out after 0.2s"
    assert 150 <= result.duration_ms < 2000


async def test_only_an_excerpt_of_the_answer_is_kept(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(500, text="é" * 10_000), seen)
    excerpt = result.response_excerpt
    assert excerpt is not None
    assert len(excerpt.encode()) <= EXCERPT_BYTES + 3
    assert excerpt.startswith("éé")


async def test_an_empty_answer_has_no_excerpt(seen: list[httpx.Request]) -> None:
    result = await send_with(lambda r: httpx.Response(204), seen)
    assert result.response_excerpt is None


def test_an_unreadable_ca_bundle_fails_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(FileNotFoundError):
        webhook_http_client(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ssl.SSLError):
        webhook_http_client(garbage)
