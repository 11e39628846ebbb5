"""Watch-only wallets: one account-level extended public key per merchant and network."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from chaingate.config import NetworkConfig
from chaingate.domain.errors import Conflict, DomainError, NotFound
from chaingate.domain.ids import new_id
from chaingate.domain.models import Wallet
from chaingate.ports import AddressDeriver, UnitOfWork, WalletPolicy

DEFAULT_GAP_LIMIT = 20
MAX_GAP_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class WalletWarning:
    code: str
    detail: str


def check_gap_limit(gap_limit: int) -> int:
    if type(gap_limit) is not int or not 1 <= gap_limit <= MAX_GAP_LIMIT:
        raise DomainError(
            f"gap_limit must be an integer between 1 and {MAX_GAP_LIMIT}",
            code="invalid_gap_limit",
            field="gap_limit",
            status=422,
        )
    return gap_limit


def wallet_warnings(policy: WalletPolicy, wallet: Wallet) -> list[WalletWarning]:
    """What the merchant must know about using this key elsewhere (empty where the family's
    wallets have no gap limit)."""
    if not policy.gap_limit:
        return []
    return [
        WalletWarning(
            code="gap_limit",
            detail=(
                f"Invoices pay to the receive addresses .../0/0, .../0/1, ... of this key. A "
                f"wallet app using the same key (Electrum, Sparrow, a hardware wallet) stops "
                f"looking for payments after a run of unused addresses (its gap limit, usually "
                f"20): payments beyond it are not lost, but the app will not show them until "
                f"its gap limit is raised. The gateway refuses a new invoice (409 "
                f"gap_limit_reached) when the last {wallet.gap_limit} addresses it handed out "
                f"are all unpaid; raise the limit here (PATCH) and in the wallet app together."
            ),
        )
    ]


async def register_wallet(
    uow: UnitOfWork,
    merchant_id: str,
    network: NetworkConfig,
    account_key: str,
    deriver: AddressDeriver,
    now: datetime,
    *,
    address_type: str | None = None,
    gap_limit: int = DEFAULT_GAP_LIMIT,
) -> Wallet:
    """Store the merchant's key for `network` after checking it derives addresses.

    `deriver` must be the one for `address_type` (None where the family has one address form,
    as `ChainFamily.address_type` answers). Raises
    InvalidWallet for an unusable or private key, DomainError `invalid_gap_limit`, Conflict when
    the merchant already has a wallet on the network or another merchant registered the key.
    """
    check_gap_limit(gap_limit)
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
        address_type=address_type,
        gap_limit=gap_limit,
    )
    await uow.wallets.add(wallet)
    await uow.commit()
    return wallet


async def change_gap_limit(
    uow: UnitOfWork, merchant_id: str, wallet_id: str, gap_limit: int
) -> Wallet:
    """Set the wallet's gap limit. Raises NotFound for another merchant's or an unknown
    wallet, DomainError `invalid_gap_limit`."""
    check_gap_limit(gap_limit)
    wallet = await uow.wallets.get(merchant_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet {wallet_id!r}")
    await uow.wallets.set_gap_limit(wallet.id, gap_limit)
    await uow.commit()
    return replace(wallet, gap_limit=gap_limit)


async def unused_before(uow: UnitOfWork, wallet: Wallet, index: int) -> int:
    """How many addresses right before `index` were handed out and never received a payment."""
    paid = await uow.wallets.highest_paid_index(wallet.id)
    return index - (paid + 1 if paid is not None else 0)


async def check_gap(uow: UnitOfWork, wallet: Wallet, index: int) -> None:
    """Refuse handing out address `index` when the `gap_limit` addresses before it were all
    left unpaid (a wallet app scanning with that gap limit would never find it).

    Raises Conflict `gap_limit_reached`. Call after reserving `index` (the wallet row is
    locked then, so concurrent invoices see each other).
    """
    if await unused_before(uow, wallet, index) >= wallet.gap_limit:
        raise Conflict(
            f"the last {wallet.gap_limit} addresses of this wallet received no payment; a "
            f"wallet app with gap limit {wallet.gap_limit} would not find a payment to the next "
            f"one. Wait for a payment, or raise gap_limit (PATCH /v1/wallets/{wallet.id}) and "
            f"the gap limit of your wallet app",
            code="gap_limit_reached",
        )
