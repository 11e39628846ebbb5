"""Creating invoices: validate, reserve a fresh address, store, and announce — in one commit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chaingate.config import NetworkConfig, Settings
from chaingate.domain.errors import Conflict, DomainError, UnknownCurrency, UnknownNetwork
from chaingate.domain.events import EventType
from chaingate.domain.ids import new_id
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus
from chaingate.domain.models import Invoice
from chaingate.domain.money import parse_amount
from chaingate.ports import ChainFamily, UnitOfWork
from chaingate.services.checkout import validate_redirect_url
from chaingate.services.events import emit
from chaingate.services.idempotency import Claim
from chaingate.services.payloads import invoice_document
from chaingate.services.wallet_gap import guard_gap

FamilyLookup = Callable[[NetworkConfig], ChainFamily]
"""The chain family serving a network (the composition root's table)."""

MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 30 * 86_400
MAX_METADATA_BYTES = 8_192


@dataclass(frozen=True, slots=True)
class NewInvoice:
    merchant_id: str
    network: str
    currency: str
    amount: str
    order_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_in: int | None = None
    required_confirmations: int | None = None
    payment_tolerance: str = "0"  # percent, as a decimal string
    redirect_url: str | None = None  # where the hosted checkout sends the payer once paid


@dataclass(frozen=True, slots=True)
class InvoiceContext:
    """The ports and configuration invoice creation needs."""

    settings: Settings
    family_of: FamilyLookup


def resolve_network(settings: Settings, name: str) -> NetworkConfig:
    network = settings.network(name)
    if network is None:
        known = ", ".join(n.name for n in settings.networks) or "none configured"
        raise UnknownNetwork(f"unknown network {name!r} (known: {known})", field="network")
    return network


async def create_invoice(
    uow: UnitOfWork,
    request: NewInvoice,
    ctx: InvoiceContext,
    now: datetime,
    idempotency: Claim | None = None,
) -> tuple[Invoice, dict[str, Any]]:
    """Store a new invoice with a never-used deposit address; returns it and its API view.

    Raises a DomainError subclass (nothing written) for any invalid field, Conflict
    `wallet_not_configured` when the merchant has no wallet on the network,
    `wallet_key_released` when another wallet took its key, `gap_limit_reached` (only with
    `on_gap: refuse`), `address_in_use` (a key shared outside the gateway's knowledge).
    """
    network = resolve_network(ctx.settings, request.network)
    decimals = network.asset_decimals(request.currency)
    if decimals is None:
        raise UnknownCurrency(
            f"currency {request.currency!r} is not configured on network {network.name!r} "
            f"(known: {', '.join(network.assets)})",
            field="currency",
        )
    amount_due = parse_amount(request.amount, decimals)
    expires_in = (
        ctx.settings.default_expires_in_seconds
        if request.expires_in is None
        else request.expires_in
    )
    if not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise DomainError(
            f"expires_in must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds",
            code="invalid_expires_in",
            field="expires_in",
            status=422,
        )
    confirmations = (
        network.required_confirmations
        if request.required_confirmations is None
        else request.required_confirmations
    )
    if not 1 <= confirmations <= 1000:
        raise DomainError(
            "required_confirmations must be between 1 and 1000",
            code="invalid_required_confirmations",
            field="required_confirmations",
            status=422,
        )
    tolerance_bps = _tolerance_bps(request.payment_tolerance)
    if request.redirect_url is not None:
        validate_redirect_url(request.redirect_url, allow_http=ctx.settings.dev_mode)
    try:
        metadata_json = json.dumps(request.metadata, allow_nan=False)
    except ValueError:
        raise DomainError(
            "metadata must be plain JSON (no NaN or Infinity)",
            code="invalid_metadata",
            field="metadata",
            status=422,
        ) from None
    if len(metadata_json) > MAX_METADATA_BYTES:
        raise DomainError(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes",
            code="metadata_too_large",
            field="metadata",
            status=422,
        )

    wallet = await uow.wallets.for_network(request.merchant_id, network.name)
    if wallet is None:
        raise Conflict(
            f"register a wallet for network {network.name!r} before creating invoices",
            code="wallet_not_configured",
        )
    family = ctx.family_of(network)
    index, wallet = await uow.wallets.reserve_index(wallet.id)
    if wallet.key_identity is None:
        raise Conflict(
            "another wallet holds this wallet's key now (its merchant proved control of the "
            "key); claim it back with POST "
            f"/v1/wallets/{wallet.id}/claim and a signature made with the key",
            code="wallet_key_released",
        )
    invoice_id = new_id("inv")
    await guard_gap(uow, wallet, index, family.wallet_policy, now, invoice_id)
    address = family.deriver(network, wallet.address_type).derive(wallet.account_key, index)
    expires_at = now + timedelta(seconds=expires_in)
    invoice = Invoice(
        id=invoice_id,
        merchant_id=request.merchant_id,
        network=network.name,
        asset=request.currency,
        amount_due=amount_due,
        amount_paid=0,
        status=InvoiceStatus.NEW,
        additional_status=AdditionalStatus.NONE,
        address=address,
        wallet_id=wallet.id,
        derivation_index=index,
        order_id=request.order_id,
        metadata=request.metadata,
        required_confirmations=confirmations,
        tolerance_bps=tolerance_bps,
        expires_at=expires_at,
        watch_until=expires_at + timedelta(seconds=ctx.settings.monitoring_window_seconds),
        created_at=now,
        updated_at=now,
        redirect_url=request.redirect_url,
    )
    await uow.invoices.add(invoice)
    view = invoice_document(
        invoice, [], network, family, checkout_base=ctx.settings.checkout_base_url
    )
    await emit(
        uow,
        merchant_id=invoice.merchant_id,
        event_type=EventType.INVOICE_CREATED,
        data=view,
        at=now,
        invoice_id=invoice.id,
    )
    if idempotency is not None:
        await idempotency.complete(uow, 201, json.dumps(view, separators=(",", ":")))
    await uow.commit()
    return invoice, view


def _tolerance_bps(percent: str) -> int:
    """ "0.5" (percent) -> 50 basis points; at most 50% and two decimal places."""
    try:
        zero = re.fullmatch(r"0+(\.0*)?", percent) is not None
        bps = 0 if zero else parse_amount(percent, 2, field="payment_tolerance")
    except DomainError as exc:
        raise DomainError(
            f"payment_tolerance must be a percent between 0 and 50 with at most 2 decimals: "
            f"{exc.detail}",
            code="invalid_payment_tolerance",
            field="payment_tolerance",
            status=422,
        ) from exc
    if bps > 5_000:
        raise DomainError(
            "payment_tolerance may not exceed 50 percent",
            code="invalid_payment_tolerance",
            field="payment_tolerance",
            status=422,
        )
    return bps
