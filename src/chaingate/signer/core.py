"""The signer's decisions, in process: managed accounts, signatures, status.

Every decision runs under one lock (limits and the nonce guard read, then write), is appended
to the audit log, and — for a signature — is stored with its exact bytes before it is
answered. The HTTP server (`server.py`) and the in-process adapter (`local.py`) both call this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from chaingate.adapters.signer import wire
from chaingate.domain.custody import (
    HARDENED,
    AccountRequest,
    AddressRole,
    KeyRef,
    KeyStoreKind,
    KeyVersion,
    ManagedAccount,
    RefusalReason,
    SignedTransaction,
    SignerRefused,
    SignerStatus,
    SignRequest,
    format_path,
)
from chaingate.signer import rules
from chaingate.signer.audit import AuditLog
from chaingate.signer.ecdsa import Signature
from chaingate.signer.families import Reading, Refusal, SignerFamily, family_table
from chaingate.signer.families.bitcoin import BitcoinSignerFamily
from chaingate.signer.families.evm import EvmSignerFamily
from chaingate.signer.keystores import KeyNotFound, KeyStore
from chaingate.signer.keystores.file import FileKeyStore
from chaingate.signer.keystores.pkcs11 import Pkcs11KeyStore, key_label
from chaingate.signer.policy import Policy, PolicyError, load_policy
from chaingate.signer.state import AccountRecord, Answer, SignerState, SpendRecord

log = logging.getLogger(__name__)

FAMILIES: Mapping[str, SignerFamily] = family_table(EvmSignerFamily(), BitcoinSignerFamily())

STATE_FILE = "signer.sqlite"
AUDIT_FILE = "audit.jsonl"
POLICY_FILE = "policy.toml"
KEYSTORE_FILE = "keystore.json"


def _today() -> date:
    return datetime.now(UTC).date()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class StatePaths:
    state_dir: Path

    @property
    def state(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def audit(self) -> Path:
        return self.state_dir / AUDIT_FILE

    @property
    def policy(self) -> Path:
        return self.state_dir / POLICY_FILE

    @property
    def keystore(self) -> Path:
        return self.state_dir / KEYSTORE_FILE


class SignerCore:
    """The unlocked signer. Thread-safe: every public method takes the decision lock."""

    def __init__(
        self,
        state_dir: Path,
        keystores: Mapping[KeyStoreKind, KeyStore],
        *,
        policy_path: Path | None = None,
        today: Callable[[], date] = _today,
    ) -> None:
        self.paths = StatePaths(state_dir)
        self._policy_path = policy_path or self.paths.policy
        self._keystores = dict(keystores)
        self._today = today
        self._lock = threading.RLock()
        self.policy: Policy = load_policy(self._policy_path)
        self.state = SignerState(self.paths.state)
        self.audit = AuditLog(self.paths.audit, self.state.audit_head())
        self._keys = _Keys(self)
        self._record("policy_loaded", {"policy_digest": self.policy.digest})

    def close(self) -> None:
        with self._lock:
            self.audit.close()
            self.state.close()
            for store in self._keystores.values():
                if isinstance(store, Pkcs11KeyStore):
                    store.close()

    # ---- policy -----------------------------------------------------------------------------
    def reload_policy(self) -> bool:
        """Read the policy file again (SIGHUP). A file that does not load keeps the policy in
        force; either outcome is audited. Answers whether the new file is in force."""
        with self._lock:
            try:
                policy = load_policy(self._policy_path)
            except PolicyError as exc:
                log.error("policy reload failed, keeping the policy in force: %s", exc)
                self._record("policy_reload_failed", {"detail": str(exc)})
                return False
            self.policy = policy
            self._record("policy_loaded", {"policy_digest": policy.digest})
            return True

    # ---- accounts ---------------------------------------------------------------------------
    def create_account(self, request: AccountRequest) -> ManagedAccount:
        """A new managed account, or the one already made for `request.request_id`.
        Raises SignerRefused."""
        digest = wire.digest(wire.account_request(request))
        with self._lock:
            existing = self.state.account_by_request(request.request_id)
            try:
                if existing is not None:
                    if existing.request_digest != digest:
                        raise Refusal(
                            RefusalReason.REQUEST_ID_REUSED,
                            "this request id already made a different account",
                        )
                    return _managed(existing)
                record = self._new_account(request, digest)
            except Refusal as refusal:
                self._record(
                    "refused",
                    {
                        "operation": "create_account",
                        "request_id": request.request_id,
                        "request_digest": digest,
                        "network": request.network,
                        "merchant_id": request.merchant_id,
                        "role": request.role.value,
                        "reason": refusal.reason.value,
                        "detail": refusal.detail,
                    },
                )
                raise SignerRefused(refusal.reason.value, refusal.detail) from None
            with self.state.transaction():
                self.state.add_account(record)
                self._append(
                    "account_created",
                    {
                        "request_id": request.request_id,
                        "request_digest": digest,
                        "network": record.network,
                        "merchant_id": record.merchant_id,
                        "role": record.role.value,
                        "key_ref": str(record.key_ref),
                        "address": record.address,
                    },
                )
            return _managed(record)

    def _new_account(self, request: AccountRequest, digest: str) -> AccountRecord:
        network = self.policy.network(request.network)
        if network is None:
            raise Refusal(RefusalReason.UNKNOWN_NETWORK, f"the policy has no {request.network!r}")
        if request.role is AddressRole.COLD:
            raise Refusal(RefusalReason.UNSUPPORTED, "cold keys are never held by the signer")
        if (request.merchant_id is None) != (request.role is AddressRole.GAS):
            raise Refusal(
                RefusalReason.MALFORMED_REQUEST,
                "gas accounts are the operator's (no merchant); every other role has one",
            )
        family = FAMILIES[network.family]
        purpose, coin_type, address_type = family.account_scheme(network, request.address_type)
        store = self._keystores.get(request.store)
        if store is None:
            raise Refusal(RefusalReason.KEYSTORE_MISSING, f"no {request.store.value} keystore")
        version = self.current_version(request.store)
        account_index: int | None = None
        account_key: str | None = None
        if isinstance(store, FileKeyStore):
            account_index = self.state.next_account_index(
                KeyStoreKind.FILE, version, purpose, coin_type
            )
            path = (purpose + HARDENED, coin_type + HARDENED, account_index + HARDENED)
            ref = KeyRef(KeyStoreKind.FILE, version, path=format_path(path))
            account_key = family.account_key(network, store.account_public(ref), address_type)
            public = store.public_key(ref.child(0, 0))
        elif isinstance(store, Pkcs11KeyStore):
            if request.role is AddressRole.USER:
                raise Refusal(
                    RefusalReason.UNSUPPORTED,
                    "deposit accounts need many addresses: they come from the file keystore",
                )
            ref = KeyRef(
                KeyStoreKind.PKCS11,
                version,
                label=key_label(version, f"{self.state.instance}-{self.state.hsm_key_count() + 1}"),
            )
            try:
                public = store.public_key(ref)  # left by a creation that crashed: reuse it
            except KeyNotFound:
                public = store.create_key(ref.label or "")
        else:  # pragma: no cover - two stores exist
            raise Refusal(RefusalReason.KEYSTORE_MISSING, "unknown keystore")
        return AccountRecord(
            request_id=request.request_id,
            request_digest=digest,
            network=request.network,
            merchant_id=request.merchant_id,
            role=request.role,
            key_ref=ref,
            purpose=purpose if account_index is not None else None,
            coin_type=coin_type if account_index is not None else None,
            account_index=account_index,
            address_type=address_type,
            account_key=account_key,
            address=family.address(network, public, address_type),
            created_at=_now(),
        )

    def current_version(self, store: KeyStoreKind) -> int:
        """The key version new accounts of `store` get."""
        keystore = self._keystores.get(store)
        if store is KeyStoreKind.FILE and keystore is not None:
            return max(keystore.versions())
        recorded = self.state.current_version(store)
        if recorded is not None:
            return recorded
        versions = keystore.versions() if keystore is not None else ()
        return max(versions, default=1)

    def rotate_hsm_version(self) -> int:
        """New HSM accounts get a new key version (labels `cg-v<N>-...`); answers it."""
        with self._lock, self.state.transaction():
            version = self.current_version(KeyStoreKind.PKCS11) + 1
            self.state.set_current_version(KeyStoreKind.PKCS11, version)
            self._append("key_version_added", {"store": "pkcs11", "version": version})
        return version

    # ---- signing ----------------------------------------------------------------------------
    def sign(self, request: SignRequest) -> SignedTransaction:
        """The signed transaction (the stored one for a request id already answered).
        Raises SignerRefused."""
        digest = wire.digest(wire.sign_request(request))
        with self._lock:
            facts: dict[str, Any] = {
                "operation": "sign",
                "request_id": request.request_id,
                "request_digest": digest,
                "network": request.network,
                "purpose": request.purpose.value,
                "keys": [str(key) for key in request.keys],
                "replaces": request.replaces,
            }
            try:
                answered = self.state.answer(request.request_id)
                if answered is not None:
                    if answered.request_digest != digest:
                        raise Refusal(
                            RefusalReason.REQUEST_ID_REUSED,
                            "this request id already signed a different request",
                        )
                    return SignedTransaction(
                        answered.request_id, answered.txid, answered.raw, answered.fee
                    )
                return self._sign_new(request, digest, facts)
            except Refusal as refusal:
                facts.update(reason=refusal.reason.value, detail=refusal.detail)
                self._record("refused", facts)
                raise SignerRefused(refusal.reason.value, refusal.detail) from None

    def _sign_new(
        self, request: SignRequest, digest: str, facts: dict[str, Any]
    ) -> SignedTransaction:
        network = self.policy.network(request.network)
        if network is None:
            raise Refusal(RefusalReason.UNKNOWN_NETWORK, f"the policy has no {request.network!r}")
        if request.family != network.family:
            raise Refusal(
                RefusalReason.WRONG_CHAIN, f"{request.network} is a {network.family} network"
            )
        family = FAMILIES[network.family]
        reading = family.read(request, network, self._keys)
        merchant, role = rules.signing_identity(reading)
        facts.update(merchant_id=merchant, role=role.value, movements=_movements(reading))
        facts["fee"] = str(reading.fee)
        rules.check_destinations(request, reading, self.policy, network)
        day = self._today().isoformat()
        amounts = rules.check_limits(
            reading,
            request.network,
            network,
            lambda m, asset: self.state.spent_on(day, m, request.network, asset),
        )
        signed = family.sign(request, network, reading, self._keys)
        replacing = rules.check_guard(request, reading, signed.fee_rate, self.state.spend)
        transaction = signed.transaction
        facts.update(txid=transaction.txid, fee=str(transaction.fee))
        summary = rules.payment_summary(reading)
        now = _now()
        with self.state.transaction():
            self.state.add_answer(
                Answer(
                    request.request_id, digest, transaction.txid, transaction.raw, transaction.fee
                ),
                now,
            )
            for spend_key in reading.spends:
                self.state.put_spend(
                    SpendRecord(
                        spend_key,
                        transaction.txid,
                        request.request_id,
                        summary,
                        transaction.fee,
                        "/".join(str(part) for part in signed.fee_rate),
                    ),
                    now,
                )
            if not replacing:  # a replacement pays no more than what was already counted
                for asset, amount in amounts.items():
                    self.state.add_spent(day, merchant, request.network, asset, amount)
            # Audit first, commit second: a crash in between leaves a "signed" line for bytes
            # that were never answered, never answered bytes without a line.
            self._append("signed", facts)
        return transaction

    # ---- status -----------------------------------------------------------------------------
    def status(self) -> SignerStatus:
        with self._lock:
            versions: list[KeyVersion] = []
            for kind, store in sorted(self._keystores.items()):
                current = self.current_version(kind)
                known = set(store.versions()) | {current}
                versions.extend(KeyVersion(kind, v, v == current) for v in sorted(known))
            return SignerStatus(
                unlocked=True,
                key_versions=tuple(versions),
                networks=tuple(sorted(self.policy.networks)),
                policy_digest=self.policy.digest,
            )

    # ---- audit ------------------------------------------------------------------------------
    def record_refusal(self, facts: Mapping[str, Any]) -> None:
        """Audit a request refused before it reached a decision (authentication, replay,
        malformed body)."""
        with self._lock:
            self._record("refused", facts)

    def _record(self, decision: str, facts: Mapping[str, Any]) -> None:
        with self.state.transaction():
            self._append(decision, facts)

    def _append(self, decision: str, facts: Mapping[str, Any]) -> None:
        seq, digest = self.audit.append(decision, facts)
        self.state.set_audit_head(seq, digest)


def _managed(record: AccountRecord) -> ManagedAccount:
    return ManagedAccount(
        request_id=record.request_id,
        network=record.network,
        merchant_id=record.merchant_id,
        role=record.role,
        key_ref=record.key_ref,
        account_key=record.account_key,
        address=record.address,
        address_type=record.address_type,
    )


def _movements(reading: Reading) -> list[dict[str, Any]]:
    return [
        {
            "destination": m.destination,
            "asset": m.asset,
            "amount": None if m.amount is None else str(m.amount),
            "to_role": None if m.owner is None else m.owner.role.value,
            "via": m.via,
        }
        for m in reading.movements
    ]


class _Keys:
    """The KeyContext families use: keys and accounts as the signer's own records say."""

    def __init__(self, core: SignerCore) -> None:
        self._core = core

    def _store(self, ref: KeyRef) -> KeyStore:
        store = self._core._keystores.get(ref.store)
        if store is None:
            raise Refusal(RefusalReason.UNKNOWN_KEY, f"no {ref.store.value} keystore for {ref}")
        return store

    def resolve(self, ref: KeyRef, network: str) -> AccountRecord:
        state = self._core.state
        if ref.store is KeyStoreKind.FILE:
            indexes = ref.indexes
            if len(indexes) != 5 or any(i >= HARDENED for i in indexes[3:]):
                raise Refusal(RefusalReason.UNKNOWN_KEY, f"{ref} is not an address key")
            account = state.account_by_key(ref.store, ref.version, format_path(indexes[:3]))
        else:
            account = state.account_by_key(ref.store, ref.version, ref.label or "")
        if account is None or account.network != network:
            raise Refusal(RefusalReason.UNKNOWN_KEY, f"{ref} is no account of {network}")
        return account

    def public_key(self, ref: KeyRef) -> bytes:
        try:
            return self._store(ref).public_key(ref)
        except KeyNotFound as exc:
            raise Refusal(RefusalReason.UNKNOWN_KEY, str(exc)) from None

    def sign(self, ref: KeyRef, digest: bytes) -> Signature:
        try:
            return self._store(ref).sign_digest(ref, digest)
        except KeyNotFound as exc:
            raise Refusal(RefusalReason.UNKNOWN_KEY, str(exc)) from None

    def file_ref(self, fingerprint: bytes, path: tuple[int, ...]) -> KeyRef | None:
        store = self._core._keystores.get(KeyStoreKind.FILE)
        if not isinstance(store, FileKeyStore):
            return None
        for version in store.versions():
            if store.fingerprint(version) == fingerprint:
                return KeyRef(KeyStoreKind.FILE, version, path=format_path(path))
        return None

    def account_at(self, network: str, address: str) -> AccountRecord | None:
        return self._core.state.account_at(network, address)
