"""Protocols the services need; the concrete adapters are chosen in bootstrap.py.

Services import these (and `domain/`, `config`), never `adapters/`; import-linter checks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chaingate.ports.chains import (
    AddressDeriver,
    ChainClient,
    ChainFamily,
    PaymentPosition,
    WalletLink,
    WalletPolicy,
    WatchLookup,
)
from chaingate.ports.security import (
    PasswordHasher,
    RateDecision,
    RateLimiter,
    SecretBox,
    TotpCheck,
    UrlGuard,
)
from chaingate.ports.signing import Signer
from chaingate.ports.uow import Database, UnitOfWork
from chaingate.ports.webhooks import WebhookSender


class Clock(Protocol):
    def now(self) -> datetime: ...


__all__ = [
    "AddressDeriver",
    "ChainClient",
    "ChainFamily",
    "Clock",
    "Database",
    "PasswordHasher",
    "PaymentPosition",
    "RateDecision",
    "RateLimiter",
    "SecretBox",
    "Signer",
    "TotpCheck",
    "UnitOfWork",
    "UrlGuard",
    "WalletLink",
    "WalletPolicy",
    "WatchLookup",
    "WebhookSender",
]
