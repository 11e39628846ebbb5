"""Issue 11 item 9: a wallet is its key material, not its serialization — on SQLite and
PostgreSQL, with signatures made by real nodes (litecoind `signmessagewithprivkey`, anvil
`personal_sign`).

- The same xpub with another parent fingerprint and child number is found "in use".
- A squatter who registered someone's key first gives way to the merchant who proves control
  of it: the squatter's wallet hands out no more addresses, the owner continues after every
  index the squatter used, and nobody gets an address twice.
- An address that is somehow taken answers 409 `address_in_use`, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from embit import base58, bip32, bip39

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver, account_xpub_from_mnemonic
from chaingate.domain.ids import new_id
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus
from chaingate.domain.models import Invoice
from tests.support.anvil import ANVIL_MNEMONIC, AnvilNode
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode

OWNER_MNEMONIC = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
LTC = BUILT_IN[("litecoin", "regtest")]
OFFLINE_LTC = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
)
OFFLINE_EVM = EvmNetworkConfig(name="eth", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
LTC_INVOICE = {"network": "ltc", "currency": "LTC", "amount": "0.01"}
EVM_INVOICE = {"network": "eth", "currency": "ETH", "amount": "1"}


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [OFFLINE_LTC, OFFLINE_EVM]) as gw:
        yield gw


def disguised(extended_key: str) -> str:
    """The same key material under another parent fingerprint and (hardened) child number."""
    raw = base58.decode_check(extended_key)
    other = raw[:5] + b"\xde\xad\xbe\xef" + (2**31 + 99).to_bytes(4, "big") + raw[13:]
    return str(base58.encode_check(other))


def litecoin_wif(mnemonic: str, path: str) -> str:
    key = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic)).derive(path).key
    return str(key.wif(network={"wif": b"\xef"}))  # Litecoin test networks' WIF prefix


async def register(shop: MerchantHandle, network: str, key: str, **fields: Any) -> Any:
    return await shop.post("/v1/wallets", {"network": network, "xpub": key, **fields})


@pytest.mark.parametrize(
    ("network", "key"),
    [
        ("ltc", account_key_from_mnemonic(OWNER_MNEMONIC, LTC)),
        ("eth", account_xpub_from_mnemonic(OWNER_MNEMONIC)),
    ],
)
async def test_the_same_key_in_another_serialization_is_in_use(
    gateway: Gateway, network: str, key: str
) -> None:
    first = await gateway.merchant("First", with_wallets=False)
    second = await gateway.merchant("Second", with_wallets=False)
    assert (await register(first, network, key)).status_code == 201
    again = await register(second, network, disguised(key))
    assert (again.status_code, again.json()["code"]) == (409, "wallet_key_in_use"), again.text
    deriver = (
        BitcoinAddressDeriver(LTC) if network == "ltc" else EvmAddressDeriver()
    )  # the address whose key signs a claim: .../0/0
    assert again.json()["claim"]["address"] == deriver.derive(key, 0)
    assert second.merchant_id in again.json()["claim"]["message"]
    assert (await second.get("/v1/wallets")).json() == []
    # The holder's invoices go on as before.
    body = LTC_INVOICE if network == "ltc" else EVM_INVOICE
    assert (await first.post("/v1/invoices", body)).status_code == 201


async def test_a_bitcoin_squatter_gives_way_to_the_proven_owner(
    gateway: Gateway, litecoind: LitecoindNode
) -> None:
    key = account_key_from_mnemonic(OWNER_MNEMONIC, LTC)  # the owner's m/84'/1'/0'
    squatter = await gateway.merchant("Squatter", with_wallets=False)
    owner = await gateway.merchant("Owner", with_wallets=False)
    squatted = await register(squatter, "ltc", key)
    assert squatted.status_code == 201, squatted.text
    squatter_invoices = [await squatter.invoice(**LTC_INVOICE) for _ in range(2)]

    refused = await register(owner, "ltc", disguised(key))
    assert refused.status_code == 409, refused.text
    message = refused.json()["claim"]["message"]
    wif = litecoin_wif(OWNER_MNEMONIC, "m/84h/1h/0h/0/0")
    proof = await litecoind.rpc("signmessagewithprivkey", wif, message)

    # Proofs that prove nothing: another key's signature; the owner's signature of a message
    # naming someone else.
    other_wif = litecoin_wif(OWNER_MNEMONIC, "m/84h/1h/0h/0/1")
    wrong_key = await litecoind.rpc("signmessagewithprivkey", other_wif, message)
    wrong_message = await litecoind.rpc(
        "signmessagewithprivkey", wif, message.replace(owner.merchant_id, squatter.merchant_id)
    )
    for forged in (wrong_key, wrong_message, "bm90IGEgc2lnbmF0dXJl"):
        answer = await register(owner, "ltc", disguised(key), ownership_proof=forged)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_ownership_proof")

    claimed = await register(owner, "ltc", disguised(key), ownership_proof=proof)
    assert claimed.status_code == 201, claimed.text
    assert (claimed.json()["status"], claimed.json()["next_index"]) == ("active", 2)
    invoice = await owner.invoice(**LTC_INVOICE)
    deriver = BitcoinAddressDeriver(LTC)
    assert invoice["address"] == deriver.derive(key, 2)  # after every address the squatter used
    assert invoice["address"] not in {i["address"] for i in squatter_invoices}

    blocked = await squatter.post("/v1/invoices", LTC_INVOICE)
    assert (blocked.status_code, blocked.json()["code"]) == (409, "wallet_key_released")
    squatter_wallet = (await squatter.get(f"/v1/wallets/{squatted.json()['id']}")).json()
    assert squatter_wallet["status"] == "released"
    assert "key_released" in [w["code"] for w in squatter_wallet["warnings"]]
    told = [e for e in await squatter.events() if e["type"] == "wallet.key_claimed"]
    assert [e["data"]["wallet"]["id"] for e in told] == [squatted.json()["id"]]
    # The squatter cannot take the key back: the owner's proof names the owner.
    back = await squatter.post(
        f"/v1/wallets/{squatted.json()['id']}/claim", {"ownership_proof": proof}
    )
    assert (back.status_code, back.json()["code"]) == (422, "invalid_ownership_proof")
    unproven = await squatter.post(f"/v1/wallets/{squatted.json()['id']}/claim", {})
    assert (unproven.status_code, unproven.json()["code"]) == (409, "wallet_key_in_use")
    assert squatter.merchant_id in unproven.json()["claim"]["message"]
    assert (await owner.post("/v1/invoices", LTC_INVOICE)).status_code == 201


async def test_an_evm_squatter_gives_way_to_the_proven_owner(
    gateway: Gateway, anvil: AnvilNode
) -> None:
    key = account_xpub_from_mnemonic(ANVIL_MNEMONIC)  # .../0/0 is anvil's unlocked account 0
    squatter = await gateway.merchant("Squatter", with_wallets=False)
    owner = await gateway.merchant("Owner", with_wallets=False)
    assert (await register(squatter, "eth", key)).status_code == 201
    await squatter.invoice(**EVM_INVOICE)
    refused = await register(owner, "eth", key)  # the very xpub the squatter copied
    claim = refused.json()["claim"]
    proof = await anvil.rpc(
        "personal_sign", "0x" + claim["message"].encode().hex(), claim["address"]
    )
    claimed = await register(owner, "eth", key, ownership_proof=proof)
    assert (claimed.status_code, claimed.json()["next_index"]) == (201, 1), claimed.text
    invoice = await owner.invoice(**EVM_INVOICE)
    assert invoice["address"] == EvmAddressDeriver().derive(key, 1)
    blocked = await squatter.post("/v1/invoices", EVM_INVOICE)
    assert (blocked.status_code, blocked.json()["code"]) == (409, "wallet_key_released")


async def test_a_taken_address_is_a_409_not_a_500(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    other = await gateway.merchant("Other", with_wallets=False)
    key = account_key_from_mnemonic(OWNER_MNEMONIC, LTC)
    assert (await register(shop, "ltc", key)).status_code == 201
    other_wallet = await register(
        other, "ltc", account_key_from_mnemonic(OWNER_MNEMONIC, LTC, account=1)
    )
    # An invoice of another wallet already holds the address this wallet derives next (a key
    # shared outside the gateway's knowledge, or rows from before key identities).
    now = datetime.now(UTC)
    async with gateway.container.db.uow() as uow:
        await uow.invoices.add(
            Invoice(
                id=new_id("inv"),
                merchant_id=other.merchant_id,
                network="ltc",
                asset="LTC",
                amount_due=10**6,
                amount_paid=0,
                status=InvoiceStatus.NEW,
                additional_status=AdditionalStatus.NONE,
                address=BitcoinAddressDeriver(LTC).derive(key, 0),
                wallet_id=other_wallet.json()["id"],
                derivation_index=999,
                order_id=None,
                metadata={},
                required_confirmations=1,
                tolerance_bps=0,
                expires_at=now + timedelta(hours=1),
                watch_until=now + timedelta(hours=2),
                created_at=now,
                updated_at=now,
            )
        )
        await uow.commit()
    answer = await shop.post("/v1/invoices", LTC_INVOICE)
    assert (answer.status_code, answer.json()["code"]) == (409, "address_in_use"), answer.text
    assert answer.headers["content-type"] == "application/problem+json"
