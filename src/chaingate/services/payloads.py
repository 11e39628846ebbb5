"""How invoices and payments look to merchants, built once: the API answers with these models
and the outbox stores them as event data, so a webhook and a GET never disagree.

(saleor's `webhook/payloads.py` idea.) Field order is the JSON order merchants see; event
bytes of existing event types must not change shape (tests/unit/test_event_payloads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaingate.config import NetworkConfig
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Invoice, Payment
from chaingate.domain.money import format_amount
from chaingate.ports import ChainFamily


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class PaymentPayload(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    txid: str
    log_index: int | None  # a token transfer's log index (EVM)
    # The output index (Bitcoin family); on EVM "native" for a value transfer, "trace:<n>" for
    # ETH a contract paid by an internal call (the n-th value-moving call of its transaction).
    output: str | None
    amount: str
    currency: str
    token_contract: str | None
    from_: str | None = Field(alias="from")
    block_number: int | None  # None while the transaction is only in the mempool
    block_hash: str | None
    confirmations: int
    status: PaymentStatus
    paid_at: str
    created_at: str


class InvoicePayload(BaseModel):
    id: str
    object: Literal["invoice"]
    status: InvoiceStatus
    additional_status: AdditionalStatus
    amount: str
    amount_due: str
    amount_paid: str
    currency: str
    network: str
    chain_id: int | None  # the chain id wallets sign for (EVM); null on Bitcoin-family networks
    address: str
    payment_uri: str
    required_confirmations: int
    payment_tolerance: str
    order_id: str | None
    metadata: dict[str, Any]
    redirect_url: str | None = None
    expires_at: str
    created_at: str
    updated_at: str
    payments: list[PaymentPayload]


def payment_payload(
    payment: Payment, network: NetworkConfig, family: ChainFamily
) -> PaymentPayload:
    # Each payment in its own asset's units: a wrong-asset payment is not in the invoice's.
    decimals = network.asset_decimals(payment.asset) or 0
    position = family.payment_position(payment.position)
    return PaymentPayload(
        id=payment.id,
        txid=payment.txid,
        log_index=position.log_index,
        output=position.output,
        amount=format_amount(payment.amount, decimals),
        currency=payment.asset,
        token_contract=payment.token_contract,
        from_=payment.from_address,
        block_number=payment.block_number,
        block_hash=payment.block_hash,
        confirmations=payment.confirmations,
        status=payment.status,
        paid_at=iso(payment.paid_at),
        created_at=iso(payment.created_at),
    )


def invoice_payload(
    invoice: Invoice, payments: Sequence[Payment], network: NetworkConfig, family: ChainFamily
) -> InvoicePayload:
    decimals = network.asset_decimals(invoice.asset)
    assert decimals is not None, f"asset {invoice.asset} vanished from network {network.name}"
    remaining = max(invoice.amount_due - invoice.amount_paid, 0)
    return InvoicePayload(
        id=invoice.id,
        object="invoice",
        status=invoice.status,
        additional_status=invoice.additional_status,
        amount=format_amount(invoice.amount_due, decimals),
        amount_due=format_amount(remaining, decimals),
        amount_paid=format_amount(invoice.amount_paid, decimals),
        currency=invoice.asset,
        network=invoice.network,
        chain_id=family.public_chain_id(network),
        address=invoice.address,
        payment_uri=family.payment_uri(
            network, invoice.asset, invoice.address, remaining or invoice.amount_due
        ),
        required_confirmations=invoice.required_confirmations,
        payment_tolerance=format_amount(invoice.tolerance_bps, 2),
        order_id=invoice.order_id,
        metadata=invoice.metadata,
        redirect_url=invoice.redirect_url,
        expires_at=iso(invoice.expires_at),
        created_at=iso(invoice.created_at),
        updated_at=iso(invoice.updated_at),
        payments=[payment_payload(p, network, family) for p in payments],
    )


def document(payload: BaseModel) -> dict[str, Any]:
    """The payload as the JSON object merchants receive (API answer and event `data` alike)."""
    return payload.model_dump(mode="json", by_alias=True)


def invoice_document(
    invoice: Invoice, payments: Sequence[Payment], network: NetworkConfig, family: ChainFamily
) -> dict[str, Any]:
    return document(invoice_payload(invoice, payments, network, family))


def payment_document(
    payment: Payment, network: NetworkConfig, family: ChainFamily
) -> dict[str, Any]:
    return document(payment_payload(payment, network, family))
