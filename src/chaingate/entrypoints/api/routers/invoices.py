from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chaingate.domain.errors import DomainError, NotFound
from chaingate.domain.invoice import InvoiceStatus
from chaingate.domain.records import InvoiceFilter
from chaingate.entrypoints.api.deps import ContainerDep, InvoicesRead, InvoicesWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import (
    InvoiceCreate,
    InvoiceList,
    QueryDateTime,
)
from chaingate.services.idempotency import Claim
from chaingate.services.invoicing import NewInvoice, create_invoice
from chaingate.services.payloads import InvoicePayload, invoice_document

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.post(
    "",
    status_code=201,
    response_model=InvoicePayload,
    responses=problem_responses(400, 409, 413),
    dependencies=IDEMPOTENT,
)
async def create(
    body: InvoiceCreate, request: Request, caller: InvoicesWrite, container: ContainerDep
) -> Response:
    """Create an invoice with a fresh deposit address. Honours `Idempotency-Key`."""
    command = NewInvoice(
        merchant_id=caller.merchant_id,
        network=body.network,
        currency=body.currency,
        amount=body.amount,
        order_id=body.order_id,
        metadata=body.metadata or {},
        expires_in=body.expires_in,
        required_confirmations=body.required_confirmations,
        payment_tolerance=body.payment_tolerance or "0",
        redirect_url=body.redirect_url,
    )

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        async with container.db.uow() as uow:
            _, view = await create_invoice(
                uow, command, container.invoice_context, container.clock.now(), claim
            )
        return 201, view

    return await run_idempotent(request, container, caller, action)


@router.get("/{invoice_id}", response_model=InvoicePayload, responses=problem_responses(404))
async def get(invoice_id: str, caller: InvoicesRead, container: ContainerDep) -> dict[str, Any]:
    """One invoice with its payments. Another merchant's invoice is a 404."""
    async with container.db.uow() as uow:
        invoice = await uow.invoices.get(invoice_id, merchant_id=caller.merchant_id)
        if invoice is None:
            raise NotFound(f"no invoice {invoice_id!r}")
        payments = await uow.payments.for_invoice(invoice.id)
    network = container.settings.network(invoice.network)
    assert network is not None, f"network {invoice.network} removed from configuration"
    return invoice_document(
        invoice,
        payments,
        network,
        container.family(network),
        checkout_base=container.settings.checkout_base_url,
    )


@router.get("", response_model=InvoiceList)
async def list_invoices(
    caller: InvoicesRead,
    container: ContainerDep,
    status: InvoiceStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=200)] = None,
    created_gte: QueryDateTime | None = None,
    created_lt: QueryDateTime | None = None,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Newest first. Pass `next_cursor` as `starting_after` for the next page."""
    filters = InvoiceFilter(
        status=status,
        order_id=order_id,
        created_from=_aware(created_gte),
        created_to=_aware(created_lt),
    )
    async with container.db.uow() as uow:
        page = await uow.invoices.page(
            caller.merchant_id, filters, before_id=starting_after, limit=limit + 1
        )
        payments = await uow.payments.for_invoices([i.id for i in page[:limit]])
    data = []
    for invoice in page[:limit]:
        network = container.settings.network(invoice.network)
        assert network is not None
        data.append(
            invoice_document(
                invoice,
                payments[invoice.id],
                network,
                container.family(network),
                checkout_base=container.settings.checkout_base_url,
            )
        )
    has_more = len(page) > limit
    return {"data": data, "has_more": has_more, "next_cursor": data[-1]["id"] if has_more else None}


def _aware(moment: datetime | None) -> datetime | None:
    """Query datetimes in UTC (no zone means UTC); out-of-range moments are a 422."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise DomainError(
            "date is out of range", code="invalid_date", field="created", status=422
        ) from None
