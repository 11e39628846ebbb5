"""Median-time-past as proof of how far a Bitcoin-family chain has moved (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaingate.domain.chain import median_time_floor

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stamps(*minutes: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_eleven_blocks_give_their_median_whatever_the_order() -> None:
    window = stamps(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    assert median_time_floor(window) == T0 + timedelta(minutes=50)
    assert median_time_floor(reversed(window)) == T0 + timedelta(minutes=50)


def test_a_block_stamped_ahead_does_not_move_the_proof_past_its_neighbours() -> None:
    # The newest block is stamped 2 hours ahead: the proof stays with the median.
    window = stamps(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 220)
    assert median_time_floor(window) == T0 + timedelta(minutes=50)


def test_fewer_blocks_give_a_lower_bound_or_nothing() -> None:
    assert median_time_floor(stamps(0, 10, 20, 30, 40)) is None
    # Six known: the 6th newest by value; older unknown blocks could only raise the median.
    assert median_time_floor(stamps(50, 60, 70, 80, 90, 100)) == T0 + timedelta(minutes=50)


def test_only_the_newest_eleven_count() -> None:
    window = stamps(*range(0, 200, 10))  # 20 blocks, given oldest first
    assert median_time_floor(window[-11:]) == T0 + timedelta(minutes=140)
