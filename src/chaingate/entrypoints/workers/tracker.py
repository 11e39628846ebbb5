"""The tracker worker: one loop per network, resumable from the durable cursor."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chaingate.domain.chain import NodeUnavailable
from chaingate.domain.errors import ReorgTooDeep
from chaingate.services.mempool import follows_mempool, sync_mempool
from chaingate.services.tracking import Tracker, sync_once

log = logging.getLogger(__name__)


async def run_tracker(tracker: Tracker, stop: asyncio.Event) -> None:
    """Sync until `stop` is set. Catches up in batches; at the tip, waits for a new head."""
    backoff = 1.0
    name = tracker.network.name
    while not stop.is_set():
        # Never credit anything from a node on the wrong chain: check before the first scan.
        try:
            await tracker.chain.verify_chain()
            break
        except Exception as exc:  # any failure means "not verified yet"
            log.error("tracker %s: cannot verify the chain (%s); retrying", name, exc)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 30.0)
    while not stop.is_set():
        try:
            outcome = await sync_once(tracker)
            backoff = 1.0
        except NodeUnavailable as exc:
            log.warning("tracker %s: nodes unavailable (%s); retrying in %.0fs", name, exc, backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        except ReorgTooDeep:
            log.critical("tracker %s stopped: reorg deeper than the window", name, exc_info=True)
            await _sleep_or_stop(stop, 60.0)
            continue
        except Exception:
            log.exception("tracker %s: unexpected error; retrying in %.0fs", name, backoff)
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, 30.0)
            continue
        if outcome.at_tip:
            if follows_mempool(tracker):
                await _look_at_mempool(tracker)
            waiter = asyncio.ensure_future(
                tracker.chain.wait_for_new_head(tracker.network.poll_interval_seconds)
            )
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiter, stopper):
                task.cancel()


async def _look_at_mempool(tracker: Tracker) -> None:
    """One mempool pass; a failure only delays unconfirmed sightings, blocks still count."""
    try:
        await sync_mempool(tracker)
    except NodeUnavailable as exc:
        log.warning("tracker %s: mempool unavailable (%s)", tracker.network.name, exc)
    except Exception:
        log.exception("tracker %s: mempool pass failed", tracker.network.name)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
