"""Sending due webhook deliveries: claim a batch briefly, send concurrently, record each attempt.

Delivery is at least once. The claim is a lease written in its own short transaction; each
attempt is recorded in its own transaction after its request ends. If the process dies between
sending and recording, the lease expires and the delivery is sent again with the same event id
and body, so receivers must deduplicate on `ChainGate-Event-Id`. Nothing lives only in memory:
a restarted dispatcher picks up exactly what the table says is due.

One endpoint cannot hold up another: a batch takes at most a quarter of its places from any one
endpoint (round-robin), sends run concurrently, and each result is stored as soon as it is known.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from chaingate.config import Settings
from chaingate.domain.errors import SecretDecryptionError
from chaingate.domain.records import AttemptResult, DueDelivery
from chaingate.domain.retry import decide
from chaingate.ports import Clock, Database, SecretBox, WebhookSender

log = logging.getLogger(__name__)

# How many batches a worker may have in flight at once (the lease must outlast them all).
MAX_BATCHES_IN_FLIGHT = 2
_LEASE_MARGIN_SECONDS = 30.0


def batch_size(settings: Settings) -> int:
    return max(1, settings.webhook_concurrency)


def per_endpoint_cap(settings: Settings) -> int:
    return max(1, batch_size(settings) // 4)


def lease_duration(settings: Settings) -> timedelta:
    """How long a claim lasts: waiting for a send slot behind the other batch, then the send."""
    seconds = (MAX_BATCHES_IN_FLIGHT + 1) * settings.webhook_timeout_seconds
    return timedelta(seconds=seconds + _LEASE_MARGIN_SECONDS)


async def dispatch_due(
    db: Database,
    sender: WebhookSender,
    box: SecretBox,
    clock: Clock,
    settings: Settings,
    *,
    limiter: asyncio.Semaphore | None = None,
) -> int:
    """Send one batch of due deliveries; returns how many were attempted (0: nothing was due).

    `limiter` bounds concurrent requests across batches (default: a new one sized
    `webhook_concurrency`). Raises only if the claim itself fails (e.g. the database is down);
    a failure while recording one attempt is logged and that delivery is retried after its lease.
    """
    async with db.uow() as uow:
        batch = await uow.webhooks.claim_due(
            clock.now(),
            limit=batch_size(settings),
            per_endpoint=per_endpoint_cap(settings),
            lease=lease_duration(settings),
        )
        await uow.commit()
    if not batch:
        return 0
    slots = limiter or asyncio.Semaphore(settings.webhook_concurrency)
    await asyncio.gather(*(_deliver(db, sender, box, clock, settings, d, slots) for d in batch))
    return len(batch)


async def _deliver(
    db: Database,
    sender: WebhookSender,
    box: SecretBox,
    clock: Clock,
    settings: Settings,
    due: DueDelivery,
    slots: asyncio.Semaphore,
) -> None:
    try:
        async with slots:
            attempted_at = clock.now()
            attempt = await _attempt(sender, box, due, int(attempted_at.timestamp()))
        finished_at = clock.now()
        decision = decide(
            attempt.status_code,
            attempt.network_error,
            due.attempt_count + 1,
            due.created_at,
            finished_at,
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_seconds,
            settings.webhook_retry_window_seconds,
            random.random(),
        )
        async with db.uow() as uow:
            await uow.webhooks.record_attempt(
                due.delivery_id,
                attempted_at=attempted_at,
                status_code=attempt.status_code,
                duration_ms=attempt.duration_ms,
                error=attempt.error,
                response_excerpt=attempt.response_excerpt,
                outcome=decision.outcome,
                next_attempt_at=decision.next_attempt_at,
            )
            await uow.webhooks.record_endpoint_outcome(
                due.endpoint_id, succeeded=decision.outcome == "succeeded"
            )
            await uow.commit()
    except Exception:
        # Unrecorded: the lease runs out and the delivery is sent again (at least once).
        log.exception("webhook delivery %s: attempt not recorded", due.delivery_id)
        return
    if decision.outcome == "failed":
        log.warning(
            "webhook delivery %s to endpoint %s failed for good after %d attempts: %s",
            due.delivery_id,
            due.endpoint_id,
            due.attempt_count + 1,
            attempt.error or f"HTTP {attempt.status_code}",
        )


async def _attempt(
    sender: WebhookSender, box: SecretBox, due: DueDelivery, timestamp: int
) -> AttemptResult:
    try:
        secret = box.decrypt(due.secret_ciphertext)
    except SecretDecryptionError as exc:
        # An operator problem (changed secret_key), not the merchant's: keep retrying.
        log.error("webhook endpoint %s: signing secret unreadable: %s", due.endpoint_id, exc)
        return AttemptResult(None, 0, f"signing secret unreadable: {exc}", None, True)
    headers = {
        "ChainGate-Event-Id": due.event_id,
        "ChainGate-Event-Type": due.event_type,
        "ChainGate-Delivery-Id": due.delivery_id,
    }
    return await sender.send(due.url, due.body, secret, headers, timestamp=timestamp)
