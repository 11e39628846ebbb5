"""The retry rules for webhook deliveries: which answers retry, how long to wait, when to stop."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from chaingate.domain.retry import backoff_ceiling, decide, is_retryable, is_success

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BASE, CAP, WINDOW = 10.0, 3600.0, 3 * 86_400.0


def _decide(
    status: int | None,
    *,
    network_error: bool = False,
    attempt: int = 1,
    now: datetime = T0,
    rand: float = 0.5,
    window: float = WINDOW,
) -> tuple[str, datetime]:
    return decide(status, network_error, attempt, T0, now, BASE, CAP, window, rand)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_succeeds_at_once(status: int) -> None:
    assert _decide(status) == ("succeeded", T0)


def test_success_counts_even_after_the_window() -> None:
    late = T0 + timedelta(days=10)
    assert _decide(200, attempt=99, now=late) == ("succeeded", late)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_other_answers_fail_without_retry(status: int) -> None:
    assert _decide(status) == ("failed", T0)


def test_no_answer_without_a_network_error_fails() -> None:
    # e.g. a request the sender refused to build: sending it again changes nothing.
    assert _decide(None, network_error=False) == ("failed", T0)


@pytest.mark.parametrize(
    "status", [300, 301, 302, 303, 304, 307, 308, 408, 429, 500, 501, 502, 503, 504, 599]
)
def test_retryable_status_codes_stay_pending(status: int) -> None:
    outcome, when = _decide(status, rand=0.5)
    assert outcome == "pending"
    assert when == T0 + timedelta(seconds=5)  # half of base * 2**0


def test_network_errors_and_timeouts_stay_pending() -> None:
    assert _decide(None, network_error=True, rand=0.5)[0] == "pending"


def test_a_network_flag_never_overrides_an_answer() -> None:
    assert _decide(400, network_error=True)[0] == "failed"
    assert _decide(200, network_error=True)[0] == "succeeded"


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [
        (1, 10.0),
        (2, 20.0),
        (3, 40.0),
        (4, 80.0),
        (5, 160.0),
        (6, 320.0),
        (7, 640.0),
        (8, 1280.0),
        (9, 2560.0),
        (10, 3600.0),  # 5120 capped
        (11, 3600.0),
        (1000, 3600.0),
        (10**9, 3600.0),  # no overflow for absurd counts
    ],
)
def test_backoff_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_ceiling(attempt, BASE, CAP) == ceiling
    # Full jitter: the delay is rand * ceiling, anywhere from zero to just under the ceiling.
    assert _decide(500, attempt=attempt, rand=0.0) == ("pending", T0)
    _, high = _decide(500, attempt=attempt, rand=0.999)
    assert high == T0 + timedelta(seconds=0.999 * ceiling)


def test_jitter_is_linear_in_rand() -> None:
    delays = [(_decide(503, attempt=3, rand=r)[1] - T0).total_seconds() for r in (0.1, 0.25, 0.75)]
    assert delays == pytest.approx([4.0, 10.0, 30.0])


def test_retry_is_clamped_to_the_window_end() -> None:
    now = T0 + timedelta(seconds=WINDOW - 100)
    outcome, when = _decide(500, attempt=20, now=now, rand=0.9)  # would wait 3240 s
    assert (outcome, when) == ("pending", T0 + timedelta(seconds=WINDOW))


@pytest.mark.parametrize("past", [0.0, 0.001, 1.0, 86_400.0])
def test_failure_at_or_after_the_window_end_is_final(past: float) -> None:
    now = T0 + timedelta(seconds=WINDOW + past)
    assert _decide(500, attempt=50, now=now) == ("failed", now)
    assert _decide(None, network_error=True, attempt=50, now=now) == ("failed", now)


def test_a_zero_window_allows_a_single_attempt() -> None:
    assert _decide(500, window=0.0) == ("failed", T0)


@pytest.mark.parametrize("seed", range(5))
def test_an_always_failing_endpoint_is_retried_for_the_whole_window(seed: int) -> None:
    rng = random.Random(seed)
    now, attempt, times = T0, 1, []
    while True:
        times.append(now)
        outcome, when = decide(500, False, attempt, T0, now, BASE, CAP, WINDOW, rng.random())
        if outcome == "failed":
            break
        assert outcome == "pending"
        assert now <= when <= T0 + timedelta(seconds=WINDOW)
        assert (when - now).total_seconds() < backoff_ceiling(attempt, BASE, CAP)
        now, attempt = when, attempt + 1
    # The last attempt falls exactly at the end of the three days, never earlier.
    assert times[-1] == T0 + timedelta(seconds=WINDOW)
    assert 72 < len(times) < 1000  # capped at an hour: on average one every half hour


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempt_number": 0},
        {"attempt_number": -1},
        {"rand": 1.0},
        {"rand": -0.01},
        {"base": 0.0},
        {"base": 10.0, "cap": 5.0},
        {"window": -1.0},
    ],
)
def test_arguments_out_of_range_are_refused(kwargs: dict[str, float]) -> None:
    args: dict[str, object] = {
        "status_code": 500,
        "network_error": False,
        "attempt_number": 1,
        "created_at": T0,
        "now": T0,
        "base": BASE,
        "cap": CAP,
        "window": WINDOW,
        "rand": 0.5,
        **kwargs,
    }
    with pytest.raises(ValueError, match=r"must|need|starts"):
        decide(**args)  # type: ignore[arg-type]


def test_helpers_agree_with_decide() -> None:
    assert is_success(204)
    assert not is_success(None)
    assert not is_success(302)
    assert is_retryable(None, True)
    assert not is_retryable(None, False)
    assert is_retryable(429, False)
    assert is_retryable(408, False)
    assert is_retryable(500, False)
    assert not is_retryable(404, False)
    assert is_retryable(301, False)  # recorded and retried, never followed
