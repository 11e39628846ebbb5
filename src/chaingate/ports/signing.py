"""The isolated signer, as services see it: ask for managed accounts and signatures.

The real adapter (`adapters/signer`) talks to the `chaingate signer` process over an
authenticated local socket; no gateway process ever holds private key material.
"""

from __future__ import annotations

from typing import Protocol

from chaingate.domain.custody import (
    AccountRequest,
    ManagedAccount,
    SignedTransaction,
    SignerStatus,
    SignRequest,
)


class Signer(Protocol):
    async def create_account(self, request: AccountRequest) -> ManagedAccount:
        """A new managed account (or, for a `request_id` already answered, the same one).

        Raises SignerRefused (e.g. `unknown_network`, `keystore_missing`) or
        SignerUnavailable (down, locked, unreachable: nothing changed, retry).
        """
        ...

    async def sign(self, request: SignRequest) -> SignedTransaction:
        """The signed transaction, or for a `request_id` already answered the same bytes.

        Raises SignerRefused with the policy's reason code, or SignerUnavailable.
        """
        ...

    async def status(self) -> SignerStatus:
        """Whether the signer is unlocked, its key versions and policy. Raises
        SignerUnavailable when it cannot be reached."""
        ...

    async def close(self) -> None: ...
