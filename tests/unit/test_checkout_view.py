"""The hosted checkout's public view, case by case (pure logic: no database, node or browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.config import TokenConfig
from chaingate.domain.errors import DomainError
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Invoice, Payment
from chaingate.entrypoints.web.checkout import SlotStream, StreamSlots, page_headers
from chaingate.services.checkout import (
    CheckoutState,
    checkout_state,
    confirmations_seen,
    present_checkout,
    validate_redirect_url,
    wallet_links,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
USDT = TokenConfig(symbol="USDT", contract="0x" + "ab" * 20, decimals=6)
NETWORK = EvmNetworkConfig(
    name="base", chain_id=8453, rpc_urls=["http://127.0.0.1:9"], tokens=[USDT]
)
ADDRESS = "0x" + "12" * 20
INVOICE = Invoice(
    id="inv_" + "0" * 26,
    merchant_id="mch_1",
    network="base",
    asset="USDT",
    amount_due=25_000_000,
    amount_paid=0,
    status=InvoiceStatus.NEW,
    additional_status=AdditionalStatus.NONE,
    address=ADDRESS,
    wallet_id="wal_1",
    derivation_index=3,
    order_id="secret-order",
    metadata={"email": "a@b.c"},
    required_confirmations=3,
    tolerance_bps=0,
    expires_at=NOW + timedelta(minutes=15),
    watch_until=NOW + timedelta(days=1),
    created_at=NOW,
    updated_at=NOW,
    redirect_url="https://shop.example/thanks",
)


def payment(amount: int, confirmations: int, status: PaymentStatus) -> Payment:
    return Payment(
        id="pay_x",
        invoice_id=INVOICE.id,
        network="base",
        txid="0x" + "cd" * 32,
        position="4",
        address=ADDRESS,
        asset="USDT",
        token_contract=USDT.contract,
        from_address=None,
        amount=amount,
        block_number=10,
        block_hash="0x" + "ef" * 32,
        paid_at=NOW,
        confirmations=confirmations,
        status=status,
        reached_confirmations=status is PaymentStatus.CONFIRMED,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("status", "additional", "state"),
    [
        (InvoiceStatus.NEW, AdditionalStatus.NONE, CheckoutState.WAITING),
        (InvoiceStatus.NEW, AdditionalStatus.UNDERPAID, CheckoutState.UNDERPAID),
        (InvoiceStatus.PROCESSING, AdditionalStatus.NONE, CheckoutState.SEEN),
        (InvoiceStatus.PROCESSING, AdditionalStatus.OVERPAID, CheckoutState.SEEN),
        (InvoiceStatus.SETTLED, AdditionalStatus.NONE, CheckoutState.PAID),
        (InvoiceStatus.SETTLED, AdditionalStatus.OVERPAID, CheckoutState.PAID),
        (InvoiceStatus.EXPIRED, AdditionalStatus.UNDERPAID, CheckoutState.EXPIRED),
        (InvoiceStatus.EXPIRED, AdditionalStatus.PAID_LATE, CheckoutState.EXPIRED),
        (InvoiceStatus.INVALID, AdditionalStatus.NONE, CheckoutState.INVALID),
    ],
)
def test_state_follows_the_invoice(
    status: InvoiceStatus, additional: AdditionalStatus, state: CheckoutState
) -> None:
    assert checkout_state(replace(INVOICE, status=status, additional_status=additional)) is state


def test_final_states_end_the_stream() -> None:
    assert {s for s in CheckoutState if s.final} == {
        CheckoutState.PAID,
        CheckoutState.EXPIRED,
        CheckoutState.INVALID,
    }


def test_confirmations_are_the_slowest_counted_payment_capped_at_required() -> None:
    assert confirmations_seen([], 3) == 0
    counted = [
        payment(1, 5, PaymentStatus.CONFIRMED),
        payment(1, 1, PaymentStatus.PENDING),
        payment(1, 0, PaymentStatus.ORPHANED),  # not counted: does not hold the others back
        payment(1, 0, PaymentStatus.DUST),
    ]
    assert confirmations_seen(counted, 3) == 1
    assert confirmations_seen([payment(1, 9, PaymentStatus.CONFIRMED)], 3) == 3


def test_wallet_links_for_evm_and_for_other_families() -> None:
    uri = f"ethereum:{ADDRESS}@8453?value=5"
    links = wallet_links(EvmFamily(), uri)
    assert [(w.label, w.url) for w in links] == [
        ("Open in wallet", uri),
        ("Open in MetaMask", f"https://metamask.app.link/send/{ADDRESS}@8453?value=5"),
    ]
    # A payment request of another scheme gets no MetaMask link, only the request itself.
    assert [w.label for w in wallet_links(EvmFamily(), "bitcoin:bc1q...?amount=1")] == [
        "Open in wallet"
    ]
    assert [w.label for w in wallet_links(BitcoinFamily(), "bitcoin:bc1q...?amount=1")] == [
        "Open in wallet"
    ]


def test_view_of_an_underpaid_token_invoice_asks_for_the_remainder() -> None:
    underpaid = replace(
        INVOICE, amount_paid=10_000_000, additional_status=AdditionalStatus.UNDERPAID
    )
    view = present_checkout(underpaid, [], "Shop", NETWORK, EvmFamily())
    assert (view.amount, view.amount_due, view.amount_paid) == ("25", "15", "10")
    assert view.payment_uri == (
        f"ethereum:{USDT.contract}@8453/transfer?address={ADDRESS}&uint256=15000000"
    )
    document = view.status_document()
    assert document["state"] == "underpaid"
    assert document["qr_url"] == f"/i/{INVOICE.id}/qr.svg?units=15000000"
    assert document["redirect_url"] is None  # not before paid
    text = repr(document) + repr(view)
    assert "secret-order" not in repr(document) and "a@b.c" not in text and "mch_1" not in text


def test_redirect_url_is_revealed_once_paid() -> None:
    paid = replace(INVOICE, status=InvoiceStatus.SETTLED, amount_paid=25_000_000)
    view = present_checkout(paid, [], "Shop", NETWORK, EvmFamily())
    assert view.status_document()["redirect_url"] == "https://shop.example/thanks"
    # Fully paid: the request still names the whole amount, never a zero-value transfer.
    assert view.payment_uri.endswith("uint256=25000000")


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/",
        "https://shop.example:8443/orders/1?x=y#z",
        "HTTPS://SHOP.EXAMPLE/",
        "https://[2001:db8::1]/x",
    ],
)
def test_good_redirect_urls(url: str) -> None:
    assert validate_redirect_url(url, allow_http=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example/",
        "javascript:alert(1)",
        "https:///path-only",
        "https://a@shop.example/",
        "https://shop.example/\nx",
        "https://shop.example/ x",
        "https://[::1/",
        "/relative",
        "https://shop.example/" + "a" * 1980,
    ],
)
def test_bad_redirect_urls(url: str) -> None:
    with pytest.raises(DomainError) as refused:
        validate_redirect_url(url, allow_http=False)
    assert (refused.value.code, refused.value.field, refused.value.status) == (
        "invalid_redirect_url",
        "redirect_url",
        422,
    )


def test_http_redirects_only_in_dev_mode() -> None:
    assert validate_redirect_url("http://127.0.0.1:3000/", allow_http=True)
    with pytest.raises(DomainError):
        validate_redirect_url("ftp://127.0.0.1/", allow_http=True)


def test_stream_slots_refuse_over_the_limit_and_come_back() -> None:
    slots = StreamSlots(2)
    assert [slots.take(), slots.take(), slots.take()] == [True, True, False]
    slots.give_back()
    assert slots.take() is True
    assert StreamSlots(0).take() is False


def test_only_embed_mode_may_be_framed() -> None:
    plain, embed = page_headers(embed=False), page_headers(embed=True)
    assert plain["X-Frame-Options"] == "DENY"
    assert plain["Content-Security-Policy"].endswith("frame-ancestors 'none'")
    assert "X-Frame-Options" not in embed
    assert embed["Content-Security-Policy"].endswith("frame-ancestors *")
    for headers in (plain, embed):
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "'unsafe-inline'" not in headers["Content-Security-Policy"]


async def test_a_stream_gives_its_slot_back_even_when_it_never_started() -> None:
    slots = StreamSlots(1)
    assert slots.take()

    async def body() -> AsyncIterator[str]:
        yield "never sent"

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the client is gone")  # as uvicorn's send to a closed connection

    with pytest.raises(ClientDisconnect):
        await SlotStream(body(), slots, headers={})(
            {"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send
        )
    assert slots.open == 0
