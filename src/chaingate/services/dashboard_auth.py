"""Dashboard users: accounts, password login with per-account lockout, server-side sessions.

A session is a random token in the user's cookie; the database keeps only its SHA-256, so a
leaked table opens no session. Failed logins say the same thing whether or not the e-mail
exists, and cost the same time (a dummy argon2 verification).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from chaingate.domain.errors import Conflict, DomainError, NotFound
from chaingate.domain.ids import new_id
from chaingate.domain.models import DashboardSession, DashboardUser
from chaingate.ports import Database, PasswordHasher, SecretBox, TotpCheck, UnitOfWork

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_EVERY = timedelta(seconds=60)  # idle deadline moves at most this often: fewer writes
MAX_FAILED_LOGINS = 5  # in a row, then the account is locked for LOCKOUT
LOCKOUT = timedelta(minutes=15)
# Per client address, on top of each account's own lockout: 10 sign-in attempts, then 1 per 6 s
# (one limiter shared by every API process when Redis is configured: see bootstrap).
LOGIN_ATTEMPTS_PER_SECOND = 1 / 6
LOGIN_ATTEMPTS_BURST = 10
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this bounds the work per request
_BASE32_SECRET = re.compile(r"[A-Z2-7]{32}")  # what TotpCheck.new_secret makes
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,60}")


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user behind a live session."""

    user_id: str
    merchant_id: str
    email: str
    csrf_token: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    uow: UnitOfWork,
    merchant_id: str,
    email: str,
    password: str,
    now: datetime,
    *,
    passwords: PasswordHasher,
) -> DashboardUser:
    """A dashboard user of the merchant. Raises NotFound (merchant), DomainError, Conflict."""
    address = normalize_email(email)
    if len(address) > 254 or _EMAIL.fullmatch(address) is None:
        raise DomainError("that is not an e-mail address", code="invalid_email", field="email")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise DomainError(
            f"the password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
            code="invalid_password",
            field="password",
        )
    if await uow.merchants.get(merchant_id) is None:
        raise NotFound(f"merchant {merchant_id} not found", field="merchant_id")
    user = DashboardUser(
        id=new_id("usr"),
        merchant_id=merchant_id,
        email=address,
        password_hash=await asyncio.to_thread(passwords.hash, password),
        failed_logins=0,
        locked_until=None,
        created_at=now,
        last_login_at=None,
    )
    await uow.users.add(user)
    await uow.commit()
    return user


async def log_in(
    db: Database,
    email: str,
    password: str,
    now: datetime,
    *,
    box: SecretBox,
    passwords: PasswordHasher,
    totp: TotpCheck,
    code: str = "",
) -> str | None:
    """A new session token when the credentials are right and the account is not locked;
    for a user with a second factor, `code` must be a fresh code of their authenticator.

    None otherwise, whatever the reason, so the answer reveals no account. The slow hash runs
    outside any transaction, so a login never holds the database while it computes.
    """
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    async with db.uow() as uow:
        user = await uow.users.by_email(normalize_email(email)[:254])
    if user is not None and user.locked_until is not None and user.locked_until > now:
        # Locked: the password is not even tried. The dummy verification costs what a real one
        # does, so a locked account answers like any other failure, in the same time.
        await asyncio.to_thread(passwords.verify, None, password)
        return None
    ok = await asyncio.to_thread(passwords.verify, user.password_hash if user else None, password)
    if user is None:
        return None
    stored = user.password_hash
    if ok and passwords.needs_rehash(stored):
        stored = await asyncio.to_thread(passwords.hash, password)
    async with db.uow() as uow:
        if ok and user.totp_secret is not None:
            secret = box.decrypt(user.totp_secret)
            step = totp.matching_step(secret, code, now, user.totp_last_step)
            ok = step is not None and await uow.users.use_totp_step(user.id, step)
        if not ok:
            # One statement counts the failure and locks at the limit: parallel guesses each
            # see the others' count, so none escapes the lockout.
            await uow.users.record_failure(
                user.id, max_failures=MAX_FAILED_LOGINS, lock_until=now + LOCKOUT
            )
            await uow.commit()
            return None
        if not await uow.users.record_success(user.id, now, stored, now=now):
            return None  # locked by concurrent failures while the password was checked
        await uow.sessions.remove_stale(user.id, idle_before=now - IDLE_TIMEOUT, now=now)
        token = secrets.token_urlsafe(32)
        await uow.sessions.add(
            DashboardSession(
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ABSOLUTE_TIMEOUT,
            )
        )
        await uow.commit()
    return token


async def enable_totp(
    uow: UnitOfWork,
    user_id: str,
    secret: str,
    code: str,
    now: datetime,
    *,
    box: SecretBox,
    totp: TotpCheck,
) -> None:
    """Turn on the second factor with `secret`, once `code` proves the app holds it.

    Raises DomainError (`invalid_code`) for a wrong code, Conflict when it is already on.
    """
    user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("user not found")
    if user.totp_secret is not None:
        raise Conflict("two-factor sign-in is already on", code="totp_enabled")
    if _BASE32_SECRET.fullmatch(secret) is None:
        raise DomainError("the enrollment form was altered; start again", code="invalid_secret")
    step = totp.matching_step(secret, code, now, None)
    if step is None:
        raise DomainError("that code is not right; check the app's clock", code="invalid_code")
    await uow.users.set_totp(user_id, box.encrypt(secret), step)
    await uow.commit()


async def disable_totp(
    uow: UnitOfWork, user_id: str, code: str, now: datetime, *, box: SecretBox, totp: TotpCheck
) -> None:
    """Turn off the second factor; needs a current code. Raises DomainError (`invalid_code`)."""
    user = await uow.users.get(user_id)
    if user is None or user.totp_secret is None:
        raise Conflict("two-factor sign-in is not on", code="totp_disabled")
    step = totp.matching_step(box.decrypt(user.totp_secret), code, now, user.totp_last_step)
    if step is None or not await uow.users.use_totp_step(user_id, step):
        raise DomainError("that code is not right", code="invalid_code")
    await uow.users.set_totp(user_id, None, None)
    await uow.commit()


async def has_totp(uow: UnitOfWork, user_id: str) -> bool:
    user = await uow.users.get(user_id)
    return user is not None and user.totp_secret is not None


async def resume_session(uow: UnitOfWork, token: str, now: datetime) -> SignedIn | None:
    """The signed-in user for the cookie's `token`, or None when unknown or timed out.

    Resuming counts as activity: it moves the idle deadline.
    """
    if not token or len(token) > 200:
        return None
    token_hash = _token_hash(token)
    session = await uow.sessions.get(token_hash)
    if session is None:
        return None
    if session.expires_at <= now or session.last_seen_at + IDLE_TIMEOUT <= now:
        await uow.sessions.remove(token_hash)
        await uow.commit()
        return None
    user = await uow.users.get(session.user_id)
    if user is None:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        await uow.sessions.touch(token_hash, now)
        await uow.commit()
    return SignedIn(user.id, user.merchant_id, user.email, csrf_token(token))


async def log_out(uow: UnitOfWork, token: str) -> None:
    await uow.sessions.remove(_token_hash(token))
    await uow.commit()


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: bound to the session, useless without its cookie."""
    return hmac.new(session_token.encode(), b"chaingate-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, presented: str) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a form may send anything.
    return hmac.compare_digest(csrf_token(session_token).encode(), presented.encode())


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
