"""CSV exports for a date range, streamed."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from chaingate.domain.errors import DomainError
from chaingate.entrypoints.web.dashboard.invoices import day_start, parse_day
from chaingate.entrypoints.web.dashboard.session import ContainerDep, UserDep, page
from chaingate.services.dashboard_export import invoices_csv, payments_csv

router = APIRouter()
Day = Annotated[str, Query(max_length=20)]
_EXPORTS = {"invoices": invoices_csv, "payments": payments_csv}


@router.get("/export")
async def export_form(request: Request, container: ContainerDep, user: UserDep) -> Response:
    today = container.clock.now().date()
    return page(
        request,
        container,
        user,
        "export.html",
        start=(today - timedelta(days=30)).isoformat(),
        end=today.isoformat(),
    )


@router.get("/export/{kind}.csv")
async def export_csv(
    container: ContainerDep,
    user: UserDep,
    kind: str,
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
) -> Response:
    """Rows created from `from` to `to`, both days included (UTC)."""
    rows = _EXPORTS.get(kind)
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if rows is None:
        raise DomainError(f"no export named {kind!r}", status=404, code="not_found")
    if first is None or last is None or last < first:
        raise DomainError("give a date range: from and to, with from <= to", field="from")
    stream = rows(
        container.db,
        container.settings,
        user.merchant_id,
        day_start(first),
        day_start(last + timedelta(days=1)),
    )
    filename = f"chaingate-{kind}-{first.isoformat()}-{last.isoformat()}.csv"
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
