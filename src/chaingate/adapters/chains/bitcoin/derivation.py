"""Watch-only Bitcoin-family derivation from an account-level extended public key.

The merchant registers the key of m/84'/c'/a' (P2WPKH, BIP-84), m/49'/c'/a' (P2SH-P2WPKH,
BIP-49) or m/86'/c'/a' (P2TR, BIP-86); invoice N pays to .../0/N. SLIP-132 versions (zpub, vpub,
ypub, upub, Ltub, Mtub) and plain xpub/tpub are accepted and stored as the network's plain
version, so the same key cannot be registered twice under two spellings. Private keys, WIF and
mnemonics are refused with code "private_key_not_accepted".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, cast, get_args

from embit import base58, bip32, bip39, script

from chaingate.adapters.chains.bitcoin.params import ChainParams
from chaingate.domain.errors import InvalidWallet
from chaingate.domain.wallet_key import key_identity

AddressType = Literal["p2wpkh", "p2sh-p2wpkh", "p2tr", "p2pkh"]
ADDRESS_TYPES: tuple[str, ...] = get_args(AddressType)
DEFAULT_ADDRESS_TYPE: AddressType = "p2wpkh"
PURPOSE: dict[str, int] = {"p2wpkh": 84, "p2sh-p2wpkh": 49, "p2tr": 86, "p2pkh": 44}

ACCOUNT_DEPTH = 3
EXTERNAL_CHAIN = 0
MAX_INDEX = 2**31 - 1
_FIELD = "xpub"
_HARDENED = 2**31

# Serialization versions of extended PRIVATE keys of every family we know (xprv, yprv, zprv,
# tprv, uprv, vprv, Ltpv, Mtpv, ttpv): refused even on a network that does not list them.
_PRIVATE_VERSIONS = {
    bytes.fromhex(v)
    for v in [
        "0488ade4",
        "049d7878",
        "04b2430c",
        "04358394",
        "044a4e28",
        "045f18bc",
        "019d9cfe",
        "01b26792",
        "0436ef7d",
    ]
}
_PRIVATE_PREFIXES = ("xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Ltpv", "Mtpv", "ttpv")
_RAW_PRIVATE_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_WIF = re.compile(r"[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}")


def _refuse_private(detail: str) -> InvalidWallet:
    return InvalidWallet(detail, code="private_key_not_accepted", field=_FIELD)


def _looks_private(text: str) -> bool:
    return (
        text.startswith(_PRIVATE_PREFIXES)
        or _RAW_PRIVATE_KEY.fullmatch(text) is not None
        or _WIF.fullmatch(text) is not None
        or len(text.split()) >= 12
    )


def _decode(params: ChainParams, extended_key: str) -> tuple[bytes, bytes]:
    """(version, payload after the version) of a checked extended public key."""
    text = extended_key.strip()
    if _looks_private(text):
        raise _refuse_private(
            "this looks like private key material; the gateway is watch-only: register the "
            f"account's extended PUBLIC key (m/84'/{params.coin_type}'/0' for P2WPKH)"
        )
    try:
        raw = base58.decode_check(text)
    except Exception as exc:  # embit raises several types for a bad checksum or alphabet
        raise InvalidWallet(f"not a valid extended public key: {exc}", field=_FIELD) from exc
    if len(raw) != 78:
        raise InvalidWallet("not a valid extended public key: wrong length", field=_FIELD)
    version, payload = raw[:4], raw[4:]
    if version in _PRIVATE_VERSIONS or payload[41] == 0:
        raise _refuse_private("an extended private key was given; register the public key")
    if version not in params.all_public_versions:
        raise InvalidWallet(
            f"this extended key is for another network than {params.chain} {params.network}",
            code="wrong_network_key",
            field=_FIELD,
        )
    depth, child = payload[0], int.from_bytes(payload[5:9], "big")
    if depth != ACCOUNT_DEPTH:
        raise InvalidWallet(
            f"expected an account-level key (depth {ACCOUNT_DEPTH}, m/84'/{params.coin_type}'/0'),"
            f" got depth {depth}",
            field=_FIELD,
        )
    if child < _HARDENED:
        raise InvalidWallet(
            "an account-level key has a hardened index (m/84'/c'/0'); this one does not",
            field=_FIELD,
        )
    return version, payload


def implied_address_type(params: ChainParams, extended_key: str) -> AddressType | None:
    """The script type a SLIP-132 version names (zpub: p2wpkh, ypub: p2sh-p2wpkh), None for
    a plain xpub/tpub. Raises InvalidWallet like `normalize_account_key`."""
    version, _ = _decode(params, extended_key)
    if version in params.zpub_versions:
        return "p2wpkh"
    if version in params.ypub_versions:
        return "p2sh-p2wpkh"
    return None


def _canonical(params: ChainParams, payload: bytes) -> str:
    return str(base58.encode_check(params.xpub_versions[0] + payload))


@lru_cache(maxsize=4096)
def _receive_chain(extended_key: str) -> bip32.HDKey:
    # Parsing and deriving .../0 costs as much as many addresses: once per key.
    raw = base58.decode_check(extended_key)
    node = bip32.HDKey.parse(bytes.fromhex("0488b21e") + raw[4:])
    return node.derive([EXTERNAL_CHAIN])


class BitcoinAddressDeriver:
    """AddressDeriver for one Bitcoin-family network and script type."""

    def __init__(self, params: ChainParams, address_type: str = DEFAULT_ADDRESS_TYPE) -> None:
        if address_type not in ADDRESS_TYPES:
            raise ValueError(f"unknown address type {address_type!r}")
        if not params.segwit and address_type != "p2pkh":
            raise ValueError(f"{params.chain} has no SegWit: only p2pkh addresses")
        self.params = params
        self.address_type = cast(AddressType, address_type)
        self._network = params.embit_network()

    def normalize_account_key(self, extended_key: str) -> str:
        """The key in the network's plain version (xpub/tpub). Raises InvalidWallet (code
        "private_key_not_accepted" for private key material, "address_type_mismatch" when a
        SLIP-132 version names another script type)."""
        implied = implied_address_type(self.params, extended_key)
        if implied is not None and implied != self.address_type:
            raise InvalidWallet(
                f"this key's version is for {implied} addresses, not {self.address_type}: "
                f"set address_type to {implied!r} or export the matching key",
                code="address_type_mismatch",
                field="address_type",
            )
        _, payload = _decode(self.params, extended_key)
        return _canonical(self.params, payload)

    def derive(self, extended_key: str, index: int) -> str:
        """The receive address .../0/index. Raises InvalidWallet for a bad key, ValueError for
        an index outside 0..2**31-1."""
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"derivation index out of range: {index}")
        text = extended_key.strip()
        _decode(self.params, text)
        child = _receive_chain(text).derive([index])
        return output_script(child.key, self.address_type).address(self._network)  # type: ignore[no-any-return]

    def key_identity(self, extended_key: str) -> str:
        """The key material and script type (see domain.wallet_key); the version, parent
        fingerprint and child number of the serialization play no part. Raises InvalidWallet."""
        _, payload = _decode(self.params, extended_key)
        return key_identity(payload[41:74], payload[9:41], self.address_type)

    def receive_public_key(self, extended_key: str, index: int) -> bytes:
        """The compressed public key of `.../0/index`. Raises InvalidWallet, ValueError."""
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"derivation index out of range: {index}")
        text = extended_key.strip()
        _decode(self.params, text)
        sec: bytes = _receive_chain(text).derive([index]).key.sec()
        return sec


def output_script(public_key: object, address_type: AddressType) -> script.Script:
    if address_type == "p2wpkh":
        return script.p2wpkh(public_key)
    if address_type == "p2sh-p2wpkh":
        return script.p2sh(script.p2wpkh(public_key))
    if address_type == "p2tr":
        return script.p2tr(public_key)
    return script.p2pkh(public_key)


def account_key_from_mnemonic(
    mnemonic: str,
    params: ChainParams,
    address_type: AddressType = DEFAULT_ADDRESS_TYPE,
    account: int = 0,
    passphrase: str = "",
) -> str:
    """The account key m/purpose'/coin'/account' of a BIP-39 mnemonic, in the network's SLIP-132
    version for P2WPKH (zpub/vpub) and P2SH-P2WPKH, plain otherwise (dev demo and tests only).

    Raises ValueError for an invalid mnemonic.
    """
    if not bip39.mnemonic_is_valid(mnemonic):
        raise ValueError("invalid BIP-39 mnemonic")
    root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic, passphrase))
    path = [PURPOSE[address_type] + _HARDENED, params.coin_type + _HARDENED, account + _HARDENED]
    public = root.derive(path).to_public()
    versions = {
        "p2wpkh": params.zpub_versions,
        "p2sh-p2wpkh": params.ypub_versions,
    }.get(address_type) or params.xpub_versions
    return str(public.to_base58(version=versions[0]))
