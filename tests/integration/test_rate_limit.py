"""Rate limiting on the real app: 429 `rate_limited` + Retry-After, nothing written when refused.

The refill rate is tiny (one token per 100 s) so the counts below do not depend on how fast
the machine is: only the burst is ever spent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.db.tables import events, idempotency_keys, invoices
from chaingate.entrypoints.api.app import create_app
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.net import free_port
from tests.support.redis_keys import REDIS_URL, stored_buckets

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
SLOW = 0.01  # tokens per second: nothing refills during a test
BURST = 5
INVOICE = {"amount": "1", "currency": "ETH", "network": "anvil"}


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(
        clean_database_url, [NETWORK], rate_limit_per_second=SLOW, rate_limit_burst=BURST
    ) as gw:
        yield gw


@asynccontextmanager
async def client_at(gateway: Gateway, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another connection to the same gateway (same container, same limiter) from `address`."""
    transport = httpx.ASGITransport(app=create_app(gateway.container), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


async def count(gateway: Gateway, table: Any) -> int:
    async with gateway.container.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def assert_rate_limited(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "rate_limited"
    # The bucket is empty and refills at 0.01/s: about 100 s to the next token.
    assert 90 <= int(answer.headers["Retry-After"]) <= 100


async def test_a_key_over_its_burst_gets_429_and_nothing_is_written(gateway: Gateway) -> None:
    shop = await gateway.merchant()  # registering its wallet spent one token
    answers = [
        await shop.post("/v1/invoices", INVOICE, **{"Idempotency-Key": f"order-{i}"})
        for i in range(BURST + 2)
    ]
    assert [a.status_code for a in answers] == [201] * (BURST - 1) + [429] * 3
    for refused in answers[BURST - 1 :]:
        assert_rate_limited(refused)
    assert await count(gateway, invoices) == BURST - 1
    assert await count(gateway, events) == BURST - 1
    assert await count(gateway, idempotency_keys) == BURST - 1  # refused keys not even claimed
    # The same key refused on a read as well: the budget is per key, not per route.
    assert_rate_limited(await shop.get("/v1/invoices"))


async def test_one_busy_key_does_not_starve_another_or_its_address(gateway: Gateway) -> None:
    busy = await gateway.merchant("Busy", with_wallets=False)
    calm = await gateway.merchant("Calm", with_wallets=False)
    statuses = [(await busy.get("/v1/invoices")).status_code for _ in range(BURST + 3)]
    assert statuses == [200] * BURST + [429] * 3
    assert (await calm.get("/v1/invoices")).status_code == 200
    # Requests with a valid key were charged to the key, so the shared address kept its budget.
    public = [(await gateway.client.get("/v1/networks")).status_code for _ in range(BURST)]
    assert public == [200] * BURST


async def test_guessing_keys_is_limited_per_address(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    wrong = {"Authorization": "Bearer key_0000.not-the-secret"}
    async with client_at(gateway, "203.0.113.9") as attacker:
        guesses = [
            (await attacker.get("/v1/invoices", headers=wrong)).status_code for _ in range(8)
        ]
        assert guesses == [401] * BURST + [429] * 3
        # Once its address is out of budget even a right guess is not looked at.
        valid = {"Authorization": f"Bearer {shop.api_key}"}
        assert_rate_limited(await attacker.get("/v1/invoices", headers=valid))
        assert_rate_limited(await attacker.get("/v1/networks"))  # unauthenticated: same bucket
        # Probes are never limited.
        assert (await attacker.get("/healthz")).status_code == 200
        assert (await attacker.get("/readyz")).status_code == 200
    # Another address, and the key's owner, are unaffected.
    async with client_at(gateway, "198.51.100.20") as neighbour:
        assert (await neighbour.get("/v1/invoices", headers=wrong)).status_code == 401
    assert (await shop.get("/v1/invoices")).status_code == 200


async def test_unauthenticated_floods_and_bodies_are_refused_before_parsing(
    gateway: Gateway,
) -> None:
    async with client_at(gateway, "192.0.2.44") as flood:
        for _ in range(BURST):
            assert (await flood.post("/v1/invoices", content=b"{")).status_code == 401
        refused = await flood.post("/v1/invoices", content=b"x" * 1_000_000)
        assert_rate_limited(refused)  # not 413: the body was never read
    assert await count(gateway, invoices) == 0


async def test_zero_turns_rate_limiting_off(clean_database_url: str) -> None:
    async with running_gateway(clean_database_url, [NETWORK], rate_limit_per_second=0) as gw:
        assert gw.container.rate_limiter is None
        wrong = {"Authorization": "Bearer key_0000.nope"}
        statuses = {
            (await gw.client.get("/v1/invoices", headers=wrong)).status_code for _ in range(300)
        }
        assert statuses == {401}


async def test_an_unreachable_redis_falls_back_to_per_process_limits(
    clean_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with running_gateway(
        clean_database_url,
        [NETWORK],
        rate_limit_per_second=SLOW,
        rate_limit_burst=BURST,
        redis_url=dead,
    ) as gw:
        statuses = [(await gw.client.get("/v1/networks")).status_code for _ in range(BURST + 1)]
    assert statuses == [200] * BURST + [429]
    assert "Redis unavailable" in caplog.text


# --- scaled out: two API processes share the limit through a real Redis ---------------------


async def test_two_instances_share_one_budget_through_redis(
    clean_database_url: str, redis_prefix: str
) -> None:
    settings: dict[str, Any] = {
        "rate_limit_per_second": SLOW,
        "rate_limit_burst": BURST,
        "redis_url": REDIS_URL,
        "redis_key_prefix": redis_prefix,
    }
    async with (
        running_gateway(clean_database_url, [NETWORK], **settings) as first,
        running_gateway(clean_database_url, [NETWORK], **settings) as second,
    ):
        shop = await first.merchant(with_wallets=False)
        # The same key used on both instances, alternately.
        on_second = MerchantHandle(shop.merchant_id, shop.api_key, second.client)
        statuses = []
        for i in range(BURST + 3):
            handle = shop if i % 2 == 0 else on_second
            statuses.append((await handle.get("/v1/invoices")).status_code)
        assert statuses == [200] * BURST + [429] * 3
        assert_rate_limited(await on_second.get("/v1/invoices"))
        assert_rate_limited(await shop.get("/v1/invoices"))

        # Guessing keys: the address's budget is shared too.
        wrong = {"Authorization": "Bearer key_0000.nope"}
        guesses = [
            (await gw.client.get("/v1/invoices", headers=wrong)).status_code
            for gw in [first, second] * 4
        ]
        assert guesses == [401] * BURST + [429] * 3

    buckets = await stored_buckets(redis_prefix)
    key_bucket = f"{redis_prefix}ratelimit:key:{shop.api_key.partition('.')[0]}"
    assert set(buckets) == {key_bucket, f"{redis_prefix}ratelimit:ip:127.0.0.1"}
    # Keys expire once a bucket would be full again (burst / rate = 500 s), never linger forever.
    assert all(0 < ttl <= 501_000 for ttl in buckets.values())
