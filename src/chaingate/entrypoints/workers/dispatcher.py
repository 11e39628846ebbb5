"""The webhook dispatcher worker: sends due deliveries until told to stop.

A second batch may start while a slow one is still waiting on timeouts, so a dead endpoint in
one batch never holds back deliveries that became due meanwhile. Errors (a database blip) are
logged and retried with a short backoff; the worker itself only ends when `stop` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chaingate.config import Settings
from chaingate.ports import Clock, Database, SecretBox, WebhookSender
from chaingate.services.dispatch import MAX_BATCHES_IN_FLIGHT, dispatch_due

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5
# How soon an idle dispatcher looks again: most of a webhook's latency is this wait, and the
# query that finds nothing due is one indexed lookup.
POLL_SECONDS = 0.1
MAX_ERROR_BACKOFF_SECONDS = 10.0
# On stop, sends already under way get this long to finish and be recorded; the rest are
# cancelled and, being unrecorded, go out again after their lease.
SHUTDOWN_GRACE_SECONDS = 5.0


async def run_dispatcher(
    db: Database,
    sender: WebhookSender,
    box: SecretBox,
    clock: Clock,
    settings: Settings,
    stop: asyncio.Event,
) -> None:
    """Loop `dispatch_due` until `stop` is set; pauses briefly whenever nothing was due."""
    limiter = asyncio.Semaphore(settings.webhook_concurrency)
    in_flight: set[asyncio.Task[int]] = set()
    stopping = asyncio.create_task(stop.wait())
    failures = 0
    try:
        while not stop.is_set():
            if len(in_flight) < MAX_BATCHES_IN_FLIGHT:
                batch = dispatch_due(db, sender, box, clock, settings, limiter=limiter)
                in_flight.add(asyncio.create_task(batch))
            done, _ = await asyncio.wait(
                {*in_flight, stopping}, timeout=IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            finished = done - {stopping}
            in_flight -= finished
            if not finished:
                continue  # a batch is still sending; another may start beside it
            busy = False
            for task in finished:
                try:
                    busy = task.result() > 0 or busy
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("webhook dispatcher: batch failed; retrying")
            if failures:
                await _pause(stop, min(MAX_ERROR_BACKOFF_SECONDS, IDLE_SECONDS * 2**failures))
            elif not busy:
                await _pause(stop, POLL_SECONDS)
    finally:
        stopping.cancel()
        await _drain(in_flight)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _drain(in_flight: set[asyncio.Task[int]]) -> None:
    if not in_flight:
        return
    _, pending = await asyncio.wait(in_flight, timeout=SHUTDOWN_GRACE_SECONDS)
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.error("webhook dispatcher: batch failed during shutdown: %s", result)
