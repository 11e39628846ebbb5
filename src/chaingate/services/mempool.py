"""Following a network's mempool: unconfirmed payments, and the ones that vanish (RBF).

A mempool sighting is a payment without a block: announced, counted (0 confirmations), and
given its block by the block tracker when mined — the same row, never a second credit. A
counted sighting whose transaction leaves the mempool without being mined was replaced or
double-spent: it is orphaned and its invoice re-decided.

The mempool is believed only while the tracker stands on the node's tip, checked AFTER the
snapshot: a transaction missing from a snapshot taken at our tip was not mined in a block we
have not scanned yet. One snapshot is still not enough to evict: it may come from a backup node
(failover between the snapshot and the tip check) or from a node still loading its mempool. A
counted sighting is orphaned only when missing from two consecutive snapshots taken at the tip
(remembered per tracker in memory: a restart delays an eviction, never hastens one), and never
from a snapshot whose node says its mempool is not loaded. A sighting mined meanwhile gets its
block from the block scan and is no longer unmined, so it is never evicted. The apply step
compare-and-sets the cursor (to where it stands), so a block scan or a second tracker that
moved it in between makes this pass roll back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, replace

from chaingate.domain.chain import BlockRef, MempoolView
from chaingate.domain.invoice import PaymentStatus
from chaingate.domain.models import ChainCursor
from chaingate.services.invoice_state import PaymentChanges
from chaingate.services.tracking import (
    Recorded,
    Tracker,
    record_transfer,
    settle_changed_invoices,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MempoolOutcome:
    applied: bool  # False: not at the tip, or the cursor moved meanwhile; nothing changed
    received: int = 0
    evicted: int = 0


def follows_mempool(tracker: Tracker) -> bool:
    """Whether the network's family has a mempool view worth polling, and it is turned on."""
    return tracker.family.follows_mempool(tracker.network)


async def sync_mempool(tracker: Tracker) -> MempoolOutcome:
    """Look at the mempool once and apply what changed, in one transaction with its events.

    Raises NodeUnavailable when the nodes do not answer usefully (state untouched).
    """
    network, chain = tracker.network, tracker.chain
    async with tracker.db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
    if cursor is None:
        return MempoolOutcome(applied=False)
    watched: dict[str, str] = {}

    async def is_watched(addresses: Collection[str]) -> set[str]:
        async with tracker.db.uow() as lookup:
            found = await lookup.invoices.watched(network.name, addresses, tracker.clock.now())
        watched.update(found)
        return set(found)

    view = await chain.mempool(is_watched)
    if not await _still_at(tracker, cursor):
        return MempoolOutcome(applied=False)
    gone = await _gone_twice(tracker, view)
    if not gone and not await _anything_new(tracker, view):
        return MempoolOutcome(applied=True)  # the usual poll: a read, no write
    return await _apply(tracker, cursor, view, watched, gone)


async def _gone_twice(tracker: Tracker, view: MempoolView) -> frozenset[str]:
    """Ids of unmined payments missing from this snapshot AND the previous one taken at the tip;
    remembers this snapshot's missing ones for the next pass."""
    if not view.loaded:
        return frozenset()  # proves nothing, and does not break a run of two either
    present = view.txids | {t.txid for t in view.transfers}
    async with tracker.db.uow() as uow:
        unmined = await uow.payments.unmined(tracker.network.name)
    missing = {p.id for p in unmined if p.txid not in present}
    remembered = tracker.missing_from_mempool
    gone = frozenset(missing & remembered)
    remembered.clear()
    remembered.update(missing)
    return gone


async def _anything_new(tracker: Tracker, view: MempoolView) -> bool:
    """Whether the view holds an output not yet recorded (or orphaned); the apply step
    re-decides everything under the lock."""
    network = tracker.network.name
    if not view.transfers:
        return False
    async with tracker.db.uow() as uow:
        stored = await uow.payments.statuses(network, {t.txid for t in view.transfers})
    return any(
        stored.get((t.txid, t.position), PaymentStatus.ORPHANED) is PaymentStatus.ORPHANED
        for t in view.transfers
    )


async def _still_at(tracker: Tracker, cursor: ChainCursor) -> bool:
    tip = await tracker.chain.tip_height()
    if tip != cursor.height:
        return False
    block = await tracker.chain.block_at(cursor.height)
    return block is not None and block.hash == cursor.hash


async def _apply(
    tracker: Tracker,
    cursor: ChainCursor,
    view: MempoolView,
    watched: dict[str, str],
    gone: frozenset[str],
) -> MempoolOutcome:
    network, now = tracker.network, tracker.clock.now()
    here = BlockRef(cursor.height, cursor.hash, "", cursor.block_timestamp)
    present = view.txids | {t.txid for t in view.transfers}
    async with tracker.db.uow() as uow:
        if not await uow.chain.move_cursor(network.name, cursor, here, now):
            return MempoolOutcome(applied=False)
        changes: dict[str, PaymentChanges] = defaultdict(PaymentChanges)
        evicted = 0
        for payment in await uow.payments.unmined(network.name):
            if payment.txid in present or payment.id not in gone:
                continue
            # Neither mined (we stand on the tip) nor in two mempool snapshots: replaced or
            # evicted.
            await uow.payments.update(payment.id, status=PaymentStatus.ORPHANED, updated_at=now)
            orphaned = replace(payment, status=PaymentStatus.ORPHANED, updated_at=now)
            changes[payment.invoice_id].removed.append(orphaned)
            evicted += 1
        # The client may answer outputs it matched in an earlier pass (it parses each mempool
        # transaction once), so resolve every address to its invoice here, not via the lookup.
        missing = {t.to_address for t in view.transfers} - set(watched)
        if missing:
            watched.update(await uow.invoices.watched(network.name, missing, now))
        received = 0
        for transfer in view.transfers:
            invoice_id = watched.get(transfer.to_address)
            if invoice_id is None or transfer.block is not None:
                continue
            recorded = await record_transfer(
                uow,
                transfer,
                invoice_id,
                cursor.height,
                now,
                network.min_amount(transfer.asset),
            )
            if recorded is None or recorded[1] is Recorded.MINED:
                continue
            changes[invoice_id].received.append(recorded[0])
            received += 1
        await settle_changed_invoices(
            uow, tracker, cursor.height, cursor.block_timestamp, changes, now
        )
        await uow.commit()
    if evicted:
        log.warning(
            "mempool %s: %d counted payment(s) left the mempool unmined", network.name, evicted
        )
    return MempoolOutcome(applied=True, received=received, evicted=evicted)
