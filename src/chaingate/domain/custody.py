"""Custody: the language the gateway and the isolated signer share.

Key references, address roles, what the gateway asks the signer for (an account, a signature)
and what it answers. Standard library only: both sides of the trust boundary use these types,
and the gateway side only ever holds public data (extended public keys, addresses, key refs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from chaingate.domain.errors import DomainError


class AddressRole(StrEnum):
    """What an address is for (the design's address types)."""

    USER = "user"  # a deposit address: one per invoice or customer
    HOT = "hot"  # pays out; keeps native coin for gas
    COLD = "cold"  # long-term storage, external: the gateway holds no key (watch-only)
    TOKENS_COLLECTOR = "tokens_collector"  # EVM: funds gas top-ups of token deposit addresses
    GAS = "gas"  # EVM: pays the fees of forwarder sweeps; has no power over funds


# Roles whose keys the signer holds; a cold key never exists inside ChainGate.
SIGNING_ROLES = frozenset(role for role in AddressRole if role is not AddressRole.COLD)


class KeyStoreKind(StrEnum):
    FILE = "file"  # an encrypted seed file: HD keys (BIP-32 paths)
    PKCS11 = "pkcs11"  # an HSM: single non-extractable keys, by label


class SignPurpose(StrEnum):
    """Why the gateway asks for a signature; recorded in the signer's audit log."""

    SWEEP = "sweep"
    TOPUP = "topup"
    PAYOUT = "payout"
    BATCH_PAYOUT = "batch_payout"
    FORWARDER_FLUSH = "forwarder_flush"
    REPLACEMENT = "replacement"


class RefusalReason(StrEnum):
    """Stable reason codes of `SignerRefused`: callers branch on these."""

    MALFORMED_REQUEST = "malformed_request"
    UNKNOWN_NETWORK = "unknown_network"
    WRONG_CHAIN = "wrong_chain"  # chain id / network parameters not the ones the policy allows
    UNKNOWN_KEY = "unknown_key"  # a key ref the signer never handed out
    MIXED_KEYS = "mixed_keys"  # one request signing with keys of different merchants or roles
    UNSUPPORTED = "unsupported"  # an address type, store or script the signer cannot sign
    DESTINATION_NOT_ALLOWED = "destination_not_allowed"
    UNKNOWN_CALL = "unknown_call"  # EVM call data the signer cannot read as an allowed call
    AMOUNT_OVER_TX_LIMIT = "amount_over_tx_limit"
    AMOUNT_OVER_DAILY_LIMIT = "amount_over_daily_limit"
    FEE_OVER_CEILING = "fee_over_ceiling"
    NONCE_USED = "nonce_used"  # another transaction was signed for this EVM nonce
    OUTPOINT_SPENT = "outpoint_spent"  # another transaction was signed spending this output
    NOT_A_REPLACEMENT = "not_a_replacement"  # `replaces` given, but not a valid replacement
    REQUEST_ID_REUSED = "request_id_reused"  # one request id, two different requests
    KEYSTORE_MISSING = "keystore_missing"  # e.g. a PKCS#11 account asked of a signer without HSM


class SignerRefused(DomainError):
    """The signer looked at the request and said no (policy, unknown key, malformed payload).

    Retrying the same request gets the same answer; `reason_code` says why.
    """

    code = "signer_refused"
    status = 422

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(f"the signer refused ({reason_code}): {detail}")
        self.reason_code = reason_code


class SignerUnavailable(DomainError):
    """The signer could not be asked (down, locked, unreachable, authentication misconfigured).

    Nothing changed: retry later. Money coming in never waits for the signer.
    """

    code = "signer_unavailable"
    status = 503


_PATH = re.compile(r"m(/[0-9]{1,10}'?)*")
HARDENED = 0x80000000


def parse_path(path: str) -> tuple[int, ...]:
    """A BIP-32 path (`m/84'/1'/0'/0/5`) as child indexes (hardened ones offset by 2^31).

    Raises ValueError for anything else.
    """
    if not _PATH.fullmatch(path):
        raise ValueError(f"not a BIP-32 path: {path!r}")
    indexes = []
    for part in path.split("/")[1:]:
        hardened = part.endswith("'")
        number = int(part.rstrip("'"))
        if number >= HARDENED:
            raise ValueError(f"BIP-32 index out of range in {path!r}")
        indexes.append(number + HARDENED if hardened else number)
    return tuple(indexes)


def format_path(indexes: tuple[int, ...]) -> str:
    parts = [f"{i - HARDENED}'" if i >= HARDENED else str(i) for i in indexes]
    return "/".join(["m", *parts])


_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Which key signs: `file` HD keys by BIP-32 path, `pkcs11` HSM keys by label.

    `version` is the key generation (rotation adds one): old refs keep signing with the
    version they name, new accounts get the newest. The gateway stores refs, never keys.
    """

    store: KeyStoreKind
    version: int
    path: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version < 1:
            raise ValueError("a key version is a positive integer")
        if self.store is KeyStoreKind.FILE:
            if self.path is None or self.label is not None:
                raise ValueError("a file-keystore key is named by its BIP-32 path only")
            parse_path(self.path)
        elif self.store is KeyStoreKind.PKCS11:
            if self.label is None or self.path is not None:
                raise ValueError("a PKCS#11 key is named by its label only")
            if not _LABEL.fullmatch(self.label):
                raise ValueError(f"not a usable key label: {self.label!r}")
        else:  # pragma: no cover - the enum has two members
            raise ValueError(f"unknown key store {self.store!r}")

    @property
    def indexes(self) -> tuple[int, ...]:
        if self.path is None:
            raise ValueError("a PKCS#11 key has no BIP-32 path")
        return parse_path(self.path)

    def child(self, *indexes: int) -> KeyRef:
        """The ref of a non-hardened child of this HD key (`.../change/index`)."""
        if any(type(i) is not int or not 0 <= i < HARDENED for i in indexes):
            raise ValueError("child indexes are non-hardened integers")
        return KeyRef(self.store, self.version, format_path((*self.indexes, *indexes)))

    def __str__(self) -> str:
        return f"{self.store.value}:{self.version}:{self.path or self.label}"

    @classmethod
    def parse(cls, text: str) -> KeyRef:
        """The inverse of `str(ref)`. Raises ValueError."""
        store, _, rest = text.partition(":")
        version, _, name = rest.partition(":")
        if not version.isdigit() or not name:
            raise ValueError(f"not a key ref: {text!r}")
        kind = KeyStoreKind(store)
        if kind is KeyStoreKind.FILE:
            return cls(kind, int(version), path=name)
        return cls(kind, int(version), label=name)


@dataclass(frozen=True, slots=True)
class AccountRequest:
    """Ask the signer for a new managed account of `role` on `network`.

    The signer picks the BIP-44 purpose and coin type from its own network table (the gateway
    cannot steer a key into another chain's path) and allocates the next account index in its
    own state; the same `request_id` answers the same account.
    """

    request_id: str
    network: str
    merchant_id: str | None  # None: an operator key shared by all merchants (gas)
    role: AddressRole = AddressRole.USER
    store: KeyStoreKind = KeyStoreKind.FILE
    address_type: str | None = None  # Bitcoin family script type; None: the family's default


@dataclass(frozen=True, slots=True)
class ManagedAccount:
    """What the gateway may store about a managed account: public data and key refs only."""

    request_id: str
    network: str
    merchant_id: str | None
    role: AddressRole
    key_ref: KeyRef  # the account: `m/84'/1'/3'` (HD) or the HSM key itself
    account_key: str | None  # the account's extended public key (HD); None for an HSM key
    address: str  # the account's own address: `.../0/0` of an HD account, or the HSM key's
    address_type: str | None = None


@dataclass(frozen=True, slots=True)
class EvmTransaction:
    """An unsigned EIP-1559 (type 2) transaction, as the family built it. No access list."""

    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas_limit: int
    to: str  # 0x address; contract creation is never signed
    value: int
    data: bytes = b""

    @property
    def max_fee(self) -> int:
        """The most this transaction can cost in fees (base units of the native coin)."""
        return self.gas_limit * self.max_fee_per_gas


@dataclass(frozen=True, slots=True)
class BitcoinPsbt:
    """An unsigned Bitcoin-family transaction as a BIP-174 PSBT (base64), with a
    `witness_utxo` per input and BIP-32 derivations for the keys to sign and for change."""

    psbt: str


SignPayload = EvmTransaction | BitcoinPsbt


@dataclass(frozen=True, slots=True)
class SignRequest:
    """Ask the signer to sign one transaction.

    `request_id` is idempotent: the same id (with the same request) answers the same signed
    bytes, also after a crash of either side; the gateway uses its outgoing transaction's id.
    """

    request_id: str
    family: str
    network: str
    purpose: SignPurpose
    keys: tuple[KeyRef, ...]  # the keys that sign (EVM: one; PSBT: one per input or shared)
    payload: SignPayload
    replaces: str | None = None  # txid of the transaction this one deliberately replaces
    # Destinations the gateway claims the signer can derive itself (a deposit address that a
    # top-up funds): the signer derives each and compares rather than trusting the claim.
    destination_keys: tuple[KeyRef, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    request_id: str
    txid: str  # as the chain's nodes print it (0x-hex for EVM, reversed hex for Bitcoin)
    raw: bytes  # the exact bytes to broadcast
    fee: int  # base units of the native coin; EVM: the ceiling gas_limit * max_fee_per_gas


@dataclass(frozen=True, slots=True)
class KeyVersion:
    store: KeyStoreKind
    version: int
    current: bool  # new accounts of this store get this version


@dataclass(frozen=True, slots=True)
class SignerStatus:
    unlocked: bool
    key_versions: tuple[KeyVersion, ...]
    networks: tuple[str, ...]  # networks the signer's policy allows
    policy_digest: str  # SHA-256 of the policy file in force (changes when it is reloaded)
