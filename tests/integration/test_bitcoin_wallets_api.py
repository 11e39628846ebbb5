"""Bitcoin-family wallets over the HTTP API: address types, the gap-limit warning, PATCH, and
with `on_gap: refuse` invoices refused at the gap limit until a payment (from a real litecoind)
uses an address — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.config import TokenConfig
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode

MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
LTC = BUILT_IN[("litecoin", "regtest")]
VPUB = account_key_from_mnemonic(MNEMONIC, LTC, "p2wpkh")
UPUB = account_key_from_mnemonic(MNEMONIC, LTC, "p2sh-p2wpkh", account=1)
TAPROOT = account_key_from_mnemonic(MNEMONIC, LTC, "p2tr", account=2)
OFFLINE = BitcoinNetworkConfig(
    name="ltc",
    kind="bitcoin",
    chain="litecoin",
    chain_network="regtest",
    rpc_urls=["http://127.0.0.1:9"],
)


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [OFFLINE]) as gw:
        yield gw


async def patch(shop: MerchantHandle, path: str, body: Any) -> Any:
    return await shop.client.patch(
        path, json=body, headers={"Authorization": f"Bearer {shop.api_key}"}
    )


async def test_p2wpkh_wallet_with_gap_warning_and_bip21_invoice(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    answer = await shop.post("/v1/wallets", {"network": "ltc", "xpub": VPUB})
    assert answer.status_code == 201, answer.text
    wallet = answer.json()
    assert (wallet["address_type"], wallet["gap_limit"]) == ("p2wpkh", 20)
    assert wallet["xpub"].startswith("tpub")  # stored in the plain version
    assert [w["code"] for w in wallet["warnings"]] == ["gap_limit"]
    assert "Electrum" in wallet["warnings"][0]["detail"]

    invoice = await shop.invoice(network="ltc", currency="LTC", amount="0.015")
    assert invoice["address"] == BitcoinAddressDeriver(LTC).derive(VPUB, 0)
    assert invoice["payment_uri"] == f"litecoin:{invoice['address']}?amount=0.015"
    assert invoice["chain_id"] is None
    assert invoice["amount_due"] == "0.015"


async def test_address_type_from_the_key_version_or_the_request(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    nested = await shop.post("/v1/wallets", {"network": "ltc", "xpub": UPUB})
    assert nested.json()["address_type"] == "p2sh-p2wpkh", nested.text
    invoice = await shop.invoice(network="ltc", currency="LTC", amount="1")
    assert invoice["address"].startswith("Q")  # Litecoin test-network P2SH (version 0x3a)

    other = await gateway.merchant("Other", with_wallets=False)
    taproot = await other.post(
        "/v1/wallets", {"network": "ltc", "xpub": TAPROOT, "address_type": "p2tr"}
    )
    assert taproot.json()["address_type"] == "p2tr", taproot.text
    assert (await other.invoice(network="ltc", currency="LTC", amount="1"))["address"].startswith(
        "rltc1p"
    )


async def test_wallet_input_errors_are_problems(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    mismatch = await shop.post(
        "/v1/wallets", {"network": "ltc", "xpub": VPUB, "address_type": "p2tr"}
    )
    assert (mismatch.status_code, mismatch.json()["code"]) == (422, "address_type_mismatch")
    mainnet_key = account_key_from_mnemonic(MNEMONIC, BUILT_IN[("litecoin", "mainnet")])
    wrong = await shop.post("/v1/wallets", {"network": "ltc", "xpub": mainnet_key})
    assert (wrong.status_code, wrong.json()["code"]) == (422, "wrong_network_key")
    for gap in (0, 1001, "20"):
        bad = await shop.post("/v1/wallets", {"network": "ltc", "xpub": VPUB, "gap_limit": gap})
        assert bad.status_code in (400, 422), bad.text
    assert (await shop.get("/v1/wallets")).json() == []


async def test_on_gap_refuse_keeps_the_409_and_patch_raises_the_limit(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    created = await shop.post(
        "/v1/wallets", {"network": "ltc", "xpub": VPUB, "gap_limit": 3, "on_gap": "refuse"}
    )
    assert created.json()["on_gap"] == "refuse", created.text
    wallet_id = created.json()["id"]
    for _ in range(3):
        await shop.invoice(network="ltc", currency="LTC", amount="1")
    refused = await shop.post("/v1/invoices", {"network": "ltc", "currency": "LTC", "amount": "1"})
    assert (refused.status_code, refused.json()["code"]) == (409, "gap_limit_reached")
    assert (await shop.get("/v1/wallets")).json()[0]["next_index"] == 3  # index given back

    other = await gateway.merchant("Other", with_wallets=False)
    assert (await patch(other, f"/v1/wallets/{wallet_id}", {"gap_limit": 50})).status_code == 404
    raised = await patch(shop, f"/v1/wallets/{wallet_id}", {"gap_limit": 4})
    assert raised.status_code == 200, raised.text
    assert raised.json()["gap_limit"] == 4
    await shop.invoice(network="ltc", currency="LTC", amount="1")
    again = await shop.post("/v1/invoices", {"network": "ltc", "currency": "LTC", "amount": "1"})
    assert again.status_code == 409
    bad = await patch(shop, f"/v1/wallets/{wallet_id}", {"gap_limit": 0})
    assert bad.status_code in (400, 422)
    # Back to the default policy: the next invoice gets its address, and the wallet says what
    # gap limit a wallet app now needs.
    warn = await patch(shop, f"/v1/wallets/{wallet_id}", {"on_gap": "warn"})
    assert (warn.json()["on_gap"], warn.json()["gap_limit"]) == ("warn", 4), warn.text
    await shop.invoice(network="ltc", currency="LTC", amount="1")
    wallet = (await shop.get(f"/v1/wallets/{wallet_id}")).json()
    assert wallet["gap"] == {
        "unused_run": 5,
        "needed_gap_limit": 5,
        "last_paid_index": None,
        "exceeds_gap_limit": True,
    }
    assert [w["code"] for w in wallet["warnings"]] == ["gap_limit", "gap_limit_exceeded"]


async def test_a_payment_reopens_the_gap(clean_database_url: str, litecoind: LitecoindNode) -> None:
    network = litecoind.network(name="ltc")
    async with running_gateway(clean_database_url, [network]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        key = account_key_from_mnemonic(MNEMONIC, LTC, account=7)
        created = await shop.post(
            "/v1/wallets", {"network": "ltc", "xpub": key, "gap_limit": 2, "on_gap": "refuse"}
        )
        assert created.status_code == 201, created.text
        await gateway.sync("ltc")
        await shop.invoice(network="ltc", currency="LTC", amount="0.01")
        second = await shop.invoice(network="ltc", currency="LTC", amount="0.01")
        refused = await shop.post(
            "/v1/invoices", {"network": "ltc", "currency": "LTC", "amount": "0.01"}
        )
        assert refused.status_code == 409

        await litecoind.pay(second["address"], 1_000_000)
        await litecoind.mine(1)
        await gateway.sync("ltc")
        assert (await shop.fetch(second["id"]))["status"] == "settled"
        for _ in range(2):  # indexes 2 and 3: the gap after the paid index 1
            await shop.invoice(network="ltc", currency="LTC", amount="0.01")
        refused = await shop.post(
            "/v1/invoices", {"network": "ltc", "currency": "LTC", "amount": "0.01"}
        )
        assert refused.status_code == 409


async def test_networks_answer_names_each_networks_family(clean_database_url: str) -> None:
    usdt = TokenConfig(symbol="USDT", contract="0x" + "AB" * 20, decimals=6)
    eth = EvmNetworkConfig(
        name="eth", chain_id=31337, rpc_urls=["http://127.0.0.1:9"], tokens=[usdt]
    )
    async with running_gateway(clean_database_url, [eth, OFFLINE]) as gateway:
        answer = await gateway.client.get("/v1/networks")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "data": [
            {
                "name": "eth",
                "kind": "evm",
                "chain_id": 31337,
                "required_confirmations": 12,
                "assets": [
                    {"code": "ETH", "decimals": 18, "contract": None},
                    {"code": "USDT", "decimals": 6, "contract": "0x" + "ab" * 20},
                ],
            },
            {
                "name": "ltc",
                "kind": "bitcoin",
                "chain_id": None,
                "required_confirmations": 1,
                "assets": [{"code": "LTC", "decimals": 8, "contract": None}],
            },
        ]
    }
