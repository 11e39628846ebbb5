"""Amounts are integers of base units inside; decimal strings only at the edges.

Never a float: parsing is done on the string digits, so "0.1" ETH is exactly 10**17 wei.
"""

from __future__ import annotations

import re

from chaingate.domain.errors import InvalidAmount

# uint256 is the widest amount any supported chain can carry.
MAX_BASE_UNITS = 2**256 - 1
_DECIMAL = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")  # ASCII only


def parse_amount(text: str, decimals: int, *, field: str = "amount") -> int:
    """Convert a decimal string such as "12.5" to base units for an asset with `decimals`.

    Raises InvalidAmount for anything that is not a plain positive decimal number, has more
    fractional digits than the asset supports, or does not fit in uint256.
    """
    if not isinstance(text, str):
        raise InvalidAmount('amount must be a decimal string such as "12.50"', field=field)
    if len(text) > 100:
        raise InvalidAmount("amount is too long", code="amount_out_of_range", field=field)
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmount(
            f'amount {text!r} is not a plain decimal number such as "12.50"', field=field
        )
    frac = (match.group("frac") or "").rstrip("0")
    if len(frac) > decimals:
        raise InvalidAmount(
            f"amount {text!r} has more than {decimals} decimal places",
            code="too_many_decimals",
            field=field,
        )
    whole: str = match.group("int")
    units: int = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if units <= 0:
        raise InvalidAmount("amount must be greater than zero", field=field)
    if units > MAX_BASE_UNITS:
        raise InvalidAmount("amount is too large", code="amount_out_of_range", field=field)
    return units


def format_amount(units: int, decimals: int) -> str:
    """Render base units as a decimal string with trailing zeros trimmed ("1.5", "0", "12")."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def threshold_with_tolerance(amount_due: int, tolerance_bps: int) -> int:
    """Smallest total that counts as paid in full, given a tolerance in basis points.

    Rounds up so a tolerance can never accept less than the merchant allowed.
    """
    return -((-amount_due * (10_000 - tolerance_bps)) // 10_000)
