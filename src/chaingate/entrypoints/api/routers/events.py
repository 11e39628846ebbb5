from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from chaingate.domain.errors import DomainError
from chaingate.entrypoints.api.deps import ContainerDep, EventsRead
from chaingate.entrypoints.api.schemas import EventList

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=EventList)
async def list_events(
    caller: EventsRead,
    container: ContainerDep,
    after: Annotated[str | None, Query(max_length=32)] = None,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Events in the order they were committed. Keep `next_cursor` and pass it as `after`
    to catch up on anything a webhook may not have delivered."""
    try:
        after_seq = int(after) if after else 0
    except ValueError:
        raise DomainError(
            "`after` must be a cursor returned by this endpoint",
            code="invalid_cursor",
            field="after",
        ) from None
    async with container.db.uow() as uow:
        page = await uow.events.after(
            caller.merchant_id, after_seq, limit + 1, invoice_id=invoice_id
        )
    has_more = len(page) > limit
    page = page[:limit]
    return {
        "data": [json.loads(e.body) for e in page],
        "has_more": has_more,
        "next_cursor": str(page[-1].seq) if page else after,
    }
