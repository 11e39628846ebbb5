"""Watch-only EVM address derivation from an account-level extended public key (BIP-44).

The merchant registers the xpub of m/44'/60'/<account>' (what hardware wallets export); invoice
number N gets the address of .../0/N. No private key ever enters the gateway: extended private
keys, raw private keys and mnemonics are refused with code "private_key_not_accepted".
"""

from __future__ import annotations

import re
from functools import lru_cache

from bip_utils import (
    Bip32Slip10Secp256k1,
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    Bip44,
    Bip44Coins,
)
from eth_hash.auto import keccak

from chaingate.domain.errors import InvalidWallet
from chaingate.domain.wallet_key import key_identity

ACCOUNT_DEPTH = 3  # m / purpose' / coin_type' / account'
EXTERNAL_CHAIN = 0  # receive addresses, as opposed to 1 = change
MAX_INDEX = 2**31 - 1  # above this an index would be hardened, impossible from a public key
_FIELD = "xpub"

# Version prefixes of serialized extended PRIVATE keys (BIP-32/49/84 and testnets).
_PRIVATE_PREFIXES = ("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv")
_RAW_PRIVATE_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def _refuse_private(detail: str) -> InvalidWallet:
    return InvalidWallet(detail, code="private_key_not_accepted", field=_FIELD)


def _looks_private(text: str) -> bool:
    return (
        text.startswith(_PRIVATE_PREFIXES)
        or _RAW_PRIVATE_KEY.fullmatch(text) is not None
        or len(text.split()) >= 12  # a mnemonic phrase
    )


def _parse_account_key(extended_key: str) -> Bip32Slip10Secp256k1:
    text = extended_key.strip()
    if _looks_private(text):
        raise _refuse_private(
            "this looks like private key material; the gateway is watch-only: register the "
            "account's extended PUBLIC key (xpub of m/44'/60'/0')"
        )
    try:
        node = Bip32Slip10Secp256k1.FromExtendedKey(text)
    # bip-utils raises several unrelated exception types for bad input; the message names
    # the problem (checksum, length, version) without echoing the key.
    except Exception as exc:
        raise InvalidWallet(f"not a valid extended public key: {exc}", field=_FIELD) from exc
    if not node.IsPublicOnly():
        raise _refuse_private("an extended private key was given; register the xpub instead")
    depth = node.Depth().ToInt()
    if depth != ACCOUNT_DEPTH:
        raise InvalidWallet(
            f"expected an account-level key (depth {ACCOUNT_DEPTH}, m/44'/60'/0'), "
            f"got depth {depth}",
            field=_FIELD,
        )
    if not node.Index().IsHardened():
        raise InvalidWallet(
            "an account-level key has a hardened index (m/44'/60'/0'); this one does not",
            field=_FIELD,
        )
    return node


@lru_cache(maxsize=4096)
def _receive_chain(extended_key: str) -> Bip32Slip10Secp256k1:
    # Parsing the key and deriving .../0 costs as much as many addresses: do it once per key.
    return _parse_account_key(extended_key).ChildKey(EXTERNAL_CHAIN)


def address_of_public_key(uncompressed: bytes) -> str:
    """The lower-case address of a 65-byte uncompressed secp256k1 public key."""
    return "0x" + keccak(uncompressed[1:])[12:].hex()


class EvmAddressDeriver:
    """AddressDeriver for EVM networks: xpub of m/44'/60'/n' -> lower-case 0x addresses."""

    def normalize_account_key(self, extended_key: str) -> str:
        """The canonical xpub string. Raises InvalidWallet (code "private_key_not_accepted"
        for private key material) when the key cannot serve as a watch-only account key."""
        normalized: str = _parse_account_key(extended_key).PublicKey().ToExtended()
        return normalized

    def derive(self, extended_key: str, index: int) -> str:
        """The receive address .../0/index. Raises InvalidWallet for a bad key, ValueError for
        an index outside 0..2**31-1."""
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"derivation index out of range: {index}")
        child = _receive_chain(extended_key.strip()).ChildKey(index)
        return address_of_public_key(child.PublicKey().RawUncompressed().ToBytes())

    def key_identity(self, extended_key: str) -> str:
        """The public key and chain code (see domain.wallet_key; one address form, so no
        script type); the parent fingerprint and child number play no part."""
        node = _parse_account_key(extended_key)
        public_key: bytes = node.PublicKey().RawCompressed().ToBytes()
        chain_code: bytes = node.ChainCode().ToBytes()
        return key_identity(public_key, chain_code, None)


def account_xpub_from_mnemonic(mnemonic: str, account: int = 0, passphrase: str = "") -> str:
    """The xpub of m/44'/60'/account' for a BIP-39 mnemonic (dev demo and tests only).

    Raises ValueError for an invalid mnemonic.
    """
    if not Bip39MnemonicValidator().IsValid(mnemonic):
        raise ValueError("invalid BIP-39 mnemonic")
    seed = Bip39SeedGenerator(mnemonic).Generate(passphrase)
    wallet = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
    extended: str = wallet.Purpose().Coin().Account(account).PublicKey().ToExtended()
    return extended
