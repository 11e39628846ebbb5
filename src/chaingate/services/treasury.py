"""Treasury addresses: where a merchant's money goes on each network.

`hot` (pays out, keeps native coin for gas) and `tokens_collector` (funds gas top-ups of
token deposits; EVM) are managed: the isolated signer makes their keys and the gateway keeps
their address and key ref. `cold` is watch-only by definition: an address or an xpub the
merchant gives; the gateway never holds its key. One of each role per merchant and network.
"""

from __future__ import annotations

from datetime import datetime

from chaingate.config import NetworkConfig
from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    KeyStoreKind,
    SignerUnavailable,
)
from chaingate.domain.errors import Conflict, DomainError, InvalidAddress, NotFound
from chaingate.domain.ids import new_id
from chaingate.domain.models import TreasuryAddress
from chaingate.ports import AddressDeriver, ChainFamily, Database, Signer, UnitOfWork
from chaingate.services.wallets import MANAGED, WATCH_ONLY

MANAGED_ROLES = frozenset({AddressRole.HOT.value, AddressRole.TOKENS_COLLECTOR.value})


def check_role(family: ChainFamily, network: NetworkConfig, role: str) -> None:
    """Raises DomainError `treasury_role_unsupported` for a role the network has no use for."""
    if role not in family.treasury_roles:
        raise DomainError(
            f"{network.name} takes the roles {', '.join(sorted(family.treasury_roles))}",
            code="treasury_role_unsupported",
            field="role",
            status=422,
        )


async def _refuse_taken(db: Database, merchant_id: str, network: str, role: str) -> None:
    async with db.uow() as uow:
        if await uow.treasury.for_role(merchant_id, network, role) is not None:
            raise Conflict(
                f"a {role} address for network {network!r} is already registered",
                code="treasury_role_exists",
            )


async def managed_entry(
    db: Database,
    signer: Signer,
    family: ChainFamily,
    merchant_id: str,
    network: NetworkConfig,
    role: str,
    store: KeyStoreKind,
    now: datetime,
) -> TreasuryAddress:
    """A hot or tokens_collector address made by the signer (not stored yet: `add`).

    Asks the signer only after checking the role is free; the request id is the merchant,
    network and role, so a retry gets the same key. Raises DomainError, Conflict,
    SignerRefused, SignerUnavailable (also for an answer that is not an address of the
    network).
    """
    check_role(family, network, role)
    await _refuse_taken(db, merchant_id, network.name, role)
    account = await signer.create_account(
        AccountRequest(
            request_id=f"treasury:{merchant_id}:{network.name}:{role}",
            network=network.name,
            merchant_id=merchant_id,
            role=AddressRole(role),
            store=store,
        )
    )
    try:
        address = family.normalize_address(network, account.address)
    except InvalidAddress:
        raise SignerUnavailable("the signer answered an address of another network") from None
    return TreasuryAddress(
        id=new_id("trs"),
        merchant_id=merchant_id,
        network=network.name,
        role=role,
        custody=MANAGED,
        address=address,
        account_key=account.account_key,
        key_ref=str(account.key_ref),
        address_type=account.address_type,
        created_at=now,
    )


async def cold_entry(
    db: Database,
    family: ChainFamily,
    merchant_id: str,
    network: NetworkConfig,
    now: datetime,
    *,
    address: str | None = None,
    xpub: str | None = None,
    deriver: AddressDeriver | None = None,
    address_type: str | None = None,
) -> TreasuryAddress:
    """A watch-only cold address: an address, or an account xpub (with its deriver; the
    first receive address is kept for display). Raises InvalidAddress, InvalidWallet,
    Conflict."""
    check_role(family, network, AddressRole.COLD.value)
    if (address is None) == (xpub is None):
        raise DomainError(
            "cold storage is an address or an xpub (one of them)",
            code="treasury_cold_needs_address",
            status=422,
        )
    account_key = None
    if xpub is not None and deriver is not None:
        account_key = deriver.normalize_account_key(xpub)
        address = deriver.derive(account_key, 0)
    elif address is not None:
        address = family.normalize_address(network, address)
    await _refuse_taken(db, merchant_id, network.name, AddressRole.COLD.value)
    return TreasuryAddress(
        id=new_id("trs"),
        merchant_id=merchant_id,
        network=network.name,
        role=AddressRole.COLD.value,
        custody=WATCH_ONLY,
        address=address,
        account_key=account_key,
        key_ref=None,
        address_type=address_type if account_key is not None else None,
        created_at=now,
    )


async def add(uow: UnitOfWork, entry: TreasuryAddress) -> None:
    """Store the entry (the caller commits). Raises Conflict `treasury_role_exists`."""
    await uow.treasury.add(entry)


async def get(uow: UnitOfWork, merchant_id: str, entry_id: str) -> TreasuryAddress:
    """Raises NotFound for another merchant's or an unknown entry."""
    entry = await uow.treasury.get(merchant_id, entry_id)
    if entry is None:
        raise NotFound(f"no treasury address {entry_id!r}")
    return entry
