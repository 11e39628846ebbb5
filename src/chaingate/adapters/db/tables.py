"""The schema, as SQLAlchemy Core tables. Migrations under migrations/ must match this file."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from chaingate.adapters.db.types import AutoIncrementId, BaseUnits, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # public key id, part of the key string
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # sha256 of a 256-bit random secret
    Column("scopes", String(500), nullable=False),  # space separated
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

wallets = Table(
    "wallets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("network", String(32), nullable=False),
    Column("account_key", String(200), nullable=False),  # account-level xpub, watch-only
    Column("next_index", Integer, nullable=False, default=0),
    # Bitcoin family: which script the key derives ("p2wpkh", "p2sh-p2wpkh", "p2tr"); NULL on EVM.
    Column("address_type", String(16)),
    # How many unused addresses in a row the merchant's own wallet software will still scan.
    Column("gap_limit", Integer, nullable=False, server_default="20"),
    Column("created_at", UtcDateTime, nullable=False),
    # -- migration 0006: the key's identity, its origin, and the gap policy --------------------
    # domain.wallet_key.key_identity: public key + chain code + script type. NULL once a proven
    # owner of the key material claimed it: this wallet hands out no more addresses.
    Column("key_identity", String(64)),
    Column("key_origin", String(120)),  # "d34db33f/84h/0h/0h", for the output descriptor
    Column("on_gap", String(8), nullable=False, server_default="warn"),  # warn | refuse
    # The run of unused addresses last warned about (its first index) and the threshold.
    Column("gap_warned_start", Integer),
    Column("gap_warned_threshold", Integer, nullable=False, server_default="0"),
    # -- migration 0007: custody. "watch_only": the merchant holds the key; "managed": the
    # isolated signer does, and this row holds only its account xpub and key ref.
    Column("custody", String(16), nullable=False, server_default="watch_only"),
    Column("key_ref", String(200)),
    UniqueConstraint("merchant_id", "network", name="uq_wallets_merchant_network"),
    # The same key material twice, in whatever serialization, would hand one address to two
    # wallets: one key, one wallet per network.
    UniqueConstraint("network", "key_identity", name="uq_wallets_network_key_identity"),
)

# A merchant's hot, tokens_collector (managed: from the signer) and cold (watch-only: an
# address or xpub the gateway has no key for) address on a network: where sweeps and payouts go.
treasury_addresses = Table(
    "treasury_addresses",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("network", String(32), nullable=False),
    Column("role", String(24), nullable=False),
    Column("custody", String(16), nullable=False),
    Column("address", String(128)),
    Column("account_key", String(200)),
    Column("key_ref", String(200)),
    Column("address_type", String(16)),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("merchant_id", "network", "role", name="uq_treasury_addresses_merchant_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(40), primary_key=True),  # time-ordered, so it doubles as the cursor
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("network", String(32), nullable=False),
    Column("asset", String(16), nullable=False),
    Column("amount_due", BaseUnits, nullable=False),
    Column("amount_paid", BaseUnits, nullable=False),
    Column("status", String(16), nullable=False),
    Column("additional_status", String(16), nullable=False),
    Column("address", String(100), nullable=False),
    Column("wallet_id", String(40), ForeignKey("wallets.id"), nullable=False),
    Column("derivation_index", Integer, nullable=False),
    Column("order_id", String(200)),
    Column("metadata", Text, nullable=False),  # JSON object as given by the merchant
    Column("required_confirmations", Integer, nullable=False),
    Column("tolerance_bps", Integer, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("watch_until", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("redirect_url", String(2000)),  # where the hosted checkout sends the payer once paid
    UniqueConstraint("network", "address", name="uq_invoices_network_address"),
    UniqueConstraint("wallet_id", "derivation_index", name="uq_invoices_wallet_index"),
    Index("ix_invoices_merchant_id_id", "merchant_id", "id"),
    Index("ix_invoices_merchant_order", "merchant_id", "order_id"),
    Index("ix_invoices_merchant_status", "merchant_id", "status", "id"),
    Index("ix_invoices_network_status_expiry", "network", "status", "expires_at"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("invoice_id", String(40), ForeignKey("invoices.id"), nullable=False, index=True),
    Column("network", String(32), nullable=False),
    Column("txid", String(100), nullable=False),
    Column("position", String(16), nullable=False),  # "native", log index, or vout
    Column("address", String(100), nullable=False),
    Column("asset", String(16), nullable=False),
    Column("token_contract", String(64)),
    Column("from_address", String(100)),
    Column("amount", BaseUnits, nullable=False),
    # NULL while the transaction is only in the mempool; the same row gets its block when mined.
    Column("block_number", BigInteger),
    Column("block_hash", String(80)),
    Column("paid_at", UtcDateTime, nullable=False),  # block time, or first mempool sighting
    Column("confirmations", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reached_confirmations", Boolean, nullable=False, default=False),
    # A coinbase output (Bitcoin family) only counts as confirmed once it can be spent (maturity).
    Column("coinbase", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The exactly-once guarantee: one row per on-chain payment, whoever sees it and how often.
    UniqueConstraint("network", "txid", "position", name="uq_payments_network_txid_position"),
    Index("ix_payments_network_status_block", "network", "status", "block_number"),
)

chain_blocks = Table(
    "chain_blocks",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(80), nullable=False),
    Column("parent_hash", String(80), nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
)

chain_cursors = Table(
    "chain_cursors",
    metadata,
    Column("network", String(32), primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("hash", String(80), nullable=False),
    Column("block_timestamp", UtcDateTime, nullable=False),
    # Wall-clock time at which the cursor was last known to stand on the node's tip.
    Column("synced_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", AutoIncrementId, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("invoice_id", String(40)),
    Column("body", Text, nullable=False),  # the exact JSON sent on every attempt
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_events_merchant_seq", "merchant_id", "seq"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("description", String(200)),
    Column("secret_ciphertext", Text, nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list; empty means all
    Column("enabled", Boolean, nullable=False, default=True),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("event_id", String(40), ForeignKey("events.id"), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed
    Column("attempt_count", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_until", UtcDateTime),  # a dispatcher holds it until then
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", AutoIncrementId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),
    Column("status_code", Integer),
    Column("duration_ms", Integer, nullable=False),
    Column("error", Text),
    Column("response_excerpt", Text),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("merchant_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_progress | done
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("locked_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

# -- dashboard (migration 0004) ---------------------------------------------------------------

dashboard_users = Table(
    "dashboard_users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False, index=True),
    Column("email", String(254), nullable=False, unique=True),  # stored lower-cased
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string
    Column("failed_logins", Integer, nullable=False, default=0),  # in a row; a success resets
    Column("locked_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_login_at", UtcDateTime),
    Column("totp_secret", Text),  # SecretBox ciphertext; NULL: no second factor
    Column("totp_last_step", BigInteger),  # the last time step used: each code works once
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie's random token
    Column("user_id", String(40), ForeignKey("dashboard_users.id"), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # absolute limit; idle is from last_seen_at
)

# Dashboard search: a txid. (An address is found through uq_invoices_network_address over the
# merchant's networks; migration 0005 dropped the separate address index.)
Index("ix_payments_txid", payments.c.txid)
