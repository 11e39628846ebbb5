from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chaingate.domain.errors import NotFound
from chaingate.domain.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from chaingate.entrypoints.api.deps import ContainerDep, WebhooksRead, WebhooksWrite
from chaingate.entrypoints.api.idempotent import IDEMPOTENT, dumps, run_idempotent
from chaingate.entrypoints.api.problems import problem_responses
from chaingate.entrypoints.api.schemas import WebhookCreate, WebhookOut, WebhookUpdate
from chaingate.ports import UnitOfWork
from chaingate.services import webhooks as service
from chaingate.services.idempotency import Claim
from chaingate.services.payloads import iso

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
FOUND = problem_responses(404)  # another merchant's id is a 404 too


def present_endpoint(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "created_at": iso(endpoint.created_at),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def present_delivery(
    delivery: WebhookDelivery, attempts: tuple[WebhookAttempt, ...]
) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at) if delivery.delivered_at else None,
        "attempts": [
            {
                "attempted_at": iso(a.attempted_at),
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "error": a.error,
            }
            for a in attempts
        ],
    }


@router.post(
    "",
    status_code=201,
    response_model=WebhookOut,
    responses=problem_responses(400, 409, 413),
    dependencies=IDEMPOTENT,
)
async def create(
    body: WebhookCreate, request: Request, caller: WebhooksWrite, container: ContainerDep
) -> Response:
    """Register an endpoint. The signing `secret` is in this answer only: store it."""

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        async def remember(uow: UnitOfWork, endpoint: WebhookEndpoint, secret: str) -> None:
            if claim is not None:
                await claim.complete(uow, 201, dumps(present_endpoint(endpoint, secret)))

        async with container.db.uow() as uow:
            endpoint, secret = await service.create_endpoint(
                uow,
                caller.merchant_id,
                body.url,
                body.events,
                body.description,
                container.secret_box,
                container.url_guard,
                container.clock.now(),
                before_commit=remember,
            )
        return 201, present_endpoint(endpoint, secret)

    return await run_idempotent(request, container, caller, action, holds_secret=True)


@router.get("", response_model=list[WebhookOut])
async def list_endpoints(caller: WebhooksRead, container: ContainerDep) -> list[dict[str, Any]]:
    async with container.db.uow() as uow:
        return [present_endpoint(e) for e in await service.list_endpoints(uow, caller.merchant_id)]


@router.get("/{endpoint_id}", response_model=WebhookOut, responses=FOUND)
async def get(endpoint_id: str, caller: WebhooksRead, container: ContainerDep) -> dict[str, Any]:
    async with container.db.uow() as uow:
        return present_endpoint(await service.get_endpoint(uow, caller.merchant_id, endpoint_id))


@router.patch(
    "/{endpoint_id}", response_model=WebhookOut, responses=problem_responses(400, 404, 413)
)
async def update(
    endpoint_id: str, body: WebhookUpdate, caller: WebhooksWrite, container: ContainerDep
) -> dict[str, Any]:
    async with container.db.uow() as uow:
        endpoint = await service.update_endpoint(
            uow,
            caller.merchant_id,
            endpoint_id,
            guard=container.url_guard,
            now=container.clock.now(),
            url=body.url,
            event_types=body.events,
            enabled=body.enabled,
            description=body.description,
        )
    return present_endpoint(endpoint)


@router.delete("/{endpoint_id}", status_code=204, responses=FOUND)
async def delete(endpoint_id: str, caller: WebhooksWrite, container: ContainerDep) -> Response:
    async with container.db.uow() as uow:
        await service.delete_endpoint(uow, caller.merchant_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=WebhookOut,
    responses=problem_responses(400, 404, 409),  # 400: a malformed Idempotency-Key
    dependencies=IDEMPOTENT,
)
async def rotate_secret(
    endpoint_id: str, request: Request, caller: WebhooksWrite, container: ContainerDep
) -> Response:
    """A new signing secret, effective at once (shown only in this answer). Honours
    `Idempotency-Key`: a retried rotation returns the same secret instead of making another."""

    async def action(claim: Claim | None) -> tuple[int, dict[str, Any]]:
        async def remember(uow: UnitOfWork, endpoint: WebhookEndpoint, secret: str) -> None:
            if claim is not None:
                await claim.complete(uow, 200, dumps(present_endpoint(endpoint, secret)))

        async with container.db.uow() as uow:
            secret = await service.rotate_secret(
                uow,
                caller.merchant_id,
                endpoint_id,
                container.secret_box,
                container.clock.now(),
                before_commit=remember,
            )
            endpoint = await service.get_endpoint(uow, caller.merchant_id, endpoint_id)
        return 200, present_endpoint(endpoint, secret)

    return await run_idempotent(request, container, caller, action, holds_secret=True)


@router.get("/{endpoint_id}/deliveries", responses=FOUND)
async def deliveries(
    endpoint_id: str,
    caller: WebhooksRead,
    container: ContainerDep,
    starting_after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Deliveries to this endpoint, newest first, each with every attempt."""
    async with container.db.uow() as uow:
        page = await service.list_deliveries(
            uow, caller.merchant_id, endpoint_id, cursor=starting_after, limit=limit
        )
    return {
        "data": [present_delivery(r.delivery, r.attempts) for r in page.deliveries],
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problem_responses(404, 409),
)
async def redeliver(
    endpoint_id: str, delivery_id: str, caller: WebhooksWrite, container: ContainerDep
) -> dict[str, Any]:
    """Send this delivery again now (same event id and body)."""
    async with container.db.uow() as uow:
        found = await uow.webhooks.delivery(caller.merchant_id, delivery_id)
        if found is None or found.endpoint_id != endpoint_id:
            raise NotFound(f"webhook delivery {delivery_id} not found")
        delivery = await service.redeliver(
            uow, caller.merchant_id, delivery_id, container.clock.now()
        )
    return present_delivery(delivery, ())
