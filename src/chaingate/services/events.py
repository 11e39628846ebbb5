"""Writing events to the outbox, fanned out to one delivery row per subscribed endpoint.

Called inside the unit of work that made the state change, so the change, the event and its
deliveries commit together or not at all. Nothing is sent from here.

Events are staged and written just before commit, after locking the merchants' rows in id
order. `seq` comes from INSERT time, so this lock is what makes each merchant's seq order its
commit order: a reader paging `/v1/events` can never step past an event that commits later.
Taking the lock last, in a fixed order, means no two writers ever wait for each other in a
cycle.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chaingate.domain.events import EventType
from chaingate.domain.ids import new_id
from chaingate.domain.models import Event, WebhookDelivery, WebhookEndpoint
from chaingate.ports import UnitOfWork
from chaingate.services.payloads import iso


async def emit(
    uow: UnitOfWork,
    *,
    merchant_id: str,
    event_type: EventType,
    data: dict[str, Any],
    at: datetime,
    invoice_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Event:
    """Stage the event; it and its deliveries are written when `uow` commits."""
    event_id = new_id("evt")
    body = json.dumps(
        {
            "id": event_id,
            "type": event_type.value,
            "created_at": iso(at),
            **(extra or {}),
            "data": data,
        },
        separators=(",", ":"),
        allow_nan=False,  # receivers must get valid JSON, always
    )
    event = Event(
        seq=0,
        id=event_id,
        merchant_id=merchant_id,
        type=event_type.value,
        invoice_id=invoice_id,
        body=body,
        created_at=at,
    )
    if not uow.staged_events:
        uow.before_commit(lambda: _write_staged(uow))
    uow.staged_events.append(event)
    return event


async def _write_staged(uow: UnitOfWork) -> None:
    staged, uow.staged_events = uow.staged_events, []
    await uow.merchants.lock([e.merchant_id for e in staged])
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    for event in staged:
        await uow.events.add(event)
        if event.merchant_id not in endpoints:
            endpoints[event.merchant_id] = await uow.webhooks.endpoints(event.merchant_id)
        for endpoint in endpoints[event.merchant_id]:
            if endpoint.wants(event.type):
                await uow.webhooks.add_delivery(
                    WebhookDelivery(
                        id=new_id("whd"),
                        endpoint_id=endpoint.id,
                        event_id=event.id,
                        merchant_id=event.merchant_id,
                        status="pending",
                        attempt_count=0,
                        next_attempt_at=event.created_at,
                        last_status_code=None,
                        last_error=None,
                        created_at=event.created_at,
                        updated_at=event.created_at,
                        delivered_at=None,
                    )
                )
