"""Dashboard users and their server-side sessions (only a hash of each session token is kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.tables import dashboard_sessions, dashboard_users
from chaingate.adapters.db.types import UtcDateTime
from chaingate.domain.errors import Conflict
from chaingate.domain.models import DashboardSession, DashboardUser


class UserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, user: DashboardUser) -> None:
        """Raises Conflict when the e-mail is taken."""
        try:
            await self._conn.execute(
                dashboard_users.insert().values(
                    id=user.id,
                    merchant_id=user.merchant_id,
                    email=user.email,
                    password_hash=user.password_hash,
                    failed_logins=user.failed_logins,
                    locked_until=user.locked_until,
                    created_at=user.created_at,
                    last_login_at=user.last_login_at,
                    totp_secret=user.totp_secret,
                    totp_last_step=user.totp_last_step,
                )
            )
        except IntegrityError:
            raise Conflict("a user with this e-mail already exists", code="user_exists") from None

    async def by_email(self, email: str) -> DashboardUser | None:
        query = select(dashboard_users).where(dashboard_users.c.email == email)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else DashboardUser(**row)

    async def get(self, user_id: str) -> DashboardUser | None:
        query = select(dashboard_users).where(dashboard_users.c.id == user_id)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else DashboardUser(**row)

    async def record_failure(
        self, user_id: str, *, max_failures: int, lock_until: datetime
    ) -> tuple[int, datetime | None]:
        """Count one failed login and lock the account once `max_failures` are reached, in a
        single statement: concurrent failures each see the count the others left, so none can
        slip past the limit. Returns the new count and lock deadline."""
        u = dashboard_users.c
        reached = u.failed_logins + 1 >= max_failures
        result = await self._conn.execute(
            update(dashboard_users)
            .where(u.id == user_id)
            .values(
                failed_logins=u.failed_logins + 1,
                locked_until=case(
                    (reached, literal(lock_until, UtcDateTime())), else_=u.locked_until
                ),
            )
            .returning(u.failed_logins, u.locked_until)
        )
        row = result.one()
        return int(row.failed_logins), row.locked_until

    async def record_success(
        self, user_id: str, at: datetime, password_hash: str, *, now: datetime
    ) -> bool:
        """Reset the failure count, unless a lock is in force at `now` (one set by a concurrent
        failure since the caller looked): then change nothing and return False."""
        u = dashboard_users.c
        result = await self._conn.execute(
            update(dashboard_users)
            .where(u.id == user_id, or_(u.locked_until.is_(None), u.locked_until <= now))
            .values(
                failed_logins=0, locked_until=None, last_login_at=at, password_hash=password_hash
            )
        )
        return bool(result.rowcount)

    async def set_totp(self, user_id: str, secret_ciphertext: str | None, step: int | None) -> None:
        await self._conn.execute(
            update(dashboard_users)
            .where(dashboard_users.c.id == user_id)
            .values(totp_secret=secret_ciphertext, totp_last_step=step)
        )

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used; False when it (or a later one) already was: a replay."""
        u = dashboard_users.c
        result = await self._conn.execute(
            update(dashboard_users)
            .where(u.id == user_id, (u.totp_last_step.is_(None)) | (u.totp_last_step < step))
            .values(totp_last_step=step)
        )
        return bool(result.rowcount)


class SessionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: DashboardSession) -> None:
        await self._conn.execute(
            dashboard_sessions.insert().values(
                token_hash=session.token_hash,
                user_id=session.user_id,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
                expires_at=session.expires_at,
            )
        )

    async def get(self, token_hash: str) -> DashboardSession | None:
        query = select(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash)
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else DashboardSession(**row)

    async def touch(self, token_hash: str, at: datetime) -> None:
        await self._conn.execute(
            update(dashboard_sessions)
            .where(dashboard_sessions.c.token_hash == token_hash)
            .values(last_seen_at=at)
        )

    async def remove(self, token_hash: str) -> None:
        await self._conn.execute(
            delete(dashboard_sessions).where(dashboard_sessions.c.token_hash == token_hash)
        )

    async def remove_stale(self, user_id: str, *, idle_before: datetime, now: datetime) -> None:
        """Drop the user's sessions that are past either timeout."""
        s = dashboard_sessions
        await self._conn.execute(
            delete(s).where(
                s.c.user_id == user_id, or_(s.c.last_seen_at < idle_before, s.c.expires_at <= now)
            )
        )
