"""Time-based one-time passwords (RFC 6238, HMAC-SHA1, 30 s steps, 6 digits): what
authenticator apps compute. Standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1  # accept the previous and the next code too: clocks and typing take time


def new_secret() -> str:
    """160 random bits in base32, the form authenticator apps take."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def step_at(moment: datetime) -> int:
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int, digits: int = DIGITS) -> str:
    """The code for time step `step` (RFC 4226 dynamic truncation)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    mac = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).rjust(digits, "0")


def matching_step(secret: str, code: str, now: datetime, after_step: int | None) -> int | None:
    """The time step `code` belongs to, near `now` and later than `after_step`; else None.

    Refusing steps up to `after_step` makes each code usable once.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = step_at(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str = "ChainGate") -> str:
    """The otpauth:// URI an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"


class Rfc6238Totp:
    """The TotpCheck port over this module's functions."""

    def new_secret(self) -> str:
        return new_secret()

    def provisioning_uri(self, secret: str, account: str) -> str:
        return provisioning_uri(secret, account)

    def matching_step(
        self, secret: str, code: str, now: datetime, after_step: int | None
    ) -> int | None:
        return matching_step(secret, code, now, after_step)
