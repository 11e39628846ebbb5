"""Watch-only BIP-44 derivation: known vectors, and refusal of anything that is not an xpub."""

from __future__ import annotations

import pytest
from bip_utils import Bip32Slip10Secp256k1, Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from eth_account import Account

from chaingate.adapters.chains.evm import derivation
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver, account_xpub_from_mnemonic
from chaingate.domain.errors import InvalidWallet

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
# anvil's first funded accounts, as every Foundry user knows them (m/44'/60'/0'/0/i).
ANVIL_ADDRESSES = [
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
]
DERIVER = EvmAddressDeriver()


@pytest.fixture(scope="module")
def anvil_xpub() -> str:
    return account_xpub_from_mnemonic(ANVIL_MNEMONIC)


@pytest.fixture(scope="module")
def master() -> Bip44:
    return Bip44.FromSeed(Bip39SeedGenerator(ANVIL_MNEMONIC).Generate(), Bip44Coins.ETHEREUM)


def test_account_xpub_derives_anvils_funded_addresses(anvil_xpub: str) -> None:
    assert anvil_xpub.startswith("xpub")
    assert [DERIVER.derive(anvil_xpub, i) for i in range(3)] == ANVIL_ADDRESSES


def test_derivation_agrees_with_eth_account_for_many_indexes(anvil_xpub: str) -> None:
    Account.enable_unaudited_hdwallet_features()
    for index in (3, 17, 1000, 2**31 - 1):
        expected = Account.from_mnemonic(
            ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
        ).address.lower()
        assert DERIVER.derive(anvil_xpub, index) == expected


def test_other_accounts_give_other_addresses() -> None:
    second = account_xpub_from_mnemonic(ANVIL_MNEMONIC, account=1)
    Account.enable_unaudited_hdwallet_features()
    expected = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/1'/0/0")
    assert DERIVER.derive(second, 0) == expected.address.lower()


def test_normalize_returns_the_canonical_xpub(anvil_xpub: str) -> None:
    assert DERIVER.normalize_account_key(anvil_xpub) == anvil_xpub
    assert DERIVER.normalize_account_key(f"  {anvil_xpub}\n") == anvil_xpub


def test_an_extended_private_key_is_refused(master: Bip44) -> None:
    xprv = master.Purpose().Coin().Account(0).PrivateKey().ToExtended()
    with pytest.raises(InvalidWallet) as caught:
        DERIVER.normalize_account_key(xprv)
    assert caught.value.code == "private_key_not_accepted"
    assert xprv not in caught.value.detail  # the secret is never echoed


@pytest.mark.parametrize(
    "secret",
    [
        "0x" + "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        ANVIL_MNEMONIC,
    ],
)
def test_raw_private_keys_and_mnemonics_are_refused(secret: str) -> None:
    with pytest.raises(InvalidWallet) as caught:
        DERIVER.normalize_account_key(secret)
    assert caught.value.code == "private_key_not_accepted"
    assert secret not in caught.value.detail


@pytest.mark.parametrize(
    "garbage",
    ["", "xpub", "hello", "xpub6Ce9NcJvTk36xtLSrJLZqE7wtgA5deCeYs7rSQtreh4cj6ByPtrg9sD7V2FNFLPn"],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidWallet) as caught:
        DERIVER.normalize_account_key(garbage)
    assert caught.value.code == "invalid_wallet"
    assert caught.value.field == "xpub"


def test_a_corrupted_checksum_is_refused(anvil_xpub: str) -> None:
    flipped = anvil_xpub[:-1] + ("A" if anvil_xpub[-1] != "A" else "B")
    with pytest.raises(InvalidWallet, match="not a valid extended public key"):
        DERIVER.normalize_account_key(flipped)


def test_keys_at_the_wrong_depth_are_refused(master: Bip44) -> None:
    coin = master.Purpose().Coin()
    change = coin.Account(0).Change(Bip44Changes.CHAIN_EXT)
    for key in (coin.PublicKey().ToExtended(), change.PublicKey().ToExtended()):
        with pytest.raises(InvalidWallet, match="depth"):
            DERIVER.normalize_account_key(key)


def test_an_unhardened_depth_three_key_is_refused() -> None:
    seed = Bip39SeedGenerator(ANVIL_MNEMONIC).Generate()
    node = Bip32Slip10Secp256k1.FromSeed(seed).DerivePath("m/44'/60'/0")
    with pytest.raises(InvalidWallet, match="hardened"):
        DERIVER.normalize_account_key(node.PublicKey().ToExtended())


def test_derive_refuses_bad_keys_and_indexes(anvil_xpub: str) -> None:
    with pytest.raises(InvalidWallet):
        DERIVER.derive("not a key", 0)
    for index in (-1, 2**31):
        with pytest.raises(ValueError, match="index"):
            DERIVER.derive(anvil_xpub, index)


def test_the_receive_chain_is_parsed_once_per_key(anvil_xpub: str) -> None:
    derivation._receive_chain.cache_clear()
    for index in range(50):
        DERIVER.derive(anvil_xpub, index)
    info = derivation._receive_chain.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_an_invalid_mnemonic_is_refused() -> None:
    with pytest.raises(ValueError, match="mnemonic"):
        account_xpub_from_mnemonic("test " * 11 + "test")
