"""Pure parts of the dashboard: chart geometry, formula-safe CSV cells, the gap-limit rule."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from chaingate.domain.gap import gap_status
from chaingate.domain.models import Wallet
from chaingate.services.dashboard import WalletView, chart_bars
from chaingate.services.dashboard_export import csv_line, safe_cell

DAYS = [date(2026, 1, d) for d in range(1, 5)]


def test_bars_scale_to_the_tallest_day_in_whole_pixels() -> None:
    bars = chart_bars([0, 5 * 10**18, 10**19, 1], DAYS, width=400, height=100)
    assert [b.height for b in bars] == [0, 50, 100, 1]  # a tiny non-zero day stays visible
    assert [b.y for b in bars] == [100, 50, 0, 99]
    assert [b.x for b in bars] == [2, 102, 202, 302]
    assert all(isinstance(b.height, int) for b in bars)
    assert bars[2].units == 10**19 and bars[2].day == date(2026, 1, 3)


def test_bars_of_an_empty_window_are_flat() -> None:
    assert {b.height for b in chart_bars([0, 0, 0, 0], DAYS, width=400, height=100)} == {0}


def test_cells_a_spreadsheet_would_run_get_a_leading_quote() -> None:
    for hostile in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(hostile) == "'" + hostile
    for harmless in ("ORDER-1", "1.5", "0x12", "", "a=b"):
        assert safe_cell(harmless) == harmless
    assert safe_cell(None) == ""


def test_csv_lines_quote_separators_and_stay_one_record() -> None:
    line = csv_line(['=cmd|"/c calc"', "a,b", "two\nlines", 7])
    assert list(csv.reader(io.StringIO(line))) == [['\'=cmd|"/c calc"', "a,b", "two\nlines", "7"]]


def _wallet(gap_limit: int) -> Wallet:
    return Wallet("wal_1", "mer_1", "ltc", "tpub", 30, datetime(2026, 1, 1, tzinfo=UTC),
                  "p2wpkh", gap_limit)  # fmt: skip


def test_the_gap_warning_starts_when_a_wallet_app_would_miss_an_address() -> None:
    # 20 unused addresses: a wallet app with gap limit 20 still sees the newest one.
    assert not WalletView(_wallet(20), gap_status(30, 9, 3), None).gap_warning
    assert WalletView(_wallet(20), gap_status(30, 8, 3), None).gap_warning
    # A paid address far behind the previous one needs the wider gap even with no unused run.
    assert WalletView(_wallet(5), gap_status(30, 29, 7), None).gap_warning
    # No gap rule (EVM), or a network no longer configured: no figures, no warning.
    assert not WalletView(_wallet(5), None, None, no_gap_rule=True).gap_warning
