"""Running the API and the workers in one event loop, with a clean shutdown on SIGINT/SIGTERM.

The same pieces run alone when scaled out (`chaingate api`, `chaingate worker tracker`, ...):
every worker coordinates through the database, so any number of copies may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import Any

import uvicorn

from chaingate.bootstrap import Container
from chaingate.entrypoints.api.app import create_app
from chaingate.entrypoints.workers.dispatcher import run_dispatcher
from chaingate.entrypoints.workers.expirer import run_expirer
from chaingate.entrypoints.workers.tracker import run_tracker
from chaingate.ports import ChainClient
from chaingate.services.tracking import Tracker

log = logging.getLogger(__name__)

WORKERS = ("tracker", "expirer", "dispatcher")


async def serve(
    container: Container,
    *,
    api: bool = True,
    workers: tuple[str, ...] = WORKERS,
    networks: tuple[str, ...] | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), then stop everything and close connections."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    settings = container.settings
    chosen = [n for n in settings.networks if networks is None or n.name in networks]
    jobs: list[Coroutine[Any, Any, None]] = []
    clients: list[ChainClient] = []
    if "tracker" in workers:
        for network in chosen:
            client = container.chain_client(network)
            clients.append(client)
            tracker = Tracker(
                db=container.db,
                chain=client,
                network=network,
                family=container.family(network),
                clock=container.clock,
                checkout_base=settings.checkout_base_url,
            )
            jobs.append(run_tracker(tracker, stop))
    if "expirer" in workers:
        pairs = [(n, container.family(n)) for n in chosen]
        jobs.append(
            run_expirer(container.db, pairs, container.clock, stop, settings.checkout_base_url)
        )
    if "dispatcher" in workers:
        jobs.append(
            run_dispatcher(
                container.db,
                container.webhook_sender,
                container.secret_box,
                container.clock,
                settings,
                stop,
            )
        )
    server: uvicorn.Server | None = None
    if api:
        config = uvicorn.Config(
            create_app(container),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        jobs.append(_serve_api(server, stop))

    tasks = [asyncio.ensure_future(job) for job in jobs]
    if ready is not None:
        if server is not None:
            while not server.started and not any(t.done() for t in tasks):  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # uvicorn offers no "started" event to await
        ready.set()
    try:
        await stop.wait()
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("component stopped with an error", exc_info=result)
        for client in clients:
            await client.close()
        await container.close()


async def _serve_api(server: uvicorn.Server, stop: asyncio.Event) -> None:
    try:
        await server.serve()
    finally:
        # If the API dies (port taken), the whole process stops rather than run half-alive.
        stop.set()
