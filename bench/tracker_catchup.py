"""Tracker catch-up: blocks/s of the `sync_once` loop from an old cursor to the tip (SQLite).

anvil mines a chain once (automine off, `anvil_mine` after each batch of transactions): every
block holds two ETH payments and one ERC-20 payment to watched addresses plus two ETH
transfers to unwatched ones. Then, for 1k, 100k and 1M watched addresses (open invoices written
in bulk through SQL, `bench/seed.py` for the unpaid ones: setup, not measured), a fresh
database's tracker starts with its cursor below the first payment block and `sync_once` runs
until it stands on the tip: every payment is credited, every invoice settles, every event is
written. Baselines on the same blocks with the
same JsonRpcClient and the same batch size (`scan_batch_blocks`):
- bare: eth_getBlockByNumber(full) + eth_getLogs (by block hash) per batch;
- same RPC: the bare loop plus the receipts of payments to watched addresses, i.e. the calls
  the tracker's scan made before payment proofs and traces (it now also reads each paying
  block's receipts and, with `internal_transfers` on, each block's trace: docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.chain import TOKEN_DECIMALS, TOKEN_SYMBOL, Anvil, eth_transfer, token_transfer
from bench.common import (
    Row,
    options,
    print_rows,
    row,
    scratch_database,
    workdir,
    write_result,
)
from bench.gateway import Shop, network, prepared, settings
from bench.seed import Owner, Plan, seed_invoices
from chaingate.adapters.chains.evm.client import EvmChainClient
from chaingate.adapters.chains.evm.rpc import JsonRpcClient, RpcCall
from chaingate.adapters.chains.evm.scanner import TRANSFER_TOPIC
from chaingate.adapters.db.tables import invoices
from chaingate.bootstrap import Container
from chaingate.config import NetworkConfig, TokenConfig
from chaingate.domain.ids import new_id
from chaingate.services.tracking import Tracker, sync_once

NAME = "tracker_catchup"
NATIVE_PER_BLOCK = 2
TOKEN_PER_BLOCK = 1
NOISE_PER_BLOCK = 2
INSERT_CHUNK = 5_000


@dataclass(frozen=True)
class Paid:
    address: str
    asset: str
    amount: int


@dataclass(frozen=True)
class MinedChain:
    start: int  # the cursor's block; payments are in start+1..end
    end: int
    token: str
    paid: list[Paid]


def _address(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


def mine_chain(node: Anvil, blocks: int, rng: random.Random) -> MinedChain:
    """Mine `blocks` blocks of payments (see the module docstring); returns what was paid."""
    payer, bystander = node.accounts[1], node.accounts[2]
    token = node.deploy_token(payer)
    node.rpc("evm_setAutomine", False)
    start = node.tip()
    paid: list[Paid] = []
    for number in range(blocks):
        calls: list[tuple[str, list[Any]]] = []
        for _ in range(NATIVE_PER_BLOCK):
            payment = Paid(_address(rng), "ETH", 10**15 * (1 + number % 97))
            calls.append(eth_transfer(payer, payment.address, payment.amount))
            paid.append(payment)
        for _ in range(TOKEN_PER_BLOCK):
            payment = Paid(_address(rng), TOKEN_SYMBOL, 10**6 * (1 + number % 89))
            calls.append(token_transfer(payer, token, payment.address, payment.amount))
            paid.append(payment)
        for _ in range(NOISE_PER_BLOCK):
            calls.append(eth_transfer(bystander, _address(rng), 1))
        node.batch(calls)
        node.rpc("anvil_mine", "0x1")
    node.rpc("evm_setAutomine", True)
    end = node.tip()
    counts = node.batch(
        [("eth_getBlockTransactionCountByNumber", [hex(n)]) for n in range(start + 1, end + 1)]
    )
    per_block = NATIVE_PER_BLOCK + TOKEN_PER_BLOCK + NOISE_PER_BLOCK
    if end - start != blocks or any(int(c, 16) != per_block for c in counts):
        raise RuntimeError("the mined chain does not hold the planned transactions")
    return MinedChain(start, end, token, paid)


async def add_invoices(
    container: Container, url: str, shop: Shop, chain: MinedChain, watched: int
) -> None:
    """One invoice per paid address (amount due = amount paid), then unpaid ones up to
    `watched`, all open for a month. Bulk SQL (`bench/seed.py` for the unpaid ones): setup."""
    now = container.clock.now()
    network_name = container.settings.networks[0].name
    rows: list[dict[str, Any]] = []
    for index, paid in enumerate(chain.paid[:watched]):
        rows.append(
            {
                "id": new_id("inv"),
                "merchant_id": shop.merchant_id,
                "network": network_name,
                "asset": paid.asset,
                "amount_due": paid.amount,
                "amount_paid": 0,
                "status": "new",
                "additional_status": "none",
                "address": paid.address,
                "wallet_id": shop.wallet_id,
                "derivation_index": index,
                "order_id": None,
                "metadata": "{}",
                "required_confirmations": 1,
                "tolerance_bps": 0,
                "expires_at": now + timedelta(days=30),
                "watch_until": now + timedelta(days=31),
                "created_at": now,
                "updated_at": now,
            }
        )
    async with container.db.engine.begin() as conn:
        for first in range(0, len(rows), INSERT_CHUNK):
            await conn.execute(invoices.insert(), rows[first : first + INSERT_CHUNK])
    unpaid = watched - len(rows)
    if unpaid > 0:
        plan = Plan(
            count=unpaid,
            first_created=now - timedelta(milliseconds=unpaid),
            step=timedelta(milliseconds=1),
            open_for=timedelta(days=30),
            watch_for=timedelta(days=1),
            now=now,
            first_index=len(rows),
        )
        await seed_invoices(url, Owner(shop.merchant_id, shop.wallet_id, network_name), plan)


async def run_tracker(container: Container, config: NetworkConfig) -> dict[str, Any]:
    """Catch up from the cursor to the tip; the first call (placing the cursor) is not timed."""
    client = EvmChainClient(config)
    tracker = Tracker(container.db, client, config, container.family(config), container.clock)
    try:
        await sync_once(tracker)
        credited = calls = 0
        started = time.perf_counter()
        while True:
            outcome = await sync_once(tracker)
            credited += outcome.credited
            calls += 1
            if outcome.at_tip:
                break
        elapsed = time.perf_counter() - started
    finally:
        await client.close()
    async with container.db.engine.connect() as conn:
        settled = (
            await conn.execute(select(func.count()).where(invoices.c.status == "settled"))
        ).scalar_one()
    return {
        "seconds": round(elapsed, 3),
        "sync_once_calls": calls,
        "credited": credited,
        "settled": int(settled),
    }


async def bare_scan(rpc_url: str, chain: MinedChain, batch: int, watched: set[str] | None) -> float:
    """Seconds to read the same blocks and logs (and receipts, given `watched`)."""
    rpc = JsonRpcClient([rpc_url], timeout=10)
    log_filter: dict[str, Any] = {"address": [chain.token], "topics": [TRANSFER_TOPIC]}
    try:
        started = time.perf_counter()
        for first in range(chain.start + 1, chain.end + 1, batch):
            heights = range(first, min(chain.end, first + batch - 1) + 1)
            blocks = await rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in heights])
            logs = await rpc.batch(
                [("eth_getLogs", [{**log_filter, "blockHash": b["hash"]}]) for b in blocks]
            )
            if watched is None:
                continue
            txids = [
                tx["hash"] for b in blocks for tx in b["transactions"] if tx["to"] in watched
            ] + [
                entry["transactionHash"]
                for block_logs in logs
                for entry in block_logs
                if "0x" + entry["topics"][2][26:] in watched
            ]
            calls: list[RpcCall] = [("eth_getTransactionReceipt", [t]) for t in txids]
            await rpc.batch(calls)
        return time.perf_counter() - started
    finally:
        await rpc.close()


async def _one_size(
    node: Anvil, chain: MinedChain, watched: int, tmp: Path, batch: int
) -> dict[str, Any]:
    token = TokenConfig(symbol=TOKEN_SYMBOL, contract=chain.token, decimals=TOKEN_DECIMALS)
    config = network(node.rpc_url, tokens=[token], start_block=chain.start, scan_batch_blocks=batch)
    paid = {p.address for p in chain.paid}
    bare = await bare_scan(node.rpc_url, chain, batch, None)
    same_rpc = await bare_scan(node.rpc_url, chain, batch, paid)
    async with scratch_database("sqlite", f"{NAME}_{watched}", tmp) as url:
        container, shop = await prepared(settings(url, [config]))
        try:
            setup_started = time.perf_counter()
            await add_invoices(container, url, shop, chain, watched)
            setup_seconds = time.perf_counter() - setup_started
            tracked = await run_tracker(container, config)
        finally:
            await container.close()
    blocks = chain.end - chain.start
    if tracked["credited"] != len(chain.paid) or tracked["settled"] != len(chain.paid):
        raise RuntimeError(f"tracker credited {tracked} of {len(chain.paid)} payments")
    return {
        "watched_addresses": watched,
        "invoice_insert_seconds": round(setup_seconds, 3),
        "tracker": {**tracked, "blocks_per_s": blocks / tracked["seconds"]},
        "bare_blocks_logs": {"seconds": round(bare, 3), "blocks_per_s": blocks / bare},
        "same_rpc_calls": {"seconds": round(same_rpc, 3), "blocks_per_s": blocks / same_rpc},
        "payments_per_s": len(chain.paid) / tracked["seconds"],
    }


def _rows(figures: dict[str, Any]) -> list[Row]:
    label = f"{figures['watched_addresses']:,} watched"
    tracker = figures["tracker"]["blocks_per_s"]
    return [
        row(NAME, f"{label}: sync_once loop", tracker, "blocks/s",
            "bare getBlock+getLogs", figures["bare_blocks_logs"]["blocks_per_s"]),
        row(NAME, f"{label}: sync_once loop", tracker, "blocks/s",
            "same RPC calls, no DB", figures["same_rpc_calls"]["blocks_per_s"]),
    ]  # fmt: skip


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    blocks = 100 if quick else 300
    sizes = (1_000, 10_000) if quick else (1_000, 100_000, 1_000_000)
    batch = NetworkConfig.model_fields["scan_batch_blocks"].default
    summary: list[Row] = []
    details: dict[str, Any] = {"blocks": blocks, "scan_batch_blocks": batch, "database": "sqlite"}
    with workdir(NAME) as scratch:
        tmp = Path(scratch)
        node = Anvil(tmp)
        try:
            mined_at = time.perf_counter()
            chain = mine_chain(node, blocks, random.Random(20261122))
            details["mining_seconds"] = round(time.perf_counter() - mined_at, 3)
            details["payments"] = len(chain.paid)
            details["transactions_per_block"] = NATIVE_PER_BLOCK + TOKEN_PER_BLOCK + NOISE_PER_BLOCK
            # Untimed pass: warms anvil's block cache, imports and SQLAlchemy's statement cache,
            # so the first measured size is not charged for them.
            warmup = await _one_size(node, chain, len(chain.paid), tmp, batch)
            details["warmup_blocks_per_s"] = round(warmup["tracker"]["blocks_per_s"], 1)
            for watched in sizes:
                figures = await _one_size(node, chain, watched, tmp, batch)
                details[f"watched_{watched}"] = figures
                summary += _rows(figures)
        finally:
            node.close()
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)
    print(json.dumps({k: v for k, v in details.items() if k.startswith("watched")}, indent=1))


if __name__ == "__main__":
    main()
