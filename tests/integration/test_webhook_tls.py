"""Webhooks over real TLS, as production sends them (SQLite and PostgreSQL).

A gateway with production settings (tests/support/gateway.py: dev mode off, its own secret
key) sends to a real HTTPS receiver (tests/support/tls.py) whose certificate comes from a
certificate authority made in the test and trusted only through CHAINGATE_WEBHOOK_CA_BUNDLE.
The receiver listens on loopback addresses, which production refuses; the operator's
allow-list CHAINGATE_WEBHOOK_ALLOWED_NETWORKS=127.10.0.0/30 admits exactly those (everything
else on loopback stays refused, see the last test). The names `hooks.shop.test` and
`pay.shop.test` exist only in the test's DNS (the resolver the URL guard asks, replaced here):
if the sender looked a name up a second time, it could not connect at all.

Checked: the dispatcher (with the sender the composition root builds from the settings)
delivers, with the name as SNI and Host and the certificate checked against it; each attempt
connects to exactly the address the guard approved for it, also when DNS changes its answer; an
untrusted certificate, or one for another name, fails the attempt, which is recorded and
retried, and delivered once the receiver presents the right certificate.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters import ssrf
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.webhook_sender import WebhookSender, webhook_http_client
from chaingate.entrypoints.runtime import serve
from chaingate.services.dispatch import dispatch_due
from tests.support.gateway import Gateway, MerchantHandle, running_production_gateway
from tests.support.tls import Authority, TlsReceiver
from tests.support.webhook_audit import signature_valid
from tests.support.webhook_receiver import ManualClock

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
NAME, OTHER_NAME = "hooks.shop.test", "pay.shop.test"
PINNED, SECOND = "127.10.0.1", "127.10.0.2"
INTERNAL = "127.10.0.0/30"  # the operator's allow-list: 127.10.0.0-3, no other loopback address


class Dns:
    """The resolver the URL guard asks: answers from a table the test edits, records questions."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    table = Dns({NAME: [PINNED], OTHER_NAME: [PINNED]})
    monkeypatch.setattr(ssrf, "system_resolver", table)  # read when the guard is built
    return table


@pytest.fixture
def company_ca() -> Authority:
    return Authority.create("Shop Internal CA (throwaway)")


@pytest.fixture
def receiver(company_ca: Authority) -> Iterator[TlsReceiver]:
    stranger = Authority.create("Nobody's CA (throwaway)")
    certificates = {
        "trusted": company_ca.issue(NAME),
        "untrusted": stranger.issue(NAME),  # the right name, from a CA nobody configured
        "other name": company_ca.issue(OTHER_NAME),
    }
    server = TlsReceiver(PINNED, certificates)
    yield server
    server.close()


@pytest.fixture
def second(company_ca: Authority, receiver: TlsReceiver) -> Iterator[TlsReceiver]:
    """A second receiver on the same port at another allowed address."""
    server = TlsReceiver(SECOND, {"trusted": company_ca.issue(NAME)}, port=receiver.port)
    yield server
    server.close()


@pytest.fixture
def clock() -> ManualClock:
    """Stands still until a test moves it: a retry is due exactly when the test says."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def gateway(
    clean_database_url: str, tmp_path: Path, company_ca: Authority, dns: Dns, clock: ManualClock
) -> AsyncIterator[Gateway]:
    bundle = company_ca.write_bundle(tmp_path / "company-ca.pem")
    async with running_production_gateway(
        clean_database_url,
        [NETWORK],
        clock=clock,
        webhook_ca_bundle=bundle,
        webhook_allowed_networks=INTERNAL,
        webhook_timeout_seconds=5.0,
        webhook_retry_base_seconds=1.0,
        webhook_retry_max_seconds=4.0,
    ) as gw:
        yield gw


@pytest.fixture
async def shop(gateway: Gateway) -> MerchantHandle:
    return await gateway.merchant()


async def register(shop: MerchantHandle, url: str) -> tuple[str, str]:
    """A webhook endpoint for invoice.created; its id and signing secret."""
    answer = await shop.post("/v1/webhooks", {"url": url, "events": ["invoice.created"]})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"], answer.json()["secret"]


async def new_event(shop: MerchantHandle) -> str:
    """An invoice, whose invoice.created event is owed to the endpoint; the event id."""
    invoice = await shop.invoice(amount="0.1", currency="ETH", network="anvil")
    [event] = await shop.events(str(invoice["id"]))
    return str(event["id"])


async def deliveries(shop: MerchantHandle, endpoint_id: str) -> list[dict[str, Any]]:
    answer = await shop.get(f"/v1/webhooks/{endpoint_id}/deliveries")
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


SenderFor = Callable[..., Any]


@pytest.fixture
async def sender_for(gateway: Gateway) -> AsyncIterator[SenderFor]:
    """The sender the composition root built from the gateway's settings (the one the
    dispatcher uses), or one built the same way without the CA bundle."""
    clients: list[httpx.AsyncClient] = []

    def make(*, with_bundle: bool = True) -> Any:
        container = gateway.container
        if with_bundle:
            return container.webhook_sender
        http = webhook_http_client(None)
        clients.append(http)
        return WebhookSender(http, container.url_guard, container.settings.webhook_timeout_seconds)

    yield make
    for http in clients:
        await http.aclose()


async def dispatch(gateway: Gateway, sender: Any) -> int:
    c = gateway.container
    return await dispatch_due(c.db, sender, c.secret_box, c.clock, c.settings)


async def test_the_dispatcher_delivers_over_tls_to_the_address_dns_gave(
    gateway: Gateway, shop: MerchantHandle, receiver: TlsReceiver, second: TlsReceiver, dns: Dns
) -> None:
    url = f"https://{NAME}:{receiver.port}/hook"
    endpoint_id, secret = await register(shop, url)
    event_id = await new_event(shop)
    stop = asyncio.Event()
    worker = asyncio.create_task(
        serve(gateway.container, api=False, workers=("dispatcher",), stop=stop)
    )
    try:
        arrived = await asyncio.to_thread(receiver.wait_for_requests, 1, 30.0)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    assert len(arrived) == 1, receiver.connections
    [connection] = receiver.connections
    assert (connection.server_name, connection.local_address) == (NAME, PINNED)
    assert (connection.certificate, connection.handshake_error) == ("trusted", None)
    request = arrived[0]
    assert request.headers["host"] == f"{NAME}:{receiver.port}"
    assert request.event_id == event_id and json.loads(request.body)["id"] == event_id
    assert signature_valid(secret, request.headers["chaingate-signature"], request.body)
    assert not second.connections  # same port, another address: never dialled
    assert dns.asked == [NAME, NAME]  # at registration, and once for the attempt
    [delivery] = await deliveries(shop, endpoint_id)
    assert (delivery["status"], delivery["last_status_code"]) == ("succeeded", 200)


async def test_each_attempt_connects_to_the_address_the_guard_approved(
    gateway: Gateway,
    shop: MerchantHandle,
    receiver: TlsReceiver,
    second: TlsReceiver,
    dns: Dns,
    clock: ManualClock,
    sender_for: SenderFor,
) -> None:
    endpoint_id, _ = await register(shop, f"https://{NAME}:{receiver.port}/hook")
    sender = sender_for()
    dns.table[NAME] = [SECOND]  # DNS now points elsewhere (still an allowed address)
    first_event = await new_event(shop)
    asked = len(dns.asked)
    assert await dispatch(gateway, sender) == 1
    assert len(dns.asked) == asked + 1  # one lookup, by the guard; the connection used its answer
    assert [r.event_id for r in second.requests()] == [first_event]
    assert second.connections[0].local_address == SECOND
    assert receiver.requests() == []

    dns.table[NAME] = ["10.20.30.40"]  # a private address outside the allow-list
    second_event = await new_event(shop)
    assert await dispatch(gateway, sender) == 1
    latest = (await deliveries(shop, endpoint_id))[0]
    assert (latest["event_id"], latest["status"]) == (second_event, "pending")
    assert "refused" in latest["last_error"] and "private" in latest["last_error"]
    assert (len(receiver.connections), len(second.connections)) == (0, 1)  # nothing dialled

    dns.table[NAME] = [PINNED]
    clock.advance(10)  # past the retry's backoff
    assert await dispatch(gateway, sender) == 1
    assert [r.event_id for r in receiver.requests()] == [second_event]
    assert receiver.connections[0].local_address == PINNED
    latest = (await deliveries(shop, endpoint_id))[0]
    assert (latest["status"], latest["attempt_count"]) == ("succeeded", 2)


async def test_an_untrusted_certificate_fails_and_is_retried(
    gateway: Gateway,
    shop: MerchantHandle,
    receiver: TlsReceiver,
    clock: ManualClock,
    sender_for: SenderFor,
) -> None:
    endpoint_id, _ = await register(shop, f"https://{NAME}:{receiver.port}/hook")
    sender = sender_for()
    receiver.serve_as("untrusted")
    event_id = await new_event(shop)
    assert await dispatch(gateway, sender) == 1
    [refused] = receiver.connections
    assert (refused.server_name, refused.certificate, refused.request) == (NAME, "untrusted", None)
    assert refused.handshake_error is not None  # the gateway hung up during the handshake
    [delivery] = await deliveries(shop, endpoint_id)
    assert (delivery["status"], delivery["attempt_count"]) == ("pending", 1)
    assert "CERTIFICATE_VERIFY_FAILED" in delivery["last_error"]
    assert "unable to get local issuer certificate" in delivery["last_error"]
    assert delivery["next_attempt_at"] is not None

    receiver.serve_as("trusted")
    assert await dispatch(gateway, sender) == 0  # not due before its backoff
    clock.advance(10)
    assert await dispatch(gateway, sender) == 1
    assert [r.event_id for r in receiver.requests()] == [event_id]
    [delivery] = await deliveries(shop, endpoint_id)
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 2)
    assert [a["status_code"] for a in delivery["attempts"]] == [None, 200]  # oldest first


async def test_a_certificate_for_another_name_fails_and_is_retried(
    gateway: Gateway,
    shop: MerchantHandle,
    receiver: TlsReceiver,
    clock: ManualClock,
    sender_for: SenderFor,
) -> None:
    # pay.shop.test resolves to the receiver, which shows a certificate for hooks.shop.test.
    endpoint_id, _ = await register(shop, f"https://{OTHER_NAME}:{receiver.port}/hook")
    sender = sender_for()
    event_id = await new_event(shop)
    assert await dispatch(gateway, sender) == 1
    [refused] = receiver.connections
    assert (refused.server_name, refused.certificate, refused.request) == (
        OTHER_NAME,
        "trusted",
        None,
    )
    [delivery] = await deliveries(shop, endpoint_id)
    assert (delivery["status"], delivery["attempt_count"]) == ("pending", 1)
    assert "Hostname mismatch" in delivery["last_error"], delivery["last_error"]

    receiver.serve_as("other name")
    clock.advance(10)
    assert await dispatch(gateway, sender) == 1
    assert [r.event_id for r in receiver.requests()] == [event_id]
    assert receiver.requests()[0].headers["host"] == f"{OTHER_NAME}:{receiver.port}"
    [delivery] = await deliveries(shop, endpoint_id)
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 2)


async def test_the_company_ca_is_trusted_only_through_the_configured_bundle(
    gateway: Gateway,
    shop: MerchantHandle,
    receiver: TlsReceiver,
    clock: ManualClock,
    sender_for: SenderFor,
) -> None:
    endpoint_id, _ = await register(shop, f"https://{NAME}:{receiver.port}/hook")
    await new_event(shop)
    assert await dispatch(gateway, sender_for(with_bundle=False)) == 1
    [delivery] = await deliveries(shop, endpoint_id)
    assert delivery["status"] == "pending"
    assert "unable to get local issuer certificate" in delivery["last_error"]
    clock.advance(10)
    assert await dispatch(gateway, sender_for()) == 1
    assert len(receiver.requests()) == 1
    assert (await deliveries(shop, endpoint_id))[0]["status"] == "succeeded"


async def test_the_allow_list_opens_its_network_and_nothing_else_on_loopback(
    gateway: Gateway, shop: MerchantHandle, receiver: TlsReceiver
) -> None:
    accepted = await shop.post("/v1/webhooks", {"url": f"https://{PINNED}:{receiver.port}/"})
    assert accepted.status_code == 201, accepted.text
    for number, url in enumerate(
        [
            f"https://127.0.0.1:{receiver.port}/",
            f"https://127.10.0.4:{receiver.port}/",  # just outside 127.10.0.0/30
            "http://localhost/",
            "http://[::1]/",
            "http://10.20.30.40/",
            "http://169.254.169.254/",
        ]
    ):
        refused = await shop.post(
            "/v1/webhooks", {"url": url}, **{"Idempotency-Key": f"outside-{number}"}
        )
        assert refused.status_code == 422, f"{url}: {refused.text}"
        assert refused.json()["code"] == "webhook_url_forbidden"
