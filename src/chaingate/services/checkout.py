"""What the payer sees on the hosted checkout: an invoice reduced to public facts.

Deliberately narrow. The payer gets what paying needs (amount, asset, network, address, payment
request, expiry, progress) and the merchant's display name; never the metadata, the order id
(merchants put customer and internal references there; the invoice id is the payer's reference)
or anything about other invoices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from chaingate.config import NetworkConfig, Settings
from chaingate.domain.errors import DomainError
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus
from chaingate.domain.models import Invoice, Payment
from chaingate.domain.money import format_amount
from chaingate.ports import ChainFamily, UnitOfWork, WalletLink

MAX_REDIRECT_URL = 2000
INVOICE_ID = re.compile(r"inv_[0-9a-z]{26}")


class CheckoutState(StrEnum):
    WAITING = "waiting"  # nothing counted yet
    UNDERPAID = "underpaid"  # something counted, less than due: pay the remainder
    SEEN = "seen"  # enough seen, waiting for confirmations
    PAID = "paid"
    EXPIRED = "expired"
    INVALID = "invalid"  # a confirmed payment was reversed: the payer must contact the merchant

    @property
    def final(self) -> bool:
        return self in (CheckoutState.PAID, CheckoutState.EXPIRED, CheckoutState.INVALID)


@dataclass(frozen=True, slots=True)
class Checkout:
    invoice_id: str
    merchant_name: str
    state: CheckoutState
    asset: str
    network: str
    amount: str  # the whole invoice, decimal string
    amount_due: str  # what is still to pay, decimal string
    amount_paid: str
    remaining_units: int
    address: str
    payment_uri: str  # for the remaining amount once something was paid
    wallet_links: tuple[WalletLink, ...]
    confirmations: int
    required_confirmations: int
    expires_at: datetime
    redirect_url: str | None

    def status_document(self) -> dict[str, Any]:
        """The JSON the page updates itself from (status.json and each SSE message)."""
        return {
            "state": self.state.value,
            "amount": self.amount,
            "amount_due": self.amount_due,
            "amount_paid": self.amount_paid,
            "asset": self.asset,
            "payment_uri": self.payment_uri,
            "wallet_links": [{"label": w.label, "url": w.url} for w in self.wallet_links],
            "qr_url": f"/i/{self.invoice_id}/qr.svg?units={self.remaining_units}",
            "confirmations": self.confirmations,
            "required_confirmations": self.required_confirmations,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
            # Only once paid: before that it is none of the payer's business.
            "redirect_url": self.redirect_url if self.state is CheckoutState.PAID else None,
        }


def checkout_state(invoice: Invoice) -> CheckoutState:
    match invoice.status:
        case InvoiceStatus.SETTLED:
            return CheckoutState.PAID
        case InvoiceStatus.PROCESSING:
            return CheckoutState.SEEN
        case InvoiceStatus.EXPIRED:
            return CheckoutState.EXPIRED
        case InvoiceStatus.INVALID:
            return CheckoutState.INVALID
    if invoice.additional_status is AdditionalStatus.UNDERPAID:
        return CheckoutState.UNDERPAID
    return CheckoutState.WAITING


def confirmations_seen(payments: Sequence[Payment], required: int) -> int:
    """The slowest counted payment's confirmations (0..required): the invoice waits for it."""
    counted = [min(p.confirmations, required) for p in payments if p.status.counts]
    return min(counted, default=0)


def wallet_links(family: ChainFamily, payment_uri: str) -> tuple[WalletLink, ...]:
    """The payment request itself, plus the family's wallet-specific links (MetaMask on EVM)."""
    return (WalletLink("Open in wallet", payment_uri), *family.wallet_links(payment_uri))


def present_checkout(
    invoice: Invoice,
    payments: Sequence[Payment],
    merchant_name: str,
    network: NetworkConfig,
    family: ChainFamily,
) -> Checkout:
    decimals = network.asset_decimals(invoice.asset)
    assert decimals is not None, f"asset {invoice.asset} vanished from network {network.name}"
    remaining = max(invoice.amount_due - invoice.amount_paid, 0)
    uri = family.payment_uri(
        network, invoice.asset, invoice.address, remaining or invoice.amount_due
    )
    return Checkout(
        invoice_id=invoice.id,
        merchant_name=merchant_name,
        state=checkout_state(invoice),
        asset=invoice.asset,
        network=network.name,
        amount=format_amount(invoice.amount_due, decimals),
        amount_due=format_amount(remaining, decimals),
        amount_paid=format_amount(invoice.amount_paid, decimals),
        remaining_units=remaining,
        address=invoice.address,
        payment_uri=uri,
        wallet_links=wallet_links(family, uri),
        confirmations=confirmations_seen(payments, invoice.required_confirmations),
        required_confirmations=invoice.required_confirmations,
        expires_at=invoice.expires_at,
        redirect_url=invoice.redirect_url,
    )


async def load_checkout(
    uow: UnitOfWork,
    invoice_id: str,
    settings: Settings,
    family_of: Callable[[NetworkConfig], ChainFamily],
) -> Checkout | None:
    """The public view of `invoice_id`; None for a malformed or unknown id, or an invoice whose
    network is no longer configured (all three are a plain 404 to the payer)."""
    if INVOICE_ID.fullmatch(invoice_id) is None:
        return None
    invoice = await uow.invoices.get(invoice_id)
    if invoice is None:
        return None
    network = settings.network(invoice.network)
    merchant = await uow.merchants.get(invoice.merchant_id)
    if network is None or merchant is None:
        return None
    payments = await uow.payments.for_invoice(invoice.id)
    return present_checkout(invoice, payments, merchant.name, network, family_of(network))


def validate_redirect_url(url: str, *, allow_http: bool) -> str:
    """The URL, if the checkout may send payers there: https (http too in dev mode), with a
    host, no credentials, at most 2000 characters. Raises DomainError `invalid_redirect_url`."""
    schemes = {"https", "http"} if allow_http else {"https"}
    wanted = "an http(s)" if allow_http else "an https"
    problem = None
    if len(url) > MAX_REDIRECT_URL:
        problem = f"redirect_url is longer than {MAX_REDIRECT_URL} characters"
    elif any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        problem = "redirect_url may not contain spaces or control characters"
    else:
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme.lower() not in schemes or not host:
            problem = f"redirect_url must be {wanted} URL with a host"
        elif parts.username is not None or parts.password is not None:
            problem = "redirect_url may not carry credentials"
    if problem is not None:
        raise DomainError(problem, code="invalid_redirect_url", field="redirect_url", status=422)
    return url
