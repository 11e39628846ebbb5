"""Wallet keys: one identity per key material whatever its serialization (issue 11 item 9),
output descriptors with BIP-380 checksums, key origins, and proofs of key control."""

from __future__ import annotations

import base64
import importlib

import pytest
from coincurve import PrivateKey
from embit import base58, bip32, bip39
from eth_account import Account
from eth_account.messages import encode_defunct

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.descriptor import (
    descriptor_checksum,
    normalize_key_origin,
    receive_descriptor,
)
from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.bitcoin.message import message_hash
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver, account_xpub_from_mnemonic
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.domain.errors import InvalidWallet

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
LTC = BUILT_IN[("litecoin", "regtest")]
LTC_NETWORK = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
)
EVM_NETWORK = EvmNetworkConfig(name="eth", chain_id=1, rpc_urls=["http://127.0.0.1:9"])
MIGRATION = importlib.import_module(
    "chaingate.adapters.db.migrations.versions.0006_wallet_key_identity_gap_policy"
)


def reserialized(extended_key: str, *, fingerprint: bytes, child: int) -> str:
    """The same key material under another parent fingerprint and child number."""
    raw = base58.decode_check(extended_key)
    return str(base58.encode_check(raw[:5] + fingerprint + child.to_bytes(4, "big") + raw[13:]))


def test_the_same_bitcoin_key_in_another_serialization_is_the_same_wallet() -> None:
    deriver = BitcoinAddressDeriver(LTC, "p2wpkh")
    vpub = account_key_from_mnemonic(MNEMONIC, LTC, "p2wpkh")
    tpub = deriver.normalize_account_key(vpub)
    disguised = reserialized(tpub, fingerprint=b"\xde\xad\xbe\xef", child=2**31 + 77)
    assert disguised != tpub and deriver.normalize_account_key(disguised) != tpub
    identity = deriver.key_identity(tpub)
    assert deriver.key_identity(vpub) == deriver.key_identity(disguised) == identity
    assert deriver.derive(disguised, 5) == deriver.derive(tpub, 5)  # why it must be one wallet
    # Another script type derives other addresses from the same material: another wallet.
    assert BitcoinAddressDeriver(LTC, "p2tr").key_identity(tpub) != identity
    # Another key is another wallet.
    other = account_key_from_mnemonic(MNEMONIC, LTC, "p2wpkh", account=1)
    assert deriver.key_identity(other) != identity


def test_the_same_evm_key_in_another_serialization_is_the_same_wallet() -> None:
    deriver = EvmAddressDeriver()
    xpub = account_xpub_from_mnemonic(MNEMONIC)
    disguised = reserialized(xpub, fingerprint=b"\x01\x02\x03\x04", child=2**31 + 5)
    assert deriver.normalize_account_key(disguised) != deriver.normalize_account_key(xpub)
    assert deriver.key_identity(disguised) == deriver.key_identity(xpub)
    assert deriver.key_identity(account_xpub_from_mnemonic(MNEMONIC, account=1)) != (
        deriver.key_identity(xpub)
    )


def test_the_migration_backfills_the_identity_the_derivers_compute() -> None:
    btc = BitcoinAddressDeriver(LTC, "p2wpkh")
    tpub = btc.normalize_account_key(account_key_from_mnemonic(MNEMONIC, LTC))
    assert MIGRATION._identity(tpub, "p2wpkh") == btc.key_identity(tpub)
    xpub = account_xpub_from_mnemonic(MNEMONIC)
    assert MIGRATION._identity(xpub, None) == EvmAddressDeriver().key_identity(xpub)
    assert MIGRATION._identity("xpub-not-really", None) is None


def test_bip380_checksum_vector() -> None:
    assert descriptor_checksum("raw(deadbeef)") == "89f8spxm"  # BIP-380 "Test Vectors"
    with pytest.raises(ValueError, match="cannot appear"):
        descriptor_checksum("raw(dé)")


def test_descriptors_per_address_type_with_and_without_origin() -> None:
    key = BitcoinAddressDeriver(LTC).normalize_account_key(account_key_from_mnemonic(MNEMONIC, LTC))
    plain = receive_descriptor(key, "p2wpkh", None)
    assert plain.startswith(f"wpkh({key}/0/*)#")
    origin = "73c5da0a/84h/1h/0h"
    assert receive_descriptor(key, "p2wpkh", origin).startswith(f"wpkh([{origin}]{key}/0/*)#")
    assert receive_descriptor(key, "p2sh-p2wpkh", None).startswith(f"sh(wpkh({key}/0/*))#")
    assert receive_descriptor(key, "p2tr", None).startswith(f"tr({key}/0/*)#")
    assert receive_descriptor(key, "p2pkh", None).startswith(f"pkh({key}/0/*)#")
    body, checksum = plain.split("#")
    assert checksum == descriptor_checksum(body)


def test_key_origins_are_checked_against_the_key() -> None:
    key = account_key_from_mnemonic(MNEMONIC, LTC)  # m/84'/1'/0': child number 0h
    assert normalize_key_origin(key, "73C5DA0A/84'/1'/0'") == "73c5da0a/84h/1h/0h"
    assert normalize_key_origin(key, "[73c5da0a/84h/1h/0h]") == "73c5da0a/84h/1h/0h"
    for wrong in ("73c5da0a/84h/1h/1h", "73c5da0a/84h/1h", "73c5da0a/84h/1h/0h/0"):
        with pytest.raises(InvalidWallet) as refused:
            normalize_key_origin(key, wrong)
        assert refused.value.code == "key_origin_mismatch"
    for garbage in ("73c5da0/84h/1h/0h", "fingerprint", "73c5da0a/84x", "73c5da0a/2147483648h"):
        with pytest.raises(InvalidWallet) as refused:
            normalize_key_origin(key, garbage)
        assert refused.value.code == "invalid_key_origin"
    with pytest.raises(InvalidWallet) as evm:
        EvmFamily().key_origin(EVM_NETWORK, account_xpub_from_mnemonic(MNEMONIC), "73c5da0a")
    assert evm.value.code == "key_origin_not_supported"


def _bitcoin_signature(private_key: bytes, magic: str, message: str) -> str:
    recoverable = PrivateKey(private_key).sign_recoverable(message_hash(magic, message), None)
    return base64.b64encode(bytes([31 + recoverable[64]]) + recoverable[:64]).decode()


def test_a_signed_message_proves_control_of_the_first_receive_key() -> None:
    family = BitcoinFamily()
    key = account_key_from_mnemonic(MNEMONIC, LTC)
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC))
    first = root.derive("m/84h/1h/0h/0/0").key.secret
    second = root.derive("m/84h/1h/0h/0/1").key.secret
    message = "ChainGate: merchant mer_1 receives payments to key abc on network ltc"
    magic = LTC.message_magic
    assert magic == "Litecoin Signed Message:\n"
    proof = _bitcoin_signature(first, magic, message)
    assert family.proves_key_control(LTC_NETWORK, key, "p2wpkh", message, proof)
    assert not family.proves_key_control(LTC_NETWORK, key, "p2wpkh", message + ".", proof)
    wrong_key = _bitcoin_signature(second, magic, message)
    assert not family.proves_key_control(LTC_NETWORK, key, "p2wpkh", message, wrong_key)
    bitcoin_magic = _bitcoin_signature(first, "Bitcoin Signed Message:\n", message)
    assert not family.proves_key_control(LTC_NETWORK, key, "p2wpkh", message, bitcoin_magic)
    for garbage in ("", "not base64!", base64.b64encode(b"\x1f" + b"\x00" * 64).decode()):
        assert not family.proves_key_control(LTC_NETWORK, key, "p2wpkh", message, garbage)


def test_personal_sign_proves_control_of_an_evm_key() -> None:
    Account.enable_unaudited_hdwallet_features()
    family = EvmFamily()
    xpub = account_xpub_from_mnemonic(MNEMONIC)
    first = Account.from_mnemonic(MNEMONIC, account_path="m/44'/60'/0'/0/0")
    other = Account.from_mnemonic(MNEMONIC, account_path="m/44'/60'/0'/0/1")
    message = "ChainGate: merchant mer_1 receives payments to key abc on network eth"
    signed = first.sign_message(encode_defunct(text=message)).signature.hex()
    assert family.proves_key_control(EVM_NETWORK, xpub, None, message, "0x" + signed)
    assert not family.proves_key_control(EVM_NETWORK, xpub, None, message + ".", signed)
    wrong = other.sign_message(encode_defunct(text=message)).signature.hex()
    assert not family.proves_key_control(EVM_NETWORK, xpub, None, message, wrong)
    assert not family.proves_key_control(EVM_NETWORK, xpub, None, message, "0x1234")
    assert EvmFamily().output_descriptor(EVM_NETWORK, xpub, None, None) is None
