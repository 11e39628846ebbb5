"""Bitcoin-family tracker catch-up: blocks/s of the `sync_once` loop on litecoind regtest.

A private litecoind (regtest, past MWEB activation, as `chaingate dev` starts it) gets a chain
of many-transaction blocks once: each block holds TXS_PER_BLOCK `sendmany` transactions from
the node's own payer wallet with OUTPUTS_PER_TX outputs each, of which PAID_PER_BLOCK pay
watched addresses and the rest pay random unwatched P2WPKH addresses. Then, for 1k and 100k
watched addresses (one open invoice per paid address, amount due = amount paid, the rest
seeded in bulk by `bench/seed.py`: setup, not measured), a fresh SQLite database's tracker
starts with its cursor below the first payment block and `sync_once` runs until it stands on
the tip: every payment credited, every invoice settled, every event written.

Baseline on the same blocks in the same run: a bare loop of `getblockhash` + `getblock
<hash> 2` in batches of `scan_batch_blocks`, JSON parsed with Decimal floats (what any
block follower must at least do), without header checks, matching or the database.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from embit import bech32
from sqlalchemy import func, select

from bench.common import Row, options, print_rows, row, scratch_database, workdir, write_result
from bench.gateway import Shop, settings
from bench.seed import Owner, Plan, seed_invoices
from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import params_for
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.adapters.db.tables import invoices
from chaingate.bootstrap import Container, build_container
from chaingate.config import NetworkConfig
from chaingate.domain.ids import new_id
from chaingate.domain.models import Wallet
from chaingate.entrypoints.dev.litecoind import (
    LitecoindProcess,
    find_litecoind,
    fund_wallets,
    start_litecoind,
)
from chaingate.services.merchants import create_merchant
from chaingate.services.tracking import Tracker, sync_once

NAME = "tracker_catchup_bitcoin"
TXS_PER_BLOCK = 10
OUTPUTS_PER_TX = 20
PAID_PER_BLOCK = 4
OUTPUT_COINS = Decimal("0.001")
INSERT_CHUNK = 5_000
MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)


@dataclass(frozen=True)
class MinedChain:
    start: int  # the cursor's block; payments are in start+1..end
    end: int
    paid: list[tuple[str, int]]  # (address, satoshis)
    transactions: int
    outputs: int


def _random_address(rng: random.Random) -> str:
    return str(bech32.encode("rltc", 0, rng.randbytes(20)))


def mine_chain(node: LitecoindProcess, blocks: int, rng: random.Random) -> MinedChain:
    """Mine `blocks` blocks of sendmany transactions (see the module docstring)."""
    miner = node.call("getnewaddress", wallet="miner")
    start = int(node.call("getblockcount"))
    paid: list[tuple[str, int]] = []
    for number in range(blocks):
        for tx in range(TXS_PER_BLOCK):
            outputs = {_random_address(rng): str(OUTPUT_COINS) for _ in range(OUTPUTS_PER_TX)}
            if tx < PAID_PER_BLOCK:
                address = _random_address(rng)
                coins = OUTPUT_COINS + Decimal(number + 1) / 10**8
                outputs[address] = str(coins)
                paid.append((address, int(coins * 10**8)))
            node.call("sendmany", "", outputs, wallet="payer")
        node.call("generatetoaddress", 1, miner)
    end = int(node.call("getblockcount"))
    counts = [
        len(node.call("getblock", node.call("getblockhash", h), 1)["tx"])
        for h in range(start + 1, end + 1)
    ]
    # coinbase + our transactions (+ the MWEB HogEx transaction after activation)
    if end - start != blocks or any(c < TXS_PER_BLOCK + 1 for c in counts):
        raise RuntimeError(f"the mined chain does not hold the planned transactions: {counts}")
    total_outputs = blocks * (TXS_PER_BLOCK * OUTPUTS_PER_TX + PAID_PER_BLOCK)
    return MinedChain(start, end, paid, blocks * TXS_PER_BLOCK, total_outputs)


def network(node: LitecoindProcess, start_block: int | None, **overrides: Any) -> NetworkConfig:
    """The benchmark's litecoind as a configured network, one confirmation."""
    fields: dict[str, Any] = {
        "name": "ltc-bench",
        "kind": "bitcoin",
        "chain": "litecoin",
        "chain_network": "regtest",
        "rpc_urls": [node.rpc_url],
        "rpc_user": node.rpc_user,
        "rpc_password": node.rpc_password,
        "required_confirmations": 1,
        "start_block": start_block,
    }
    fields.update(overrides)
    return BitcoinNetworkConfig(**fields)


async def prepare(url: str, config: NetworkConfig, **overrides: Any) -> tuple[Container, Shop]:
    """Migrated database, a merchant (full-scope API key) and its LTC wallet: setup."""
    container = build_container(settings(url, [config], **overrides))
    await upgrade_to_head(container.db.engine)
    now = container.clock.now()
    async with container.db.uow() as uow:
        merchant, api_key = await create_merchant(uow, "Bench shop", now)
    key = account_key_from_mnemonic(MNEMONIC, params_for(config))
    identity = container.deriver(config, "p2wpkh").key_identity(key)
    wallet = Wallet(new_id("wal"), merchant.id, config.name, key, 0, now, key_identity=identity)
    async with container.db.uow() as uow:
        await uow.wallets.add(wallet)
        await uow.commit()
    return container, Shop(merchant.id, api_key, wallet.id)


async def add_invoices(
    container: Container, url: str, owner: Owner, chain: MinedChain, watched: int
) -> None:
    now = container.clock.now()
    rows = [
        {
            "id": new_id("inv"),
            "merchant_id": owner.merchant_id,
            "network": owner.network,
            "asset": "LTC",
            "amount_due": satoshis,
            "amount_paid": 0,
            "status": "new",
            "additional_status": "none",
            "address": address,
            "wallet_id": owner.wallet_id,
            "derivation_index": index,
            "order_id": None,
            "metadata": "{}",
            "required_confirmations": 1,
            "tolerance_bps": 0,
            "expires_at": now + timedelta(days=30),
            "watch_until": now + timedelta(days=31),
            "created_at": now - timedelta(days=1),
            "updated_at": now,
        }
        for index, (address, satoshis) in enumerate(chain.paid[:watched])
    ]
    async with container.db.engine.begin() as conn:
        for first in range(0, len(rows), INSERT_CHUNK):
            await conn.execute(invoices.insert(), rows[first : first + INSERT_CHUNK])
    unpaid = watched - len(rows)
    if unpaid > 0:
        plan = Plan(
            count=unpaid,
            first_created=now - timedelta(days=1, milliseconds=unpaid),
            step=timedelta(milliseconds=1),
            open_for=timedelta(days=30),
            watch_for=timedelta(days=1),
            now=now,
            first_index=len(rows),
            amount=10**6,
            asset="LTC",
        )
        await seed_invoices(url, owner, plan)


async def run_tracker(container: Container, config: NetworkConfig) -> dict[str, Any]:
    """Catch up from the cursor to the tip; the first call (placing the cursor) is not timed."""
    client = BitcoinChainClient(config)
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


async def bare_scan(node: LitecoindProcess, chain: MinedChain, batch: int) -> float:
    """Seconds to read the same blocks with getblockhash + getblock verbosity 2, batched."""
    auth = (node.rpc_user, node.rpc_password)
    ids = iter(range(1, 10**9))

    async def call_batch(http: httpx.AsyncClient, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "1.0", "id": next(ids), "method": m, "params": p} for m, p in calls]
        answer = await http.post(node.rpc_url, content=json.dumps(body), auth=auth)
        return [item["result"] for item in json.loads(answer.content, parse_float=Decimal)]

    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        for first in range(chain.start + 1, chain.end + 1, batch):
            heights = range(first, min(chain.end, first + batch - 1) + 1)
            hashes = await call_batch(http, [("getblockhash", [h]) for h in heights])
            blocks = await call_batch(http, [("getblock", [h, 2]) for h in hashes])
            if len(blocks) != len(hashes):
                raise RuntimeError("short batch answer")
        return time.perf_counter() - started


async def _one_size(
    node: LitecoindProcess, chain: MinedChain, watched: int, tmp: Path
) -> dict[str, Any]:
    config = network(node, chain.start)
    bare = await bare_scan(node, chain, config.scan_batch_blocks)
    async with scratch_database("sqlite", f"{NAME}_{watched}", tmp) as url:
        container, shop = await prepare(url, config)
        try:
            owner = Owner(shop.merchant_id, shop.wallet_id, config.name)
            setup_started = time.perf_counter()
            await add_invoices(container, url, owner, chain, watched)
            setup_seconds = time.perf_counter() - setup_started
            tracked = await run_tracker(container, config)
        finally:
            await container.close()
    blocks = chain.end - chain.start
    expected = min(watched, len(chain.paid))
    if tracked["credited"] != expected or tracked["settled"] != expected:
        raise RuntimeError(f"tracker credited {tracked} of {expected} payments")
    return {
        "watched_addresses": watched,
        "invoice_insert_seconds": round(setup_seconds, 3),
        "tracker": {**tracked, "blocks_per_s": blocks / tracked["seconds"]},
        "bare_getblock_2": {"seconds": round(bare, 3), "blocks_per_s": blocks / bare},
        "payments_per_s": expected / tracked["seconds"],
    }


def _rows(figures: dict[str, Any]) -> list[Row]:
    label = f"{figures['watched_addresses']:,} watched"
    return [
        row(NAME, f"{label}: sync_once loop", figures["tracker"]["blocks_per_s"], "blocks/s",
            "bare getblock verbosity 2", figures["bare_getblock_2"]["blocks_per_s"]),
    ]  # fmt: skip


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    blocks = 50 if quick else 220
    sizes = (1_000, 10_000) if quick else (1_000, 100_000)
    batch = NetworkConfig.model_fields["scan_batch_blocks"].default
    summary: list[Row] = []
    details: dict[str, Any] = {
        "blocks": blocks,
        "transactions_per_block": TXS_PER_BLOCK,
        "outputs_per_transaction": OUTPUTS_PER_TX,
        "watched_payments_per_block": PAID_PER_BLOCK,
        "scan_batch_blocks": batch,
        "database": "sqlite",
    }
    with workdir(NAME) as scratch:
        tmp = Path(scratch)
        node = start_litecoind(find_litecoind(), tmp / "litecoind")
        try:
            fund_wallets(node)
            mined_at = time.perf_counter()
            chain = mine_chain(node, blocks, random.Random(20261207))
            details["mining_seconds"] = round(time.perf_counter() - mined_at, 3)
            details["payments"] = len(chain.paid)
            details["transactions"] = chain.transactions
            details["outputs"] = chain.outputs
            # Untimed pass: warms the node's block cache, imports and statement caches.
            warmup = await _one_size(node, chain, len(chain.paid), tmp)
            details["warmup_blocks_per_s"] = round(warmup["tracker"]["blocks_per_s"], 1)
            for watched in sizes:
                figures = await _one_size(node, chain, watched, tmp)
                details[f"watched_{watched}"] = figures
                summary += _rows(figures)
        finally:
            node.stop()
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)
    print(json.dumps({k: v for k, v in details.items() if k.startswith("watched")}, indent=1))


if __name__ == "__main__":
    main()
