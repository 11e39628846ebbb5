from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.tables import api_keys, invoices, merchants, payments, wallets
from chaingate.domain.errors import Conflict
from chaingate.domain.invoice import PaymentStatus
from chaingate.domain.models import ApiKey, Merchant, Wallet


class MerchantRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, merchant: Merchant) -> None:
        await self._conn.execute(
            merchants.insert().values(
                id=merchant.id, name=merchant.name, created_at=merchant.created_at
            )
        )

    async def get(self, merchant_id: str) -> Merchant | None:
        row = (
            (await self._conn.execute(select(merchants).where(merchants.c.id == merchant_id)))
            .mappings()
            .first()
        )
        return None if row is None else Merchant(**row)

    async def lock(self, merchant_ids: list[str]) -> None:
        """Row-lock merchants until commit, in id order so two writers never wait in a cycle."""
        if merchant_ids:
            await self._conn.execute(
                select(merchants.c.id)
                .where(merchants.c.id.in_(sorted(merchant_ids)))
                .order_by(merchants.c.id)
                .with_for_update()
            )

    async def add_api_key(self, key: ApiKey) -> None:
        await self._conn.execute(
            api_keys.insert().values(
                id=key.id,
                merchant_id=key.merchant_id,
                name=key.name,
                secret_hash=key.secret_hash,
                scopes=" ".join(sorted(key.scopes)),
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = (
            (await self._conn.execute(select(api_keys).where(api_keys.c.id == key_id)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return ApiKey(**{**row, "scopes": frozenset(row["scopes"].split())})

    async def list_api_keys(self, merchant_id: str) -> list[ApiKey]:
        rows = (
            await self._conn.execute(
                select(api_keys)
                .where(api_keys.c.merchant_id == merchant_id)
                .order_by(api_keys.c.created_at)
            )
        ).mappings()
        return [ApiKey(**{**r, "scopes": frozenset(r["scopes"].split())}) for r in rows]

    async def revoke_api_key(self, merchant_id: str, key_id: str, at: datetime) -> bool:
        result = await self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.merchant_id == merchant_id)
            .where(api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)


class WalletRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, wallet: Wallet) -> None:
        """Raises Conflict when a concurrent request registered the same wallet first."""
        try:
            await self._add(wallet)
        except IntegrityError:
            raise Conflict(
                "a wallet for this network or this key is already registered",
                code="wallet_exists",
            ) from None

    async def _add(self, wallet: Wallet) -> None:
        await self._conn.execute(
            wallets.insert().values(
                id=wallet.id,
                merchant_id=wallet.merchant_id,
                network=wallet.network,
                account_key=wallet.account_key,
                next_index=wallet.next_index,
                address_type=wallet.address_type,
                gap_limit=wallet.gap_limit,
                created_at=wallet.created_at,
                key_identity=wallet.key_identity,
                key_origin=wallet.key_origin,
                on_gap=wallet.on_gap,
                gap_warned_start=wallet.gap_warned_start,
                gap_warned_threshold=wallet.gap_warned_threshold,
                custody=wallet.custody,
                key_ref=wallet.key_ref,
            )
        )

    async def for_network(self, merchant_id: str, network: str) -> Wallet | None:
        row = (
            (
                await self._conn.execute(
                    select(wallets).where(
                        wallets.c.merchant_id == merchant_id, wallets.c.network == network
                    )
                )
            )
            .mappings()
            .first()
        )
        return _wallet(row)

    async def by_key_identity(self, network: str, key_identity: str) -> Wallet | None:
        """The wallet that holds this key material on `network` (any merchant's), or None."""
        row = (
            (
                await self._conn.execute(
                    select(wallets).where(
                        wallets.c.network == network, wallets.c.key_identity == key_identity
                    )
                )
            )
            .mappings()
            .first()
        )
        return _wallet(row)

    async def release_key(self, wallet_id: str) -> Wallet:
        """Take the key from the wallet (it hands out no more addresses); the wallet as it was
        locked, so its next_index counts every address it handed out."""
        row = (
            (
                await self._conn.execute(
                    update(wallets)
                    .where(wallets.c.id == wallet_id)
                    .values(key_identity=None)
                    .returning(*wallets.c)
                )
            )
            .mappings()
            .one()
        )
        return Wallet(**row)

    async def hold_key(self, wallet_id: str, key_identity: str, next_index: int) -> None:
        """Give the wallet the key back, continuing at `next_index` or beyond."""
        await self._conn.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(
                key_identity=key_identity,
                next_index=case(
                    (wallets.c.next_index < next_index, next_index),
                    else_=wallets.c.next_index,
                ),
            )
        )

    async def list(self, merchant_id: str) -> list[Wallet]:
        rows = (
            await self._conn.execute(
                select(wallets)
                .where(wallets.c.merchant_id == merchant_id)
                .order_by(wallets.c.network)
            )
        ).mappings()
        return [Wallet(**r) for r in rows]

    async def reserve_index(self, wallet_id: str) -> tuple[int, Wallet]:
        """Take the wallet's next derivation index; also answers the wallet as locked.

        The UPDATE row-locks the wallet until commit, so concurrent invoices serialize here and
        never share an index; a rollback gives the index back, so none is skipped either.
        """
        row = (
            (
                await self._conn.execute(
                    update(wallets)
                    .where(wallets.c.id == wallet_id)
                    .values(next_index=wallets.c.next_index + 1)
                    .returning(*wallets.c)
                )
            )
            .mappings()
            .one()
        )
        return int(row["next_index"]) - 1, Wallet(**row)

    async def get(self, merchant_id: str, wallet_id: str) -> Wallet | None:
        """The merchant's wallet `wallet_id`; None for another merchant's or an unknown one."""
        row = (
            (
                await self._conn.execute(
                    select(wallets).where(
                        wallets.c.id == wallet_id, wallets.c.merchant_id == merchant_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return _wallet(row)

    async def set_gap_policy(self, wallet_id: str, gap_limit: int, on_gap: str) -> None:
        await self._conn.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(gap_limit=gap_limit, on_gap=on_gap)
        )

    async def mark_gap_warned(self, wallet_id: str, run_start: int, threshold: int) -> None:
        await self._conn.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(gap_warned_start=run_start, gap_warned_threshold=threshold)
        )

    async def paid_gaps(self, wallet_id: str) -> tuple[int | None, int]:
        """(the highest paid index or None, the widest distance between a paid index and the
        paid one before it — from -1 for the first —, 0 without payments). Paid as in
        `highest_paid_index`. Reads every paid invoice of the wallet: not for hot paths."""
        index = invoices.c.derivation_index
        standing = select(payments.c.id).where(
            payments.c.invoice_id == invoices.c.id,
            payments.c.status != PaymentStatus.ORPHANED.value,
        )
        paid = (
            select(
                index.label("paid_index"),
                (index - func.lag(index, 1, -1).over(order_by=index)).label("distance"),
            )
            .where(invoices.c.wallet_id == wallet_id, standing.exists())
            .subquery()
        )
        row = (
            await self._conn.execute(select(func.max(paid.c.paid_index), func.max(paid.c.distance)))
        ).one()
        last, widest = row
        return (None if last is None else int(last)), int(widest or 0)

    async def highest_paid_index(self, wallet_id: str) -> int | None:
        """The highest derivation index of the wallet whose address received a payment that
        still stands (mempool or mined; an orphaned one — replaced, double-spent, reorged out —
        left nothing a wallet app would find), or None."""
        # Walk the wallet's indexes down from the top (uq_invoices_wallet_index) and stop at
        # the first paid one: the cost is the unpaid tail, which check_gap keeps under the gap
        # limit. A MAX over the join visited every invoice of the wallet on each creation.
        standing = select(payments.c.id).where(
            payments.c.invoice_id == invoices.c.id,
            payments.c.status != PaymentStatus.ORPHANED.value,
        )
        query = (
            select(invoices.c.derivation_index)
            .where(invoices.c.wallet_id == wallet_id, standing.exists())
            .order_by(invoices.c.derivation_index.desc())
            .limit(1)
        )
        value = (await self._conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)


def _wallet(row: RowMapping | None) -> Wallet | None:
    return None if row is None else Wallet(**row)
