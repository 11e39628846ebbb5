"""Webhook dispatch: draining N queued deliveries against raw HTTP POSTs to the same sink.

A fast 200-OK sink runs as its own process. N events are written through the outbox
(`services.events.emit`, one delivery each, one endpoint), then drained two ways:
- `dispatch_due` called in a loop until it finds nothing due (claim a batch, sign, POST,
  record each attempt), and
- the real worker `run_dispatcher` (two batches in flight) until every delivery succeeded.
Baselines, same run, same body size, same concurrency (`webhook_concurrency` loops) POSTing
N times: one keep-alive httpx client per loop (what the transport can do), and one shared
client sending `Connection: close` (the sender's own transport: a fresh connection per
attempt). The gap to the second is the database and signing work. SQLite, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import (
    Child,
    Row,
    free_port,
    options,
    postgres_reachable,
    print_rows,
    python_module,
    row,
    scratch_database,
    workdir,
    write_result,
)
from bench.gateway import Shop, add_webhook, network, prepared, settings
from chaingate.adapters.db.tables import webhook_deliveries
from chaingate.adapters.webhook_sender import WebhookSender
from chaingate.bootstrap import Container
from chaingate.domain.events import EventType
from chaingate.entrypoints.workers.dispatcher import run_dispatcher
from chaingate.services.dispatch import dispatch_due
from chaingate.services.events import emit

NAME = "webhook_dispatch"
DEAD_RPC_URL = "http://127.0.0.1:9/"


def _invoice_view(number: int) -> dict[str, Any]:
    """An event payload of realistic size (an invoice as the API shows it)."""
    return {
        "id": f"inv_bench{number:021d}",
        "object": "invoice",
        "status": "settled",
        "additional_status": "none",
        "amount": "0.05",
        "amount_due": "0",
        "amount_paid": "0.05",
        "currency": "ETH",
        "network": "bench",
        "chain_id": 31337,
        "address": "0x" + f"{number:040x}",
        "payment_uri": f"ethereum:0x{number:040x}@31337?value=5e16",
        "required_confirmations": 1,
        "payment_tolerance": "0",
        "order_id": f"order-{number}",
        "metadata": {"customer": "bench", "cart": [1, 2, 3]},
        "expires_at": "2030-01-01T00:15:00Z",
        "created_at": "2030-01-01T00:00:00Z",
        "updated_at": "2030-01-01T00:00:10Z",
        "payments": [],
    }


async def _queue(container: Container, shop: Shop, count: int, first: int) -> None:
    now = container.clock.now()
    async with container.db.uow() as uow:
        for number in range(first, first + count):
            await emit(
                uow,
                merchant_id=shop.merchant_id,
                event_type=EventType.INVOICE_SETTLED,
                data=_invoice_view(number),
                at=now,
            )
        await uow.commit()


async def _succeeded(watcher: AsyncEngine) -> int:
    async with watcher.connect() as conn:
        query = select(func.count()).where(webhook_deliveries.c.status == "succeeded")
        return int((await conn.execute(query)).scalar_one())


async def _drain_with_dispatch_due(container: Container, http: httpx.AsyncClient) -> float:
    settings = container.settings
    sender = WebhookSender(http, container.url_guard, settings.webhook_timeout_seconds)
    limiter = asyncio.Semaphore(settings.webhook_concurrency)
    started = time.perf_counter()
    while await dispatch_due(
        container.db, sender, container.secret_box, container.clock, settings, limiter=limiter
    ):
        pass
    return time.perf_counter() - started


async def _drain_with_worker(
    container: Container, http: httpx.AsyncClient, watcher: AsyncEngine, target: int
) -> float:
    settings = container.settings
    sender = WebhookSender(http, container.url_guard, settings.webhook_timeout_seconds)
    stop = asyncio.Event()
    started = time.perf_counter()
    worker = asyncio.ensure_future(
        run_dispatcher(container.db, sender, container.secret_box, container.clock, settings, stop)
    )
    # The watcher reads on its own engine (deferred transactions), so polling takes no lock.
    while await _succeeded(watcher) < target:  # noqa: ASYNC110 - the count lives in the database
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    return elapsed


async def _raw_posts(url: str, count: int, concurrency: int, close: bool) -> float:
    """Seconds for `count` POSTs from `concurrency` loops.

    close=False: one keep-alive httpx client per loop (the transport's best case; a single
    client shared by 32 loops stalls in its own connection pool on keep-alive).
    close=True: the sender's transport, one shared client and `Connection: close`.
    """
    body = json.dumps({"id": "evt_raw", "type": "invoice.settled", "data": _invoice_view(0)})
    headers = {"Content-Type": "application/json", "ChainGate-Event-Id": "evt_raw"}
    if close:
        headers["Connection"] = "close"
    remaining = iter(range(count))
    failures = 0

    async def post_loop(http: httpx.AsyncClient) -> None:
        nonlocal failures
        for _ in remaining:
            answer = await http.post(url, content=body, headers=headers)
            failures += not answer.is_success

    shared = httpx.AsyncClient(trust_env=False, timeout=10)
    clients = (
        [shared] * concurrency
        if close
        else [httpx.AsyncClient(trust_env=False, timeout=10) for _ in range(concurrency)]
    )
    try:
        started = time.perf_counter()
        await asyncio.gather(*(post_loop(http) for http in clients))
        elapsed = time.perf_counter() - started
    finally:
        for http in {id(c): c for c in clients}.values():
            await http.aclose()
        await shared.aclose()
    if failures:
        raise RuntimeError(f"the sink refused {failures} raw POSTs")
    return elapsed


async def _backend(kind: str, count: int, sink_url: str, tmp: Path) -> dict[str, Any]:
    async with scratch_database(kind, NAME, tmp) as url:
        container, shop = await prepared(settings(url, [network(DEAD_RPC_URL)]))
        await add_webhook(container, shop, sink_url)
        concurrency = container.settings.webhook_concurrency
        watcher = create_async_engine(url)
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        try:
            keepalive = await _raw_posts(sink_url, count, concurrency, close=False)
            fresh = await _raw_posts(sink_url, count, concurrency, close=True)
            await _queue(container, shop, count, 0)
            loop_seconds = await _drain_with_dispatch_due(container, http)
            after_loop = await _succeeded(watcher)
            await _queue(container, shop, count, count)
            worker_seconds = await _drain_with_worker(container, http, watcher, 2 * count)
        finally:
            await http.aclose()
            await watcher.dispose()
            await container.close()
    if after_loop != count:
        raise RuntimeError(f"dispatch_due loop delivered {after_loop} of {count}")
    return {
        "deliveries": count,
        "concurrency": concurrency,
        "dispatch_due_loop": {"seconds": round(loop_seconds, 3), "rate": count / loop_seconds},
        "run_dispatcher": {"seconds": round(worker_seconds, 3), "rate": count / worker_seconds},
        "raw_keepalive": {"seconds": round(keepalive, 3), "rate": count / keepalive},
        "raw_connection_close": {"seconds": round(fresh, 3), "rate": count / fresh},
    }


def _rows(kind: str, figures: dict[str, Any]) -> list[Row]:
    loop, worker = figures["dispatch_due_loop"]["rate"], figures["run_dispatcher"]["rate"]
    keepalive = figures["raw_keepalive"]["rate"]
    fresh = figures["raw_connection_close"]["rate"]
    return [
        row(NAME, f"{kind}: dispatch_due loop", loop, "deliv/s", "raw httpx keep-alive", keepalive),
        row(NAME, f"{kind}: dispatch_due loop", loop, "deliv/s", "raw httpx shared+close", fresh),
        row(NAME, f"{kind}: run_dispatcher worker", worker, "deliv/s",
            "raw httpx keep-alive", keepalive),
    ]  # fmt: skip


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    count = 500 if quick else 2_000
    details: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    summary: list[Row] = []
    skipped = await postgres_reachable()
    with workdir(NAME) as scratch:
        tmp = Path(scratch)
        port = free_port()
        count_file = tmp / "sink-count"
        argv = python_module("bench.sink", str(port), str(count_file))
        with Child(argv, tmp / "sink.log") as sink:
            sink_url = f"http://127.0.0.1:{port}/hook"
            sink.wait_http(sink_url)
            for kind in ("sqlite", "postgresql"):
                if kind == "postgresql" and skipped:
                    details[kind] = {"skipped": skipped}
                    continue
                figures = await _backend(kind, count, sink_url, tmp)
                details[kind] = figures
                summary += _rows(kind, figures)
        details["sink_answered"] = int(count_file.read_text()) if count_file.exists() else None
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
