"""Watch-only Bitcoin-family derivation: the official BIP-84/49/86 vectors, SLIP-132 versions,
network checks and refusal of private key material."""

from __future__ import annotations

import pytest

from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
    implied_address_type,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.domain.errors import InvalidWallet
from chaingate.ports import AddressDeriver

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
BTC = BUILT_IN[("bitcoin", "mainnet")]
BTC_TEST = BUILT_IN[("bitcoin", "testnet")]
LTC_REGTEST = BUILT_IN[("litecoin", "regtest")]
LTC = BUILT_IN[("litecoin", "mainnet")]

# BIP-84 "Test vectors": account 0 of the mnemonic above, m/84'/0'/0'.
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31"
    "mGDtKsAYz2oz2AGutZYs"
)
BIP84_ADDRESSES = [
    "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g",
]
# BIP-86 "Test vectors": m/86'/0'/0' and its first receive address.
BIP86_XPUB = (
    "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49"
    "yfdDEHGCtMMj92pReUsQ"
)
BIP86_ADDRESSES = [
    "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
    "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
]
# BIP-49 "Test vectors" (testnet, m/49'/1'/0'): first receive address.
BIP49_TESTNET_ADDRESS = "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2"


def test_it_is_an_address_deriver() -> None:
    deriver: AddressDeriver = BitcoinAddressDeriver(BTC)
    assert deriver.derive(BIP84_ZPUB, 0) == BIP84_ADDRESSES[0]


def test_bip84_vector_from_the_zpub() -> None:
    deriver = BitcoinAddressDeriver(BTC, "p2wpkh")
    assert [deriver.derive(BIP84_ZPUB, i) for i in range(2)] == BIP84_ADDRESSES


def test_bip84_zpub_and_its_plain_xpub_are_one_key() -> None:
    deriver = BitcoinAddressDeriver(BTC, "p2wpkh")
    plain = deriver.normalize_account_key(BIP84_ZPUB)
    assert plain.startswith("xpub")
    assert deriver.normalize_account_key(plain) == plain
    assert deriver.derive(plain, 1) == BIP84_ADDRESSES[1]


def test_bip84_account_key_derived_from_the_mnemonic_matches_the_bip() -> None:
    assert account_key_from_mnemonic(MNEMONIC, BTC, "p2wpkh") == BIP84_ZPUB


def test_bip86_taproot_vector() -> None:
    deriver = BitcoinAddressDeriver(BTC, "p2tr")
    assert account_key_from_mnemonic(MNEMONIC, BTC, "p2tr") == BIP86_XPUB
    assert [deriver.derive(BIP86_XPUB, i) for i in range(2)] == BIP86_ADDRESSES


def test_bip49_nested_segwit_vector_on_testnet() -> None:
    upub = account_key_from_mnemonic(MNEMONIC, BTC_TEST, "p2sh-p2wpkh")
    assert upub.startswith("upub")
    deriver = BitcoinAddressDeriver(BTC_TEST, "p2sh-p2wpkh")
    assert deriver.derive(deriver.normalize_account_key(upub), 0) == BIP49_TESTNET_ADDRESS


def test_litecoin_regtest_addresses_use_the_rltc_prefix() -> None:
    vpub = account_key_from_mnemonic(MNEMONIC, LTC_REGTEST)
    assert vpub.startswith("vpub")
    address = BitcoinAddressDeriver(LTC_REGTEST).derive(vpub, 0)
    assert address.startswith("rltc1q")


def test_litecoin_mainnet_nested_segwit_uses_the_m_prefix() -> None:
    key = account_key_from_mnemonic(MNEMONIC, LTC, "p2sh-p2wpkh")
    assert BitcoinAddressDeriver(LTC, "p2sh-p2wpkh").derive(key, 0).startswith("M")


def test_slip132_version_implies_the_script_type() -> None:
    assert implied_address_type(BTC, BIP84_ZPUB) == "p2wpkh"
    assert implied_address_type(BTC, BIP86_XPUB) is None


def test_zpub_registered_as_taproot_is_refused() -> None:
    with pytest.raises(InvalidWallet) as caught:
        BitcoinAddressDeriver(BTC, "p2tr").normalize_account_key(BIP84_ZPUB)
    assert caught.value.code == "address_type_mismatch"


def test_key_of_another_network_is_refused() -> None:
    with pytest.raises(InvalidWallet) as caught:
        BitcoinAddressDeriver(LTC_REGTEST).normalize_account_key(BIP84_ZPUB)
    assert caught.value.code == "wrong_network_key"


@pytest.mark.parametrize(
    "secret",
    [
        # BIP-84's account 0 zprv
        "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm"
        "1yYNZKEm7z6qUWCroSQnE",
        MNEMONIC,
        "0x" + "11" * 32,
        "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn",
    ],
)
def test_private_key_material_is_refused(secret: str) -> None:
    with pytest.raises(InvalidWallet) as caught:
        BitcoinAddressDeriver(BTC).normalize_account_key(secret)
    assert caught.value.code == "private_key_not_accepted"
    assert secret not in caught.value.detail


def test_garbage_and_non_account_keys_are_refused() -> None:
    deriver = BitcoinAddressDeriver(BTC)
    with pytest.raises(InvalidWallet):
        deriver.normalize_account_key("zpub-not-a-key")
    with pytest.raises(InvalidWallet):
        deriver.normalize_account_key(BIP84_ZPUB[:-1] + "t")  # checksum


def test_index_out_of_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        BitcoinAddressDeriver(BTC).derive(BIP84_ZPUB, 2**31)
