"""Token-bucket rate limiters: one in process memory, one in Redis for scaled-out API processes.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; each request spends
one. Both adapters compute the same thing, so a deployment can move from one to the other
without changing what clients observe.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chaingate.ports import RateDecision

log = logging.getLogger(__name__)

ALLOWED = RateDecision(allowed=True, retry_after=0.0)


@dataclass(slots=True)
class _Bucket:
    level: float
    at: float


class InMemoryRateLimiter:
    """Buckets in this process only: right for one API process (the SQLite deployment).

    At most `max_buckets` are kept; the least recently used is forgotten first. That bucket has
    usually refilled anyway, and a forgotten one starts full, which errs towards the client.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def spend(self, bucket: str, tokens: float = 1.0) -> RateDecision:
        return self.spend_now(bucket, tokens)

    def spend_now(self, bucket: str, tokens: float = 1.0) -> RateDecision:
        """`spend` without an await: the whole update is atomic on the event loop."""
        now = self._clock()
        state = self._buckets.get(bucket)
        if state is None:
            state = self._buckets[bucket] = _Bucket(self._burst, now)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(bucket)
        # max(): a clock that steps back must not drain the bucket.
        state.level = min(self._burst, state.level + max(0.0, now - state.at) * self._rate)
        state.at = now
        if tokens <= 0:
            state.level = min(self._burst, state.level - tokens)
            return ALLOWED
        if state.level >= tokens:
            state.level -= tokens
            return ALLOWED
        return RateDecision(allowed=False, retry_after=(tokens - state.level) / self._rate)

    def __len__(self) -> int:
        return len(self._buckets)

    async def close(self) -> None:
        self._buckets.clear()


# The same arithmetic as InMemoryRateLimiter, run atomically inside Redis with Redis's own clock
# (the API processes' clocks may disagree). A key lives until its bucket would be full again.
_SPEND_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1])
local at = tonumber(state[2])
if level == nil or at == nil then
  level = burst
  at = now
end
level = math.min(burst, level + math.max(0, now - at) * rate)
local allowed = 1
local wait = 0
if tokens <= 0 then
  level = math.min(burst, level - tokens)
elseif level >= tokens then
  level = level - tokens
else
  allowed = 0
  wait = (tokens - level) / rate
end
redis.call('HSET', KEYS[1], 'level', string.format('%.6f', level), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, string.format('%.6f', wait)}
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every API process pointed at the same server and prefix.

    If Redis cannot be reached the limiter falls back to per-process buckets rather than
    refusing every request or letting every request through; it logs once a minute meanwhile.
    """

    def __init__(
        self,
        redis: Redis,
        rate: float,
        burst: int,
        *,
        prefix: str = "chaingate:ratelimit:",
        fallback: InMemoryRateLimiter | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._redis, self._rate, self._burst, self._prefix = redis, rate, burst, prefix
        self._script = redis.register_script(_SPEND_SCRIPT)
        self._fallback = fallback or InMemoryRateLimiter(rate, burst)
        self._last_warning = -math.inf

    @classmethod
    def from_url(
        cls, url: str, rate: float, burst: int, *, prefix: str = "chaingate:ratelimit:"
    ) -> RedisRateLimiter:
        # Short timeouts: a slow Redis must cost a request milliseconds, not the whole request.
        client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, rate, burst, prefix=prefix)

    async def spend(self, bucket: str, tokens: float = 1.0) -> RateDecision:
        try:
            allowed, wait = await self._script(
                keys=[self._prefix + bucket], args=[self._rate, self._burst, tokens]
            )
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return self._fallback.spend_now(bucket, tokens)
        if int(allowed) == 1:
            return ALLOWED
        return RateDecision(allowed=False, retry_after=float(wait))

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("rate limiter: Redis unavailable, using per-process buckets: %s", exc)

    async def close(self) -> None:
        await self._redis.aclose()
