"""Watch-only wallets: one account-level extended public key per merchant and network."""

from __future__ import annotations

from datetime import datetime

from chaingate.adapters.db.uow import UnitOfWork
from chaingate.config import NetworkConfig
from chaingate.domain.errors import Conflict
from chaingate.domain.ids import new_id
from chaingate.domain.models import Wallet
from chaingate.ports import AddressDeriver


async def register_wallet(
    uow: UnitOfWork,
    merchant_id: str,
    network: NetworkConfig,
    account_key: str,
    deriver: AddressDeriver,
    now: datetime,
) -> Wallet:
    """Store the merchant's key for `network` after checking it derives addresses.

    Raises InvalidWallet for an unusable or private key, Conflict when the merchant already has
    a wallet on the network or another merchant registered the same key.
    """
    normalized = deriver.normalize_account_key(account_key)
    if await uow.wallets.for_network(merchant_id, network.name) is not None:
        raise Conflict(
            f"a wallet for network {network.name!r} is already registered", code="wallet_exists"
        )
    if await uow.wallets.by_account_key(network.name, normalized) is not None:
        raise Conflict(
            "this extended public key is already registered on this network",
            code="wallet_key_in_use",
        )
    wallet = Wallet(
        id=new_id("wal"),
        merchant_id=merchant_id,
        network=network.name,
        account_key=normalized,
        next_index=0,
        created_at=now,
    )
    await uow.wallets.add(wallet)
    await uow.commit()
    return wallet
