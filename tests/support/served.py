"""A gateway served by uvicorn on a loopback port, for synchronous tests that speak real HTTP.

The gateway and its server live on an event loop in a daemon thread; the test thread talks to
it over TCP (schemathesis, raw sockets) and runs coroutines on that loop with `run`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import uvicorn

from chaingate.config import NetworkConfig
from chaingate.entrypoints.api.app import create_app
from tests.support.gateway import Gateway, running_gateway
from tests.support.net import free_port

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, job: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class ServedGateway(Generic[T]):
    base_url: str
    host: str
    port: int
    gateway: Gateway
    prepared: T  # what `prepare` returned
    runner: LoopThread

    def run(self, job: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return self.runner.run(job, timeout)


@contextmanager
def served_gateway(
    database_url: str,
    networks: list[NetworkConfig],
    prepare: Callable[[Gateway], Awaitable[T]],
    **settings: Any,
) -> Iterator[ServedGateway[T]]:
    """`running_gateway(...)`, set up by `prepare`, then served over HTTP until the block ends."""
    runner = LoopThread()
    stack = AsyncExitStack()
    port = free_port()

    async def start() -> tuple[ServedGateway[T], uvicorn.Server, asyncio.Future[None]]:
        gateway = await stack.enter_async_context(
            running_gateway(database_url, networks, **settings)
        )
        prepared = await prepare(gateway)
        config = uvicorn.Config(
            create_app(gateway.container),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            assert not serving.done(), f"uvicorn did not start on port {port}"
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        return ServedGateway(url, "127.0.0.1", port, gateway, prepared, runner), server, serving

    try:
        served, server, serving = runner.run(start())
    except BaseException:
        runner.run(stack.aclose())
        runner.stop()
        raise
    try:
        yield served
    finally:

        async def stop() -> None:
            server.should_exit = True
            await serving
            await stack.aclose()

        runner.run(stop())
        runner.stop()
