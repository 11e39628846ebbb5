"""The in-memory token bucket and the edge's bucket naming (pure: the clock is a variable)."""

from __future__ import annotations

import pytest

from chaingate.adapters.ratelimit import InMemoryRateLimiter
from chaingate.entrypoints.api.ratelimit import client_bucket, retry_after
from chaingate.ports import RateDecision


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def spend_until_refused(limiter: InMemoryRateLimiter, bucket: str) -> int:
    allowed = 0
    while (await limiter.spend(bucket)).allowed:
        allowed += 1
        assert allowed < 10_000, "the bucket never ran dry"
    return allowed


async def test_a_full_bucket_allows_its_burst_then_refuses(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=4, burst=10, clock=clock)
    assert await spend_until_refused(limiter, "ip:1.2.3.4") == 10
    refused = await limiter.spend("ip:1.2.3.4")
    assert refused == RateDecision(allowed=False, retry_after=pytest.approx(0.25))


async def test_tokens_come_back_at_the_rate(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=4, burst=10, clock=clock)
    await spend_until_refused(limiter, "k")
    clock.now += 0.5  # two tokens at 4/s
    assert await spend_until_refused(limiter, "k") == 2
    clock.now += 0.1  # 0.4 of a token: still refused, and told how long is left
    decision = await limiter.spend("k")
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(0.15)
    clock.now += decision.retry_after
    assert (await limiter.spend("k")).allowed


async def test_an_idle_bucket_never_holds_more_than_its_burst(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=100, burst=5, clock=clock)
    await limiter.spend("k")
    clock.now += 3600
    assert await spend_until_refused(limiter, "k") == 5


async def test_a_refused_request_takes_nothing(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=1, burst=2, clock=clock)
    await spend_until_refused(limiter, "k")
    for _ in range(50):  # hammering while empty must not push the next token further away
        clock.now += 0.01
        await limiter.spend("k")
    clock.now += 0.501  # 1.001 s after it ran dry: the next token is there
    assert (await limiter.spend("k")).allowed


async def test_a_refund_gives_a_token_back_up_to_the_burst(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=1, burst=3, clock=clock)
    await spend_until_refused(limiter, "k")
    assert await limiter.spend("k", -1.0) == RateDecision(allowed=True, retry_after=0.0)
    assert await spend_until_refused(limiter, "k") == 1
    for _ in range(10):
        await limiter.spend("k", -1.0)
    assert await spend_until_refused(limiter, "k") == 3


async def test_buckets_are_independent(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=1, burst=3, clock=clock)
    await spend_until_refused(limiter, "key:a")
    assert await spend_until_refused(limiter, "key:b") == 3
    assert not (await limiter.spend("key:a")).allowed


async def test_a_clock_stepping_back_neither_drains_nor_fills(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=1, burst=3, clock=clock)
    await limiter.spend("k")
    clock.now -= 100
    assert await spend_until_refused(limiter, "k") == 2


async def test_memory_is_bounded_by_forgetting_the_least_recently_used(clock: Clock) -> None:
    limiter = InMemoryRateLimiter(rate=1, burst=1, clock=clock, max_buckets=2)
    await limiter.spend("a")
    await limiter.spend("b")
    await limiter.spend("a")  # refused, but "a" is now the most recently used
    await limiter.spend("c")  # forgets "b"
    assert len(limiter) == 2
    assert not (await limiter.spend("a")).allowed  # remembered: still empty
    assert (await limiter.spend("b")).allowed  # forgotten: starts full again


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        InMemoryRateLimiter(rate=rate, burst=burst)


@pytest.mark.parametrize(
    ("client", "bucket"),
    [
        (("203.0.113.7", 5000), "ip:203.0.113.7"),
        (("2001:db8:1:2:aaaa::1", 5000), "ip:2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 5000), "ip:2001:db8:1:2::/64"),  # same /64, same bucket
        (("2001:db8:1:3::1", 5000), "ip:2001:db8:1:3::/64"),
        (("::ffff:203.0.113.7", 5000), "ip:203.0.113.7"),  # a mapped IPv4 is that IPv4
        (("testclient", 50000), "ip:testclient"),
        (None, "ip:unknown"),
    ],
)
def test_clients_are_bucketed_by_address(client: tuple[str, int] | None, bucket: str) -> None:
    assert client_bucket({"type": "http", "client": client}) == bucket


@pytest.mark.parametrize(("wait", "header"), [(0.0, "1"), (0.01, "1"), (1.0, "1"), (1.2, "2")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    assert retry_after(RateDecision(allowed=False, retry_after=wait)) == {"Retry-After": header}
