"""Issue 19: abandoned checkouts never stop a shop from taking Bitcoin payments.

On SQLite and PostgreSQL: invoices always get addresses by default; the wallet reports its run
of unused addresses and the gap limit its wallet app needs; `wallet.gap_warning` goes through
the outbox and webhooks once per threshold (concurrent invoices, a rolled-back invoice and a
restarted process included); EVM wallets have no gap rule. On a real litecoind: 60 unpaid
invoices, a paid 61st that settles, and the exported descriptor imported into a watch-only
wallet that then shows every paid address.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.tables import wallets
from chaingate.domain.errors import Conflict
from chaingate.services.idempotency import Claim, claim
from chaingate.services.invoicing import NewInvoice, create_invoice
from tests.support.dashboard import settle_with_payment
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode

MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
LTC = BUILT_IN[("litecoin", "regtest")]
OFFLINE_LTC = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
)
OFFLINE_EVM = EvmNetworkConfig(name="eth", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
LTC_INVOICE = {"network": "ltc", "currency": "LTC", "amount": "0.01"}
DAY = timedelta(days=1)


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [OFFLINE_LTC, OFFLINE_EVM]) as gw:
        yield gw


async def ltc_wallet(shop: MerchantHandle, account: int = 0, **fields: Any) -> dict[str, Any]:
    key = account_key_from_mnemonic(MNEMONIC, LTC, account=account)
    answer = await shop.post("/v1/wallets", {"network": "ltc", "xpub": key, **fields})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def gap_warnings(shop: MerchantHandle) -> list[dict[str, Any]]:
    return [e for e in await shop.events() if e["type"] == "wallet.gap_warning"]


async def test_concurrent_invoices_all_get_addresses_and_warn_once_per_threshold(
    gateway: Gateway,
) -> None:
    shop = await gateway.merchant(with_wallets=False)
    wallet = await ltc_wallet(shop, gap_limit=5)
    answers = await asyncio.gather(*(shop.post("/v1/invoices", LTC_INVOICE) for _ in range(25)))
    assert [a.status_code for a in answers] == [201] * 25, [a.text for a in answers]
    deriver = BitcoinAddressDeriver(LTC)
    assert {a.json()["address"] for a in answers} == {
        deriver.derive(wallet["xpub"], i) for i in range(25)
    }
    warnings = await gap_warnings(shop)
    # Runs of 6, 11, 16 and 21 unused addresses passed 5, 10, 15 and 20; 25 passes no more.
    assert sorted(w["data"]["threshold"] for w in warnings) == [5, 10, 15, 20]
    assert all(w["data"]["wallet_id"] == wallet["id"] for w in warnings)
    found = (await shop.get(f"/v1/wallets/{wallet['id']}")).json()
    assert found["gap"] == {
        "unused_run": 25,
        "needed_gap_limit": 25,
        "last_paid_index": None,
        "exceeds_gap_limit": True,
    }


async def test_a_rolled_back_invoice_warns_nothing_and_a_restart_warns_nothing_twice(
    clean_database_url: str,
) -> None:
    async with running_gateway(clean_database_url, [OFFLINE_LTC]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        wallet = await ltc_wallet(shop, gap_limit=3)
        for _ in range(3):
            await shop.invoice(**LTC_INVOICE)
        # The 4th invoice crosses the threshold but its transaction fails at its very end: a
        # retry took its Idempotency-Key over, so completing it raises and all rolls back.
        db, now = gateway.container.db, gateway.container.clock.now()
        slow = await claim(db, shop.merchant_id, "k", "h", now - timedelta(minutes=5), DAY)
        await claim(db, shop.merchant_id, "k", "h", now, DAY)
        assert isinstance(slow, Claim)
        request = NewInvoice(merchant_id=shop.merchant_id, **LTC_INVOICE)
        async with db.uow() as uow:
            with pytest.raises(Conflict):
                await create_invoice(uow, request, gateway.container.invoice_context, now, slow)
        assert await gap_warnings(shop) == []
        async with db.engine.connect() as conn:
            marker = (await conn.execute(select(wallets.c.gap_warned_threshold))).scalar_one()
        assert marker == 0

        fourth = await shop.invoice(**LTC_INVOICE)
        warned = await gap_warnings(shop)
        assert [(w["data"]["threshold"], w["data"]["invoice_id"]) for w in warned] == [
            (3, fourth["id"])
        ]

    # A restarted process on the same database remembers what it warned about.
    async with running_gateway(clean_database_url, [OFFLINE_LTC]) as restarted:
        again = MerchantHandle(shop.merchant_id, shop.api_key, restarted.client)
        for _ in range(2):  # runs of 5 and 6: still past 3 only
            await again.invoice(**LTC_INVOICE)
        assert len(await gap_warnings(again)) == 1
        await again.invoice(**LTC_INVOICE)  # a run of 7 passes 6
        assert [w["data"]["threshold"] for w in await gap_warnings(again)] == [3, 6]
        found = (await again.get(f"/v1/wallets/{wallet['id']}")).json()
        assert found["gap"]["unused_run"] == 7


async def test_a_payment_starts_a_new_run_and_evm_wallets_never_warn(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    wallet = await ltc_wallet(shop, gap_limit=2)
    evm_key = account_xpub_from_mnemonic(MNEMONIC)
    evm = await shop.post("/v1/wallets", {"network": "eth", "xpub": evm_key, "gap_limit": 2})
    assert evm.status_code == 201, evm.text
    assert (evm.json()["gap"], evm.json()["warnings"]) == (None, [])

    made = [await shop.invoice(**LTC_INVOICE) for _ in range(3)]
    await settle_with_payment(
        gateway.container.db, str(made[2]["id"]), 10**6, gateway.container.clock.now()
    )
    for _ in range(3):
        await shop.invoice(**LTC_INVOICE)
    for _ in range(10):
        await shop.invoice(network="eth", currency="ETH", amount="1")

    warned = await gap_warnings(shop)
    assert [(w["data"]["threshold"], w["data"]["network"]) for w in warned] == [
        (2, "ltc"),
        (2, "ltc"),  # the run after the paid index 2 passed 2 again: news again
    ]
    assert [w["data"]["next_index"] for w in warned] == [3, 6]
    found = (await shop.get(f"/v1/wallets/{wallet['id']}")).json()
    assert found["gap"] == {
        "unused_run": 3,
        "needed_gap_limit": 3,
        "last_paid_index": 2,
        "exceeds_gap_limit": True,
    }
    evm_found = (await shop.get(f"/v1/wallets/{evm.json()['id']}")).json()
    assert (evm_found["gap"], evm_found["warnings"], evm_found["next_index"]) == (None, [], 10)
    descriptor = await shop.get(f"/v1/wallets/{evm.json()['id']}/descriptor")
    assert (descriptor.status_code, descriptor.json()["code"]) == (404, "descriptor_not_available")


async def test_wallet_answers_and_descriptor_with_origin(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    origin = "d34db33f/84h/1h/0h"
    wallet = await ltc_wallet(shop, key_origin="D34DB33F/84'/1'/0'")
    assert (wallet["key_origin"], wallet["on_gap"], wallet["status"]) == (origin, "warn", "active")
    assert wallet["gap"] == {
        "unused_run": 0,
        "needed_gap_limit": 0,
        "last_paid_index": None,
        "exceeds_gap_limit": False,
    }
    for _ in range(3):
        await shop.invoice(**LTC_INVOICE)
    answer = (await shop.get(f"/v1/wallets/{wallet['id']}/descriptor")).json()
    assert answer["descriptor"].startswith(f"wpkh([{origin}]{wallet['xpub']}/0/*)#")
    assert answer["descriptor"].endswith("#" + answer["checksum"])
    assert (answer["range"], answer["addresses_handed_out"], answer["origin_known"]) == (
        [0, 2],
        3,
        True,
    )
    other = await gateway.merchant("Other", with_wallets=False)
    wrong = await other.post(
        "/v1/wallets",
        {
            "network": "ltc",
            "xpub": account_key_from_mnemonic(MNEMONIC, LTC, account=1),
            "key_origin": "d34db33f/84h/1h/0h",  # the key is account 1h
        },
    )
    assert (wrong.status_code, wrong.json()["code"]) == (422, "key_origin_mismatch")
    bad_policy = await other.post(
        "/v1/wallets",
        {"network": "ltc", "xpub": account_key_from_mnemonic(MNEMONIC, LTC), "on_gap": "stop"},
    )
    assert bad_policy.status_code == 422


async def test_sixty_abandoned_checkouts_then_a_paid_one_on_litecoind(
    clean_database_url: str, litecoind_isolated: LitecoindNode
) -> None:
    node = litecoind_isolated
    async with running_gateway(clean_database_url, [node.network(name="ltc")]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        hook = await shop.post(
            "/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["wallet.gap_warning"]}
        )
        assert hook.status_code == 201, hook.text
        wallet = await ltc_wallet(shop, account=31)  # defaults: gap limit 20, on_gap warn
        await gateway.sync("ltc")

        abandoned = [await shop.invoice(**LTC_INVOICE) for _ in range(60)]
        assert len({i["address"] for i in abandoned}) == 60
        warned = await gap_warnings(shop)
        assert [(w["data"]["threshold"], w["data"]["invoice_id"]) for w in warned] == [
            (20, abandoned[20]["id"]),
            (40, abandoned[40]["id"]),
        ]
        assert warned[0]["data"] == {
            "wallet_id": wallet["id"],
            "network": "ltc",
            "threshold": 20,
            "unused_run": 21,
            "gap_limit": 20,
            "on_gap": "warn",
            "next_index": 21,
            "invoice_id": abandoned[20]["id"],
        }
        found = (await shop.get(f"/v1/wallets/{wallet['id']}")).json()
        assert (found["gap"]["unused_run"], found["gap"]["needed_gap_limit"]) == (60, 60)
        assert "gap_limit_exceeded" in [w["code"] for w in found["warnings"]]

        paid = await shop.invoice(network="ltc", currency="LTC", amount="0.02")
        await node.pay(paid["address"], 2_000_000)
        await node.mine(1)
        await gateway.sync("ltc")
        assert (await shop.fetch(paid["id"]))["status"] == "settled"
        assert [w["data"]["threshold"] for w in await gap_warnings(shop)] == [20, 40, 60]
        found = (await shop.get(f"/v1/wallets/{wallet['id']}")).json()
        # Nothing unused now, but a wallet app needs gap limit 61 to find index 60.
        assert found["gap"] == {
            "unused_run": 0,
            "needed_gap_limit": 61,
            "last_paid_index": 60,
            "exceeds_gap_limit": True,
        }
        deliveries = (await shop.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")).json()
        event_ids = {w["id"] for w in await gap_warnings(shop)}
        assert {d["event_id"] for d in deliveries["data"]} == event_ids  # one delivery each

        # Two of the abandoned checkouts are paid after all; then the merchant's wallet app
        # imports the descriptor.
        late = [abandoned[7], abandoned[33]]
        for invoice in late:
            await node.pay(invoice["address"], 1_000_000)
        await node.mine(1)
        await gateway.sync("ltc")
        assert [(await shop.fetch(i["id"]))["status"] for i in late] == ["settled"] * 2

        exported = (await shop.get(f"/v1/wallets/{wallet['id']}/descriptor")).json()
        assert exported["range"] == [0, 60]
        info = await node.rpc("getdescriptorinfo", exported["descriptor"].split("#")[0])
        assert info["checksum"] == exported["checksum"]
        handed_out = [i["address"] for i in [*abandoned, paid]]
        assert await node.rpc("deriveaddresses", exported["descriptor"], exported["range"]) == (
            handed_out
        )
        # This litecoind has legacy wallets only: importmulti takes a ranged descriptor there.
        await node.rpc("createwallet", "watch", True, True, "", False, False)
        imported = await node.rpc(
            "importmulti",
            [
                {
                    "desc": exported["descriptor"],
                    "range": exported["range"],
                    "timestamp": exported["timestamp"],
                    "watchonly": True,
                }
            ],
            {"rescan": True},
            wallet="watch",
        )
        assert [entry["success"] for entry in imported] == [True]
        received = await node.rpc("listreceivedbyaddress", 1, False, True, wallet="watch")
        assert {r["address"]: r["amount"] for r in received} == {
            paid["address"]: Decimal("0.02"),
            abandoned[7]["address"]: Decimal("0.01"),
            abandoned[33]["address"]: Decimal("0.01"),
        }
