"""The expirer worker: expires due invoices on every network, once a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chaingate.config import NetworkConfig
from chaingate.ports import ChainFamily, Clock, Database
from chaingate.services.expiry import expire_due

log = logging.getLogger(__name__)


async def run_expirer(
    db: Database,
    networks: list[tuple[NetworkConfig, ChainFamily]],
    clock: Clock,
    stop: asyncio.Event,
    checkout_base: str | None = None,
    interval: float = 1.0,
) -> None:
    while not stop.is_set():
        for network, family in networks:
            try:
                await expire_due(db, network, family, clock, checkout_base=checkout_base)
            except Exception:
                log.exception("expirer: %s failed; will retry", network.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
