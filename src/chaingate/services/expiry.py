"""Expiring invoices once the chain itself has moved past their expiry time.

The wall clock is no proof: a block stamped before expiry may reach our node minutes later.
The proof is a time no later block can be stamped at or before (services.chain_time: the
newest verified block's timestamp where timestamps only grow, median-time-past where they may
go backwards: the family's rule). Once it is after `expires_at`, every payment we have not scanned
yet is in a later block, hence late.
"""

from __future__ import annotations

from chaingate.config import NetworkConfig
from chaingate.ports import ChainFamily, Clock, Database
from chaingate.services.chain_time import passed_time
from chaingate.services.invoice_state import settle_invoice_state


async def expire_due(
    db: Database,
    network: NetworkConfig,
    family: ChainFamily,
    clock: Clock,
    *,
    checkout_base: str | None = None,
) -> int:
    """Expire the `new` invoices on `network` the chain has passed; returns how many.
    `checkout_base` builds the events' `checkout_url` (Settings.checkout_base_url)."""
    now = clock.now()
    async with db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
        if cursor is None:
            return 0
        chain_time = await passed_time(
            uow, network, family.chain_time, cursor.height, cursor.block_timestamp
        )
        if chain_time is None:
            return 0
        due = await uow.invoices.due_for_expiry(network.name, chain_time)
    for invoice_id in due:
        async with db.uow() as uow:
            await settle_invoice_state(
                uow,
                invoice_id,
                network=network,
                family=family,
                chain_time=chain_time,
                now=now,
                checkout_base=checkout_base,
            )
            await uow.commit()
    return len(due)
