"""Sending one signed webhook request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chaingate.domain.records import AttemptResult


class WebhookSender(Protocol):
    async def send(
        self,
        url: str,
        body: str,
        secret: str,
        headers: Mapping[str, str],
        *,
        timestamp: int | None = None,
    ) -> AttemptResult:
        """POST `body` byte for byte to `url`, signed with `secret` at `timestamp` (default
        now). Never raises for HTTP, network, DNS or URL-policy problems: they come back as
        the AttemptResult."""
        ...
