"""Run every benchmark in sequence, each in its own process, and print one summary table.

`python -m bench.run_all [--quick]` (what `make bench` runs). Each benchmark writes
bench/results/<name>.json; this writes bench/results/summary.json with every summary row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.common import (
    REPO_ROOT,
    RESULTS_DIR,
    Row,
    options,
    print_rows,
    wait_until_quiet,
    write_result,
)

BENCHMARKS = (
    "derivation",
    "header_pow",  # header verification per PoW hash (scrypt ~1 ms)
    "invoice_api",
    "invoice_api_scale",  # empty vs 1M stored (100k with --quick): ~5 min of a full run
    "webhook_dispatch",
    "tracker_catchup",
    "tracker_catchup_bitcoin",  # litecoind regtest: 220 blocks of sendmany transactions
    "detection_latency",
    "detection_latency_bitcoin",  # litecoind: block -> settled webhook, polling (no ZMQ)
    "wallet_gap",  # the wallet answer's gap figures on a 100k-invoice wallet
    "signer",  # signatures/s: keystores, the signer core, over its socket; SoftHSM2
)


def main() -> None:
    args = options(__doc__, wait_quiet=True)
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    busy_before: dict[str, float] = {}
    failed: list[str] = []
    for name in BENCHMARKS:
        if args.wait_quiet:
            busy_before[name] = wait_until_quiet(args.wait_quiet)
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        argv = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
        done = subprocess.run(argv, cwd=REPO_ROOT, check=False)
        seconds[name] = round(time.monotonic() - started, 1)
        if done.returncode != 0:
            failed.append(name)
            continue
        rows += json.loads((RESULTS_DIR / f"{name}.json").read_text())["summary"]
    write_result(
        "summary",
        args.quick,
        rows,
        {"seconds": seconds, "busy_cores_before": busy_before, "failed": failed},
    )
    print(f"\n== summary ({'quick' if args.quick else 'full'}) ==")
    print_rows(rows)
    print("seconds per benchmark: " + ", ".join(f"{k} {v}" for k, v in seconds.items()))
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
