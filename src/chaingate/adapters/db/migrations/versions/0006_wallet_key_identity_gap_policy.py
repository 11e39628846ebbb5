"""wallets: identity by key material, key origin, gap policy (on_gap, warned thresholds)

A wallet is identified by its key material (public key + chain code + script type), no longer
by the string of its serialization: the same key with another parent fingerprint or child
number was accepted as a second wallet and then collided on its first address. This revision
backfills `key_identity` for every wallet and makes (network, key_identity) unique instead of
(network, account_key).

Wallets registered twice under two serializations (possible before this revision): the one
with the most invoices keeps the key (ties: the earliest); the others keep their rows and
invoices but get no identity, so they hand out no more addresses until their merchant proves
control of the key (`POST /v1/wallets/{id}/claim`). Only one of them can ever have handed out
addresses, because each collided on the other's first index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from chaingate.domain.wallet_key import key_identity

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _extended_key_payload(text: str) -> bytes | None:
    """The 78 bytes of a base58check extended key, None if it is not one."""
    number = 0
    for char in text.strip():
        position = _BASE58.find(char)
        if position < 0:
            return None
        number = number * 58 + position
    zeros = len(text) - len(text.lstrip("1"))
    raw = b"\x00" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) != 82:
        return None
    body, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != checksum:
        return None
    return body


def _identity(account_key: str, address_type: str | None) -> str | None:
    payload = _extended_key_payload(account_key)
    if payload is None:
        return None
    # version(4) depth(1) parent fingerprint(4) child number(4) chain code(32) key(33)
    return key_identity(payload[45:78], payload[13:45], address_type)


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("key_identity", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("key_origin", sa.String(length=120), nullable=True))
        batch.add_column(
            sa.Column("on_gap", sa.String(length=8), nullable=False, server_default="warn")
        )
        batch.add_column(sa.Column("gap_warned_start", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("gap_warned_threshold", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_constraint("uq_wallets_network_account_key", type_="unique")

    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT w.id, w.network, w.account_key, w.address_type, "
            "(SELECT count(*) FROM invoices i WHERE i.wallet_id = w.id) AS invoice_count "
            "FROM wallets w ORDER BY w.created_at, w.id"
        )
    ).all()
    holders: dict[tuple[str, str], list[tuple[int, int, str]]] = defaultdict(list)
    for order, (wallet_id, network, account_key, address_type, invoice_count) in enumerate(rows):
        identity = _identity(account_key, address_type)
        if identity is None:
            log.warning(
                "wallet %s: its account key does not parse; left without identity", wallet_id
            )
            continue
        holders[(network, identity)].append((-int(invoice_count), order, wallet_id))
    update = sa.text("UPDATE wallets SET key_identity = :identity WHERE id = :id")
    for (network, identity), candidates in holders.items():
        keeper = min(candidates)[2]
        connection.execute(update, {"identity": identity, "id": keeper})
        for _, _, wallet_id in candidates:
            if wallet_id != keeper:
                log.warning(
                    "wallet %s on %s holds the same key as wallet %s: it hands out no more "
                    "addresses until its merchant claims the key",
                    wallet_id,
                    network,
                    keeper,
                )

    with op.batch_alter_table("wallets") as batch:
        batch.create_unique_constraint(
            "uq_wallets_network_key_identity", ["network", "key_identity"]
        )


def downgrade() -> None:
    # Fails (unique violation) if a claim registered the very serialization of a released
    # wallet again: two rows then hold one string, which the old schema cannot express.
    with op.batch_alter_table("wallets") as batch:
        batch.drop_constraint("uq_wallets_network_key_identity", type_="unique")
        batch.create_unique_constraint("uq_wallets_network_account_key", ["network", "account_key"])
        batch.drop_column("gap_warned_threshold")
        batch.drop_column("gap_warned_start")
        batch.drop_column("on_gap")
        batch.drop_column("key_origin")
        batch.drop_column("key_identity")
