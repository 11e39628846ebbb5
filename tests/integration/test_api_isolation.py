"""Every route that takes an id answers 404 to another merchant, and changes nothing.

The routes are read from the app's own route table, so a route added later is covered (or
fails here until the test knows what kind of id its path takes).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.tables import metadata
from chaingate.entrypoints.api.app import create_app
from tests.support.gateway import MERCHANT_MNEMONICS, Gateway, MerchantHandle, running_gateway

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
# A Bitcoin-family wallet is the one every wallet route serves (the descriptor route has
# nothing to answer for an EVM wallet).
LTC = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
)
# A body each write route accepts from its owner, so a refusal can only be about ownership.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/webhooks/{endpoint_id}"): {
        "description": "taken over",
        "events": ["invoice.settled"],
    },
    ("PATCH", "/v1/wallets/{wallet_id}"): {"gap_limit": 50},
    ("POST", "/v1/wallets/{wallet_id}/claim"): {},  # the owner holds its key: answered as is
}


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [NETWORK, LTC]) as gw:
        yield gw


async def owned_ids(shop: MerchantHandle, number: int) -> dict[str, str]:
    """A wallet, an invoice, a webhook endpoint and a delivery to it, a treasury address,
    owned by `shop` (the
    `number`th merchant: each gets keys of its own)."""
    evm_key = account_xpub_from_mnemonic(MERCHANT_MNEMONICS[number])
    ltc_key = account_key_from_mnemonic(
        MERCHANT_MNEMONICS[number], BUILT_IN[("litecoin", "regtest")]
    )
    for network, key in (("anvil", evm_key), ("ltc", ltc_key)):
        wallet = await shop.post("/v1/wallets", {"network": network, "xpub": key})
        assert wallet.status_code == 201, wallet.text
    hook = await shop.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    invoice = await shop.invoice(amount="1", currency="ETH", network="anvil")
    endpoint_id = hook.json()["id"]
    deliveries = (await shop.get(f"/v1/webhooks/{endpoint_id}/deliveries")).json()["data"]
    assert len(deliveries) == 1  # invoice.created, fanned out to the endpoint
    wallets = {w["network"]: w for w in (await shop.get("/v1/wallets")).json()}
    assert set(wallets) == {"anvil", "ltc"}
    cold = f"0x{number + 1:02x}" + "c0" * 19  # watch-only: needs no signer
    entry = await shop.post("/v1/treasury", {"network": "anvil", "role": "cold", "address": cold})
    assert entry.status_code == 201, entry.text
    return {
        "entry_id": entry.json()["id"],
        "wallet_id": wallets["ltc"]["id"],
        "invoice_id": invoice["id"],
        "endpoint_id": endpoint_id,
        "delivery_id": deliveries[0]["id"],
    }


def id_routes(gateway: Gateway) -> list[tuple[str, str]]:
    """(method, path template) of every route whose path carries a parameter."""
    # iter_route_contexts sees through included routers, as the OpenAPI generator does.
    found = [
        (method, route.path)
        for route in iter_route_contexts(create_app(gateway.container).routes)
        if isinstance(route.original_route, APIRoute)
        and "{" in (route.path or "")
        # The hosted checkout (/i/{invoice_id}) is public by design, no key: what it reveals is
        # tested in tests/integration/test_checkout_page.py.
        and not (route.path or "").startswith("/i/")
        for method in sorted(route.methods or ())
    ]
    assert len(found) >= 7, found  # the table was read, not an empty list
    return found


def fill(template: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"{template}: no test resource for path parameter {name!r}"
        return ids[name]

    return re.sub(r"\{(\w+)\}", one, template)


async def call(shop: MerchantHandle, method: str, template: str, ids: dict[str, str]) -> Any:
    return await shop.client.request(
        method,
        fill(template, ids),
        json=BODIES.get((method, template)),
        headers={"Authorization": f"Bearer {shop.api_key}"},
    )


async def snapshot(gateway: Gateway) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    rows = {}
    async with gateway.container.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(select(table))
            rows[table.name] = sorted((tuple(row) for row in result), key=repr)
    return rows


def assert_not_found(answer: httpx.Response, what: str) -> None:
    assert answer.status_code == 404, f"{what}: {answer.status_code} {answer.text}"
    assert answer.headers["content-type"] == "application/problem+json", what
    assert answer.json()["code"] == "not_found", what
    # The answer must not echo the owner's data.
    assert "127.0.0.1:9/hook" not in answer.text, what


async def test_every_id_route_answers_404_to_another_merchant(gateway: Gateway) -> None:
    alice = await gateway.merchant("Alice", with_wallets=False)
    bob = await gateway.merchant("Bob", with_wallets=False)
    alices = await owned_ids(alice, 0)
    bobs = await owned_ids(bob, 1)
    routes = id_routes(gateway)
    before = await snapshot(gateway)

    for method, template in routes:
        # Bob with Alice's ids, then each of Bob's own ids mixed into Alice's: a route must check
        # every id it is given, not only the last one it looks up.
        attempts = [alices]
        names = re.findall(r"\{(\w+)\}", template)
        if len(names) > 1:
            attempts += [{**alices, name: bobs[name]} for name in names]
        for ids in attempts:
            answer = await call(bob, method, template, ids)
            assert_not_found(answer, f"Bob {method} {fill(template, ids)}")

    assert await snapshot(gateway) == before

    # Control: the same requests from the owner succeed, so the 404s above were about ownership.
    for method, template in sorted(routes, key=lambda r: r[0] == "DELETE"):
        answer = await call(alice, method, template, alices)
        assert 200 <= answer.status_code < 300, f"Alice {method} {template}: {answer.text}"


async def test_lists_filtered_by_another_merchants_ids_are_empty(gateway: Gateway) -> None:
    alice = await gateway.merchant("Alice", with_wallets=False)
    bob = await gateway.merchant("Bob", with_wallets=False)
    alices = await owned_ids(alice, 0)
    await owned_ids(bob, 1)
    events = await bob.get("/v1/events", invoice_id=alices["invoice_id"])
    assert (events.status_code, events.json()["data"]) == (200, [])
    # Alice's id as Bob's page cursor shows Bob only his own invoices.
    page = await bob.get("/v1/invoices", starting_after=alices["invoice_id"])
    assert page.status_code == 200
    assert alices["invoice_id"] not in page.text
    assert all(i["id"] != alices["invoice_id"] for i in page.json()["data"])
