"""How resources look to merchants: one rendering for API answers and event payloads alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chaingate.config import NetworkConfig
from chaingate.domain.chain import NATIVE_POSITION
from chaingate.domain.models import Invoice, Payment
from chaingate.domain.money import format_amount
from chaingate.ports import PaymentUriBuilder


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def present_invoice(
    invoice: Invoice,
    payments: Sequence[Payment],
    network: NetworkConfig,
    uri_builder: PaymentUriBuilder,
) -> dict[str, Any]:
    decimals = network.asset_decimals(invoice.asset)
    assert decimals is not None, f"asset {invoice.asset} vanished from network {network.name}"
    remaining = max(invoice.amount_due - invoice.amount_paid, 0)
    return {
        "id": invoice.id,
        "object": "invoice",
        "status": invoice.status.value,
        "additional_status": invoice.additional_status.value,
        "amount": format_amount(invoice.amount_due, decimals),
        "amount_due": format_amount(remaining, decimals),
        "amount_paid": format_amount(invoice.amount_paid, decimals),
        "currency": invoice.asset,
        "network": invoice.network,
        "chain_id": network.chain_id,
        "address": invoice.address,
        "payment_uri": uri_builder(
            network, invoice.asset, invoice.address, remaining or invoice.amount_due
        ),
        "required_confirmations": invoice.required_confirmations,
        "payment_tolerance": format_amount(invoice.tolerance_bps, 2),
        "order_id": invoice.order_id,
        "metadata": invoice.metadata,
        "redirect_url": invoice.redirect_url,
        "expires_at": iso(invoice.expires_at),
        "created_at": iso(invoice.created_at),
        "updated_at": iso(invoice.updated_at),
        "payments": [present_payment(p, network) for p in payments],
    }


def present_payment(payment: Payment, network: NetworkConfig) -> dict[str, Any]:
    # Each payment in its own asset's units: a wrong-asset payment is not in the invoice's.
    decimals = network.asset_decimals(payment.asset) or 0
    native = payment.position == NATIVE_POSITION
    # Bitcoin family: the position is the output index (vout), not a log index.
    utxo = network.kind == "bitcoin"
    return {
        "id": payment.id,
        "txid": payment.txid,
        "log_index": None if native or utxo else int(payment.position),
        "output": NATIVE_POSITION if native else (payment.position if utxo else None),
        "amount": format_amount(payment.amount, decimals),
        "currency": payment.asset,
        "token_contract": payment.token_contract,
        "from": payment.from_address,
        "block_number": payment.block_number,
        "block_hash": payment.block_hash,
        "confirmations": payment.confirmations,
        "status": payment.status.value,
        "paid_at": iso(payment.paid_at),
        "created_at": iso(payment.created_at),
    }
