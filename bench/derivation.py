"""Watch-only address derivation: EvmAddressDeriver.derive against direct child derivation.

Three loops derive receive addresses .../0/i from the same account xpub, one core each, in
alternating rounds (the median round counts):
- the gateway: `EvmAddressDeriver().derive(xpub, i)` (what every new invoice pays for);
- baseline: BIP-32 CKDpub written directly on coincurve (HMAC-SHA512, one point addition,
  keccak of the uncompressed key) from the pre-parsed .../0 node;
- bip-utils direct: `node.ChildKey(i)` on the pre-parsed .../0 node, without the wrapper.
The baseline's addresses are checked against the gateway's before anything is timed.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from collections.abc import Callable

from bip_utils import Bip32Slip10Secp256k1
from coincurve import PublicKey
from eth_hash.auto import keccak

from bench.common import Row, options, print_rows, row, write_result
from bench.gateway import MERCHANT_MNEMONIC
from chaingate.adapters.chains.evm.derivation import (
    EXTERNAL_CHAIN,
    EvmAddressDeriver,
    account_xpub_from_mnemonic,
)

NAME = "derivation"
ROUNDS = 3


def _coincurve_deriver(xpub: str) -> Callable[[int], str]:
    receive = Bip32Slip10Secp256k1.FromExtendedKey(xpub).ChildKey(EXTERNAL_CHAIN)
    parent = receive.PublicKey().RawCompressed().ToBytes()
    chain_code = receive.ChainCode().ToBytes()
    parent_key = PublicKey(parent)

    def derive(index: int) -> str:
        digest = hmac.new(chain_code, parent + index.to_bytes(4, "big"), hashlib.sha512).digest()
        child = parent_key.add(digest[:32])
        return "0x" + keccak(child.format(compressed=False)[1:])[12:].hex()

    return derive


def _bip_utils_deriver(xpub: str) -> Callable[[int], str]:
    receive = Bip32Slip10Secp256k1.FromExtendedKey(xpub).ChildKey(EXTERNAL_CHAIN)

    def derive(index: int) -> str:
        raw = receive.ChildKey(index).PublicKey().RawUncompressed().ToBytes()
        return "0x" + keccak(raw[1:])[12:].hex()

    return derive


def _rate(derive: Callable[[int], str], count: int, first: int) -> float:
    started = time.perf_counter()
    for index in range(first, first + count):
        derive(index)
    return count / (time.perf_counter() - started)


def measure(quick: bool) -> tuple[list[Row], dict[str, object]]:
    count = 3_000 if quick else 15_000
    xpub = account_xpub_from_mnemonic(MERCHANT_MNEMONIC)
    deriver = EvmAddressDeriver()

    def gateway(index: int) -> str:
        return deriver.derive(xpub, index)

    loops = {
        "gateway": gateway,
        "coincurve": _coincurve_deriver(xpub),
        "bip_utils": _bip_utils_deriver(xpub),
    }
    for index in range(100):
        expected = gateway(index)
        for name, derive in loops.items():
            if derive(index) != expected:
                raise AssertionError(f"{name} derives another address at index {index}")
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for round_number in range(ROUNDS):
        for name, derive in loops.items():
            # Fresh indices each round: nothing is cached per index.
            rates[name].append(_rate(derive, count, 1_000 + round_number * count))
    median = {name: statistics.median(values) for name, values in rates.items()}
    summary = [
        row(NAME, "EvmAddressDeriver.derive", median["gateway"], "addr/s",
            "coincurve CKDpub", median["coincurve"]),
        row(NAME, "EvmAddressDeriver.derive", median["gateway"], "addr/s",
            "bip-utils ChildKey", median["bip_utils"]),
    ]  # fmt: skip
    details = {
        "addresses_per_round": count,
        "rounds": ROUNDS,
        "rates_per_round": {k: [round(v) for v in values] for k, values in rates.items()},
        "median_rate": {k: round(v) for k, v in median.items()},
        "per_address_us": {k: round(1e6 / v, 2) for k, v in median.items()},
    }
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = measure(args.quick)
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
