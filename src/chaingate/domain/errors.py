"""Domain errors carry a stable machine-readable code; the API maps them to problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A request the domain refuses. `code` is stable and documented; `status` is the HTTP hint."""

    code = "invalid_request"
    status = 400

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        field: str | None = None,
        status: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # More members of the problem document (JSON values), e.g. how to resolve a conflict.
        self.extra: dict[str, Any] = dict(extra or {})
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field


class InvalidAmount(DomainError):
    code = "invalid_amount"
    status = 422


class UnknownNetwork(DomainError):
    code = "unknown_network"
    status = 422


class UnknownCurrency(DomainError):
    code = "unknown_currency"
    status = 422


class InvalidWallet(DomainError):
    code = "invalid_wallet"
    status = 422


class InvalidAddress(DomainError):
    code = "invalid_address"
    status = 422


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class UnknownEventType(DomainError):
    code = "unknown_event_type"
    status = 422


class EndpointLimitReached(DomainError):
    code = "endpoint_limit_reached"
    status = 422


class WebhookUrlForbidden(DomainError):
    """The URL may not receive webhooks: wrong scheme, unreadable, or not a public address."""

    code = "webhook_url_forbidden"
    status = 422

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="url")


class SecretDecryptionError(ValueError):
    """A stored secret that does not open (the SecretBox port's error): wrong `secret_key`, or a
    corrupted value. An operator's problem, never the merchant's."""


class ReorgTooDeep(Exception):
    """No stored block within the reorg window is still canonical: an operator must look."""


class ConfigurationError(Exception):
    """Settings that cannot run safely; the gateway refuses to start and says why."""
