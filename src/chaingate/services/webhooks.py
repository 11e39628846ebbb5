"""Webhook endpoints and their deliveries, as a merchant manages them.

Every lookup is scoped by the merchant's id, so one merchant can never see, change or resend
another's. The signing secret leaves this module in plaintext exactly twice: when an endpoint is
created and when its secret is rotated. It is stored only encrypted (the SecretBox port).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chaingate.domain.errors import (
    Conflict,
    DomainError,
    EndpointLimitReached,
    NotFound,
    UnknownEventType,
)
from chaingate.domain.events import ALL_EVENT_TYPES
from chaingate.domain.ids import new_id
from chaingate.domain.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from chaingate.ports import SecretBox, UnitOfWork, UrlGuard

# Each endpoint multiplies every event into another delivery; a cap keeps that bounded.
MAX_ENDPOINTS_PER_MERCHANT = 20
MAX_DESCRIPTION_CHARS = 200
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def generate_webhook_secret() -> str:
    """A fresh signing secret: `whsec_` + 32 random bytes, urlsafe base64 without padding."""
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery with every attempt made for it, oldest attempt first."""

    delivery: WebhookDelivery
    attempts: tuple[WebhookAttempt, ...]


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """Newest deliveries first; pass `next_cursor` back to read the next page (None: no more)."""

    deliveries: list[DeliveryRecord]
    next_cursor: str | None


async def create_endpoint(
    uow: UnitOfWork,
    merchant_id: str,
    url: str,
    event_types: Iterable[str] | None,
    description: str | None,
    box: SecretBox,
    guard: UrlGuard,
    now: datetime,
    before_commit: Callable[[UnitOfWork, WebhookEndpoint, str], Awaitable[None]] | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret, which is never shown again.

    `event_types` empty or None subscribes to every event. Raises WebhookUrlForbidden (422),
    UnknownEventType (422), EndpointLimitReached (422) or DomainError for a bad description.
    """
    wanted = _event_types(event_types)
    text = _description(description)
    await guard.check(url)
    if len(await uow.webhooks.endpoints(merchant_id)) >= MAX_ENDPOINTS_PER_MERCHANT:
        raise EndpointLimitReached(
            f"a merchant may have at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints"
        )
    secret = generate_webhook_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        merchant_id=merchant_id,
        url=url,
        description=text,
        secret_ciphertext=box.encrypt(secret),
        event_types=wanted,
        enabled=True,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    await uow.webhooks.add_endpoint(endpoint)
    if before_commit is not None:  # e.g. remember the answer under its Idempotency-Key
        await before_commit(uow, endpoint, secret)
    await uow.commit()
    return endpoint, secret


async def list_endpoints(uow: UnitOfWork, merchant_id: str) -> list[WebhookEndpoint]:
    """The merchant's endpoints, oldest first."""
    return await uow.webhooks.endpoints(merchant_id)


async def get_endpoint(uow: UnitOfWork, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The merchant's endpoint. Raises NotFound, also for another merchant's endpoint id."""
    endpoint = await uow.webhooks.endpoint(merchant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field="endpoint_id")
    return endpoint


async def update_endpoint(
    uow: UnitOfWork,
    merchant_id: str,
    endpoint_id: str,
    *,
    guard: UrlGuard,
    now: datetime,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    enabled: bool | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    """Change the given fields (None leaves a field as it is; description "" clears it).

    A new URL is checked like a new endpoint's. Re-enabling resets the failure count, and the
    endpoint's waiting deliveries resume. Raises NotFound, WebhookUrlForbidden, UnknownEventType.
    """
    current = await get_endpoint(uow, merchant_id, endpoint_id)
    values: dict[str, Any] = {}
    if url is not None:
        await guard.check(url)
        values["url"] = url
    if event_types is not None:
        values["event_types"] = _event_types(event_types)
    if description is not None:
        values["description"] = _description(description)
    if enabled is not None:
        values["enabled"] = enabled
        if enabled:
            values["consecutive_failures"] = 0
    if not values:
        return current
    await uow.webhooks.update_endpoint(endpoint_id, **values, updated_at=now)
    updated = await get_endpoint(uow, merchant_id, endpoint_id)
    await uow.commit()
    return updated


async def delete_endpoint(uow: UnitOfWork, merchant_id: str, endpoint_id: str) -> None:
    """Remove the endpoint with its deliveries and their attempts. Raises NotFound."""
    await get_endpoint(uow, merchant_id, endpoint_id)
    await uow.webhooks.delete_endpoint(endpoint_id)
    await uow.commit()


async def rotate_secret(
    uow: UnitOfWork,
    merchant_id: str,
    endpoint_id: str,
    box: SecretBox,
    now: datetime,
    before_commit: Callable[[UnitOfWork, WebhookEndpoint, str], Awaitable[None]] | None = None,
) -> str:
    """Replace the signing secret; returns the new one (shown once). Raises NotFound.

    The old secret stops at once: attempts are signed when sent, so queued deliveries and
    retries carry the new signature.
    """
    await get_endpoint(uow, merchant_id, endpoint_id)
    secret = generate_webhook_secret()
    await uow.webhooks.update_endpoint(
        endpoint_id, secret_ciphertext=box.encrypt(secret), updated_at=now
    )
    if before_commit is not None:  # e.g. remember the answer under its Idempotency-Key
        await before_commit(uow, await get_endpoint(uow, merchant_id, endpoint_id), secret)
    await uow.commit()
    return secret


async def list_deliveries(
    uow: UnitOfWork,
    merchant_id: str,
    endpoint_id: str,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> DeliveryPage:
    """A page of the endpoint's deliveries, newest first, with their attempts.

    `cursor` is a previous page's `next_cursor`. Raises NotFound, or DomainError
    (`invalid_limit`) when `limit` is outside 1..100.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise DomainError(
            f"limit must be between 1 and {MAX_PAGE_SIZE}", code="invalid_limit", field="limit"
        )
    await get_endpoint(uow, merchant_id, endpoint_id)
    # One extra row says whether another page exists without a count query.
    rows = await uow.webhooks.deliveries(endpoint_id, before_id=cursor, limit=limit + 1)
    page = rows[:limit]
    attempts = await uow.webhooks.attempts([d.id for d in page])
    return DeliveryPage(
        deliveries=[DeliveryRecord(d, tuple(attempts[d.id])) for d in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


async def redeliver(
    uow: UnitOfWork, merchant_id: str, delivery_id: str, now: datetime
) -> WebhookDelivery:
    """Queue an existing delivery to be sent again at once, same event id and body.

    Its earlier attempts stay on record; its retry window still counts from its creation, so an
    old delivery gets one attempt unless that attempt succeeds. Raises NotFound (also for another
    merchant's delivery), Conflict when its endpoint is disabled.
    """
    delivery = await uow.webhooks.delivery(merchant_id, delivery_id)
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} not found", field="delivery_id")
    endpoint = await get_endpoint(uow, merchant_id, delivery.endpoint_id)
    if not endpoint.enabled:
        raise Conflict("the delivery's webhook endpoint is disabled; enable it first")
    await uow.webhooks.reschedule(delivery_id, now)
    refreshed = await uow.webhooks.delivery(merchant_id, delivery_id)
    assert refreshed is not None
    await uow.commit()
    return refreshed


def _event_types(event_types: Iterable[str] | None) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(event_types or ()))  # de-duplicated, order kept
    unknown = [t for t in wanted if t not in ALL_EVENT_TYPES]
    if unknown:
        raise UnknownEventType(
            f"unknown event types {unknown}; known: {sorted(ALL_EVENT_TYPES)}",
            field="event_types",
        )
    return wanted


def _description(description: str | None) -> str | None:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise DomainError(
            f"description must be at most {MAX_DESCRIPTION_CHARS} characters",
            code="invalid_description",
            field="description",
        )
    return text or None
