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
    after: Annotated[str | None, Query(max_length=48)] = None,
    invoice_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Committed events in a stable order. Keep `next_cursor` and pass it as `after` to catch
    up on anything a webhook may not have delivered; no event is ever skipped."""
    cursor = _parse_cursor(after)
    async with container.db.uow() as uow:
        page = await uow.events.after(caller.merchant_id, cursor, limit + 1, invoice_id=invoice_id)
    has_more = len(page) > limit
    page = page[:limit]
    last = page[-1][0] if page else cursor
    return {
        "data": [json.loads(event.body) for _, event in page],
        "has_more": has_more,
        "next_cursor": f"{last[0]}.{last[1]}",
    }


def _parse_cursor(after: str | None) -> tuple[int, int]:
    """`after` is a `next_cursor` from this endpoint ("<tx>.<seq>"); empty or "0" = the start."""
    if not after or after == "0":
        return (-1, 0)
    tx_order, dot, seq = after.partition(".")
    if not dot or not tx_order.lstrip("-").isdigit() or not seq.isdigit():
        raise DomainError(
            "`after` must be a next_cursor returned by this endpoint",
            code="invalid_cursor",
            field="after",
            status=422,
        )
    return (int(tx_order), int(seq))
