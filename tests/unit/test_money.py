from __future__ import annotations

import pytest

from chaingate.domain.errors import InvalidAmount
from chaingate.domain.money import (
    MAX_BASE_UNITS,
    format_amount,
    parse_amount,
    threshold_with_tolerance,
)


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("1", 18, 10**18),
        ("0.1", 18, 10**17),
        ("12.50", 6, 12_500_000),
        ("0.000001", 6, 1),
        ("1.000000000000000000", 18, 10**18),
        ("00012", 0, 12),
    ],
)
def test_parse_is_exact(text: str, decimals: int, units: int) -> None:
    assert parse_amount(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0.0000001", "too_many_decimals"),
        ("1e6", "invalid_amount"),
        ("-1", "invalid_amount"),
        ("0", "invalid_amount"),
        ("0.000000", "invalid_amount"),
        (" 1", "invalid_amount"),
        ("1.", "invalid_amount"),
        (".5", "invalid_amount"),
        ("NaN", "invalid_amount"),
        ("1,5", "invalid_amount"),
        ("１", "invalid_amount"),  # full-width digit: \d would accept it, we must not
        ("9" * 101, "amount_out_of_range"),
        (str(MAX_BASE_UNITS + 1), "amount_out_of_range"),
    ],
)
def test_parse_refuses_with_stable_codes(text: str, code: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text, 6 if code == "too_many_decimals" else 0)
    assert caught.value.code == code


def test_format_round_trips() -> None:
    for units in (1, 10**17, 12_500_000, 10**30 + 7):
        assert parse_amount(format_amount(units, 18), 18) == units
    assert format_amount(0, 6) == "0"
    assert format_amount(1_500_000, 6) == "1.5"


def test_tolerance_rounds_in_the_merchants_favour() -> None:
    assert threshold_with_tolerance(1000, 0) == 1000
    assert threshold_with_tolerance(1000, 50) == 995
    assert threshold_with_tolerance(999, 50) == 995  # 994.005 rounds up
