"""The gap-limit rules (domain/gap.py): what a wallet app needs, and when to warn — once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chaingate.domain.gap import GapStatus, crossed_threshold, gap_status, refuses, run_start


def finds(paid: set[int], handed_out: int, gap_limit: int) -> set[int]:
    """The addresses a wallet app with `gap_limit` looks at (BIP-44: after the last used index
    p it scans p+1 .. p+gap_limit, moving on with every used one it finds)."""
    seen: set[int] = set()
    last = -1
    index = 0
    while index < handed_out and index <= last + gap_limit:
        seen.add(index)
        if index in paid:
            last = index
        index += 1
    return seen


def test_a_fresh_wallet_and_a_run_of_unused_addresses() -> None:
    assert gap_status(0, None, 0) == GapStatus(0, 0, None)
    assert gap_status(60, None, 0) == GapStatus(60, 60, None)
    # Paid at 60 after 60 unused ones: nothing unused now, but finding index 60 from scratch
    # still takes a gap limit of 61.
    assert gap_status(61, 60, 61) == GapStatus(0, 61, 60)
    assert gap_status(70, 60, 61).unused_run == 9


@settings(max_examples=300)
@given(
    handed_out=st.integers(0, 80),
    paid=st.sets(st.integers(0, 79), max_size=12),
)
def test_the_needed_gap_limit_is_the_smallest_that_finds_every_address(
    handed_out: int, paid: set[int]
) -> None:
    paid = {p for p in paid if p < handed_out}
    last = max(paid, default=None)
    ordered = sorted(paid)
    widest = max((q - p for p, q in zip([-1, *ordered], ordered, strict=False)), default=0)
    needed = gap_status(handed_out, last, widest).needed_gap_limit
    everything = set(range(handed_out))
    # Every handed-out address, a late payment to an unpaid one included, is looked at...
    assert finds(paid, handed_out, max(needed, 1)) == everything
    # ...and with one less, some address is missed.
    if needed > 1:
        assert finds(paid, handed_out, needed - 1) != everything


def test_refuse_matches_the_old_rule() -> None:
    # on_gap: refuse refuses address i when the gap_limit addresses before it are unused.
    assert not refuses(19, 20)
    assert refuses(20, 20)


def test_a_threshold_is_warned_once_per_run() -> None:
    assert crossed_threshold(20, 20, 0, None, 0) is None  # the app still sees the newest
    assert crossed_threshold(21, 20, 0, None, 0) == 20
    assert crossed_threshold(22, 20, 0, 0, 20) is None  # same run, same threshold
    assert crossed_threshold(41, 20, 0, 0, 20) == 40  # the next multiple
    # A payment started a new run: its first crossing is news again.
    assert crossed_threshold(21, 20, 35, 0, 40) == 20
    # A raised gap limit moves the thresholds; a lowered one reports only the highest passed.
    assert crossed_threshold(45, 100, 0, 0, 40) is None
    assert crossed_threshold(101, 100, 0, 0, 40) == 100
    assert crossed_threshold(55, 10, 0, None, 0) == 50


@settings(max_examples=200)
@given(
    gap_limit=st.integers(1, 12),
    steps=st.lists(st.booleans(), min_size=1, max_size=120),
)
def test_walking_invoices_warns_exactly_at_each_multiple(gap_limit: int, steps: list[bool]) -> None:
    """Hand out addresses one by one (True: this one gets paid before the next is handed out)
    and apply the rule as invoice creation does: one warning per multiple per run."""
    last_paid: int | None = None
    warned_start: int | None = None
    warned = 0
    warnings: list[tuple[int, int]] = []
    for index, paid in enumerate(steps):
        start = run_start(last_paid)
        run = index + 1 - start
        threshold = crossed_threshold(run, gap_limit, start, warned_start, warned)
        if threshold is not None:
            warned_start, warned = start, threshold
            warnings.append((start, threshold))
        if paid:
            last_paid = index
    expected = []
    start = 0
    for index, paid in enumerate(steps):
        run = index + 1 - start
        if run > gap_limit and (run - 1) % gap_limit == 0:
            expected.append((start, run - 1))
        if paid:
            start = index + 1
    assert warnings == expected
