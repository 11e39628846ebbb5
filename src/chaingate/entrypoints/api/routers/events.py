from __future__ import annotations

import json
import re
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
    after: Annotated[str | None, Query(max_length=48)] = None,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Committed events in a stable order. Keep `next_cursor` and pass it as `after` to catch
    up on anything a webhook may not have delivered; no event is ever skipped."""
    after_seq = _parse_cursor(after)
    async with container.db.uow() as uow:
        page = await uow.events.after(
            caller.merchant_id, after_seq, limit + 1, invoice_id=invoice_id
        )
    has_more = len(page) > limit
    page = page[:limit]
    return {
        "data": [json.loads(event.body) for event in page],
        "has_more": has_more,
        "next_cursor": str(page[-1].seq if page else after_seq),
    }


def _parse_cursor(after: str | None) -> int:
    """`after` is a `next_cursor` from this endpoint; empty or "0" means from the start."""
    if not after:
        return 0
    if re.fullmatch(r"[0-9]{1,18}", after) is None:
        raise DomainError(
            "`after` must be a next_cursor returned by this endpoint",
            code="invalid_cursor",
            field="after",
            status=422,
        )
    return int(after)
