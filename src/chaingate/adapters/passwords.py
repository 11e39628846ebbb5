"""Password hashing for dashboard users: argon2id (RFC 9106), parameters in the stored hash."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's low-memory profile: argon2id, t=3, m=64 MiB, p=4.
_hasher = PasswordHasher()
# Verified against when the account does not exist, so an unknown e-mail costs the same time.
_DUMMY_HASH = _hasher.hash("chaingate-no-such-user")


def hash_password(password: str) -> str:
    """An argon2id PHC string ("$argon2id$v=19$m=...") with its own random salt."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no stored hash, spends the same time and says False."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


class Argon2PasswordHasher:
    """The PasswordHasher port over this module's argon2id functions."""

    def hash(self, password: str) -> str:
        return hash_password(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        return verify_password(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return needs_rehash(stored_hash)
