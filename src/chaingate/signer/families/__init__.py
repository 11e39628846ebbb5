"""What the signer knows of each chain family: its account paths and addresses, how to read
what it is asked to sign (destinations, amounts, fee, the nonce or outputs it spends) and how
to sign it. The family-neutral rules (roles, limits, the nonce/outpoint guard) live in
`signer/rules.py`; a family only reports facts and refuses what it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from embit import bip32

from chaingate.domain.custody import KeyRef, RefusalReason, SignedTransaction, SignRequest
from chaingate.signer.ecdsa import Signature
from chaingate.signer.policy import BitcoinNetworkPolicy, EvmNetworkPolicy
from chaingate.signer.state import AccountRecord


class Refusal(Exception):
    """Raised inside the signer to refuse a request; becomes SignerRefused at the edge."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True, slots=True)
class Movement:
    """Money one transaction moves to one destination."""

    destination: str  # as the chain writes it
    key: str  # how destinations compare (policy.destination_key)
    asset: str
    amount: int | None  # None: what a forwarder holds, unknown at signing time
    # The signer's own account the destination derives from, verified by deriving it.
    owner: AccountRecord | None = None
    via: str = "transfer"  # "transfer", or "forwarder" (a factory call flushes funds there)
    # Back to the signing key itself (an EVM cancellation) or to the signing account's change
    # branch (Bitcoin, re-derived): money that does not leave the account.
    change: bool = False


@dataclass(frozen=True, slots=True)
class Reading:
    """What a request would do, as the family read it from the payload."""

    signers: tuple[AccountRecord, ...]  # the accounts whose keys sign
    movements: tuple[Movement, ...]  # every output/transfer, change included
    spends: tuple[str, ...]  # nonce / outpoint guard keys
    fee: int  # EVM: the ceiling gas_limit * max_fee_per_gas; Bitcoin: inputs - outputs
    fee_rate: tuple[int, ...] = field(default=())  # EVM: (max fee per gas, tip)


@dataclass(frozen=True, slots=True)
class Signed:
    transaction: SignedTransaction
    # What a replacement must outbid, every component strictly: EVM (max fee per gas, tip);
    # Bitcoin (fee, sat per 1000 vB).
    fee_rate: tuple[int, ...]


class KeyContext(Protocol):
    """The signer's keys and accounts, as a family may use them."""

    def resolve(self, ref: KeyRef, network: str) -> AccountRecord:
        """The account `ref` belongs to on `network`. Raises Refusal(unknown_key)."""
        ...

    def public_key(self, ref: KeyRef) -> bytes:
        """33-byte compressed public key. Raises Refusal(unknown_key)."""
        ...

    def sign(self, ref: KeyRef, digest: bytes) -> Signature: ...

    def file_ref(self, fingerprint: bytes, path: tuple[int, ...]) -> KeyRef | None:
        """The file-keystore ref a PSBT derivation (master fingerprint, path) names, if the
        fingerprint is one of the signer's seeds."""
        ...

    def account_at(self, network: str, address: str) -> AccountRecord | None:
        """The account whose own address (HD `.../0/0`, or the HSM key's) is `address`."""
        ...


NetworkPolicy = EvmNetworkPolicy | BitcoinNetworkPolicy


class SignerFamily(Protocol):
    @property
    def name(self) -> str: ...

    def account_scheme(
        self, network: NetworkPolicy, address_type: str | None
    ) -> tuple[int, int, str | None]:
        """(BIP-44 purpose, coin type, address type) of a new account. Raises Refusal."""
        ...

    def address(self, network: NetworkPolicy, public_key: bytes, address_type: str | None) -> str:
        """The address a compressed public key has on `network`."""
        ...

    def account_key(
        self, network: NetworkPolicy, node: bip32.HDKey, address_type: str | None
    ) -> str:
        """The account's extended public key, serialized as the gateway's deriver reads it."""
        ...

    def read(self, request: SignRequest, network: NetworkPolicy, keys: KeyContext) -> Reading:
        """Decode and check the payload (chain, fee ceilings, keys). Raises Refusal."""
        ...

    def sign(
        self, request: SignRequest, network: NetworkPolicy, reading: Reading, keys: KeyContext
    ) -> Signed:
        """Sign; checks that need the signed size (fee rate) happen here. Raises Refusal."""
        ...


def family_table(*families: SignerFamily) -> Mapping[str, SignerFamily]:
    return {family.name: family for family in families}
