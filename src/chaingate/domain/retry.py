"""When to retry a webhook delivery: pure rules, no I/O, no clock, no randomness of its own.

Retried: network errors, timeouts, 3xx, 408, 429 and 5xx, with full-jitter exponential backoff
(delay = rand * min(cap, base * 2**(attempt - 1))), until the retry window measured from the
delivery's creation closes. A redirect is never followed (it could point anywhere, a private
address included) but it is often temporary (a 308 to the same host while a deploy moves
things): it is recorded and retried at the same URL like a 503. Everything else that is not
2xx (other 4xx) fails at once, because sending the same request again cannot change the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NamedTuple

Outcome = Literal["succeeded", "pending", "failed"]

RETRYABLE_STATUS_CODES = frozenset({408, 429})
# 2**60 seconds is far past any cap; stopping there keeps the float arithmetic finite.
_MAX_EXPONENT = 60


class RetryDecision(NamedTuple):
    outcome: Outcome
    next_attempt_at: datetime


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def is_retryable(status_code: int | None, network_error: bool) -> bool:
    """True for answers a later identical request may turn into a success."""
    if status_code is None:
        return network_error
    redirect = 300 <= status_code < 400  # not followed; the endpoint may stop redirecting
    return redirect or status_code in RETRYABLE_STATUS_CODES or 500 <= status_code < 600


def backoff_ceiling(attempt_number: int, base: float, cap: float) -> float:
    """The largest delay (seconds) after the `attempt_number`-th attempt; jitter picks below it."""
    exponent = min(attempt_number - 1, _MAX_EXPONENT)
    return float(min(cap, base * 2.0**exponent))


def decide(
    status_code: int | None,
    network_error: bool,
    attempt_number: int,
    created_at: datetime,
    now: datetime,
    base: float,
    cap: float,
    window: float,
    rand: float,
) -> RetryDecision:
    """The delivery's state after its `attempt_number`-th attempt (1 for the first) ended `now`.

    `status_code` is the HTTP answer, or None when there was none; `network_error` says whether
    that missing answer was a transient transport problem (refused, reset, timeout, DNS).
    `rand` in [0, 1) is the jitter draw. A retry is never scheduled past the window's end:
    the last one lands exactly on it, and an attempt that fails at or after the end is final.
    Raises ValueError for arguments outside their ranges.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt_number starts at 1, got {attempt_number}")
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    if base <= 0 or cap < base or window < 0:
        raise ValueError(f"need 0 < base <= cap and window >= 0, got {base}, {cap}, {window}")

    if is_success(status_code):
        return RetryDecision("succeeded", now)
    if not is_retryable(status_code, network_error):
        return RetryDecision("failed", now)
    deadline = created_at + timedelta(seconds=window)
    if now >= deadline:
        return RetryDecision("failed", now)
    delay = timedelta(seconds=rand * backoff_ceiling(attempt_number, base, cap))
    return RetryDecision("pending", min(now + delay, deadline))
