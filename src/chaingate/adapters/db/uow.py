"""The unit of work: one database transaction, with a repository per aggregate.

Services open one, change state, write the outbox rows, and call `commit()` themselves;
leaving the block without committing rolls everything back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from chaingate.adapters.db.repositories.chain import ChainRepository
from chaingate.adapters.db.repositories.events import EventRepository
from chaingate.adapters.db.repositories.idempotency import IdempotencyRepository
from chaingate.adapters.db.repositories.invoices import InvoiceRepository, PaymentRepository
from chaingate.adapters.db.repositories.merchants import MerchantRepository, WalletRepository
from chaingate.adapters.db.repositories.reports import ReportRepository
from chaingate.adapters.db.repositories.treasury import TreasuryRepository
from chaingate.adapters.db.repositories.users import SessionRepository, UserRepository
from chaingate.adapters.db.repositories.webhooks import WebhookRepository
from chaingate.domain.models import Event


class UnitOfWork:
    merchants: MerchantRepository
    wallets: WalletRepository
    invoices: InvoiceRepository
    payments: PaymentRepository
    chain: ChainRepository
    events: EventRepository
    webhooks: WebhookRepository
    idempotency: IdempotencyRepository
    users: UserRepository
    sessions: SessionRepository
    reports: ReportRepository
    treasury: TreasuryRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self.staged_events: list[Event] = []

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        self._tx = await self._conn.begin()
        self._before_commit, self.staged_events = [], []
        conn = self._conn
        self.merchants = MerchantRepository(conn)
        self.wallets = WalletRepository(conn)
        self.invoices = InvoiceRepository(conn)
        self.payments = PaymentRepository(conn)
        self.chain = ChainRepository(conn)
        self.events = EventRepository(conn)
        self.webhooks = WebhookRepository(conn)
        self.idempotency = IdempotencyRepository(conn)
        self.users, self.sessions = UserRepository(conn), SessionRepository(conn)
        self.reports = ReportRepository(conn)
        self.treasury = TreasuryRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            if self._conn is not None:
                await self._conn.close()
            self._conn = None
            self._tx = None

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def before_commit(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` inside the transaction, right before it commits."""
        self._before_commit.append(hook)

    async def commit(self) -> None:
        assert self._tx is not None, "commit outside of `async with uow`"
        hooks, self._before_commit = self._before_commit, []
        for hook in hooks:
            await hook()
        await self._tx.commit()

    async def rollback(self) -> None:
        assert self._tx is not None, "rollback outside of `async with uow`"
        await self._tx.rollback()


class Database:
    """Owns the engine; hands out units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
