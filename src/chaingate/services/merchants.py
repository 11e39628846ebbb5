"""Merchants and their API keys. Keys are random, shown once, and stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

from chaingate.domain.errors import DomainError, NotFound
from chaingate.domain.ids import new_id
from chaingate.domain.models import ApiKey, Merchant
from chaingate.ports import UnitOfWork

SCOPES = frozenset(
    {
        "invoices:read",
        "invoices:write",
        "webhooks:read",
        "webhooks:write",
        "wallets:read",
        "wallets:write",
        "events:read",
    }
)


def _hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_merchant(uow: UnitOfWork, name: str, now: datetime) -> tuple[Merchant, str]:
    """A new merchant and a full-scope API key; the key's plaintext is returned only here."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise DomainError("merchant name must be 1 to 200 characters", code="invalid_name")
    merchant = Merchant(id=new_id("mer"), name=name, created_at=now)
    await uow.merchants.add(merchant)
    _, plaintext = await _add_key(uow, merchant.id, "default", SCOPES, now)
    await uow.commit()
    return merchant, plaintext


async def issue_api_key(
    uow: UnitOfWork, merchant_id: str, name: str, scopes: Iterable[str], now: datetime
) -> tuple[ApiKey, str]:
    wanted = frozenset(scopes)
    unknown = wanted - SCOPES
    if unknown or not wanted:
        raise DomainError(
            f"unknown or empty scopes: {sorted(unknown)}; known: {sorted(SCOPES)}",
            code="invalid_scopes",
        )
    key, plaintext = await _add_key(uow, merchant_id, name, wanted, now)
    await uow.commit()
    return key, plaintext


async def _add_key(
    uow: UnitOfWork, merchant_id: str, name: str, scopes: frozenset[str], now: datetime
) -> tuple[ApiKey, str]:
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        merchant_id=merchant_id,
        name=name,
        secret_hash=_hash_secret(secret),
        scopes=scopes,
        created_at=now,
        revoked_at=None,
    )
    await uow.merchants.add_api_key(key)
    return key, f"{key.id}.{secret}"


async def authenticate(uow: UnitOfWork, presented: str) -> ApiKey | None:
    """The active key matching `presented` ("<key id>.<secret>"), else None."""
    key_id, dot, secret = presented.partition(".")
    if not dot or len(presented) > 200:
        return None
    key = await uow.merchants.get_api_key(key_id)
    if key is None or key.revoked_at is not None:
        # Still hash, so a wrong id costs the same time as a wrong secret.
        hmac.compare_digest(_hash_secret(secret), "0" * 64)
        return None
    if not hmac.compare_digest(_hash_secret(secret), key.secret_hash):
        return None
    return key


async def list_api_keys(uow: UnitOfWork, merchant_id: str) -> list[ApiKey]:
    """The merchant's keys, oldest first, revoked ones included (they show when)."""
    return await uow.merchants.list_api_keys(merchant_id)


async def revoke_api_key(uow: UnitOfWork, merchant_id: str, key_id: str, now: datetime) -> None:
    """Revoke the merchant's key at once. Raises NotFound, also for another merchant's key id
    and for a key already revoked."""
    if not await uow.merchants.revoke_api_key(merchant_id, key_id, now):
        raise NotFound(f"active API key {key_id} not found", field="key_id")
    await uow.commit()
