"""The signer core's decisions, in process on its real state (SQLite, encrypted keystore, audit
log) — no chain node: what it refuses and allows, and that each decision is audited.

The signed bytes reaching real nodes are tested in tests/integration/test_signer_chains.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from chaingate.adapters.chains.evm.transactions import (
    decode_signed,
    erc20_transfer_call,
    transaction_hash,
)
from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    EvmTransaction,
    KeyRef,
    KeyStoreKind,
    ManagedAccount,
    SignerRefused,
    SignPurpose,
    SignRequest,
)
from chaingate.signer.audit import read_lines, verify
from chaingate.signer.core import SignerCore
from chaingate.signer.families.evm import eth_address
from chaingate.signer.keystores.file import FileKeyStore, KdfParams, add_key_version
from chaingate.signer.throwaway import (
    THROWAWAY_PASSPHRASE,
    ThrowawaySigner,
    create_throwaway_signer,
)
from tests.support.signer import evm_policy

CHAIN = 31337
TOKEN = "0x" + "70" * 20
FACTORY = "0x" + "fa" * 20
COLD_A = "0x" + "c0" * 20
STRANGER = "0x" + "5e" * 20
GWEI = 10**9
ETH = 10**18


@dataclass
class World:
    signer: ThrowawaySigner
    core: SignerCore
    user_a: ManagedAccount
    hot_a: ManagedAccount
    collector_a: ManagedAccount
    user_b: ManagedAccount
    hot_b: ManagedAccount
    gas: ManagedAccount
    today: list[date]

    def reopen(self) -> None:
        self.core.close()
        self.core = self.signer.core()
        self.core._today = lambda: self.today[0]

    def sign(
        self,
        request_id: str,
        key: KeyRef,
        to: str,
        value: int = 0,
        *,
        nonce: int = 0,
        data: bytes = b"",
        chain_id: int = CHAIN,
        max_fee: int = 20 * GWEI,
        tip: int = GWEI,
        gas: int = 21_000,
        replaces: str | None = None,
        hints: tuple[KeyRef, ...] = (),
        purpose: SignPurpose = SignPurpose.SWEEP,
    ) -> bytes:
        tx = EvmTransaction(chain_id, nonce, tip, max_fee, gas, to, value, data)
        request = SignRequest(
            request_id, "evm", "anvil", purpose, (key,), tx, replaces, destination_keys=hints
        )
        return self.core.sign(request).raw


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    signer = create_throwaway_signer(
        tmp_path / "signer",
        {
            "anvil": evm_policy(
                CHAIN,
                tokens=[{"symbol": "USDT", "contract": TOKEN, "decimals": 6}],
                limits={"ETH": {"per_tx": "1", "per_day": "2.5"}, "USDT": {"per_tx": "100"}},
                max_fee_per_gas=100 * GWEI,
                max_priority_fee_per_gas=3 * GWEI,
                max_fee="0.01",
                forwarder_factories=[
                    {"address": FACTORY, "selectors": ["0x12345678"], "destination_arg": 0}
                ],
            )
        },
        [{"network": "anvil", "merchant": "mer_A", "address": COLD_A}],
    )
    core = signer.core()
    today = [date(2026, 12, 7)]
    core._today = lambda: today[0]

    def account(request_id: str, merchant: str | None, role: AddressRole) -> ManagedAccount:
        return core.create_account(AccountRequest(request_id, "anvil", merchant, role))

    built = World(
        signer,
        core,
        account("a-user", "mer_A", AddressRole.USER),
        account("a-hot", "mer_A", AddressRole.HOT),
        account("a-collector", "mer_A", AddressRole.TOKENS_COLLECTOR),
        account("b-user", "mer_B", AddressRole.USER),
        account("b-hot", "mer_B", AddressRole.HOT),
        account("gas", None, AddressRole.GAS),
        today,
    )
    yield built
    built.core.close()


def _refusal(call: object) -> str:
    with pytest.raises(SignerRefused) as refused:
        call()  # type: ignore[operator]
    return refused.value.reason_code


def deposit(world: World, index: int = 3, account: ManagedAccount | None = None) -> KeyRef:
    return (account or world.user_a).key_ref.child(0, index)


def hot(world: World) -> KeyRef:
    return world.hot_a.key_ref.child(0, 0)


# ---- accounts -----------------------------------------------------------------------------------
def test_accounts_are_idempotent_per_request_id_and_allocated_in_order(world: World) -> None:
    again = world.core.create_account(AccountRequest("a-user", "anvil", "mer_A"))
    assert again == world.user_a
    paths = [a.key_ref.path for a in (world.user_a, world.hot_a, world.collector_a, world.user_b)]
    assert paths == ["m/44'/60'/0'", "m/44'/60'/1'", "m/44'/60'/2'", "m/44'/60'/3'"]
    other = AccountRequest("a-user", "anvil", "mer_A", AddressRole.HOT)
    assert _refusal(lambda: world.core.create_account(other)) == "request_id_reused"


@pytest.mark.parametrize(
    ("asked", "reason"),
    [
        (AccountRequest("x1", "mainnet", "mer_A"), "unknown_network"),
        (AccountRequest("x2", "anvil", "mer_A", AddressRole.COLD), "unsupported"),
        (AccountRequest("x3", "anvil", None, AddressRole.USER), "malformed_request"),
        (AccountRequest("x4", "anvil", "mer_A", AddressRole.GAS), "malformed_request"),
        (AccountRequest("x5", "anvil", "mer_A", address_type="p2wpkh"), "unsupported"),
        (
            AccountRequest("x6", "anvil", "mer_A", AddressRole.HOT, KeyStoreKind.PKCS11),
            "keystore_missing",
        ),
    ],
)
def test_impossible_accounts_are_refused(world: World, asked: AccountRequest, reason: str) -> None:
    assert _refusal(lambda: world.core.create_account(asked)) == reason


def test_rotation_new_accounts_get_the_new_version_old_refs_keep_signing(world: World) -> None:
    before = world.sign("before", deposit(world), world.hot_a.address, ETH // 10)
    add_key_version(world.signer.keystore, THROWAWAY_PASSPHRASE, KdfParams.fast())
    world.reopen()
    fresh = world.core.create_account(AccountRequest("a-user-2", "anvil", "mer_C"))
    assert fresh.key_ref.version == 2
    assert fresh.key_ref.path == "m/44'/60'/0'"  # version 2 counts its own accounts
    # The old deposit key still signs (same address, same signature bytes: RFC 6979).
    assert (
        world.core.sign(
            SignRequest(
                "before",
                "evm",
                "anvil",
                SignPurpose.SWEEP,
                (deposit(world),),
                decode_signed(before).transaction,
            )
        ).raw
        == before
    )
    status = world.core.status()
    assert [(v.version, v.current) for v in status.key_versions] == [(1, False), (2, True)]


# ---- destinations -------------------------------------------------------------------------------
def test_a_deposit_key_sweeps_to_its_merchants_hot_collector_and_listed_cold(world: World) -> None:
    world.sign("to-hot", deposit(world, 1), world.hot_a.address, ETH)
    world.sign("to-collector", deposit(world, 2), world.collector_a.address, ETH)
    world.sign("to-cold", deposit(world, 3), COLD_A, 5 * ETH)  # user keys have no limits
    token_sweep = erc20_transfer_call(world.hot_a.address, 10**12)
    world.sign("usdt", deposit(world, 4), TOKEN, data=token_sweep, gas=60_000)


@pytest.mark.parametrize("target", ["stranger", "other-hot", "own-deposit", "gas"])
def test_a_deposit_key_may_not_send_anywhere_else(world: World, target: str) -> None:
    to = {
        "stranger": STRANGER,
        "other-hot": world.hot_b.address,  # merchant B's hot wallet
        "own-deposit": world.user_a.address,  # another deposit address of the same merchant
        "gas": world.gas.address,
    }[target]
    reason = _refusal(lambda: world.sign("r", deposit(world), to, ETH))
    assert reason == "destination_not_allowed"
    token = erc20_transfer_call(STRANGER, 5)
    assert _refusal(lambda: world.sign("t", deposit(world), TOKEN, data=token, gas=60_000)) == (
        "destination_not_allowed"
    )


def test_a_cold_address_listed_for_another_merchant_is_not_allowed(world: World) -> None:
    assert _refusal(lambda: world.sign("r", deposit(world, 1, world.user_b), COLD_A, ETH)) == (
        "destination_not_allowed"
    )


def test_the_collector_tops_up_only_deposit_addresses_it_can_derive(world: World) -> None:
    collector = world.collector_a.key_ref.child(0, 0)
    target = deposit(world, 9)
    address = eth_address(world.core._keys.public_key(target))
    world.sign("topup", collector, address, 10**15, hints=(target,), purpose=SignPurpose.TOPUP)
    # Without the hint the signer cannot tell it is a deposit address: refused.
    assert _refusal(lambda: world.sign("nohint", collector, address, 10**15, nonce=1)) == (
        "destination_not_allowed"
    )
    # A hint that derives another address is not believed.
    assert (
        _refusal(lambda: world.sign("lie", collector, STRANGER, 10**15, nonce=1, hints=(target,)))
        == "destination_not_allowed"
    )
    # Merchant B's deposit key is no top-up target of merchant A's collector.
    other = deposit(world, 1, world.user_b)
    other_address = eth_address(world.core._keys.public_key(other))
    assert (
        _refusal(lambda: world.sign("b", collector, other_address, 10**15, nonce=1, hints=(other,)))
        == "destination_not_allowed"
    )


def test_hot_keys_pay_anyone_within_limits_unless_payouts_are_restricted(world: World) -> None:
    world.sign("payout", hot(world), STRANGER, ETH // 2, purpose=SignPurpose.PAYOUT)
    text = world.signer.policy.read_text().replace(
        "[networks.anvil]\n", "[networks.anvil]\nrestrict_payouts = true\n"
    )
    world.signer.policy.write_text(text)
    assert world.core.reload_policy()
    assert _refusal(lambda: world.sign("p2", hot(world), STRANGER, 1, nonce=1)) == (
        "destination_not_allowed"
    )
    world.sign("p3", hot(world), COLD_A, 1, nonce=1)  # a listed destination still works


def test_gas_keys_only_make_forwarders_flush_to_listed_cold(world: World) -> None:
    gas = world.gas.key_ref.child(0, 0)
    flush = bytes.fromhex("12345678") + bytes(12) + bytes.fromhex(COLD_A[2:])
    world.sign("flush", gas, FACTORY, data=flush, gas=200_000, purpose=SignPurpose.FORWARDER_FLUSH)
    elsewhere = bytes.fromhex("12345678") + bytes(12) + bytes.fromhex(STRANGER[2:])
    assert _refusal(
        lambda: world.sign("f2", gas, FACTORY, data=elsewhere, gas=200_000, nonce=1)
    ) == ("destination_not_allowed")
    other_selector = bytes.fromhex("87654321") + flush[4:]
    assert _refusal(
        lambda: world.sign("f3", gas, FACTORY, data=other_selector, gas=200_000, nonce=1)
    ) == ("unknown_call")
    assert _refusal(lambda: world.sign("f4", gas, STRANGER, 10**15, nonce=1)) == (
        "destination_not_allowed"
    )
    # Only gas keys call the factory.
    assert _refusal(lambda: world.sign("f5", hot(world), FACTORY, data=flush, gas=200_000)) == (
        "unknown_call"
    )


def test_calls_it_cannot_read_are_refused(world: World) -> None:
    approve = bytes.fromhex("095ea7b3") + bytes(64)
    assert _refusal(lambda: world.sign("a", hot(world), TOKEN, data=approve, gas=60_000)) == (
        "unknown_call"
    )
    assert _refusal(lambda: world.sign("b", hot(world), STRANGER, data=b"\x01", gas=60_000)) == (
        "unknown_call"
    )
    paying_token = erc20_transfer_call(STRANGER, 1)
    assert _refusal(
        lambda: world.sign("c", hot(world), TOKEN, 1, data=paying_token, gas=60_000)
    ) == ("unknown_call")


# ---- chain, fees, limits ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"chain_id": 1}, "wrong_chain"),
        ({"max_fee": 101 * GWEI}, "fee_over_ceiling"),
        ({"tip": 4 * GWEI}, "fee_over_ceiling"),
        ({"gas": 200_000, "max_fee": 60 * GWEI}, "fee_over_ceiling"),  # 0.012 ETH > 0.01
        ({"gas": 20_000}, "malformed_request"),
        ({"tip": 30 * GWEI, "max_fee": 20 * GWEI}, "malformed_request"),
    ],
)
def test_chain_and_fee_ceilings(world: World, overrides: dict, reason: str) -> None:  # type: ignore[type-arg]
    assert _refusal(lambda: world.sign("r", hot(world), STRANGER, 1, **overrides)) == reason


def test_per_transaction_and_per_day_limits_are_persisted(world: World) -> None:
    over = ETH + 1
    assert _refusal(lambda: world.sign("big", hot(world), STRANGER, over)) == "amount_over_tx_limit"
    usdt = erc20_transfer_call(STRANGER, 100 * 10**6 + 1)
    assert _refusal(lambda: world.sign("u", hot(world), TOKEN, data=usdt, gas=60_000)) == (
        "amount_over_tx_limit"
    )
    world.sign("d1", hot(world), STRANGER, ETH, nonce=0)
    world.sign("d2", hot(world), STRANGER, ETH, nonce=1)
    world.reopen()  # the day's counter survives a restart
    assert _refusal(lambda: world.sign("d3", hot(world), STRANGER, ETH, nonce=2)) == (
        "amount_over_daily_limit"
    )
    world.sign("d4", hot(world), STRANGER, ETH // 2, nonce=2)  # exactly 2.5 ETH today
    # Merchant B has its own day; tomorrow merchant A has a new one.
    world.sign("b1", world.hot_b.key_ref.child(0, 0), STRANGER, ETH)
    world.today[0] = date(2026, 12, 8)
    world.sign("d5", hot(world), STRANGER, ETH, nonce=3)


# ---- the nonce guard ----------------------------------------------------------------------------
def test_one_nonce_gets_one_transaction_unless_deliberately_replaced(world: World) -> None:
    first = world.sign("n1", hot(world), STRANGER, ETH // 10, nonce=7, purpose=SignPurpose.PAYOUT)
    txid = transaction_hash(first)
    assert _refusal(lambda: world.sign("n2", hot(world), STRANGER, ETH // 20, nonce=7)) == (
        "nonce_used"
    )
    # A replacement must name the transaction, pay no more, and outbid both fee fields.
    more = ETH // 5
    assert (
        _refusal(
            lambda: world.sign(
                "n3",
                hot(world),
                STRANGER,
                more,
                nonce=7,
                replaces=txid,
                max_fee=30 * GWEI,
                tip=2 * GWEI,
            )
        )
        == "not_a_replacement"
    )
    assert (
        _refusal(
            lambda: world.sign(
                "n4", hot(world), STRANGER, ETH // 10, nonce=7, replaces=txid, max_fee=30 * GWEI
            )
        )
        == "not_a_replacement"
    )
    assert _refusal(
        lambda: world.sign(
            "n5",
            hot(world),
            COLD_A,
            ETH // 10,
            nonce=7,
            replaces=txid,
            max_fee=30 * GWEI,
            tip=2 * GWEI,
        )
    ) == ("not_a_replacement")
    bumped = world.sign(
        "n6",
        hot(world),
        STRANGER,
        ETH // 10,
        nonce=7,
        replaces=txid,
        max_fee=30 * GWEI,
        tip=2 * GWEI,
        purpose=SignPurpose.REPLACEMENT,
    )
    bumped_txid = transaction_hash(bumped)
    # A cancellation (0 to itself) replacing the bump, with a higher fee again.
    world.sign(
        "n7",
        hot(world),
        world.hot_a.address,
        0,
        nonce=7,
        replaces=bumped_txid,
        max_fee=40 * GWEI,
        tip=3 * GWEI,
        purpose=SignPurpose.REPLACEMENT,
    )
    # The replacement paid no more than was already counted: the day still has 2.4 ETH left.
    world.sign("n8", hot(world), STRANGER, ETH, nonce=8)


def test_a_request_id_answers_the_same_bytes_and_only_for_the_same_request(world: World) -> None:
    first = world.sign("same", hot(world), STRANGER, 10**15, nonce=1)
    world.reopen()
    assert world.sign("same", hot(world), STRANGER, 10**15, nonce=1) == first
    assert _refusal(lambda: world.sign("same", hot(world), STRANGER, 10**16, nonce=1)) == (
        "request_id_reused"
    )


# ---- keys ---------------------------------------------------------------------------------------
def test_only_keys_the_signer_handed_out_sign(world: World) -> None:
    unknown_account = KeyRef(KeyStoreKind.FILE, 1, path="m/44'/60'/42'/0/0")
    assert _refusal(lambda: world.sign("k1", unknown_account, STRANGER, 1)) == "unknown_key"
    account_level = world.hot_a.key_ref
    assert _refusal(lambda: world.sign("k2", account_level, STRANGER, 1)) == "unknown_key"
    hardened_child = KeyRef(KeyStoreKind.FILE, 1, path="m/44'/60'/1'/0'/0")
    assert _refusal(lambda: world.sign("k3", hardened_child, STRANGER, 1)) == "unknown_key"
    wrong_version = KeyRef(KeyStoreKind.FILE, 9, path="m/44'/60'/1'/0/0")
    assert _refusal(lambda: world.sign("k4", wrong_version, STRANGER, 1)) == "unknown_key"
    hsm = KeyRef(KeyStoreKind.PKCS11, 1, label="cg-v1-x-1")
    assert _refusal(lambda: world.sign("k5", hsm, STRANGER, 1)) == "unknown_key"


def test_every_decision_is_audited_and_the_log_verifies(world: World) -> None:
    world.sign("ok", hot(world), STRANGER, 1)
    _refusal(lambda: world.sign("bad", hot(world), STRANGER, 1, chain_id=5))
    lines = list(read_lines(world.signer.state_dir / "audit.jsonl"))
    decisions = [(line["decision"], line.get("request_id"), line.get("reason")) for line in lines]
    assert ("signed", "ok", None) in decisions
    assert ("refused", "bad", "wrong_chain") in decisions
    assert sum(1 for d in decisions if d[0] == "account_created") == 6
    signed = next(line for line in lines if line.get("request_id") == "ok")
    assert signed["movements"] == [
        {"destination": STRANGER, "asset": "ETH", "amount": "1", "to_role": None, "via": "transfer"}
    ]
    assert signed["role"] == "hot"
    assert verify(world.signer.state_dir / "audit.jsonl", world.core.state.audit_head()).ok
    # Nothing secret is ever written: not the passphrase, not a private key.
    text = (world.signer.state_dir / "audit.jsonl").read_text()
    store = FileKeyStore.unlock(world.signer.keystore, THROWAWAY_PASSPHRASE)
    secret = bytes(store._node(hot(world)).key.secret).hex()
    assert secret not in text
    assert THROWAWAY_PASSPHRASE.decode() not in text
