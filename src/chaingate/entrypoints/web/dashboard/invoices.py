"""Overview and invoices: figures, search, one invoice with its payments and timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from chaingate.domain.errors import DomainError
from chaingate.domain.invoice import InvoiceStatus
from chaingate.domain.records import InvoiceSearch
from chaingate.entrypoints.web.dashboard.session import ContainerDep, UserDep, page
from chaingate.services import dashboard

router = APIRouter()
Text = Annotated[str, Query(max_length=200)]
CHART_WIDTH, CHART_HEIGHT = 560, 140
RECENT = 8  # invoices listed on the overview


@router.get("/")
async def overview(request: Request, container: ContainerDep, user: UserDep) -> Response:
    async with container.db.uow() as uow:
        figures = await dashboard.overview(uow, user.merchant_id, container.clock.now())
        latest = await dashboard.find_invoices(uow, user.merchant_id, InvoiceSearch(), None)
    charts = [
        (
            volume,
            dashboard.chart_bars(
                volume.per_day, figures.days, width=CHART_WIDTH, height=CHART_HEIGHT
            ),
        )
        for volume in figures.volumes
    ]
    return page(
        request,
        container,
        user,
        "overview.html",
        figures=figures,
        charts=charts,
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        recent=latest.invoices[:RECENT],
    )


def parse_day(text: str, field: str) -> date | None:
    """A YYYY-MM-DD form value; empty means none. Raises DomainError (400) otherwise."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not 2000 <= day.year <= 2999:  # also keeps `day + 1` from overflowing
        raise DomainError(f"{field} must be a date such as 2026-01-31", field=field)
    return day


def day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


@router.get("/invoices")
async def invoice_list(
    request: Request,
    container: ContainerDep,
    user: UserDep,
    status: Text = "",
    network: Text = "",
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
    q: Text = "",
    cursor: Text = "",
) -> Response:
    if status and status not in {s.value for s in InvoiceStatus}:
        raise DomainError(f"unknown status {status!r}", field="status")
    first, last = parse_day(start, "from"), parse_day(end, "to")
    search = InvoiceSearch(
        status=status or None,
        network=network or None,
        created_from=day_start(first) if first else None,
        created_to=day_start(last + timedelta(days=1)) if last else None,
        query=q.strip() or None,
    )
    async with container.db.uow() as uow:
        found = await dashboard.find_invoices(uow, user.merchant_id, search, cursor or None)
    filters = {"status": status, "network": network, "from": start, "to": end, "q": q}
    return page(
        request,
        container,
        user,
        "invoices.html",
        found=found,
        filters=filters,
        statuses=[s.value for s in InvoiceStatus],
        networks=[n.name for n in container.settings.networks],
    )


@router.get("/invoices/{invoice_id}")
async def invoice_page(
    request: Request, container: ContainerDep, user: UserDep, invoice_id: str
) -> Response:
    async with container.db.uow() as uow:
        detail = await dashboard.invoice_detail(uow, user.merchant_id, invoice_id[:100])
    records = [
        {
            "delivery": d.view.delivery,
            "attempts": d.attempts,
            "event_type": d.view.event_type,
            "endpoint_url": d.view.endpoint_url,
        }
        for d in detail.deliveries
    ]
    pending = any(d.view.delivery.status == "pending" for d in detail.deliveries)
    return page(
        request,
        container,
        user,
        "invoice.html",
        detail=detail,
        records=records,
        refreshing=pending,
        redelivered=request.query_params.get("redelivered", "")[:100],
    )
