"""The checkout's Server-Sent Events over real HTTP (uvicorn) and a real database (SQLite and
PostgreSQL): the first message, the per-process cap, and slots coming back on disconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.entrypoints.api.app import create_app
from tests.support.gateway import running_gateway
from tests.support.uvicorn_server import serving

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])


@pytest.fixture
async def checkout_url(clean_database_url: str) -> AsyncIterator[tuple[str, str]]:
    """(base URL of a gateway allowing one stream, an invoice id)."""
    settings: dict[str, Any] = {"checkout_max_streams": 1, "checkout_poll_seconds": 0.05}
    async with running_gateway(clean_database_url, [NETWORK], **settings) as gateway:
        shop = await gateway.merchant()
        invoice = await shop.invoice(amount="2", currency="ETH", network="anvil")
        async with serving(create_app(gateway.container)) as base_url:
            yield base_url, invoice["id"]


async def first_status(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next status message. Reads with anext: leaving an `async for` early would close the
    line iterator, and with it the connection."""
    event = None
    while True:
        try:
            line = await anext(lines)
        except StopAsyncIteration:
            break
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "status":
            document: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return document
    raise AssertionError("the stream ended without a status message")


async def test_stream_sends_the_status_and_holds_its_slot_until_disconnect(
    checkout_url: tuple[str, str],
) -> None:
    base_url, invoice_id = checkout_url
    events = f"/i/{invoice_id}/events"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        async with http.stream("GET", events) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            lines = stream.aiter_lines()  # held: a dropped iterator closes the connection
            status = await first_status(lines)
            assert (status["state"], status["amount_due"]) == ("waiting", "2")

            # The only slot is taken: a second page is told to poll.
            refused = await http.get(events)
            assert refused.status_code == 503
            assert refused.json() == {"state": "busy", "poll": True}
            assert (await http.get(f"/i/{invoice_id}/status.json")).status_code == 200

        # The first client went away: its slot comes back once the server notices.
        for _ in range(400):
            async with http.stream("GET", events) as again:
                if again.status_code == 200:
                    assert (await first_status(again.aiter_lines()))["state"] == "waiting"
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the stream slot was never given back after the disconnect")
