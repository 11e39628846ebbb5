"""The gap limit as a signal, never an outage (rules in domain/gap.py).

Where a chain family's wallets have a gap limit (its `wallet_policy` says so), every address
handed out is checked here, inside the invoice's transaction and after the wallet row was
locked by the index reservation: `on_gap: warn` (the default) hands it out and, when the run of
unused addresses has just passed another multiple of the gap limit, writes one
`wallet.gap_warning` event and remembers the threshold on the wallet row — in that same
transaction, so a crash loses neither or both and concurrent invoices (serialized by the row
lock) cannot warn twice. `on_gap: refuse` answers 409 `gap_limit_reached` instead.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chaingate.domain.errors import Conflict
from chaingate.domain.events import EventType
from chaingate.domain.gap import (
    GapStatus,
    OnGap,
    crossed_threshold,
    gap_status,
    refuses,
    run_start,
)
from chaingate.domain.models import Wallet
from chaingate.ports import UnitOfWork, WalletPolicy
from chaingate.services.events import emit
from chaingate.services.payloads import GapWarningPayload, document, wallet_payload


async def wallet_gap(uow: UnitOfWork, wallet: Wallet) -> GapStatus:
    """The wallet's run of unused addresses and the gap limit its wallet app needs."""
    last_paid, widest = await uow.wallets.paid_gaps(wallet.id)
    return gap_status(wallet.next_index, last_paid, widest)


def wallet_warnings(wallet: Wallet, gap: GapStatus | None) -> list[tuple[str, str]]:
    """(code, detail) of what the merchant must know; `gap` None: the family has no gap rule."""
    found: list[tuple[str, str]] = []
    if wallet.key_identity is None:
        found.append(
            (
                "key_released",
                "Another wallet proved control of this key and holds it now: this wallet hands "
                "out no addresses. Claim the key back with POST "
                f"/v1/wallets/{wallet.id}/claim and a signature made with its key.",
            )
        )
    if gap is None:
        return found
    scanning = (
        "Invoices pay to the receive addresses .../0/0, .../0/1, ... of this key. A wallet app "
        "using the same key (Electrum, Sparrow, Bitcoin Core, a hardware wallet) stops looking "
        "for payments after a run of unused addresses (its gap limit, usually 20): payments "
        "beyond it are not lost, but the app does not show them until its gap limit is raised."
    )
    if wallet.on_gap == OnGap.REFUSE:
        policy = (
            f" This wallet refuses a new invoice (409 gap_limit_reached) when the last "
            f"{wallet.gap_limit} addresses handed out are all unpaid (on_gap: refuse); raise "
            "gap_limit here (PATCH) and in the wallet app together."
        )
    else:
        policy = (
            f" Invoices are never refused for this (on_gap: warn): gap.needed_gap_limit is the "
            f"gap limit your wallet app needs, and a wallet.gap_warning event comes each time the "
            f"run of unused addresses passes another multiple of gap_limit ({wallet.gap_limit}). "
            f"Or import the output descriptor (GET /v1/wallets/{wallet.id}/descriptor): it "
            "covers exactly the addresses handed out."
        )
    found.append(("gap_limit", scanning + policy))
    if gap.needed_gap_limit > wallet.gap_limit:
        found.append(
            (
                "gap_limit_exceeded",
                f"A wallet app with gap limit {wallet.gap_limit} misses payments to some of the "
                f"addresses handed out: set its gap limit to at least {gap.needed_gap_limit}, "
                "or import the output descriptor.",
            )
        )
    return found


async def wallet_document(
    uow: UnitOfWork, wallet: Wallet, policy: WalletPolicy | None
) -> dict[str, Any]:
    """The wallet as the API answers it and events carry it; `policy` None for a network no
    longer configured (no gap figures then)."""
    gap = await wallet_gap(uow, wallet) if policy is not None and policy.gap_limit else None
    return document(wallet_payload(wallet, gap, wallet_warnings(wallet, gap)))


def dumps(view: dict[str, Any]) -> str:
    return json.dumps(view, separators=(",", ":"))


async def guard_gap(
    uow: UnitOfWork,
    wallet: Wallet,
    index: int,
    policy: WalletPolicy,
    now: datetime,
    invoice_id: str,
) -> None:
    """Apply the wallet's gap policy to handing out address `index` (for `invoice_id`).

    `wallet` must be the row as locked by the index reservation. Raises Conflict
    `gap_limit_reached` for `on_gap: refuse`; with `warn` it may stage a `wallet.gap_warning`.
    """
    if not policy.gap_limit:
        return
    start = run_start(await uow.wallets.highest_paid_index(wallet.id))
    if wallet.on_gap == OnGap.REFUSE:
        if refuses(index - start, wallet.gap_limit):
            raise Conflict(
                f"the last {wallet.gap_limit} addresses of this wallet received no payment; a "
                f"wallet app with gap limit {wallet.gap_limit} would not find a payment to the "
                f"next one. Wait for a payment, raise gap_limit (PATCH /v1/wallets/{wallet.id}) "
                "and the gap limit of your wallet app, or set on_gap to warn",
                code="gap_limit_reached",
            )
        return
    threshold = crossed_threshold(
        index + 1 - start,
        wallet.gap_limit,
        start,
        wallet.gap_warned_start,
        wallet.gap_warned_threshold,
    )
    if threshold is None:
        return
    await uow.wallets.mark_gap_warned(wallet.id, start, threshold)
    warning = GapWarningPayload(
        wallet_id=wallet.id,
        network=wallet.network,
        threshold=threshold,
        unused_run=index + 1 - start,
        gap_limit=wallet.gap_limit,
        on_gap=OnGap(wallet.on_gap),
        next_index=index + 1,
        invoice_id=invoice_id,
    )
    await emit(
        uow,
        merchant_id=wallet.merchant_id,
        event_type=EventType.WALLET_GAP_WARNING,
        data=document(warning),
        at=now,
    )
