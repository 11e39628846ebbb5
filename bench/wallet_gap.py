"""The gap figures' read cost: what `GET /v1/wallets/{id}` reads, against invoice creation's.

One Bitcoin-family wallet with N invoices of which every second one is paid (the worst case for
the widest-gap query: every paid invoice is a row of the window), on SQLite and PostgreSQL.
In alternating rounds (the median counts):
- `paid_gaps`: the widest gap before a paid index and the last paid index, one window query
  over all the wallet's paid invoices — the wallet answer and the dashboard page;
- baseline `highest_paid_index`: the walk down from the newest index that every Bitcoin-family
  invoice creation does (the gap check).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    Row,
    options,
    postgres_reachable,
    print_rows,
    row,
    scratch_database,
    workdir,
    write_result,
)
from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.adapters.db.tables import invoices, merchants, payments, wallets
from chaingate.adapters.db.uow import Database

NAME = "wallet_gap"
ROUNDS = 5
BATCH = 10_000


async def seed(url: str, count: int) -> None:
    engine = create_engine(url)
    await upgrade_to_head(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(merchants.insert().values(id="mer_bench", name="bench", created_at=now))
        await conn.execute(
            wallets.insert().values(
                id="wal_bench",
                merchant_id="mer_bench",
                network="ltc",
                account_key="tpub-bench",
                next_index=count,
                address_type="p2wpkh",
                created_at=now,
                key_identity="bench",
            )
        )
        for start in range(0, count, BATCH):
            indexes = range(start, min(start + BATCH, count))
            await conn.execute(invoices.insert(), [_invoice(i, now) for i in indexes])
            await conn.execute(payments.insert(), [_payment(i, now) for i in indexes if i % 2 == 0])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:  # statistics, as autovacuum keeps them in service
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
    await engine.dispose()


def _invoice(index: int, now: datetime) -> dict[str, Any]:
    return {
        "id": f"inv_{index:012d}",
        "merchant_id": "mer_bench",
        "network": "ltc",
        "asset": "LTC",
        "amount_due": 10**6,
        "amount_paid": 10**6 if index % 2 == 0 else 0,
        "status": "settled" if index % 2 == 0 else "expired",
        "additional_status": "none",
        "address": f"rltc1bench{index}",
        "wallet_id": "wal_bench",
        "derivation_index": index,
        "metadata": "{}",
        "required_confirmations": 1,
        "tolerance_bps": 0,
        "expires_at": now,
        "watch_until": now,
        "created_at": now,
        "updated_at": now,
    }


def _payment(index: int, now: datetime) -> dict[str, Any]:
    return {
        "id": f"pay_{index:012d}",
        "invoice_id": f"inv_{index:012d}",
        "network": "ltc",
        "txid": f"{index:064x}",
        "position": "0",
        "address": f"rltc1bench{index}",
        "asset": "LTC",
        "amount": 10**6,
        "block_number": 1,
        "block_hash": "00" * 32,
        "paid_at": now,
        "confirmations": 1,
        "status": "confirmed",
        "reached_confirmations": True,
        "created_at": now,
        "updated_at": now,
    }


async def timings(url: str) -> dict[str, list[float]]:
    db = Database(create_engine(url))
    seconds: dict[str, list[float]] = {"paid_gaps": [], "highest_paid_index": []}
    try:
        for _ in range(ROUNDS):
            for name in seconds:
                async with db.uow() as uow:
                    started = time.perf_counter()
                    await getattr(uow.wallets, name)("wal_bench")
                    seconds[name].append(time.perf_counter() - started)
    finally:
        await db.dispose()
    return seconds


async def measure(quick: bool) -> tuple[list[Row], dict[str, object]]:
    count = 10_000 if quick else 100_000
    backends = ["sqlite"]
    skipped = await postgres_reachable()
    if skipped is None:
        backends.append("postgresql")
    summary: list[Row] = []
    details: dict[str, object] = {"invoices": count, "paid": count // 2, "rounds": ROUNDS}
    with workdir(NAME) as scratch_dir:
        scratch = Path(scratch_dir)
        for kind in backends:
            async with scratch_database(kind, NAME, scratch) as url:
                await seed(url, count)
                seconds = await timings(url)
            median = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
            summary.append(
                row(NAME, f"{kind}: gap figures of a {count:,}-invoice wallet", median["paid_gaps"],
                    "ms", "highest_paid_index", median["highest_paid_index"])
            )  # fmt: skip
            details[kind] = {k: [round(s * 1000, 2) for s in v] for k, v in seconds.items()}
    if skipped:
        details["postgresql"] = skipped
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
