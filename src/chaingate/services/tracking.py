"""Following one network: scan verified blocks, credit payments exactly once, survive reorgs.

Every step reads the node first, then applies what it learned in ONE transaction that also
moves the cursor with compare-and-set. A crash anywhere leaves either the old state or the
new one; a second tracker on the same network loses the compare-and-set and rolls back; a
replayed block hits the payments' unique key and credits nothing twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from chaingate.adapters.db.uow import Database, UnitOfWork
from chaingate.config import NetworkConfig
from chaingate.domain.chain import BlockRef, ReorgDetected, Transfer
from chaingate.domain.ids import new_id
from chaingate.domain.invoice import PaymentStatus, payment_status_for
from chaingate.domain.models import ChainCursor, Payment
from chaingate.ports import ChainClient, Clock, PaymentUriBuilder
from chaingate.services.invoice_state import PaymentChanges, settle_invoice_state

log = logging.getLogger(__name__)


class ReorgTooDeep(Exception):
    """No stored block within the reorg window is still canonical: an operator must look."""


@dataclass(frozen=True, slots=True)
class Tracker:
    """Everything one network's tracker needs."""

    db: Database
    chain: ChainClient
    network: NetworkConfig
    clock: Clock
    uri_builder: PaymentUriBuilder


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    height: int
    at_tip: bool
    credited: int = 0
    reorged_to: int | None = None


async def sync_once(tracker: Tracker) -> SyncOutcome:
    """Advance at most one batch of blocks (or roll back one reorg) and report where we stand.

    Raises NodeUnavailable when nodes do not answer usefully (state untouched) and ReorgTooDeep
    when a reorg reaches below the stored window.
    """
    network, chain = tracker.network, tracker.chain
    async with tracker.db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
    tip = await chain.tip_height()
    if cursor is None:
        return await _place_first_cursor(tracker, tip)

    if not await _cursor_is_canonical(tracker, cursor, tip):
        fork = await _find_fork_point(tracker, cursor)
        await _roll_back(tracker, cursor, fork)
        return SyncOutcome(height=fork.number, at_tip=False, reorged_to=fork.number)

    if tip <= cursor.height:
        if tip == cursor.height:
            # Only a node that stands exactly where we do proves we have seen everything;
            # one that lags behind us proves nothing about blocks after its tip.
            await _mark_at_tip(tracker, cursor)
        return SyncOutcome(height=cursor.height, at_tip=True)

    end = min(tip, cursor.height + network.scan_batch_blocks)
    parent = BlockRef(
        number=cursor.height,
        hash=cursor.hash,
        parent_hash="",
        timestamp=cursor.block_timestamp,
    )
    watched: dict[str, str] = {}

    async def is_watched(addresses: Collection[str]) -> set[str]:
        # Watch windows are judged at the parent block's time, so a tracker catching up after
        # downtime still sees payments made while the window was open.
        async with tracker.db.uow() as lookup:
            found = await lookup.invoices.watched(network.name, addresses, cursor.block_timestamp)
        watched.update(found)
        return set(found)

    try:
        scan = await chain.scan(cursor.height + 1, end, parent, is_watched)
    except ReorgDetected:
        fork = await _find_fork_point(tracker, cursor)
        await _roll_back(tracker, cursor, fork)
        return SyncOutcome(height=fork.number, at_tip=False, reorged_to=fork.number)
    if not scan.blocks:
        # The node announced a tip it cannot serve yet: not proof of anything. Wait.
        return SyncOutcome(height=cursor.height, at_tip=False)

    newest = scan.blocks[-1]
    credited = await _apply_blocks(tracker, cursor, scan.blocks, scan.transfers, watched, tip)
    if credited is None:
        return SyncOutcome(height=cursor.height, at_tip=False)
    return SyncOutcome(height=newest.number, at_tip=newest.number >= tip, credited=credited)


async def _place_first_cursor(tracker: Tracker, tip: int) -> SyncOutcome:
    start = tracker.network.start_block if tracker.network.start_block is not None else tip
    block = await tracker.chain.block_at(start)
    if block is None:
        return SyncOutcome(height=start, at_tip=False)
    async with tracker.db.uow() as uow:
        await uow.chain.start_cursor(tracker.network.name, block, tracker.clock.now())
        await uow.commit()
    log.info("tracker %s starts at block %d", tracker.network.name, block.number)
    return SyncOutcome(height=block.number, at_tip=block.number >= tip)


async def _cursor_is_canonical(tracker: Tracker, cursor: ChainCursor, tip: int) -> bool:
    node_block = await tracker.chain.block_at(cursor.height)
    if node_block is not None:
        return node_block.hash == cursor.hash
    # The node has no block at our height: either it lags, or the chain got shorter. Only a
    # stored block that the node now answers differently proves a reorg.
    async with tracker.db.uow() as uow:
        stored = await uow.chain.blocks_from(tracker.network.name, tip)
    at_tip = next((b for b in stored if b.number == tip), None)
    if at_tip is None:
        return True
    node_tip = await tracker.chain.block_at(tip)
    return node_tip is None or node_tip.hash == at_tip.hash


async def _find_fork_point(tracker: Tracker, cursor: ChainCursor) -> BlockRef:
    """The highest stored block the node still has in its canonical chain."""
    low = cursor.height - tracker.network.reorg_window_blocks
    async with tracker.db.uow() as uow:
        stored = await uow.chain.blocks_from(tracker.network.name, low)
    for block in stored:  # highest first: shallow reorgs cost one or two calls
        node_block = await tracker.chain.block_at(block.number)
        if node_block is not None and node_block.hash == block.hash:
            return block
    raise ReorgTooDeep(f"{tracker.network.name}: no stored block above {low} is canonical any more")


async def _roll_back(tracker: Tracker, cursor: ChainCursor, fork: BlockRef) -> None:
    """Move the cursor back to `fork` and un-count every payment in the orphaned blocks."""
    network, now = tracker.network, tracker.clock.now()
    async with tracker.db.uow() as uow:
        if not await uow.chain.move_cursor(network.name, cursor, fork, now):
            return  # another tracker handled it first
        await uow.chain.forget_above(network.name, fork.number)
        orphaned = await uow.payments.counted_above(network.name, fork.number)
        changes: dict[str, PaymentChanges] = defaultdict(PaymentChanges)
        for payment in orphaned:
            await uow.payments.update(payment.id, status=PaymentStatus.ORPHANED, updated_at=now)
            changes[payment.invoice_id].removed.append(payment)
        for invoice_id, change in changes.items():
            await settle_invoice_state(
                uow,
                invoice_id,
                network=network,
                uri_builder=tracker.uri_builder,
                chain_time=fork.timestamp,
                now=now,
                changes=change,
            )
        await uow.commit()
    log.warning(
        "reorg on %s: rolled back from %d to %d, %d payment(s) un-counted",
        network.name,
        cursor.height,
        fork.number,
        len(orphaned),
    )


async def _apply_blocks(
    tracker: Tracker,
    cursor: ChainCursor,
    blocks: tuple[BlockRef, ...],
    transfers: tuple[Transfer, ...],
    watched: dict[str, str],
    tip: int,
) -> int | None:
    """Record verified blocks and their payments; None if another tracker got there first."""
    network, now = tracker.network, tracker.clock.now()
    newest = blocks[-1]
    async with tracker.db.uow() as uow:
        if not await uow.chain.move_cursor(network.name, cursor, newest, now):
            return None
        await uow.chain.add_blocks(network.name, blocks)
        changes: dict[str, PaymentChanges] = defaultdict(PaymentChanges)
        credited = 0
        for transfer in transfers:
            invoice_id = watched.get(transfer.to_address)
            if invoice_id is None:
                continue
            payment = await _record_transfer(uow, transfer, invoice_id, newest.number, now)
            if payment is not None:
                changes[invoice_id].received.append(payment)
                credited += 1
        await _advance_confirmations(uow, network.name, newest.number, now, changes)
        for invoice_id, change in changes.items():
            await settle_invoice_state(
                uow,
                invoice_id,
                network=network,
                uri_builder=tracker.uri_builder,
                chain_time=newest.timestamp,
                now=now,
                changes=change,
            )
        if newest.number >= tip:
            moved = ChainCursor(network.name, newest.number, newest.hash, newest.timestamp, None)
            await uow.chain.mark_synced(network.name, moved, now)
        await uow.chain.prune_below(network.name, newest.number - network.reorg_window_blocks)
        await uow.commit()
    return credited


async def _record_transfer(
    uow: UnitOfWork, transfer: Transfer, invoice_id: str, height: int, now: datetime
) -> Payment | None:
    """Insert the payment once; a replayed block changes nothing. Returns it when it is news."""
    invoice = await uow.invoices.lock(invoice_id)
    assert invoice is not None
    confirmations = height - transfer.block.number + 1
    status = payment_status_for(confirmations, invoice.required_confirmations)
    payment = Payment(
        id=new_id("pay"),
        invoice_id=invoice_id,
        network=invoice.network,
        txid=transfer.txid,
        position=transfer.position,
        address=transfer.to_address,
        asset=transfer.asset,
        token_contract=transfer.token_contract,
        from_address=transfer.from_address,
        amount=transfer.amount,
        block_number=transfer.block.number,
        block_hash=transfer.block.hash,
        paid_at=transfer.block.timestamp,
        confirmations=confirmations,
        status=status,
        reached_confirmations=status is PaymentStatus.CONFIRMED,
        created_at=now,
        updated_at=now,
    )
    if transfer.asset != invoice.asset:
        # Another asset sent to this address is recorded against nothing: log it for the
        # operator (a refund is a manual decision), but it must not count toward the invoice.
        log.warning(
            "invoice %s (%s) received %s in tx %s: not counted",
            invoice_id,
            invoice.asset,
            transfer.asset,
            transfer.txid,
        )
        return None
    if await uow.payments.add_if_new(payment):
        return payment
    existing = await uow.payments.get_by_key(invoice.network, transfer.txid, transfer.position)
    if existing is not None and existing.status is PaymentStatus.ORPHANED:
        # Re-mined after a reorg: the same payment is back in a new block.
        await uow.payments.reattach(
            existing.id,
            block_number=transfer.block.number,
            block_hash=transfer.block.hash,
            paid_at=transfer.block.timestamp,
            at=now,
        )
        return existing
    return None


async def _advance_confirmations(
    uow: UnitOfWork,
    network_name: str,
    height: int,
    now: datetime,
    changes: dict[str, PaymentChanges],
) -> None:
    """Recount confirmations of pending payments; mark those that reached their requirement."""
    required: dict[str, int] = {}
    for payment in await uow.payments.pending(network_name):
        if payment.invoice_id not in required:
            invoice = await uow.invoices.get(payment.invoice_id)
            assert invoice is not None
            required[payment.invoice_id] = invoice.required_confirmations
        confirmations = height - payment.block_number + 1
        if confirmations == payment.confirmations:
            continue
        status = payment_status_for(confirmations, required[payment.invoice_id])
        await uow.payments.update(
            payment.id,
            confirmations=confirmations,
            status=status,
            reached_confirmations=status is PaymentStatus.CONFIRMED,
            updated_at=now,
        )
        if status is PaymentStatus.CONFIRMED:
            changes.setdefault(payment.invoice_id, PaymentChanges())  # re-decide the invoice


async def _mark_at_tip(tracker: Tracker, cursor: ChainCursor) -> None:
    async with tracker.db.uow() as uow:
        await uow.chain.mark_synced(tracker.network.name, cursor, tracker.clock.now())
        await uow.commit()
