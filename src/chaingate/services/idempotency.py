"""Idempotency-Key handling for POSTs, per merchant.

A key is claimed in its own short transaction (so a concurrent twin sees it and gets 409), and
completed inside the use case's transaction, so "created" and "remembered" commit together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from chaingate.domain.errors import Conflict, DomainError
from chaingate.ports import Database, SecretBox, UnitOfWork

# A claim older than this belongs to a request that died before committing.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Claim:
    merchant_id: str
    key: str
    locked_at: datetime
    # Set for answers that carry a secret (a webhook signing secret): stored encrypted.
    box: SecretBox | None = None

    async def complete(self, uow: UnitOfWork, status: int, body: str) -> None:
        """Remember the answer in the use case's transaction; raises Conflict (and so rolls
        the use case back) if a retry has taken the key over meanwhile."""
        stored = body if self.box is None else self.box.encrypt(body)
        if not await uow.idempotency.complete(
            self.merchant_id, self.key, self.locked_at, status, stored
        ):
            raise Conflict(
                "this request took too long and a retry with its Idempotency-Key took over",
                code="idempotency_in_progress",
            )


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def claim(
    db: Database,
    merchant_id: str,
    key: str,
    request_hash: str,
    now: datetime,
    ttl: timedelta,
    box: SecretBox | None = None,
) -> Claim | Replay:
    """Claim `key`, or return the stored answer of the request that already used it.

    Raises DomainError 422 `idempotency_key_reused` for the same key with another request,
    Conflict 409 `idempotency_in_progress` while the first request is still running.
    """
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise DomainError(
            "Idempotency-Key must be 1-255 printable characters", code="invalid_idempotency_key"
        )
    async with db.uow() as uow:
        if await uow.idempotency.insert(merchant_id, key, request_hash, now, now + ttl):
            await uow.commit()
            return Claim(merchant_id, key, now, box)
        if await uow.idempotency.relock(
            merchant_id, key, now - STALE_AFTER, now, request_hash, now + ttl
        ):
            await uow.commit()
            return Claim(merchant_id, key, now, box)
        record = await uow.idempotency.get(merchant_id, key)
    if record is None:  # deleted between our two statements: the twin request failed
        return await claim(db, merchant_id, key, request_hash, now, ttl, box)
    if record.request_hash != request_hash:
        raise DomainError(
            "this Idempotency-Key was already used with a different request",
            code="idempotency_key_reused",
            status=422,
        )
    if record.state != "done" or record.response_status is None:
        raise Conflict(
            "a request with this Idempotency-Key is still being processed",
            code="idempotency_in_progress",
        )
    body = record.response_body or ""
    return Replay(record.response_status, body if box is None else box.decrypt(body))


async def release(db: Database, claimed: Claim) -> None:
    """Forget a claim whose request failed, so the client may retry with the same key."""
    async with db.uow() as uow:
        await uow.idempotency.release(claimed.merchant_id, claimed.key)
        await uow.commit()
