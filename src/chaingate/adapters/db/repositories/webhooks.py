from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from chaingate.domain.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from chaingate.domain.records import DueDelivery


class WebhookRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # -- endpoints ---------------------------------------------------------------------------
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._conn.execute(webhook_endpoints.insert().values(**_endpoint_row(endpoint)))

    async def endpoint(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        row = (
            (
                await self._conn.execute(
                    select(webhook_endpoints).where(
                        webhook_endpoints.c.id == endpoint_id,
                        webhook_endpoints.c.merchant_id == merchant_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        return _endpoint(row)

    async def endpoints(self, merchant_id: str) -> list[WebhookEndpoint]:
        rows = (
            await self._conn.execute(
                select(webhook_endpoints)
                .where(webhook_endpoints.c.merchant_id == merchant_id)
                .order_by(webhook_endpoints.c.created_at)
            )
        ).mappings()
        return [e for e in map(_endpoint, rows) if e is not None]

    async def update_endpoint(self, endpoint_id: str, **values: Any) -> None:
        if "event_types" in values:
            values["event_types"] = json.dumps(list(values["event_types"]))
        await self._conn.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
        )

    async def delete_endpoint(self, endpoint_id: str) -> None:
        delivery_ids = select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.endpoint_id == endpoint_id
        )
        await self._conn.execute(
            delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(delivery_ids))
        )
        await self._conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
        )
        await self._conn.execute(
            delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        )

    # -- deliveries --------------------------------------------------------------------------
    async def add_delivery(self, delivery: WebhookDelivery) -> None:
        await self._conn.execute(
            webhook_deliveries.insert().values(
                id=delivery.id,
                endpoint_id=delivery.endpoint_id,
                event_id=delivery.event_id,
                merchant_id=delivery.merchant_id,
                status=delivery.status,
                attempt_count=delivery.attempt_count,
                next_attempt_at=delivery.next_attempt_at,
                lease_until=None,
                last_status_code=None,
                last_error=None,
                created_at=delivery.created_at,
                updated_at=delivery.updated_at,
                delivered_at=None,
            )
        )

    async def delivery(self, merchant_id: str, delivery_id: str) -> WebhookDelivery | None:
        row = (
            (
                await self._conn.execute(
                    select(webhook_deliveries).where(
                        webhook_deliveries.c.id == delivery_id,
                        webhook_deliveries.c.merchant_id == merchant_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        return _delivery(row)

    async def deliveries(
        self, endpoint_id: str, *, before_id: str | None, limit: int
    ) -> list[WebhookDelivery]:
        query = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
        if before_id is not None:
            query = query.where(webhook_deliveries.c.id < before_id)
        rows = (
            await self._conn.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit))
        ).mappings()
        return [d for d in map(_delivery, rows) if d is not None]

    async def attempts(self, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
        grouped: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        if not delivery_ids:
            return grouped
        rows = (
            await self._conn.execute(
                select(webhook_attempts)
                .where(webhook_attempts.c.delivery_id.in_(delivery_ids))
                .order_by(webhook_attempts.c.id)
            )
        ).mappings()
        for r in rows:
            grouped[r["delivery_id"]].append(WebhookAttempt(**r))
        return grouped

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        per_endpoint: int,
        lease: timedelta,
        probe_after_failures: int = 5,
    ) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries, at most `per_endpoint` from any one endpoint.

        The per-endpoint cap keeps a slow or failing endpoint from filling the batch, so one
        merchant's dead server never delays another's webhooks. Slots go round-robin (every
        endpoint's first delivery before anyone's second), endpoints that have been failing
        come last within a round, and one failing `probe_after_failures` times in a row gets a
        single probe per batch (a circuit breaker, half-open until an attempt succeeds).
        The lease (not a held lock) lets several dispatchers share the table; an expired lease
        is simply claimed again.
        """
        d = webhook_deliveries
        e = webhook_endpoints
        due = and_(
            d.c.status == "pending",
            d.c.next_attempt_at <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
        )
        ranked = (
            select(
                d.c.id,
                d.c.next_attempt_at,
                e.c.consecutive_failures.label("failures"),
                func.row_number()
                .over(partition_by=d.c.endpoint_id, order_by=(d.c.next_attempt_at, d.c.id))
                .label("rank"),
            )
            .join(e, e.c.id == d.c.endpoint_id)
            # A disabled endpoint's queue waits, untouched, until it is enabled again.
            .where(due, e.c.enabled)
            .subquery()
        )
        candidates = list(
            (
                await self._conn.execute(
                    select(ranked.c.id)
                    .where(
                        ranked.c.rank <= per_endpoint,
                        or_(ranked.c.rank == 1, ranked.c.failures < probe_after_failures),
                    )
                    .order_by(
                        ranked.c.rank, ranked.c.failures, ranked.c.next_attempt_at, ranked.c.id
                    )
                    .limit(limit)
                )
            ).scalars()
        )
        if not candidates:
            return []
        await self._conn.execute(
            update(d).where(d.c.id.in_(candidates), due).values(lease_until=now + lease)
        )
        rows = (
            await self._conn.execute(
                select(
                    d.c.id.label("delivery_id"),
                    d.c.endpoint_id,
                    d.c.event_id,
                    events.c.type.label("event_type"),
                    webhook_endpoints.c.url,
                    webhook_endpoints.c.secret_ciphertext,
                    events.c.body,
                    d.c.attempt_count,
                    d.c.created_at,
                )
                .join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
                .join(events, events.c.id == d.c.event_id)
                .where(d.c.id.in_(candidates), d.c.lease_until == now + lease)
            )
        ).mappings()
        return [DueDelivery(**r) for r in rows]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        attempted_at: datetime,
        status_code: int | None,
        duration_ms: int,
        error: str | None,
        response_excerpt: str | None,
        outcome: str,
        next_attempt_at: datetime,
    ) -> None:
        """Store one attempt and the delivery's new state; `outcome` is the delivery status."""
        await self._conn.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery_id,
                attempted_at=attempted_at,
                status_code=status_code,
                duration_ms=duration_ms,
                error=error,
                response_excerpt=response_excerpt,
            )
        )
        await self._conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(
                status=outcome,
                attempt_count=webhook_deliveries.c.attempt_count + 1,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_status_code=status_code,
                last_error=error,
                updated_at=attempted_at,
                delivered_at=attempted_at if outcome == "succeeded" else None,
            )
        )

    async def record_endpoint_outcome(self, endpoint_id: str, *, succeeded: bool) -> None:
        """Count failed attempts in a row (a success resets it); claim_due's breaker reads it."""
        e = webhook_endpoints
        failures = 0 if succeeded else e.c.consecutive_failures + 1
        await self._conn.execute(
            update(e).where(e.c.id == endpoint_id).values(consecutive_failures=failures)
        )

    async def reschedule(self, delivery_id: str, at: datetime) -> None:
        """Queue a delivery again now (manual redelivery); its attempt history is kept."""
        await self._conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(status="pending", next_attempt_at=at, lease_until=None, updated_at=at)
        )


def _endpoint_row(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "merchant_id": endpoint.merchant_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "secret_ciphertext": endpoint.secret_ciphertext,
        "event_types": json.dumps(list(endpoint.event_types)),
        "enabled": endpoint.enabled,
        "consecutive_failures": endpoint.consecutive_failures,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def _endpoint(row: RowMapping | None) -> WebhookEndpoint | None:
    if row is None:
        return None
    return WebhookEndpoint(**{**row, "event_types": tuple(json.loads(row["event_types"]))})


def _delivery(row: RowMapping | None) -> WebhookDelivery | None:
    if row is None:
        return None
    return WebhookDelivery(**{k: v for k, v in row.items() if k != "lease_until"})
