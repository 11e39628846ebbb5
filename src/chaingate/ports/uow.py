"""The unit of work (cosmicpython's AbstractUnitOfWork) and the database that hands them out.

A unit of work is one transaction with a repository per aggregate. Services open one, change
state, write the outbox rows, and call `commit()` themselves; leaving the block without
committing rolls everything back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

from chaingate.domain.models import Event
from chaingate.ports.repositories import (
    ChainRepository,
    EventRepository,
    IdempotencyRepository,
    InvoiceRepository,
    MerchantRepository,
    PaymentRepository,
    ReportRepository,
    SessionRepository,
    TreasuryRepository,
    UserRepository,
    WalletRepository,
    WebhookRepository,
)


class UnitOfWork(Protocol):
    # Events emitted in this transaction, written (with their deliveries) right before commit.
    staged_events: list[Event]

    @property
    def merchants(self) -> MerchantRepository: ...
    @property
    def wallets(self) -> WalletRepository: ...
    @property
    def invoices(self) -> InvoiceRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def chain(self) -> ChainRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def reports(self) -> ReportRepository: ...
    @property
    def treasury(self) -> TreasuryRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed and give the connection back."""
        ...

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` inside the transaction, right before it commits."""
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Database(Protocol):
    """Hands out units of work; one per transaction."""

    def uow(self) -> UnitOfWork: ...

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (readiness)."""
        ...

    async def dispose(self) -> None: ...
