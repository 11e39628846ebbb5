"""Bulk-seed invoices straight into the table: a million rows in seconds, for scale benchmarks.

Setup, not measured, so it bypasses the services, but the rows are what the services would have
written: time-ordered ids as `domain/ids.py` makes them, unique (network, address) and
(wallet_id, derivation_index), amounts as the `BaseUnits` column stores them (a 78-character
zero-padded decimal string on SQLite, NUMERIC on PostgreSQL), times as `UtcDateTime` stores
them, and the wallet's `next_index` moved past the seeded indexes so new invoices never collide.
SQLite: `executemany` in large batches inside one transaction; PostgreSQL: `COPY` via asyncpg.
"""

from __future__ import annotations

import asyncio
import base64
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects import sqlite as sqlite_dialect

from chaingate.adapters.db.tables import invoices

COLUMNS = tuple(c.name for c in invoices.columns)
BATCH = 50_000
# RFC 4648 base32 alphabet -> Crockford's (the one `new_id` writes).
_TO_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


def ulid(prefix: str, millis: int, rng: random.Random) -> str:
    """`new_id` for a given millisecond: 160 bits through base32 give 32 characters, of which
    the last 26 are exactly the low 130 bits `new_id` encodes (about 20x faster than its loop)."""
    value = (millis << 80) | rng.getrandbits(80)
    text = base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD)
    return f"{prefix}_{text.decode()}"


@dataclass(frozen=True)
class Owner:
    merchant_id: str
    wallet_id: str
    network: str


@dataclass(frozen=True)
class Plan:
    """`count` invoices, the i-th created at `first_created + i * step`, open for `open_for`
    (status "new" while that lasts at `now`, "expired" after), watched `watch_for` longer."""

    count: int
    first_created: datetime
    step: timedelta
    open_for: timedelta
    watch_for: timedelta
    now: datetime
    first_index: int = 0
    amount: int = 10**16
    asset: str = "ETH"


def _sqlite_time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}"


def _check_sqlite_formats() -> None:
    """The hand-written conversions must equal what the column types bind (cheap guard)."""
    dialect = sqlite_dialect.dialect()
    moment = datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC)
    time_bind = invoices.c.created_at.type._cached_bind_processor(dialect)
    amount_bind = invoices.c.amount_due.type._cached_bind_processor(dialect)
    assert time_bind is not None and amount_bind is not None
    amount_text = str(12345).rjust(78, "0")
    if time_bind(moment) != _sqlite_time(moment) or amount_bind(12345) != amount_text:
        raise RuntimeError("bench/seed.py no longer writes what the column types write")


def rows(kind: str, owner: Owner, plan: Plan, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """The plan's rows as tuples in `COLUMNS` order, converted for `kind`'s driver."""
    if kind == "sqlite":
        amount: Any = str(plan.amount).rjust(78, "0")
        zero: Any = "0" * 78
        as_time: Any = _sqlite_time
    else:
        amount, zero, as_time = Decimal(plan.amount), Decimal(0), lambda moment: moment
    for i in range(plan.count):
        created = plan.first_created + i * plan.step
        expires = created + plan.open_for
        millis = int(created.timestamp() * 1000)
        values = {
            "id": ulid("inv", millis, rng),
            "merchant_id": owner.merchant_id,
            "network": owner.network,
            "asset": plan.asset,
            "amount_due": amount,
            "amount_paid": zero,
            "status": "new" if expires > plan.now else "expired",
            "additional_status": "none",
            "address": "0x" + rng.randbytes(20).hex(),
            "wallet_id": owner.wallet_id,
            "derivation_index": plan.first_index + i,
            "order_id": f"seed-{i}",
            "metadata": "{}",
            "required_confirmations": 1,
            "tolerance_bps": 0,
            "expires_at": as_time(expires),
            "watch_until": as_time(expires + plan.watch_for),
            "created_at": as_time(created),
            "updated_at": as_time(expires if expires <= plan.now else created),
            "redirect_url": None,
        }
        yield tuple(values[c] for c in COLUMNS)


def _batches(source: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in source:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _seed_sqlite(path: str, owner: Owner, plan: Plan, seed: int) -> None:
    _check_sqlite_formats()
    # Column names come from tables.py, values are bound: nothing outside is spliced in.
    columns, marks = ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))
    insert = f"INSERT INTO invoices ({columns}) VALUES ({marks})"  # noqa: S608
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for batch in _batches(rows("sqlite", owner, plan, random.Random(seed)), BATCH):
            conn.executemany(insert, batch)
        conn.execute(
            "UPDATE wallets SET next_index = max(next_index, ?) WHERE id = ?",
            (plan.first_index + plan.count, owner.wallet_id),
        )
        conn.execute("COMMIT")
        # Move the load out of the WAL file (in WAL mode it all went there), as a checkpoint
        # would have done long ago on a database that grew to this size in production.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


async def _seed_postgresql(url: str, owner: Owner, plan: Plan, seed: int) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        async with conn.transaction():
            for batch in _batches(rows("postgresql", owner, plan, random.Random(seed)), BATCH):
                await conn.copy_records_to_table("invoices", records=batch, columns=COLUMNS)
            await conn.execute(
                "UPDATE wallets SET next_index = greatest(next_index, $1) WHERE id = $2",
                plan.first_index + plan.count,
                owner.wallet_id,
            )
        # What autovacuum does soon after a bulk load anyway; without statistics the planner
        # would guess, and the figures would measure the guess.
        await conn.execute("VACUUM ANALYZE invoices")
    finally:
        await conn.close()


async def seed_invoices(url: str, owner: Owner, plan: Plan, seed: int = 1) -> None:
    """Insert the plan's invoices into the database at `url` (a SQLAlchemy URL)."""
    if url.startswith("sqlite"):
        await asyncio.to_thread(_seed_sqlite, url.split(":///", 1)[1], owner, plan, seed)
    else:
        await _seed_postgresql(url, owner, plan, seed)
