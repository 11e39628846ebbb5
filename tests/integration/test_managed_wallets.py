"""Managed wallets and treasury addresses over the HTTP API, with a real `chaingate signer`
process behind the socket — on SQLite and PostgreSQL.

The gateway stores only xpubs, addresses and key refs; invoices on a managed wallet pay to
addresses the signer can sign for (checked by unlocking the signer's keystore in the test).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.domain.custody import KeyRef
from chaingate.signer.audit import read_lines
from chaingate.signer.families.bitcoin import BitcoinSignerFamily
from chaingate.signer.families.evm import eth_address
from chaingate.signer.keystores.file import FileKeyStore
from chaingate.signer.policy import load_policy
from chaingate.signer.throwaway import (
    THROWAWAY_PASSPHRASE,
    ThrowawaySigner,
    create_throwaway_signer,
)
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.signer import SignerProcess, evm_policy, ltc_policy

OFFLINE = "http://127.0.0.1:9"  # wallets and invoices need no node
ETH_NET = EvmNetworkConfig(
    name="eth",
    chain_id=31337,
    rpc_urls=[OFFLINE],
    native_symbol="ETH",
    native_decimals=18,
    required_confirmations=1,
)
LTC_NET = BitcoinNetworkConfig(
    name="ltc", kind="bitcoin", chain="litecoin", chain_network="regtest", rpc_urls=[OFFLINE]
)
COLD_ETH = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector (all caps part)
WATCH_XPUB = (
    "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkud"
    "hUd9yLb6qx39T9nMdj"
)


@dataclass
class Setup:
    gateway: Gateway
    signer: SignerProcess
    state: ThrowawaySigner

    def signer_address(self, ref: KeyRef, network: str = "eth") -> str:
        store = FileKeyStore.unlock(self.state.keystore, THROWAWAY_PASSPHRASE)
        public = store.public_key(ref)
        if network == "eth":
            return eth_address(public)
        policy = load_policy(self.state.policy).networks["ltc"]
        return BitcoinSignerFamily().address(policy, public, "p2wpkh")

    def audit(self, decision: str) -> int:
        lines = read_lines(self.state.state_dir / "audit.jsonl")
        return sum(1 for line in lines if line["decision"] == decision)


@pytest.fixture(scope="module")
def shared_signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignerProcess]:
    """One signer for the module (starting one costs seconds): every test makes merchants of
    its own, and the signer's accounts are per merchant."""
    directory = tmp_path_factory.mktemp("managed") / "signer"
    state = create_throwaway_signer(directory, {"eth": evm_policy(31337), "ltc": ltc_policy()})
    process = SignerProcess(state).start()
    yield process
    process.stop()


@pytest.fixture
async def setup(clean_database_url: str, shared_signer: SignerProcess) -> AsyncIterator[Setup]:
    process, state = shared_signer, shared_signer.state
    if process.process is None or process.process.poll() is not None:
        process.start()  # a test that stopped it failed before starting it again
    async with running_gateway(
        clean_database_url,
        [ETH_NET, LTC_NET],
        signer_socket=state.socket,
        signer_token_file=state.token_file,
    ) as gateway:
        yield Setup(gateway, process, state)


async def _merchant(setup: Setup, name: str = "Shop") -> MerchantHandle:
    return await setup.gateway.merchant(name, with_wallets=False)


async def test_a_managed_evm_wallet_derives_invoices_the_signer_can_sign_for(setup: Setup) -> None:
    shop = await _merchant(setup)
    answer = await shop.post(
        "/v1/wallets", {"network": "eth", "custody": "managed"}, **{"Idempotency-Key": "w-1"}
    )
    assert answer.status_code == 201, answer.text
    wallet = answer.json()
    assert wallet["custody"] == "managed"
    assert re.fullmatch(r"file:1:m/44'/60'/[0-9]+'", wallet["key_ref"])
    assert wallet["xpub"].startswith("xpub")
    replay = await shop.post(
        "/v1/wallets", {"network": "eth", "custody": "managed"}, **{"Idempotency-Key": "w-1"}
    )
    assert replay.json() == wallet and replay.headers["Idempotent-Replayed"] == "true"
    account = KeyRef.parse(wallet["key_ref"])
    for index in range(3):
        invoice = await shop.invoice(amount="0.1", currency="ETH", network="eth")
        assert invoice["address"] == setup.signer_address(account.child(0, index))
    created = setup.audit("account_created")
    again = await shop.post("/v1/wallets", {"network": "eth", "custody": "managed"})
    assert (again.status_code, again.json()["code"]) == (409, "wallet_exists")
    assert setup.audit("account_created") == created  # the signer was not even asked


async def test_a_managed_litecoin_wallet_is_p2wpkh_from_the_signer(setup: Setup) -> None:
    shop = await _merchant(setup)
    answer = await shop.post("/v1/wallets", {"network": "ltc", "custody": "managed"})
    assert answer.status_code == 201, answer.text
    wallet = answer.json()
    assert wallet["address_type"] == "p2wpkh"
    assert re.fullmatch(r"file:1:m/84'/1'/[0-9]+'", wallet["key_ref"])
    assert wallet["xpub"].startswith("tpub")
    invoice = await shop.invoice(amount="0.5", currency="LTC", network="ltc")
    ref = KeyRef.parse(wallet["key_ref"]).child(0, 0)
    assert invoice["address"] == setup.signer_address(ref, "ltc")
    other = await _merchant(setup, "Other")
    taproot = await other.post(
        "/v1/wallets", {"network": "ltc", "custody": "managed", "address_type": "p2tr"}
    )
    assert taproot.status_code == 422
    assert taproot.json()["code"] == "signer_refused" and "unsupported" in taproot.json()["detail"]
    assert (await other.get("/v1/wallets")).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"network": "eth", "custody": "managed", "xpub": WATCH_XPUB},
        {"network": "eth", "custody": "watch_only"},
        {"network": "eth", "custody": "someone_else"},
    ],
)
async def test_custody_and_xpub_must_agree(setup: Setup, body: dict[str, str]) -> None:
    shop = await _merchant(setup)
    answer = await shop.post("/v1/wallets", body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "validation_error"


async def test_watch_only_stays_the_default(setup: Setup) -> None:
    shop = await _merchant(setup)
    answer = await shop.post("/v1/wallets", {"network": "eth", "xpub": WATCH_XPUB})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["custody"], answer.json()["key_ref"]) == ("watch_only", None)


async def test_treasury_hot_and_collector_from_the_signer_cold_from_the_merchant(
    setup: Setup,
) -> None:
    shop = await _merchant(setup)
    hot = await shop.post("/v1/treasury", {"network": "eth", "role": "hot"})
    assert hot.status_code == 201, hot.text
    assert hot.json()["custody"] == "managed"
    hot_ref = KeyRef.parse(hot.json()["key_ref"])
    assert hot.json()["address"] == setup.signer_address(hot_ref.child(0, 0))
    collector = await shop.post(
        "/v1/treasury",
        {"network": "eth", "role": "tokens_collector"},
        **{"Idempotency-Key": "c-1"},
    )
    assert collector.status_code == 201, collector.text
    replay = await shop.post(
        "/v1/treasury",
        {"network": "eth", "role": "tokens_collector"},
        **{"Idempotency-Key": "c-1"},
    )
    assert replay.json() == collector.json()
    cold = await shop.post("/v1/treasury", {"network": "eth", "role": "cold", "address": COLD_ETH})
    assert cold.status_code == 201, cold.text
    assert cold.json()["custody"] == "watch_only" and cold.json()["key_ref"] is None
    assert cold.json()["address"] == COLD_ETH.lower()
    assert cold.json()["warnings"][0]["code"] == "signer_policy"
    assert "add-destination" in cold.json()["warnings"][0]["detail"]
    ltc_hot = await shop.post("/v1/treasury", {"network": "ltc", "role": "hot"})
    assert ltc_hot.status_code == 201 and ltc_hot.json()["address"].startswith("rltc1")
    ltc_cold = await shop.post(
        "/v1/treasury",
        {
            "network": "ltc",
            "role": "cold",
            "xpub": ltc_hot.json()["xpub"],
            "address_type": "p2wpkh",
        },
    )
    # the hot xpub as cold would be absurd but is a valid watch-only key: accepted as data
    assert ltc_cold.status_code == 201, ltc_cold.text
    listed = (await shop.get("/v1/treasury")).json()
    assert sorted((e["network"], e["role"]) for e in listed) == [
        ("eth", "cold"),
        ("eth", "hot"),
        ("eth", "tokens_collector"),
        ("ltc", "cold"),
        ("ltc", "hot"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"network": "ltc", "role": "tokens_collector"}, 422, "treasury_role_unsupported"),
        ({"network": "eth", "role": "cold", "address": "0x1234"}, 422, "invalid_address"),
        (
            {"network": "eth", "role": "cold", "address": COLD_ETH.replace("E", "e", 1)},
            422,
            "invalid_address",
        ),
        ({"network": "ltc", "role": "cold", "address": COLD_ETH}, 422, "invalid_address"),
        ({"network": "eth", "role": "cold"}, 422, "validation_error"),
        ({"network": "eth", "role": "hot", "address": COLD_ETH}, 422, "validation_error"),
        ({"network": "dogecoin", "role": "hot"}, 422, "unknown_network"),
    ],
)
async def test_bad_treasury_requests_are_problems_and_write_nothing(
    setup: Setup, body: dict[str, str], status: int, code: str
) -> None:
    shop = await _merchant(setup)
    answer = await shop.post("/v1/treasury", body)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert (await shop.get("/v1/treasury")).json() == []


async def test_one_of_each_role_and_merchants_never_see_each_other(setup: Setup) -> None:
    shop, other = await _merchant(setup), await _merchant(setup, "Other")
    first = await shop.post("/v1/treasury", {"network": "eth", "role": "hot"})
    assert first.status_code == 201
    twice = await shop.post("/v1/treasury", {"network": "eth", "role": "hot"})
    assert (twice.status_code, twice.json()["code"]) == (409, "treasury_role_exists")
    entry = first.json()["id"]
    assert (await shop.get(f"/v1/treasury/{entry}")).status_code == 200
    foreign = await other.get(f"/v1/treasury/{entry}")
    assert (foreign.status_code, foreign.json()["code"]) == (404, "not_found")
    assert (await other.get("/v1/treasury")).json() == []
    theirs = await other.post("/v1/treasury", {"network": "eth", "role": "hot"})
    assert theirs.json()["address"] != first.json()["address"]


async def test_with_the_signer_down_custody_waits_and_nothing_else_does(setup: Setup) -> None:
    shop = await _merchant(setup)
    wallet = await shop.post("/v1/wallets", {"network": "eth", "custody": "managed"})
    assert wallet.status_code == 201
    setup.signer.kill()
    other = await _merchant(setup, "Other")
    for path, body in (
        ("/v1/wallets", {"network": "eth", "custody": "managed"}),
        ("/v1/treasury", {"network": "eth", "role": "hot"}),
    ):
        answer = await other.post(path, body, **{"Idempotency-Key": f"down-{path}"})
        assert (answer.status_code, answer.json()["code"]) == (503, "signer_unavailable")
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await other.get("/v1/wallets")).json() == []
    assert (await other.get("/v1/treasury")).json() == []
    # Money coming in does not wait for the signer: invoices on the managed wallet go on.
    invoice = await shop.invoice(amount="1", currency="ETH", network="eth")
    assert invoice["status"] == "new"
    cold = await shop.post("/v1/treasury", {"network": "eth", "role": "cold", "address": COLD_ETH})
    assert cold.status_code == 201
    # Back up: the same idempotency key now gets the account (the failed try was released).
    setup.signer.start()
    answer = await other.post(
        "/v1/wallets",
        {"network": "eth", "custody": "managed"},
        **{"Idempotency-Key": "down-/v1/wallets"},
    )
    assert answer.status_code == 201, answer.text


async def test_without_a_configured_signer_managed_custody_says_so(clean_database_url: str) -> None:
    async with running_gateway(clean_database_url, [ETH_NET]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        answer = await shop.post("/v1/wallets", {"network": "eth", "custody": "managed"})
        assert (answer.status_code, answer.json()["code"]) == (503, "signer_unavailable")
        assert "no signer is configured" in answer.json()["detail"]
