"""Output descriptors (BIP-380..386) of a wallet's receive addresses, and key origins.

`wpkh([d34db33f/84h/0h/0h]xpub.../0/*)#checksum` is what Bitcoin Core (`importdescriptors`,
`importmulti`), Sparrow and Electrum import to find every address the gateway handed out. The
origin in brackets (master key fingerprint and path) is not part of an extended public key:
the merchant gives it at registration (`key_origin`), or the descriptor goes without it —
enough for a watch-only wallet, while a hardware wallet needs it to sign for the addresses.
"""

from __future__ import annotations

import re

from embit import base58

from chaingate.domain.errors import InvalidWallet

# BIP-380 checksum: a BCH code over the descriptor's characters, 8 characters long.
_INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    'ijklmnopqrstuvwxyzABCDEFGH`#"\\ '
)
_CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)

# The script of each address type around the key expression (BIP-381/382/386).
_SCRIPTS = {
    "p2wpkh": "wpkh({})",
    "p2sh-p2wpkh": "sh(wpkh({}))",
    "p2tr": "tr({})",
    "p2pkh": "pkh({})",
}
_ORIGIN = re.compile(r"([0-9a-fA-F]{8})((?:/[0-9]{1,10}['hH]?)*)")
_HARDENED = 2**31
_FIELD = "key_origin"


def _polymod(symbols: list[int]) -> int:
    checksum = 1
    for value in symbols:
        top = checksum >> 35
        checksum = (checksum & 0x7FFFFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= generator
    return checksum


def descriptor_checksum(descriptor: str) -> str:
    """The 8-character BIP-380 checksum of `descriptor` (without `#`). Raises ValueError for
    a character descriptors cannot hold."""
    symbols: list[int] = []
    groups: list[int] = []
    for char in descriptor:
        position = _INPUT_CHARSET.find(char)
        if position < 0:
            raise ValueError(f"character {char!r} cannot appear in a descriptor")
        symbols.append(position & 31)
        groups.append(position >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    value = _polymod([*symbols, 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1
    return "".join(_CHECKSUM_CHARSET[(value >> (5 * (7 - i))) & 31] for i in range(8))


def with_checksum(descriptor: str) -> str:
    return f"{descriptor}#{descriptor_checksum(descriptor)}"


def receive_descriptor(account_key: str, address_type: str, key_origin: str | None) -> str:
    """The descriptor of `.../0/*` of the account key (in the network's plain xpub/tpub
    version, as stored), with its origin when known, and its checksum."""
    origin = f"[{key_origin}]" if key_origin else ""
    return with_checksum(_SCRIPTS[address_type].format(f"{origin}{account_key}/0/*"))


def normalize_key_origin(account_key: str, origin: str) -> str:
    """`fingerprint/step/step/step` with hardened steps written `h`, checked against the key:
    as many steps as the key's depth, the last one the key's child number. The master key's
    fingerprint itself cannot be checked from an account key. Raises InvalidWallet."""
    text = origin.strip().strip("[]")
    match = _ORIGIN.fullmatch(text)
    if match is None:
        raise InvalidWallet(
            "key_origin is the master key's fingerprint and the account's path, as descriptors "
            "write it: 8 hex digits, then the steps (e.g. d34db33f/84h/0h/0h)",
            code="invalid_key_origin",
            field=_FIELD,
        )
    numbers = []
    for step in (s for s in match.group(2).split("/") if s):
        number = int(step.rstrip("'hH"))
        if number >= _HARDENED:
            raise InvalidWallet(
                f"path step {step} is out of range", code="invalid_key_origin", field=_FIELD
            )
        numbers.append(number + (_HARDENED if step[-1] in "'hH" else 0))
    payload = base58.decode_check(account_key)
    depth, child = payload[4], int.from_bytes(payload[9:13], "big")
    if len(numbers) != depth or (numbers and numbers[-1] != child):
        path = "/".join(_step(n) for n in numbers) or "empty"
        raise InvalidWallet(
            f"this origin does not lead to the key: the key sits at depth {depth} with child "
            f"number {_step(child)}, the origin's path is {path}",
            code="key_origin_mismatch",
            field=_FIELD,
        )
    return "/".join([match.group(1).lower(), *(_step(n) for n in numbers)])


def _step(number: int) -> str:
    return f"{number - _HARDENED}h" if number >= _HARDENED else str(number)
