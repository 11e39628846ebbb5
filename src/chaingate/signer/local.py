"""The `Signer` port served in process by a `SignerCore` (tests, benchmarks, and building on
the core before the socket is involved). Production gateways use `adapters.signer` instead:
this one puts the keys inside the calling process."""

from __future__ import annotations

import asyncio

from chaingate.domain.custody import (
    AccountRequest,
    ManagedAccount,
    SignedTransaction,
    SignerStatus,
    SignRequest,
)
from chaingate.signer.core import SignerCore


class InProcessSigner:
    def __init__(self, core: SignerCore) -> None:
        self.core = core

    async def create_account(self, request: AccountRequest) -> ManagedAccount:
        return await asyncio.to_thread(self.core.create_account, request)

    async def sign(self, request: SignRequest) -> SignedTransaction:
        # Off the event loop: an HSM call blocks, and the core's lock serializes decisions.
        return await asyncio.to_thread(self.core.sign, request)

    async def status(self) -> SignerStatus:
        return await asyncio.to_thread(self.core.status)

    async def close(self) -> None:
        """The core belongs to whoever made it; nothing to release here."""
