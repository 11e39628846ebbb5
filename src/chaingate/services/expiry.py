"""Expiring invoices once the chain itself has moved past their expiry time.

The wall clock is no proof: a block stamped before expiry may reach our node minutes later.
The proof is a time no later block can be stamped at or before (services.chain_time: the
newest verified block's timestamp on EVM chains, median-time-past on the Bitcoin family, whose
timestamps may go backwards). Once it is after `expires_at`, every payment we have not scanned
yet is in a later block, hence late.
"""

from __future__ import annotations

from chaingate.adapters.db.uow import Database
from chaingate.config import NetworkConfig
from chaingate.ports import Clock, PaymentUriBuilder
from chaingate.services.chain_time import passed_time
from chaingate.services.invoice_state import settle_invoice_state


async def expire_due(
    db: Database, network: NetworkConfig, clock: Clock, uri_builder: PaymentUriBuilder
) -> int:
    """Expire the `new` invoices on `network` the chain has passed; returns how many."""
    now = clock.now()
    async with db.uow() as uow:
        cursor = await uow.chain.cursor(network.name)
        if cursor is None:
            return 0
        chain_time = await passed_time(uow, network, cursor.height, cursor.block_timestamp)
        if chain_time is None:
            return 0
        due = await uow.invoices.due_for_expiry(network.name, chain_time)
    for invoice_id in due:
        async with db.uow() as uow:
            await settle_invoice_state(
                uow,
                invoice_id,
                network=network,
                uri_builder=uri_builder,
                chain_time=chain_time,
                now=now,
            )
            await uow.commit()
    return len(due)
