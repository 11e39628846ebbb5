"""Writing events to the outbox, fanned out to one delivery row per subscribed endpoint.

Called inside the unit of work that made the state change, so the change, the event and its
deliveries commit together or not at all. Nothing is sent from here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chaingate.adapters.db.uow import UnitOfWork
from chaingate.domain.events import EventType
from chaingate.domain.ids import new_id
from chaingate.domain.models import Event, WebhookDelivery
from chaingate.services.views import iso


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
    """Store the event and a pending delivery for every endpoint that subscribes to it."""
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
        sort_keys=False,
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
    await uow.events.add(event)
    for endpoint in await uow.webhooks.endpoints(merchant_id):
        if endpoint.wants(event_type.value):
            await uow.webhooks.add_delivery(
                WebhookDelivery(
                    id=new_id("whd"),
                    endpoint_id=endpoint.id,
                    event_id=event_id,
                    merchant_id=merchant_id,
                    status="pending",
                    attempt_count=0,
                    next_attempt_at=at,
                    last_status_code=None,
                    last_error=None,
                    created_at=at,
                    updated_at=at,
                    delivered_at=None,
                )
            )
    return event
