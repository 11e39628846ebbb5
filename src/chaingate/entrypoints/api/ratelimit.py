"""Rate limits at the edge: 429 `rate_limited` with `Retry-After` before a client costs us more.

Every request is first charged to its client address, before any body is read or any key is
looked up, so unauthenticated floods and key guessing are limited per address. A request that
then presents a valid API key gets that token back and is charged to the key instead: one busy
merchant behind a shared address does not starve the others, and a key's budget follows it
wherever it is used from. Health probes are never limited.
"""

from __future__ import annotations

import ipaddress
import math

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from chaingate.entrypoints.api.problems import ApiProblem, problem
from chaingate.ports import RateDecision, RateLimiter

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
_CLIENT_BUCKET = "chaingate.rate_limit_client"


def client_bucket(scope: Scope) -> str:
    """The bucket of the connecting address (uvicorn's proxy-headers option sets it).

    IPv6 clients usually hold a whole /64, so they share one bucket per /64.
    """
    client = scope.get("client")
    host = client[0] if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"ip:{address}"


def retry_after(decision: RateDecision) -> dict[str, str]:
    # Whole seconds (RFC 9110), rounded up so a client that waits exactly this long succeeds.
    return {"Retry-After": str(max(1, math.ceil(decision.retry_after)))}


class RateLimitMiddleware:
    """Charges each request to its client address; over budget → 429 without running the app."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        bucket = client_bucket(scope)
        decision = await self.limiter.spend(bucket)
        if not decision.allowed:
            refusal = problem(
                429,
                "rate_limited",
                "too many requests from this address; retry after the Retry-After delay",
                instance=scope["path"],
                headers=retry_after(decision),
            )
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})[_CLIENT_BUCKET] = bucket
        await self.app(scope, receive, send)


async def charge_api_key(request: Request, limiter: RateLimiter | None, key_id: str) -> None:
    """Move this request's cost from its address to the API key `key_id`.

    Raises ApiProblem(429) when the key is over its budget.
    """
    if limiter is None:
        return
    bucket = request.scope.get("state", {}).pop(_CLIENT_BUCKET, None)
    if bucket is not None:
        await limiter.spend(bucket, -1.0)
    decision = await limiter.spend(f"key:{key_id}")
    if not decision.allowed:
        raise ApiProblem(
            429,
            "rate_limited",
            "this API key is over its request rate; retry after the Retry-After delay",
            headers=retry_after(decision),
        )
