"""Secrets, passwords, second factors, webhook URLs and rate limits, as the services see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class SecretBox(Protocol):
    """Seals short secrets (webhook signing secrets, TOTP secrets, idempotent answers that
    hold one) so they are stored only encrypted."""

    def encrypt(self, plaintext: str) -> str:
        """The sealed form of `plaintext`; equal inputs seal differently."""
        ...

    def decrypt(self, token: str) -> str:
        """The plaintext sealed in `token`. Raises SecretDecryptionError if it does not open."""
        ...


class PasswordHasher(Protocol):
    """Slow, salted password hashes for dashboard users."""

    def hash(self, password: str) -> str: ...

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; with no stored hash, costs the same and says False."""
        ...

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's."""
        ...


class TotpCheck(Protocol):
    """Time-based one-time passwords, as authenticator apps compute them."""

    def new_secret(self) -> str: ...

    def provisioning_uri(self, secret: str, account: str) -> str:
        """The otpauth:// URI an authenticator app reads from a QR code."""
        ...

    def matching_step(
        self, secret: str, code: str, now: datetime, after_step: int | None
    ) -> int | None:
        """The time step `code` belongs to, near `now` and later than `after_step`; else None."""
        ...


class UrlGuard(Protocol):
    """Keeps webhook URLs away from the gateway's own network (SSRF)."""

    async def check(self, url: str) -> object:
        """Raise WebhookUrlForbidden unless every address the URL's host resolves to may
        receive webhooks."""
        ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until the same request would be allowed; 0 when allowed


class RateLimiter(Protocol):
    """Token buckets shared by every API process that uses the same limiter backend."""

    async def spend(self, bucket: str, tokens: float = 1.0) -> RateDecision:
        """Take `tokens` from `bucket` if it holds them; a negative amount refunds (never refused).

        A refused spend takes nothing.
        """
        ...

    async def close(self) -> None: ...
