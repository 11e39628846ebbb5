"""The machine's Redis for tests: a fresh key prefix per test, deleted afterwards."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.services import require_or_skip

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the machine's Redis; its keys are deleted afterwards."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        require_or_skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"chaingate-test-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def stored_buckets(prefix: str) -> dict[str, int]:
    """Each bucket key under `prefix`, with its time to live in ms."""
    client = Redis.from_url(REDIS_URL)
    try:
        return {
            key.decode(): await client.pttl(key)
            async for key in client.scan_iter(match=f"{prefix}*")
        }
    finally:
        await client.aclose()
