from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.repositories._sql import insert_ignoring_duplicates
from chaingate.adapters.db.tables import idempotency_keys
from chaingate.domain.records import IdempotencyRecord


class IdempotencyRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(
        self, merchant_id: str, key: str, request_hash: str, now: datetime, expires_at: datetime
    ) -> bool:
        return await insert_ignoring_duplicates(
            self._conn,
            idempotency_keys,
            {
                "merchant_id": merchant_id,
                "key": key,
                "request_hash": request_hash,
                "state": "in_progress",
                "locked_at": now,
                "created_at": now,
                "expires_at": expires_at,
            },
        )

    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        row = (
            (
                await self._conn.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return IdempotencyRecord(**{k: v for k, v in row.items() if k != "created_at"})

    async def relock(
        self,
        merchant_id: str,
        key: str,
        stale_before: datetime,
        now: datetime,
        request_hash: str,
        expires_at: datetime,
    ) -> bool:
        """Take over an abandoned in-progress or expired key (its request died or aged out)."""
        result = await self._conn.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.merchant_id == merchant_id,
                idempotency_keys.c.key == key,
                (
                    (idempotency_keys.c.state == "in_progress")
                    & (idempotency_keys.c.locked_at < stale_before)
                )
                | (idempotency_keys.c.expires_at < now),
            )
            .values(
                state="in_progress",
                request_hash=request_hash,
                locked_at=now,
                created_at=now,
                expires_at=expires_at,
                response_status=None,
                response_body=None,
            )
        )
        return bool(result.rowcount)

    async def complete(
        self, merchant_id: str, key: str, locked_at: datetime, status: int, body: str
    ) -> bool:
        """Store the answer, only if this request still holds the claim it took at `locked_at`
        (a request slower than the stale limit may have lost it to a retry)."""
        result = await self._conn.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.merchant_id == merchant_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.state == "in_progress",
                idempotency_keys.c.locked_at == locked_at,
            )
            .values(state="done", response_status=status, response_body=body)
        )
        return bool(result.rowcount)

    async def release(self, merchant_id: str, key: str) -> None:
        await self._conn.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.merchant_id == merchant_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.state == "in_progress",
            )
        )
