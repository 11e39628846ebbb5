"""The signer's own durable state (SQLite in its state directory; never the gateway's database).

- accounts: every managed account it handed out, with the merchant, network and role it was
  made for: the signer decides a key's role from here, never from the request.
- answers: the signed bytes per request id, stored before they are answered, so a retry after
  a crash of either side gets the same bytes (an HSM's signatures are not deterministic).
- spends: per EVM (chain id, address, nonce) and per Bitcoin outpoint, what was signed for it
  (the nonce/outpoint guard against a second, different transaction).
- daily_spend: per UTC day, merchant, network and asset, what keys paying outward moved.
- request_nonces: nonces of authenticated requests still inside the timestamp window (replay).
- audit_head: the last audit line's number and hash, so a truncated log is noticed.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaingate.domain.custody import AddressRole, KeyRef, KeyStoreKind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    request_id TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,
    network TEXT NOT NULL,
    merchant_id TEXT,
    role TEXT NOT NULL,
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    key_name TEXT NOT NULL,          -- the account path (file) or key label (pkcs11)
    purpose INTEGER,
    coin_type INTEGER,
    account_index INTEGER,
    address_type TEXT,
    account_key TEXT,
    address TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (store, version, key_name)
);
CREATE INDEX IF NOT EXISTS ix_accounts_address ON accounts (network, address);
CREATE TABLE IF NOT EXISTS answers (
    request_id TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,
    txid TEXT NOT NULL,
    raw BLOB NOT NULL,
    fee TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spends (
    spend_key TEXT PRIMARY KEY,      -- evm:<chain>:<address>:<nonce>, utxo:<network>:<txid>:<vout>
    txid TEXT NOT NULL,
    request_id TEXT NOT NULL,
    payments TEXT NOT NULL,          -- JSON [[destination, asset, amount], ...], change excluded
    fee TEXT NOT NULL,
    fee_rate TEXT NOT NULL,          -- EVM: max fee per gas and tip "a/b"; Bitcoin: sat per kvB
    signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS daily_spend (
    day TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    network TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount TEXT NOT NULL,
    PRIMARY KEY (day, merchant_id, network, asset)
);
CREATE TABLE IF NOT EXISTS request_nonces (
    nonce TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_versions (
    store TEXT PRIMARY KEY,
    current INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class AccountRecord:
    request_id: str
    request_digest: str
    network: str
    merchant_id: str | None
    role: AddressRole
    key_ref: KeyRef  # the account (file: account-level path) or the HSM key
    purpose: int | None
    coin_type: int | None
    account_index: int | None
    address_type: str | None
    account_key: str | None
    address: str
    created_at: str

    @property
    def is_hd(self) -> bool:
        return self.key_ref.store is KeyStoreKind.FILE


@dataclass(frozen=True, slots=True)
class Answer:
    request_id: str
    request_digest: str
    txid: str
    raw: bytes
    fee: int


@dataclass(frozen=True, slots=True)
class SpendRecord:
    spend_key: str
    txid: str
    request_id: str
    payments: tuple[tuple[str, str, int], ...]
    fee: int
    fee_rate: str


class SignerState:
    """One connection, used under a lock: the signer core serializes its decisions anyway
    (limits and the nonce guard are read-then-write), and SQLite serializes writers."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an answer is durable before it is sent
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('instance', ?)", (secrets.token_hex(4),)
        )

    @property
    def instance(self) -> str:
        """A random name of this signer's state, made once: it keeps the HSM key labels of
        two signers sharing one token apart."""
        row = self._one("SELECT value FROM meta WHERE name = 'instance'")
        assert row is not None
        return str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (rolled back on an exception)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- accounts ---------------------------------------------------------------------------
    def account_by_request(self, request_id: str) -> AccountRecord | None:
        row = self._one("SELECT * FROM accounts WHERE request_id = ?", request_id)
        return None if row is None else _account(row)

    def account_by_key(self, store: KeyStoreKind, version: int, name: str) -> AccountRecord | None:
        row = self._one(
            "SELECT * FROM accounts WHERE store = ? AND version = ? AND key_name = ?",
            store.value,
            version,
            name,
        )
        return None if row is None else _account(row)

    def accounts_of(self, network: str, merchant_id: str | None) -> list[AccountRecord]:
        rows = self._all(
            "SELECT * FROM accounts WHERE network = ? AND merchant_id IS ?", network, merchant_id
        )
        return [_account(row) for row in rows]

    def account_at(self, network: str, address: str) -> AccountRecord | None:
        row = self._one(
            "SELECT * FROM accounts WHERE network = ? AND address = ?", network, address
        )
        return None if row is None else _account(row)

    def all_accounts(self, network: str) -> list[AccountRecord]:
        return [_account(r) for r in self._all("SELECT * FROM accounts WHERE network = ?", network)]

    def next_account_index(self, store: KeyStoreKind, version: int, purpose: int, coin: int) -> int:
        row = self._one(
            "SELECT MAX(account_index) FROM accounts WHERE store = ? AND version = ? "
            "AND purpose = ? AND coin_type = ?",
            store.value,
            version,
            purpose,
            coin,
        )
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def hsm_key_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM accounts WHERE store = ?", KeyStoreKind.PKCS11.value)
        return 0 if row is None else int(row[0])

    def add_account(self, record: AccountRecord) -> None:
        ref = record.key_ref
        self._db.execute(
            "INSERT INTO accounts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.request_id,
                record.request_digest,
                record.network,
                record.merchant_id,
                record.role.value,
                ref.store.value,
                ref.version,
                ref.path or ref.label,
                record.purpose,
                record.coin_type,
                record.account_index,
                record.address_type,
                record.account_key,
                record.address,
                record.created_at,
            ),
        )

    # ---- key versions -----------------------------------------------------------------------
    def current_version(self, store: KeyStoreKind) -> int | None:
        row = self._one("SELECT current FROM key_versions WHERE store = ?", store.value)
        return None if row is None else int(row[0])

    def set_current_version(self, store: KeyStoreKind, version: int) -> None:
        self._db.execute(
            "INSERT INTO key_versions VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET "
            "current = excluded.current",
            (store.value, version),
        )

    # ---- answers ----------------------------------------------------------------------------
    def answer(self, request_id: str) -> Answer | None:
        row = self._one(
            "SELECT request_id, request_digest, txid, raw, fee FROM answers WHERE request_id = ?",
            request_id,
        )
        if row is None:
            return None
        return Answer(row[0], row[1], row[2], bytes(row[3]), int(row[4]))

    def add_answer(self, answer: Answer, now: str) -> None:
        self._db.execute(
            "INSERT INTO answers VALUES (?,?,?,?,?,?)",
            (
                answer.request_id,
                answer.request_digest,
                answer.txid,
                answer.raw,
                str(answer.fee),
                now,
            ),
        )

    # ---- spends (nonce / outpoint guard) ------------------------------------------------------
    def spend(self, spend_key: str) -> SpendRecord | None:
        row = self._one("SELECT * FROM spends WHERE spend_key = ?", spend_key)
        if row is None:
            return None
        payments = tuple((str(d), str(a), int(v)) for d, a, v in json.loads(row[3]))
        return SpendRecord(row[0], row[1], row[2], payments, int(row[4]), row[5])

    def put_spend(self, record: SpendRecord, now: str) -> None:
        payments = json.dumps([[d, a, str(v)] for d, a, v in record.payments])
        self._db.execute(
            "INSERT INTO spends VALUES (?,?,?,?,?,?,?) ON CONFLICT (spend_key) DO UPDATE SET "
            "txid = excluded.txid, request_id = excluded.request_id, payments = excluded.payments,"
            " fee = excluded.fee, fee_rate = excluded.fee_rate, signed_at = excluded.signed_at",
            (
                record.spend_key,
                record.txid,
                record.request_id,
                payments,
                str(record.fee),
                record.fee_rate,
                now,
            ),
        )

    # ---- daily limits -----------------------------------------------------------------------
    def spent_on(self, day: str, merchant_id: str | None, network: str, asset: str) -> int:
        row = self._one(
            "SELECT amount FROM daily_spend WHERE day = ? AND merchant_id = ? AND network = ? "
            "AND asset = ?",
            day,
            merchant_id or "",
            network,
            asset,
        )
        return 0 if row is None else int(row[0])

    def add_spent(
        self, day: str, merchant_id: str | None, network: str, asset: str, amount: int
    ) -> None:
        total = self.spent_on(day, merchant_id, network, asset) + amount
        self._db.execute(
            "INSERT INTO daily_spend VALUES (?,?,?,?,?) ON CONFLICT (day, merchant_id, network,"
            " asset) DO UPDATE SET amount = excluded.amount",
            (day, merchant_id or "", network, asset, str(total)),
        )

    # ---- replay guard -----------------------------------------------------------------------
    def claim_request_nonce(self, nonce: str, now: int, window: int) -> bool:
        """Remember an authenticated request's nonce; False if it was seen inside the window."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM request_nonces WHERE seen_at < ?", (now - window,))
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO request_nonces VALUES (?, ?)", (nonce, now)
                )
                fresh = cursor.rowcount == 1
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return fresh

    # ---- audit head -------------------------------------------------------------------------
    def audit_head(self) -> tuple[int, str] | None:
        row = self._one("SELECT seq, hash FROM audit_head WHERE id = 1")
        return None if row is None else (int(row[0]), str(row[1]))

    def set_audit_head(self, seq: int, digest: str) -> None:
        self._db.execute(
            "INSERT INTO audit_head VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "seq = excluded.seq, hash = excluded.hash",
            (seq, digest),
        )

    # ---- helpers ----------------------------------------------------------------------------
    def _one(self, sql: str, *params: object) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())


def _account(row: tuple[Any, ...]) -> AccountRecord:
    store = KeyStoreKind(str(row[5]))
    name = str(row[7])
    version = int(row[6])
    ref = (
        KeyRef(store, version, path=name)
        if store is KeyStoreKind.FILE
        else KeyRef(store, version, label=name)
    )

    def optional_int(value: Any) -> int | None:
        return None if value is None else int(value)

    return AccountRecord(
        request_id=str(row[0]),
        request_digest=str(row[1]),
        network=str(row[2]),
        merchant_id=None if row[3] is None else str(row[3]),
        role=AddressRole(str(row[4])),
        key_ref=ref,
        purpose=optional_int(row[8]),
        coin_type=optional_int(row[9]),
        account_index=optional_int(row[10]),
        address_type=None if row[11] is None else str(row[11]),
        account_key=None if row[12] is None else str(row[12]),
        address=str(row[13]),
        created_at=str(row[14]),
    )
