"""The gap limit of HD wallets, as rules (Bitcoin family; EVM accounts have none).

A wallet app (Electrum, Sparrow, Bitcoin Core, a hardware wallet's companion) that last saw a
payment at index p looks at the receive addresses p+1 .. p+G and stops there (G: its gap
limit). Every invoice takes the next index, and most checkouts are abandoned, so the gateway
hands out runs of unused addresses. It never needs to refuse a sale for that: it tells the
merchant which gap limit their wallet app needs, and warns once each time the current run of
unused addresses passes another multiple of the wallet's configured gap limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OnGap(StrEnum):
    """What invoice creation does once the unused run would pass the wallet's gap limit."""

    WARN = "warn"  # hand out the address anyway; `wallet.gap_warning` once per threshold
    REFUSE = "refuse"  # 409 gap_limit_reached (the behaviour before warnings existed)


@dataclass(frozen=True, slots=True)
class GapStatus:
    """Where a wallet stands with its wallet app's gap limit."""

    # Addresses handed out after the last paid one, all unused (the newest included).
    unused_run: int
    # The smallest gap limit with which a wallet app finds every payment to every address
    # handed out so far, a late payment to an old unpaid invoice included.
    needed_gap_limit: int
    last_paid_index: int | None


def run_start(last_paid_index: int | None) -> int:
    """The first index of the current run of unused addresses."""
    return 0 if last_paid_index is None else last_paid_index + 1


def gap_status(next_index: int, last_paid_index: int | None, widest_paid_gap: int) -> GapStatus:
    """The status of a wallet that handed out indexes 0..next_index-1.

    `widest_paid_gap` is the largest distance between a paid index and the paid index before it
    (from -1 for the first one), 0 when nothing was paid: a wallet app finds a payment at q after
    the previous one at p only with a gap limit of at least q - p. The newest address needs
    `unused_run` (its distance from the last paid one).
    """
    run = next_index - run_start(last_paid_index)
    return GapStatus(
        unused_run=run,
        needed_gap_limit=max(run, widest_paid_gap),
        last_paid_index=last_paid_index,
    )


def refuses(unused_before: int, gap_limit: int) -> bool:
    """Whether a wallet with `on_gap: refuse` refuses the next address: `unused_before`
    addresses before it are unused, so a wallet app with `gap_limit` would not look at it."""
    return unused_before >= gap_limit


def crossed_threshold(
    unused_run: int,
    gap_limit: int,
    start: int,
    warned_start: int | None,
    warned_threshold: int,
) -> int | None:
    """The threshold the run of unused addresses has just passed, or None.

    Thresholds are the multiples of the gap limit (G, 2G, 3G, ...): passing G means a wallet app
    with the configured gap limit no longer sees the newest address; each further multiple is
    worth another word. A threshold counts once per run (identified by its `start` index): the
    wallet remembers the run and the highest threshold it warned about. When the run jumps past
    several thresholds at once (a lowered gap limit) only the highest is reported.
    """
    if unused_run <= gap_limit:
        return None
    threshold = (unused_run - 1) // gap_limit * gap_limit
    if warned_start == start and warned_threshold >= threshold:
        return None
    return threshold
