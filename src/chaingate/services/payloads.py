"""How invoices and payments look to merchants, built once: the API answers with these models
and the outbox stores them as event data, so a webhook and a GET never disagree.

(saleor's `webhook/payloads.py` idea.) Field order is the JSON order merchants see; event
bytes of existing event types must not change shape by accident: tests/unit/test_event_payloads.py
pins them, and a new field (like `checkout_url`) changes the pin deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaingate.config import NetworkConfig
from chaingate.domain.gap import GapStatus, OnGap
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Invoice, Payment, Wallet
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
    # The hosted checkout page, absolute (from public_url); null when the gateway does not
    # know its public address (production without CHAINGATE_PUBLIC_URL).
    checkout_url: str | None
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


def checkout_url(invoice_id: str, checkout_base: str | None) -> str | None:
    """The invoice's hosted checkout page under `checkout_base` (Settings.checkout_base_url)."""
    return None if checkout_base is None else f"{checkout_base}/i/{invoice_id}"


def invoice_payload(
    invoice: Invoice,
    payments: Sequence[Payment],
    network: NetworkConfig,
    family: ChainFamily,
    *,
    checkout_base: str | None,
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
        checkout_url=checkout_url(invoice.id, checkout_base),
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
    invoice: Invoice,
    payments: Sequence[Payment],
    network: NetworkConfig,
    family: ChainFamily,
    *,
    checkout_base: str | None,
) -> dict[str, Any]:
    return document(
        invoice_payload(invoice, payments, network, family, checkout_base=checkout_base)
    )


def payment_document(
    payment: Payment, network: NetworkConfig, family: ChainFamily
) -> dict[str, Any]:
    return document(payment_payload(payment, network, family))


class GapPayload(BaseModel):
    """Where the wallet stands with its wallet app's gap limit (Bitcoin family)."""

    unused_run: int = Field(description="Addresses handed out after the last paid one, all unused.")
    needed_gap_limit: int = Field(
        description="The smallest gap limit with which a wallet app finds every payment to "
        "every address handed out so far (a late payment to an old invoice included)."
    )
    last_paid_index: int | None
    exceeds_gap_limit: bool = Field(description="needed_gap_limit > gap_limit")


class WalletWarningPayload(BaseModel):
    code: str
    detail: str


class WalletPayload(BaseModel):
    id: str
    object: Literal["wallet"]
    network: str
    status: Literal["active", "released"] = Field(
        description="released: another wallet proved control of this key and holds it; this "
        "one hands out no more addresses until it claims the key back."
    )
    custody: Literal["watch_only", "managed"] = Field(
        description="managed: the isolated signer holds the account key (see key_ref)"
    )
    xpub: str
    key_ref: str | None = Field(description="managed: the signer's reference of the account")
    address_type: str | None
    key_origin: str | None
    gap_limit: int
    on_gap: OnGap
    next_index: int
    gap: GapPayload | None = Field(
        description="Bitcoin family only; null where the family has no gap rule (EVM)."
    )
    created_at: str
    warnings: list[WalletWarningPayload]


def wallet_payload(
    wallet: Wallet, gap: GapStatus | None, warnings: Sequence[tuple[str, str]]
) -> WalletPayload:
    """`gap`: None where the wallet's family has no gap rule; `warnings`: (code, detail)."""
    return WalletPayload(
        id=wallet.id,
        object="wallet",
        network=wallet.network,
        status="active" if wallet.key_identity is not None else "released",
        custody="managed" if wallet.custody == "managed" else "watch_only",
        xpub=wallet.account_key,
        key_ref=wallet.key_ref,
        address_type=wallet.address_type,
        key_origin=wallet.key_origin,
        gap_limit=wallet.gap_limit,
        on_gap=OnGap(wallet.on_gap),
        next_index=wallet.next_index,
        gap=None
        if gap is None
        else GapPayload(
            unused_run=gap.unused_run,
            needed_gap_limit=gap.needed_gap_limit,
            last_paid_index=gap.last_paid_index,
            exceeds_gap_limit=gap.needed_gap_limit > wallet.gap_limit,
        ),
        created_at=iso(wallet.created_at),
        warnings=[WalletWarningPayload(code=c, detail=d) for c, d in warnings],
    )


class GapWarningPayload(BaseModel):
    """`wallet.gap_warning`: the run of unused addresses just passed `threshold`.

    Built from what invoice creation knows without reading the wallet's history (it is written
    in the invoice's transaction); `GET /v1/wallets/{id}` adds `gap.needed_gap_limit`.
    """

    wallet_id: str
    network: str
    threshold: int = Field(description="The multiple of gap_limit the run just passed.")
    unused_run: int = Field(description="Addresses handed out after the last paid one.")
    gap_limit: int
    on_gap: OnGap
    next_index: int
    invoice_id: str = Field(description="The invoice whose address made the run pass it.")


class DescriptorPayload(BaseModel):
    """The output descriptor of a wallet's receive addresses, as wallet apps import it."""

    wallet_id: str
    network: str
    descriptor: str = Field(description="With its BIP-380 checksum after '#'.")
    checksum: str
    range: list[int] = Field(
        min_length=2,
        max_length=2,
        description="[first, last]: the derivation indexes handed out so far (import this "
        "range, or a wider one).",
    )
    addresses_handed_out: int
    key_origin: str | None
    origin_known: bool = Field(
        description="false: no key origin was registered; the descriptor lacks the master "
        "fingerprint and path, which watch-only wallets do not need but hardware wallets need "
        "to sign."
    )
    timestamp: int = Field(
        description="Unix time of the wallet's registration: no address of it was handed out "
        "earlier, so a rescan may start there."
    )
