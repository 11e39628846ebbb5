"""Webhook endpoints, their deliveries and attempts; redeliver and rotate via services/webhooks."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from chaingate.entrypoints.web.dashboard.session import (
    ContainerDep,
    EditorDep,
    UserDep,
    page,
    redirect,
)
from chaingate.services import webhooks

router = APIRouter()
DELIVERIES_PER_PAGE = 25
# Where a redeliver form may send the browser back to: a page of this dashboard, nothing else.
_RETURN_TO = re.compile(r"/(invoices|webhooks)/[A-Za-z0-9_]{1,64}")


@router.get("/webhooks")
async def endpoint_list(request: Request, container: ContainerDep, user: UserDep) -> Response:
    async with container.db.uow() as uow:
        endpoints = await webhooks.list_endpoints(uow, user.merchant_id)
    return page(request, container, user, "webhooks.html", endpoints=endpoints)


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(
    request: Request,
    container: ContainerDep,
    user: UserDep,
    endpoint_id: str,
    cursor: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    async with container.db.uow() as uow:
        endpoint = await webhooks.get_endpoint(uow, user.merchant_id, endpoint_id[:100])
        deliveries = await webhooks.list_deliveries(
            uow, user.merchant_id, endpoint.id, cursor=cursor or None, limit=DELIVERIES_PER_PAGE
        )
    pending = any(r.delivery.status == "pending" for r in deliveries.deliveries)
    return page(
        request,
        container,
        user,
        "endpoint.html",
        endpoint=endpoint,
        records=[
            {"delivery": r.delivery, "attempts": r.attempts, "event_type": None}
            for r in deliveries.deliveries
        ],
        refreshing=pending,
        next_cursor=deliveries.next_cursor,
        redelivered=request.query_params.get("redelivered", "")[:100],
    )


@router.post("/webhooks/{endpoint_id}/rotate")
async def rotate(
    request: Request, container: ContainerDep, user: EditorDep, endpoint_id: str
) -> Response:
    async with container.db.uow() as uow:
        secret = await webhooks.rotate_secret(
            uow, user.merchant_id, endpoint_id[:100], container.secret_box, container.clock.now()
        )
    async with container.db.uow() as uow:
        endpoint = await webhooks.get_endpoint(uow, user.merchant_id, endpoint_id)
    # Rendered straight from the POST (no redirect): the secret exists in this answer only.
    return page(request, container, user, "secret.html", endpoint=endpoint, secret=secret)


@router.post("/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request,
    container: ContainerDep,
    user: EditorDep,
    delivery_id: str,
    return_to: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    async with container.db.uow() as uow:
        delivery = await webhooks.redeliver(
            uow, user.merchant_id, delivery_id[:100], container.clock.now()
        )
    back = return_to if _RETURN_TO.fullmatch(return_to) else f"/webhooks/{delivery.endpoint_id}"
    return redirect(request, f"{back}?redelivered={delivery.id}")
