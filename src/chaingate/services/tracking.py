"""Following one network: scan verified blocks, credit payments exactly once, survive reorgs.

Every step reads the node first, then applies what it learned in ONE transaction that also
moves the cursor with compare-and-set. A crash anywhere leaves either the old state or the
new one; a second tracker on the same network loses the compare-and-set and rolls back; a
replayed block hits the payments' unique key and credits nothing twice. A reorg's rollback
and the rescan of the new branch commit together, so a payment the new branch still holds
is moved, not lost and found again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from chaingate.config import NetworkConfig
from chaingate.domain.chain import BlockRef, Canonical, ReorgDetected, ScanResult, Transfer
from chaingate.domain.errors import ReorgTooDeep
from chaingate.domain.ids import new_id
from chaingate.domain.invoice import PaymentStatus, payment_status_for
from chaingate.domain.models import ChainCursor, Payment
from chaingate.ports import ChainClient, ChainFamily, Clock, Database, UnitOfWork
from chaingate.services.chain_time import passed_time
from chaingate.services.invoice_state import PaymentChanges, settle_invoice_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tracker:
    """Everything one network's tracker needs."""

    db: Database
    chain: ChainClient
    network: NetworkConfig
    family: ChainFamily  # the network's chain family: its chain-time rule, payloads, mempool
    clock: Clock
    # Ids of unmined payments the last mempool snapshot taken at the tip did not hold (see
    # services.mempool). In memory: a restart only delays an eviction by one poll.
    missing_from_mempool: set[str] = field(default_factory=set)
    # Base of the `checkout_url` in the events it writes (Settings.checkout_base_url).
    checkout_base: str | None = None


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    height: int
    at_tip: bool
    credited: int = 0
    reorged_to: int | None = None


async def settle_changed_invoices(
    uow: UnitOfWork,
    tracker: Tracker,
    height: int,
    block_timestamp: datetime,
    changes: dict[str, PaymentChanges],
    now: datetime,
) -> None:
    """Re-decide every invoice whose payments changed, against the chain time the verified
    block at `height` proves."""
    network = tracker.network
    chain_time = await passed_time(uow, network, tracker.family.chain_time, height, block_timestamp)
    for invoice_id, change in changes.items():
        await settle_invoice_state(
            uow,
            invoice_id,
            network=network,
            family=tracker.family,
            chain_time=chain_time,
            now=now,
            checkout_base=tracker.checkout_base,
            changes=change,
        )


async def sync_once(tracker: Tracker) -> SyncOutcome:
    """Advance at most one batch of blocks (or handle one reorg) and report where we stand.

    Raises NodeUnavailable when nodes do not answer usefully (state untouched) and ReorgTooDeep
    when a reorg reaches below the stored window.
    """
    network, chain = tracker.network, tracker.chain
    async with tracker.db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
    tip = await chain.tip_height()
    if cursor is None:
        return await _place_first_cursor(tracker, tip)

    fork = await _fork_point_if_reorged(tracker, cursor, tip)
    if fork is None and tip <= cursor.height:
        if tip == cursor.height:
            # Only a node that stands exactly where we do proves we have seen everything;
            # one that lags behind us proves nothing about blocks after its tip.
            await _mark_at_tip(tracker, cursor)
        return SyncOutcome(height=cursor.height, at_tip=True)

    base = fork or BlockRef(cursor.height, cursor.hash, "", cursor.block_timestamp)
    end = min(tip, base.number + network.scan_batch_blocks)
    if fork is not None:
        # Rescan at least as high as we stood, so rollback and replacement commit together.
        end = min(tip, max(end, cursor.height))
    watched: dict[str, str] = {}

    async def is_watched(addresses: Collection[str]) -> set[str]:
        # Watch windows are judged at the base block's time, so a tracker catching up after
        # downtime still sees payments made while the window was open.
        async with tracker.db.uow() as lookup:
            found = await lookup.invoices.watched(network.name, addresses, base.timestamp)
            # A payment already seen in the mempool is followed into its block even when its
            # invoice's watch window closed meanwhile (else it would look replaced).
            waiting = {p.address: p.invoice_id for p in await lookup.payments.unmined(network.name)}
        found.update({a: waiting[a] for a in addresses if a in waiting and a not in found})
        watched.update(found)
        return set(found)

    scan = ScanResult(blocks=(), transfers=())
    if end > base.number:
        try:
            scan = await chain.scan(base.number + 1, end, base, is_watched)
        except ReorgDetected:
            # The chain moved under us since we looked; the next call finds the new fork.
            return SyncOutcome(height=cursor.height, at_tip=False)
    if not scan.blocks and fork is None:
        # The node announced a tip it cannot serve yet: not proof of anything. Wait.
        return SyncOutcome(height=cursor.height, at_tip=False)

    newest = scan.blocks[-1] if scan.blocks else base
    credited = await _apply(tracker, cursor, fork, scan, watched, tip)
    if credited is None:
        return SyncOutcome(height=cursor.height, at_tip=False)
    return SyncOutcome(
        height=newest.number,
        at_tip=newest.number >= tip,
        credited=credited,
        reorged_to=None if fork is None else fork.number,
    )


async def _place_first_cursor(tracker: Tracker, tip: int) -> SyncOutcome:
    """Start at `start_block`, else at the tip — but never after an invoice already waiting."""
    network = tracker.network
    start = network.start_block if network.start_block is not None else tip
    block = await tracker.chain.block_at(start)
    if block is None:
        return SyncOutcome(height=start, at_tip=False)
    async with tracker.db.uow() as uow:
        oldest = await uow.invoices.oldest_created(network.name)
    if network.start_block is None and oldest is not None and oldest < block.timestamp:
        # Invoices were issued before this tracker ever ran: start below their creation.
        block = await _last_block_before(tracker, oldest, block)
    async with tracker.db.uow() as uow:
        await uow.chain.start_cursor(network.name, block, tracker.clock.now())
        await uow.commit()
    log.info("tracker %s starts at block %d", network.name, block.number)
    return SyncOutcome(height=block.number, at_tip=block.number >= tip)


async def _last_block_before(tracker: Tracker, moment: datetime, high: BlockRef) -> BlockRef:
    """Binary search for the highest block stamped before `moment` (genesis at worst)."""
    low_block = await tracker.chain.block_at(0)
    if low_block is None or low_block.timestamp >= moment:
        return low_block or high
    low, top = 0, high.number
    while top - low > 1:
        middle = (low + top) // 2
        probe = await tracker.chain.block_at(middle)
        if probe is not None and probe.timestamp < moment:
            low, low_block = middle, probe
        else:
            top = middle
    return low_block


async def _fork_point_if_reorged(
    tracker: Tracker, cursor: ChainCursor, tip: int
) -> BlockRef | None:
    """None while our cursor is on the node's chain; else the block to roll back to."""
    node_block = await tracker.chain.block_at(cursor.height)
    if node_block is not None:
        if node_block.hash == cursor.hash:
            return None
        return await _find_fork_point(tracker, cursor)
    # The node has no block at our height: it lags, or its best chain got shorter. Missing
    # blocks prove nothing (a backup node may still be syncing); proof is the node saying our
    # block left its best chain (the family decides what counts as saying so), or a *different*
    # block at a height we stored: a chain that got shorter grows again, and differs from ours.
    ours = BlockRef(cursor.height, cursor.hash, "", cursor.block_timestamp)
    if await tracker.chain.canonical(ours) is Canonical.NO:
        return await _find_fork_point(tracker, cursor)
    async with tracker.db.uow() as uow:
        stored = await uow.chain.blocks_from(tracker.network.name, tip)
    at_tip = next((b for b in stored if b.number == tip), None)
    node_tip = await tracker.chain.block_at(tip)
    if at_tip is None or node_tip is None or node_tip.hash == at_tip.hash:
        return None
    return await _find_fork_point(tracker, cursor)


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


async def _apply(
    tracker: Tracker,
    cursor: ChainCursor,
    fork: BlockRef | None,
    scan: ScanResult,
    watched: dict[str, str],
    tip: int,
) -> int | None:
    """Roll back to `fork` (if any), record the scanned blocks and their payments, re-decide
    the touched invoices — one transaction. None if another tracker moved the cursor first."""
    network, now = tracker.network, tracker.clock.now()
    newest = scan.blocks[-1] if scan.blocks else fork
    assert newest is not None
    async with tracker.db.uow() as uow:
        if not await uow.chain.move_cursor(network.name, cursor, newest, now):
            return None
        changes: dict[str, PaymentChanges] = defaultdict(PaymentChanges)
        vanished: dict[str, Payment] = {}
        if fork is not None:
            await uow.chain.forget_above(network.name, fork.number)
            for payment in await uow.payments.counted_above(network.name, fork.number):
                await uow.payments.update(payment.id, status=PaymentStatus.ORPHANED, updated_at=now)
                vanished[payment.id] = payment
        await uow.chain.add_blocks(network.name, scan.blocks)
        credited = 0
        for transfer in scan.transfers:
            invoice_id = watched.get(transfer.to_address)
            if invoice_id is None:
                continue
            recorded = await record_transfer(
                uow, transfer, invoice_id, newest.number, now, network.min_amount(transfer.asset)
            )
            if recorded is None:
                continue
            payment, what = recorded
            if what is Recorded.MINED or (
                what is Recorded.RETURNED and vanished.pop(payment.id, None) is not None
            ):
                # Mined after its mempool sighting, or moved to another block by the reorg:
                # the same payment, already announced; only the invoice is re-decided.
                changes.setdefault(invoice_id, PaymentChanges())
                continue
            changes[invoice_id].received.append(payment)
            credited += 1
        for payment in vanished.values():
            changes[payment.invoice_id].removed.append(payment)
        await _advance_confirmations(uow, network.name, newest.number, now, changes)
        await settle_changed_invoices(uow, tracker, newest.number, newest.timestamp, changes, now)
        if newest.number == tip:
            moved = ChainCursor(network.name, newest.number, newest.hash, newest.timestamp, None)
            await uow.chain.mark_synced(network.name, moved, now)
        await uow.chain.prune_below(network.name, newest.number - network.reorg_window_blocks)
        await uow.commit()
    if fork is not None:
        log.warning(
            "reorg on %s: rolled back from %d to %d and rescanned to %d; %d payment(s) vanished",
            network.name,
            cursor.height,
            fork.number,
            newest.number,
            len(vanished),
        )
    return credited


class Recorded(Enum):
    """What recording one transfer changed."""

    NEW = "new"  # a payment never seen before: announce it
    RETURNED = "returned"  # an orphaned payment seen again (new block or back in the mempool)
    MINED = "mined"  # a mempool sighting now in a block: same payment, no second credit


async def record_transfer(
    uow: UnitOfWork,
    transfer: Transfer,
    invoice_id: str,
    height: int,
    now: datetime,
    dust_below: int = 0,
) -> tuple[Payment, Recorded] | None:
    """Insert the payment once; a replayed block or mempool look changes nothing.

    `transfer.block` None is a mempool sighting (0 confirmations, `paid_at` = now). Returns
    the payment and what changed, None when there is nothing new.
    """
    invoice = await uow.invoices.lock(invoice_id)
    assert invoice is not None
    block = transfer.block
    confirmations = 0 if block is None else height - block.number + 1
    status = payment_status_for(
        confirmations, invoice.required_confirmations, coinbase=transfer.coinbase
    )
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
        block_number=None if block is None else block.number,
        block_hash=None if block is None else block.hash,
        paid_at=now if block is None else block.timestamp,
        confirmations=confirmations,
        status=status,
        reached_confirmations=status is PaymentStatus.CONFIRMED,
        created_at=now,
        updated_at=now,
        coinbase=transfer.coinbase,
    )
    if transfer.amount < dust_below:
        # Dust (typically address poisoning): kept for the record, never counted, not announced.
        dust = replace(payment, status=PaymentStatus.DUST, reached_confirmations=False)
        if not await uow.payments.add_if_new(dust) and block is not None:
            await _attach_if_unmined(uow, invoice.network, transfer, block, now)
        return None
    if transfer.asset != invoice.asset:
        # Money in another asset is recorded and announced but never counted: the merchant
        # sees it (a refund is their decision), the invoice's status does not move.
        log.warning(
            "invoice %s (%s) received %s in tx %s: recorded, not counted",
            invoice_id,
            invoice.asset,
            transfer.asset,
            transfer.txid,
        )
        payment = replace(payment, status=PaymentStatus.WRONG_ASSET, reached_confirmations=False)
    if await uow.payments.add_if_new(payment):
        return payment, Recorded.NEW
    existing = await uow.payments.get_by_key(invoice.network, transfer.txid, transfer.position)
    if existing is None:
        return None
    if existing.status is PaymentStatus.ORPHANED:
        # Re-mined after a reorg, or back in the mempool: the same payment counts again.
        await uow.payments.reattach(
            existing.id,
            block_number=None if block is None else block.number,
            block_hash=None if block is None else block.hash,
            paid_at=existing.paid_at if block is None else block.timestamp,
            at=now,
        )
        moved = await uow.payments.get_by_key(invoice.network, transfer.txid, transfer.position)
        assert moved is not None
        return moved, Recorded.RETURNED
    if block is not None and existing.block_number is None:
        mined = await _attach_if_unmined(uow, invoice.network, transfer, block, now)
        return None if mined is None else (mined, Recorded.MINED)
    return None


async def _attach_if_unmined(
    uow: UnitOfWork, network: str, transfer: Transfer, block: BlockRef, now: datetime
) -> Payment | None:
    """Give a mempool sighting its block. `paid_at` stays the first sighting: the payer paid
    then, and the tracker only believes the mempool while it stands at the tip."""
    existing = await uow.payments.get_by_key(network, transfer.txid, transfer.position)
    if existing is None or existing.block_number is not None:
        return None
    await uow.payments.update(
        existing.id, block_number=block.number, block_hash=block.hash, updated_at=now
    )
    return replace(existing, block_number=block.number, block_hash=block.hash, updated_at=now)


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
        if payment.block_number is None:
            continue  # in the mempool: no confirmations to count yet
        if payment.invoice_id not in required:
            invoice = await uow.invoices.get(payment.invoice_id)
            assert invoice is not None
            required[payment.invoice_id] = invoice.required_confirmations
        confirmations = height - payment.block_number + 1
        if confirmations == payment.confirmations:
            continue
        status = payment_status_for(
            confirmations, required[payment.invoice_id], coinbase=payment.coinbase
        )
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
