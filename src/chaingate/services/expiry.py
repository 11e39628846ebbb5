"""Expiring invoices, only once the chain is verified past their expiry time.

The wall clock alone is not proof: a payment mined before expiry may not be scanned yet. An
invoice expires when its tracker has stood on the node's tip at a moment after `expires_at`.
"""

from __future__ import annotations

from chaingate.adapters.db.uow import Database
from chaingate.config import NetworkConfig
from chaingate.ports import Clock, PaymentUriBuilder
from chaingate.services.invoice_state import settle_invoice_state


async def expire_due(
    db: Database, network: NetworkConfig, clock: Clock, uri_builder: PaymentUriBuilder
) -> int:
    """Expire due `new` invoices on `network`; returns how many were looked at."""
    now = clock.now()
    async with db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
        if cursor is None or cursor.synced_at is None:
            return 0
        verified_until = min(now, cursor.synced_at)
        due = await uow.invoices.due_for_expiry(network.name, verified_until)
    for invoice_id in due:
        async with db.uow() as uow:
            # `verified_until` stands in for chain time: the chain is known up to that moment.
            await settle_invoice_state(
                uow,
                invoice_id,
                network=network,
                uri_builder=uri_builder,
                chain_time=verified_until,
                now=now,
            )
            await uow.commit()
    return len(due)
