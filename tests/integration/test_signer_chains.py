"""What the signer signs, the real nodes accept: anvil (EIP-1559: ETH, an ERC-20 sweep, a gas
top-up) and litecoind (P2WPKH consolidation, an RBF bump, a spend with change), with keys
from the encrypted file keystore and from a SoftHSM2 token (generated inside it, never
extractable).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account

from chaingate.adapters.chains.bitcoin.address import output_script
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm import wallet_ops
from chaingate.adapters.chains.evm.transactions import erc20_transfer_call
from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    BitcoinPsbt,
    EvmTransaction,
    KeyRef,
    KeyStoreKind,
    ManagedAccount,
    SignedTransaction,
    SignerRefused,
    SignPurpose,
    SignRequest,
)
from chaingate.signer.core import SignerCore
from chaingate.signer.families.bitcoin import BitcoinSignerFamily, p2wpkh_script
from chaingate.signer.families.evm import eth_address
from chaingate.signer.keystores.file import FileKeyStore
from chaingate.signer.keystores.pkcs11 import Pkcs11KeyStore
from tests.support.anvil import AnvilNode
from tests.support.litecoind import LitecoindNode
from tests.support.psbt import Coin, Pay, build_psbt
from tests.support.signer import MakeSigner, SoftHsm, evm_policy, ltc_policy

GWEI = 10**9
ETH = 10**18
LTC_PARAMS = BUILT_IN[("litecoin", "regtest")]


@dataclass
class Custody:
    core: SignerCore
    hsm: Pkcs11KeyStore

    def account(
        self, request_id: str, network: str, role: AddressRole, store: KeyStoreKind
    ) -> ManagedAccount:
        merchant = None if role is AddressRole.GAS else "mer_A"
        return self.core.create_account(AccountRequest(request_id, network, merchant, role, store))

    @property
    def file(self) -> FileKeyStore:
        store = self.core._keystores[KeyStoreKind.FILE]
        assert isinstance(store, FileKeyStore)
        return store


@pytest.fixture
def custody(
    signer_state: MakeSigner, softhsm: SoftHsm, request: pytest.FixtureRequest
) -> Iterator[Custody]:
    networks: dict[str, Any] = request.param
    state = signer_state(networks)
    hsm = softhsm.keystore()
    core = state.core({KeyStoreKind.PKCS11: hsm})
    yield Custody(core, hsm)
    core.close()


# ---- EVM on anvil -------------------------------------------------------------------------------
async def _evm_sign_and_send(
    node: AnvilNode, core: SignerCore, request_id: str, key: KeyRef, to: str, **fields: Any
) -> SignedTransaction:
    sender = eth_address(core._keys.public_key(key))
    nonce = int(await node.rpc("eth_getTransactionCount", sender, "pending"), 16)
    tx = EvmTransaction(
        chain_id=node.chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=GWEI,
        max_fee_per_gas=20 * GWEI,
        gas_limit=fields.pop("gas", 21_000),
        to=to,
        value=fields.pop("value", 0),
        data=fields.pop("data", b""),
    )
    request = SignRequest(
        request_id,
        "evm",
        "anvil",
        fields.pop("purpose", SignPurpose.SWEEP),
        (key,),
        tx,
        destination_keys=fields.pop("hints", ()),
    )
    signed = core.sign(request)
    assert Account.recover_transaction(signed.raw).lower() == sender
    txid = await node.rpc("eth_sendRawTransaction", "0x" + signed.raw.hex())
    assert txid == signed.txid
    receipt = await node.rpc("eth_getTransactionReceipt", txid)
    assert receipt is not None and receipt["status"] == "0x1", receipt
    return signed


async def _balance(node: AnvilNode, address: str) -> int:
    return int(await node.rpc("eth_getBalance", address, "latest"), 16)


PLACEHOLDER_TOKEN = "0x" + "00" * 20


@pytest.mark.anvil
@pytest.mark.parametrize(
    "custody",
    [
        {
            "anvil": evm_policy(
                31337, tokens=[{"symbol": "USDT", "contract": PLACEHOLDER_TOKEN, "decimals": 6}]
            )
        }
    ],
    indirect=True,
)
async def test_hsm_and_file_keys_top_up_and_sweep_a_token_deposit_on_anvil(
    anvil_isolated: AnvilNode, custody: Custody
) -> None:
    node = anvil_isolated
    token = await node.deploy_token("USDT", 6, holder=node.accounts[1].address)
    # The policy lists the token the test just deployed (reloaded like an operator would).
    policy = custody.core._policy_path
    policy.write_text(policy.read_text().replace(PLACEHOLDER_TOKEN, token.contract))
    assert custody.core.reload_policy()
    user = custody.account("user", "anvil", AddressRole.USER, KeyStoreKind.FILE)
    hot = custody.account("hot", "anvil", AddressRole.HOT, KeyStoreKind.FILE)
    collector = custody.account(
        "collector", "anvil", AddressRole.TOKENS_COLLECTOR, KeyStoreKind.PKCS11
    )
    assert collector.key_ref.store is KeyStoreKind.PKCS11
    assert not custody.hsm.is_extractable(collector.key_ref)
    deposit = user.key_ref.child(0, 5)
    deposit_address = eth_address(custody.core._keys.public_key(deposit))
    async with node.rpc_client() as rpc:
        payer = node.accounts[1].private_key
        await wallet_ops.wait_receipt(
            rpc, await wallet_ops.send_native(rpc, payer, collector.address, ETH)
        )
        await wallet_ops.wait_receipt(
            rpc,
            await wallet_ops.send_token(rpc, payer, token.contract, deposit_address, 250 * 10**6),
        )
        # 1. the HSM's collector key tops the deposit address up with gas
        await _evm_sign_and_send(
            node,
            custody.core,
            "topup",
            collector.key_ref,
            deposit_address,
            value=5 * 10**15,
            hints=(deposit,),
            purpose=SignPurpose.TOPUP,
        )
        # 2. the deposit key (file keystore) sweeps the token to the hot wallet
        await _evm_sign_and_send(
            node,
            custody.core,
            "sweep-usdt",
            deposit,
            token.contract,
            data=erc20_transfer_call(hot.address, 250 * 10**6),
            gas=80_000,
        )
        assert await wallet_ops.token_balance(rpc, token.contract, hot.address) == 250 * 10**6
        assert await wallet_ops.token_balance(rpc, token.contract, deposit_address) == 0
    # 3. what is left of the gas goes to hot as well; a stranger is refused
    left = await _balance(node, deposit_address)
    sweep = left - 21_000 * 20 * GWEI
    with pytest.raises(SignerRefused) as refused:
        await _evm_sign_and_send(
            node, custody.core, "theft", deposit, node.accounts[2].address, value=sweep
        )
    assert refused.value.reason_code == "destination_not_allowed"
    before = await _balance(node, hot.address)
    await _evm_sign_and_send(node, custody.core, "sweep-eth", deposit, hot.address, value=sweep)
    assert await _balance(node, hot.address) == before + sweep


@pytest.mark.anvil
@pytest.mark.parametrize("custody", [{"anvil": evm_policy(31337)}], indirect=True)
async def test_an_hsm_hot_key_pays_out_on_anvil_with_low_s_and_the_right_recovery_id(
    anvil_isolated: AnvilNode, custody: Custody
) -> None:
    node = anvil_isolated
    hot = custody.account("hot-hsm", "anvil", AddressRole.HOT, KeyStoreKind.PKCS11)
    assert hot.key_ref.label is not None and hot.key_ref.label.startswith("cg-v1-")
    assert hot.account_key is None  # a single HSM key: no xpub
    await node.rpc(
        "eth_sendTransaction",
        {"from": node.accounts[1].address, "to": hot.address, "value": hex(ETH)},
    )
    recipient = node.accounts[3].address
    before = await _balance(node, recipient)
    # Many payouts: an HSM answers high S half the time and either recovery id; every one must
    # be normalised for anvil to accept it from the right sender.
    for index in range(12):
        await _evm_sign_and_send(
            node,
            custody.core,
            f"payout-{index}",
            hot.key_ref,
            recipient,
            value=10**15,
            purpose=SignPurpose.PAYOUT,
        )
    assert await _balance(node, recipient) == before + 12 * 10**15


# ---- Bitcoin family on litecoind ----------------------------------------------------------------
async def _fund(node: LitecoindNode, address: str, satoshis: int) -> Coin:
    txid = await node.pay(address, satoshis)
    raw = await node.rpc("getrawtransaction", txid, True)
    vout = next(o for o in raw["vout"] if address in o["scriptPubKey"].get("addresses", []))
    amount = int(Decimal(vout["value"]) * 10**8)
    return Coin(txid, int(vout["n"]), amount, output_script(address, LTC_PARAMS))


def _ltc_address(custody: Custody, key: KeyRef) -> str:
    network = custody.core.policy.networks["ltc"]
    return BitcoinSignerFamily().address(network, custody.core._keys.public_key(key), "p2wpkh")


def _sign_psbt(
    custody: Custody,
    request_id: str,
    keys: tuple[KeyRef, ...],
    coins: list[Coin],
    pays: list[Pay],
    replaces: str | None = None,
) -> SignedTransaction:
    psbt = build_psbt(coins, pays, LTC_PARAMS)
    purpose = SignPurpose.REPLACEMENT if replaces else SignPurpose.SWEEP
    request = SignRequest(request_id, "bitcoin", "ltc", purpose, keys, BitcoinPsbt(psbt), replaces)
    return custody.core.sign(request)


@pytest.mark.litecoind
@pytest.mark.parametrize("custody", [{"ltc": ltc_policy()}], indirect=True)
async def test_file_keys_consolidate_deposits_and_bump_the_fee_on_litecoind(
    litecoind: LitecoindNode, custody: Custody
) -> None:
    user = custody.account("user", "ltc", AddressRole.USER, KeyStoreKind.FILE)
    hot = custody.account("hot", "ltc", AddressRole.HOT, KeyStoreKind.FILE)
    keys = tuple(user.key_ref.child(0, i) for i in range(3))
    coins = [
        await _fund(litecoind, _ltc_address(custody, k), 40_000_000 + i) for i, k in enumerate(keys)
    ]
    total = sum(c.value for c in coins)
    first = _sign_psbt(custody, "sweep", keys, coins, [Pay(hot.address, total - 3_000)])
    assert first.fee == 3_000
    assert await litecoind.rpc("sendrawtransaction", first.raw.hex()) == first.txid
    # Stuck: the same consolidation again with a higher fee, deliberately replacing it.
    with pytest.raises(SignerRefused) as refused:
        _sign_psbt(custody, "again", keys, coins, [Pay(hot.address, total - 9_000)])
    assert refused.value.reason_code == "outpoint_spent"
    bumped = _sign_psbt(
        custody, "bump", keys, coins, [Pay(hot.address, total - 9_000)], replaces=first.txid
    )
    assert await litecoind.rpc("sendrawtransaction", bumped.raw.hex()) == bumped.txid
    (block,) = await litecoind.mine(1)
    mined = (await litecoind.rpc("getblock", block, 1))["tx"]
    assert bumped.txid in mined and first.txid not in mined


@pytest.mark.litecoind
@pytest.mark.parametrize("custody", [{"ltc": ltc_policy()}], indirect=True)
async def test_an_hsm_key_spends_p2wpkh_with_change_on_litecoind(
    litecoind: LitecoindNode, custody: Custody
) -> None:
    hot = custody.account("hot-hsm", "ltc", AddressRole.HOT, KeyStoreKind.PKCS11)
    assert hot.address == BitcoinSignerFamily().address(
        custody.core.policy.networks["ltc"], custody.hsm.public_key(hot.key_ref), "p2wpkh"
    )
    coin = await _fund(litecoind, hot.address, 100_000_000)
    stranger = await litecoind.new_address()
    signed = _sign_psbt(
        custody,
        "payout",
        (hot.key_ref,),
        [coin],
        [Pay(stranger, 30_000_000), Pay(hot.address, coin.value - 30_000_000 - 2_500)],
    )
    accepted = await litecoind.rpc("testmempoolaccept", [signed.raw.hex()])
    assert accepted[0]["allowed"] is True, accepted
    assert await litecoind.rpc("sendrawtransaction", signed.raw.hex()) == signed.txid
    (block,) = await litecoind.mine(1)
    assert signed.txid in (await litecoind.rpc("getblock", block, 1))["tx"]


@pytest.mark.litecoind
@pytest.mark.parametrize("custody", [{"ltc": ltc_policy(max_fee_rate=20)}], indirect=True)
async def test_psbt_outputs_and_fees_are_checked_before_anything_is_answered(
    litecoind: LitecoindNode, custody: Custody
) -> None:
    user = custody.account("user", "ltc", AddressRole.USER, KeyStoreKind.FILE)
    hot = custody.account("hot", "ltc", AddressRole.HOT, KeyStoreKind.FILE)
    key = user.key_ref.child(0, 0)
    coin = await _fund(litecoind, _ltc_address(custody, key), 10_000_000)
    stranger = await litecoind.new_address()
    change_key = user.key_ref.child(1, 0)
    change_pub = custody.core._keys.public_key(change_key)
    change = _ltc_address(custody, change_key)
    derivation = (custody.file.fingerprint(1), change_key.path or "", change_pub)
    cases = {
        # to a stranger: a deposit key sweeps only to hot / tokens_collector / listed cold
        "stranger": ([Pay(stranger, 9_990_000)], "destination_not_allowed"),
        # change that the PSBT does not prove (no derivation): a destination, so refused
        "unproven change": (
            [Pay(hot.address, 5_000_000), Pay(change, 4_990_000)],
            "destination_not_allowed",
        ),
        # a fee rate over 20 sat/vB (10,000 sat over ~110 vB)
        "fee rate": ([Pay(hot.address, 9_990_000)], "fee_over_ceiling"),
        # a fee over the 0.01 LTC ceiling
        "fee": ([Pay(hot.address, 8_000_000)], "fee_over_ceiling"),
        # more out than in
        "overspend": ([Pay(hot.address, 10_000_001)], "malformed_request"),
    }
    for name, (pays, reason) in cases.items():
        with pytest.raises(SignerRefused) as refused:
            _sign_psbt(custody, name, (key,), [coin], pays)
        assert refused.value.reason_code == reason, name
    # An input the request's keys cannot spend
    other = user.key_ref.child(0, 1)
    with pytest.raises(SignerRefused) as refused:
        _sign_psbt(custody, "wrong key", (other,), [coin], [Pay(hot.address, 9_998_000)])
    assert refused.value.reason_code == "unknown_key"
    # Proven change is the merchant's own money: allowed, and the node takes the result.
    signed = _sign_psbt(
        custody,
        "ok",
        (key,),
        [coin],
        [Pay(hot.address, 5_000_000), Pay(change, 4_998_000, derivation)],
    )
    assert p2wpkh_script(change_pub).hex() in signed.raw.hex()
    accepted = await litecoind.rpc("testmempoolaccept", [signed.raw.hex()])
    assert accepted[0]["allowed"] is True, accepted
