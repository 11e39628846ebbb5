"""The invoice API on an empty database and with 1,000,000 invoices already stored.

Same server, same load generator, same concurrency (16) as `bench/invoice_api.py`. For each
backend (SQLite, then PostgreSQL) two fresh databases are prepared once: one empty, one holding
N invoices bulk-seeded for the same merchant and wallet by `bench/seed.py` (half a year of
history, one-hour invoices, almost all expired). Each gets its own `chaingate api` process, and
both processes stay up for the whole backend run.

This machine's load moves figures by 13-30% between runs, more than the 20% being checked, so
the two servers are measured INTERLEAVED: ROUNDS rounds, each running every phase on both
servers back to back (the order flips every round: empty-seeded, then seeded-empty, ...), so
other people's load hits both sides alike. The phases of a round:
1. POST /v1/invoices for the create window (create rate, p50/p95/p99);
2. GET /v1/invoices?limit=20 (the first page, newest first), p95;
3. GET /v1/invoices?status=new&limit=20 (a filtered page), p95.
The lists run after the first creates, so the "empty" database holds the invoices just created
and every page is full (20 invoices) on both sizes. Each round gives a ratio seeded/empty per
figure; the verdict uses the median of the rounds. Issue 5 asks the ratio to stay within 20%
(create rate at least 0.8x, list p95 at most 1.2x). That is reported, never asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    Child,
    Row,
    busy_cores_since,
    cpu_mark,
    free_port,
    options,
    postgres_reachable,
    print_rows,
    python_module,
    row,
    scratch_database,
    workdir,
    write_result,
)
from bench.gateway import NETWORK, environment, network, networks_toml, prepared, settings
from bench.invoice_api import CONCURRENCY, DEAD_RPC_URL, INVOICE_BODY, _phase
from bench.seed import Owner, Plan, seed_invoices

NAME = "invoice_api_scale"
LISTS = {
    "list": "/v1/invoices?limit=20",
    "filtered list": "/v1/invoices?status=new&limit=20",
}
PHASES = ("create", *LISTS)
SIDES = ("empty", "seeded")
TOLERANCE = 0.20


class Side:
    """One database (empty or seeded) and the `chaingate api` process serving it."""

    def __init__(self, server: Child, port: int, auth: dict[str, str], stored: int) -> None:
        self.server = server
        self.port = port
        self.auth = auth
        self.stored = stored

    def phase(self, name: str, timing: dict[str, float]) -> dict[str, Any]:
        if name == "create":
            path, method, body, window = "/v1/invoices", "POST", INVOICE_BODY, timing["create"]
        else:
            path, method, body, window = LISTS[name], "GET", None, timing["list"]
        return _phase(
            self.server, self.port, path, method, body, self.auth, window, timing["warmup"]
        )


async def _side(
    stack: AsyncExitStack, kind: str, label: str, size: int, tmp: Path
) -> tuple[Side, float]:
    """A fresh database with `size` invoices seeded, served by its own api process."""
    url = await stack.enter_async_context(scratch_database(kind, f"scale_{label}", tmp))
    config = settings(url, [network(DEAD_RPC_URL)])
    container, shop = await prepared(config)
    now = container.clock.now()
    await container.close()
    seeded = 0.0
    if size:
        history = timedelta(days=182)
        plan = Plan(
            count=size,
            first_created=now - history,
            step=history / size,
            open_for=timedelta(hours=1),
            watch_for=timedelta(days=1),
            now=now,
        )
        started = time.perf_counter()
        await seed_invoices(url, Owner(shop.merchant_id, shop.wallet_id, NETWORK), plan)
        seeded = time.perf_counter() - started
    networks_file = tmp / f"networks-{kind}-{label}.toml"
    networks_file.write_text(networks_toml(config.networks[0]))
    port = free_port()
    argv = python_module("chaingate.entrypoints.cli", "api")
    env = environment(config, networks_file, port)
    server = stack.enter_context(Child(argv, tmp / f"api-{kind}-{label}.log", env=env))
    server.wait_http(f"http://127.0.0.1:{port}/healthz")
    auth = {"Authorization": f"Bearer {shop.api_key}"}
    return Side(server, port, auth, size), seeded


def _figure(phase: str, result: dict[str, Any]) -> float:
    """The figure issue 5 bounds: the create rate, or a list's p95 latency."""
    if phase == "create":
        return float(result["rate_per_s"])
    return float(result["latency"]["p95_ms"])


def _ratio(phase: str, empty: dict[str, Any], seeded: dict[str, Any]) -> float:
    return round(_figure(phase, seeded) / max(_figure(phase, empty), 1e-9), 3)


def _within(phase: str, ratio: float) -> bool:
    return ratio >= 1 - TOLERANCE if phase == "create" else ratio <= 1 + TOLERANCE


async def _backend(
    kind: str, size: int, rounds: int, timing: dict[str, float], tmp: Path
) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        empty, _ = await _side(stack, kind, "empty", 0, tmp)
        seeded, seed_seconds = await _side(stack, kind, "seeded", size, tmp)
        sides = {"empty": empty, "seeded": seeded}
        measured: list[dict[str, Any]] = []
        for number in range(rounds):
            order = SIDES if number % 2 == 0 else SIDES[::-1]
            mark = cpu_mark()
            figures: dict[str, Any] = {"order": list(order)}
            for phase in PHASES:
                results = {side: sides[side].phase(phase, timing) for side in order}
                figures[phase] = {
                    **results,
                    "ratio": _ratio(phase, results["empty"], results["seeded"]),
                }
            figures["machine_busy_cores"] = busy_cores_since(mark)
            measured.append(figures)
            print(f"{kind} round {number + 1}/{rounds}: {_round_line(figures)}", flush=True)
    return {"seed_seconds": round(seed_seconds, 1), "rounds": measured, **_summary(measured)}


def _round_line(figures: dict[str, Any]) -> str:
    parts = [f"{phase} {figures[phase]['ratio']:.3f}" for phase in PHASES]
    return ", ".join(parts) + f" (machine busy {figures['machine_busy_cores']} cores)"


def _summary(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over the rounds of each side's figures and of the per-round ratios."""
    medians: dict[str, Any] = {}
    verdict: dict[str, Any] = {}
    for phase in PHASES:
        ratios = [r[phase]["ratio"] for r in measured]
        median_ratio = round(statistics.median(ratios), 3)
        key = phase.replace(" ", "_")
        medians[phase] = {
            side: {
                "rate_per_s": statistics.median(r[phase][side]["rate_per_s"] for r in measured),
                "p50_ms": statistics.median(r[phase][side]["latency"]["p50_ms"] for r in measured),
                "p95_ms": statistics.median(r[phase][side]["latency"]["p95_ms"] for r in measured),
                "p99_ms": statistics.median(r[phase][side]["latency"]["p99_ms"] for r in measured),
                "server_cpu_ms_per_request": statistics.median(
                    r[phase][side]["server_cpu_ms_per_request"] for r in measured
                ),
                "errors": sum(r[phase][side]["errors"] for r in measured),
            }
            for side in SIDES
        }
        verdict[f"{key}_ratios"] = ratios
        verdict[f"{key}_median_ratio"] = median_ratio
        verdict[f"{key}_within_20pct"] = _within(phase, median_ratio)
    busy = [r["machine_busy_cores"] for r in measured]
    return {"median": medians, "verdict": verdict, "machine_busy_cores_per_round": busy}


def _rows(kind: str, size: int, figures: dict[str, Any]) -> list[Row]:
    stored = f"{size:,} stored"
    median, verdict = figures["median"], figures["verdict"]
    rows = []
    for phase in PHASES:
        key = phase.replace(" ", "_")
        what = "POST /v1/invoices rate" if phase == "create" else f"GET {LISTS[phase]} p95"
        unit, field = ("req/s", "rate_per_s") if phase == "create" else ("ms", "p95_ms")
        rows.append(
            row(NAME, f"{kind}, {stored}: {what} (median of rounds)",
                median[phase]["seeded"][field], unit, "same, empty DB",
                median[phase]["empty"][field])
        )  # fmt: skip
        rows[-1]["ratio"] = verdict[f"{key}_median_ratio"]  # median of per-round ratios
    errors = {side: sum(median[p][side]["errors"] for p in PHASES) for side in SIDES}
    rows.append(
        row(NAME, f"{kind}, {stored}: errors", errors["seeded"], "count", "empty DB",
            errors["empty"])
    )  # fmt: skip
    return rows


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    size = 100_000 if quick else 1_000_000
    rounds = 2 if quick else 4
    timing = (
        {"create": 5.0, "list": 3.0, "warmup": 1.0}
        if quick
        else {"create": 8.0, "list": 4.0, "warmup": 1.0}
    )
    details: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "seeded_invoices": size,
        "rounds": rounds,
        "window_s": timing,
        "lists": LISTS,
        "server": "chaingate api (one uvicorn process, no workers), one per database",
        "ratio": "seeded / empty per round; verdict on the median of the rounds",
    }
    summary: list[Row] = []
    skipped = await postgres_reachable()
    with workdir(NAME) as scratch:
        for kind in ("sqlite", "postgresql"):
            if kind == "postgresql" and skipped:
                details["postgresql"] = {"skipped": skipped}
                continue
            figures = await _backend(kind, size, rounds, timing, Path(scratch))
            details[kind] = figures
            summary += _rows(kind, size, figures)
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)
    for kind in ("sqlite", "postgresql"):
        if "verdict" in details.get(kind, {}):
            print(f"{kind}: {details[kind]['verdict']}")


if __name__ == "__main__":
    main()
