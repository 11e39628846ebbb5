"""Header verification cost: `parse.header` with proof of work, per chain's PoW hash.

Three loops verify the same real 80-byte header (Litecoin's genesis: its scrypt hash meets its
target) in alternating rounds (the median round counts):
- Litecoin params: double-SHA256 against the claimed hash, then scrypt N=1024 r=1 p=1 PoW;
- Bitcoin-style params: double-SHA256 only, the PoW hash is the block hash (Bitcoin's genesis);
- baseline: the same header with `pow_hash = "none"` (hash and field checks only).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from bench.common import Row, options, print_rows, row, write_result
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.bitcoin.parse import header

NAME = "header_pow"
ROUNDS = 3
LTC_GENESIS = (
    "010000000000000000000000000000000000000000000000000000000000000000000000d9ced4ed1130f7b7faad9b"
    "e25323ffafa33232a17c3edf6cfd97bee6bafbdd97b9aa8e4ef0ff0f1ecd513f7c"
)
LTC_HASH = "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2"
BTC_GENESIS = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c"
    "3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
BTC_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"


def measure(quick: bool) -> tuple[list[Row], dict[str, object]]:
    count = 500 if quick else 3_000
    ltc = BUILT_IN[("litecoin", "mainnet")]
    btc = BUILT_IN[("bitcoin", "mainnet")]
    loops = {
        "scrypt": (LTC_GENESIS, LTC_HASH, ltc),
        "sha256d": (BTC_GENESIS, BTC_HASH, btc),
        "none": (LTC_GENESIS, LTC_HASH, replace(ltc, pow_hash="none")),
    }
    rates: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(ROUNDS):
        for name, (raw, block_hash, params) in loops.items():
            started = time.perf_counter()
            for _ in range(count):
                header(raw, block_hash, "bench", params)
            rates[name].append(count / (time.perf_counter() - started))
    median = {name: statistics.median(values) for name, values in rates.items()}
    summary = [
        row(NAME, "header() with scrypt PoW", median["scrypt"], "headers/s",
            "no PoW check", median["none"]),
        row(NAME, "header() with sha256d PoW", median["sha256d"], "headers/s",
            "no PoW check", median["none"]),
    ]  # fmt: skip
    details = {
        "headers_per_round": count,
        "rounds": ROUNDS,
        "median_rate": {k: round(v) for k, v in median.items()},
        "per_header_us": {k: round(1e6 / v, 1) for k, v in median.items()},
    }
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = measure(args.quick)
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
