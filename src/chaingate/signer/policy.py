"""The signer's policy: its own TOML file in its state directory, written by the operator.

What may be signed at all: networks (EVM chain ids, Bitcoin-family chain parameters), fee
ceilings, per-transaction and per-day limits per asset, the cold (and optionally payout)
destinations the operator allows, and the forwarder factories gas keys may call. Nothing in
the gateway's database can widen it. Reloaded on SIGHUP; a file that does not parse keeps the
policy in force.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaingate.adapters.chains.bitcoin.address import BadAddress, output_script
from chaingate.adapters.chains.bitcoin.params import BUILT_IN, ChainParams
from chaingate.domain.errors import DomainError
from chaingate.domain.money import parse_amount

_ADDRESS_0X = r"^0[xX][0-9a-fA-F]{40}$"


class PolicyError(ValueError):
    """The policy file cannot be used; the message says where."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetLimit(_Model):
    """Limits on what keys that pay outward (hot, tokens_collector) may move, in asset units
    as decimal strings ("1.5"); omitted: no limit of that kind."""

    per_tx: str | None = None
    per_day: str | None = None  # UTC day, per merchant; counted in the signer's own state


class TokenPolicy(_Model):
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    contract: str = Field(pattern=_ADDRESS_0X)
    decimals: int = Field(ge=0, le=36)

    @field_validator("contract")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ForwarderFactory(_Model):
    """A contract gas keys may call (with value 0) to deploy and flush deposit forwarders.

    Where the flushed funds end must be readable: either the ABI word `destination_arg` of the
    call holds it, or the factory sends to one fixed `destination`. Either way that destination
    must be an allowed cold destination.
    """

    address: str = Field(pattern=_ADDRESS_0X)
    selectors: list[str] = Field(min_length=1)
    destination_arg: int | None = Field(default=None, ge=0)
    destination: str | None = Field(default=None, pattern=_ADDRESS_0X)

    @field_validator("address", "destination")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @field_validator("selectors")
    @classmethod
    def _selectors(cls, value: list[str]) -> list[str]:
        for selector in value:
            if len(selector) != 10 or not selector.startswith("0x"):
                raise ValueError(f"a selector is 0x and 8 hex digits, not {selector!r}")
            bytes.fromhex(selector[2:])
        return [s.lower() for s in value]

    @model_validator(mode="after")
    def _one_destination_rule(self) -> ForwarderFactory:
        if (self.destination_arg is None) == (self.destination is None):
            raise ValueError("give exactly one of destination_arg and destination")
        return self


class _NetworkPolicy(_Model):
    native_symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    native_decimals: int = Field(ge=0, le=36)
    max_fee: str  # ceiling of one transaction's fee, native units ("0.01")
    limits: dict[str, AssetLimit] = Field(default_factory=dict)
    # Hot keys may pay only to listed destinations (kind "payout" or "cold") and the
    # merchant's own accounts. Off: hot keys pay anyone, within the limits.
    restrict_payouts: bool = False

    def decimals(self, asset: str) -> int | None:
        raise NotImplementedError

    def max_fee_units(self) -> int:
        return _units(self.max_fee, self.native_decimals, "max_fee")

    def limit_units(self, asset: str) -> tuple[int | None, int | None]:
        """(per transaction, per day) in base units; None where there is no limit."""
        limit = self.limits.get(asset)
        decimals = self.decimals(asset)
        if limit is None or decimals is None:
            return None, None
        per_tx = None if limit.per_tx is None else _units(limit.per_tx, decimals, "per_tx")
        per_day = None if limit.per_day is None else _units(limit.per_day, decimals, "per_day")
        return per_tx, per_day

    @model_validator(mode="after")
    def _amounts_parse(self) -> _NetworkPolicy:
        self.max_fee_units()
        for asset in self.limits:
            if self.decimals(asset) is None:
                raise ValueError(f"limits name an unknown asset {asset!r}")
            self.limit_units(asset)
        return self


def _units(text: str, decimals: int, field: str) -> int:
    if text in ("0", "0.0"):
        return 0  # a limit of zero forbids the asset outright
    try:
        return parse_amount(text, decimals, field=field)
    except DomainError as exc:
        raise ValueError(f"{field}: {exc.detail}") from None


class EvmNetworkPolicy(_NetworkPolicy):
    family: Literal["evm"]
    chain_id: int = Field(ge=1)
    coin_type: int = Field(default=60, ge=0, lt=2**31)
    native_symbol: str = "ETH"
    native_decimals: int = 18
    max_fee_per_gas: int = Field(ge=1)  # wei
    max_priority_fee_per_gas: int = Field(ge=0)  # wei
    tokens: list[TokenPolicy] = Field(default_factory=list)
    forwarder_factories: list[ForwarderFactory] = Field(default_factory=list)

    def decimals(self, asset: str) -> int | None:
        if asset == self.native_symbol:
            return self.native_decimals
        return next((t.decimals for t in self.tokens if t.symbol == asset), None)

    def token_at(self, contract: str) -> TokenPolicy | None:
        return next((t for t in self.tokens if t.contract == contract.lower()), None)

    def factory_at(self, address: str) -> ForwarderFactory | None:
        return next((f for f in self.forwarder_factories if f.address == address.lower()), None)


class BitcoinNetworkPolicy(_NetworkPolicy):
    family: Literal["bitcoin"]
    chain: str = "bitcoin"
    chain_network: Literal["mainnet", "testnet", "signet", "regtest"] = "mainnet"
    native_decimals: int = 8
    max_fee_rate: int = Field(ge=1)  # sat/vB, of the signed transaction

    @model_validator(mode="after")
    def _known_chain(self) -> BitcoinNetworkPolicy:
        if (self.chain, self.chain_network) not in BUILT_IN:
            raise ValueError(f"no built-in parameters for {self.chain} {self.chain_network}")
        return self

    @property
    def params(self) -> ChainParams:
        return BUILT_IN[(self.chain, self.chain_network)]

    def decimals(self, asset: str) -> int | None:
        return self.native_decimals if asset == self.native_symbol else None


NetworkPolicy = Annotated[EvmNetworkPolicy | BitcoinNetworkPolicy, Field(discriminator="family")]


class Destination(_Model):
    """An address the operator allows funds to go to: a merchant's cold storage (user keys may
    sweep there) or, with `restrict_payouts`, a payout recipient of hot keys."""

    network: str
    merchant: str | None = None  # None: every merchant (an operator-wide cold address)
    address: str = Field(min_length=1, max_length=128)
    kind: Literal["cold", "payout"] = "cold"
    label: str | None = None


class Policy(_Model):
    networks: dict[str, NetworkPolicy] = Field(default_factory=dict)
    destinations: list[Destination] = Field(default_factory=list)
    digest: str = ""  # SHA-256 of the file's bytes, set by load_policy

    @model_validator(mode="after")
    def _destinations_fit(self) -> Policy:
        for destination in self.destinations:
            network = self.networks.get(destination.network)
            if network is None:
                raise ValueError(f"a destination names unknown network {destination.network!r}")
            destination_key(network, destination.address)  # raises for a foreign address
        return self

    def network(self, name: str) -> EvmNetworkPolicy | BitcoinNetworkPolicy | None:
        return self.networks.get(name)

    def listed(
        self, network: str, merchant: str | None, kinds: frozenset[str], *, every: bool = False
    ) -> Mapping[str, Destination]:
        """The listed destinations of `kinds` usable by `merchant` on `network` (with `every`:
        of any merchant), by their comparison key (lower-case 0x address, or output script
        hex)."""
        policy = self.networks[network]
        return {
            destination_key(policy, d.address): d
            for d in self.destinations
            if d.network == network
            and d.kind in kinds
            and (every or d.merchant is None or d.merchant == merchant)
        }


def destination_key(network: EvmNetworkPolicy | BitcoinNetworkPolicy, address: str) -> str:
    """How destinations compare on `network`: a lower-case 0x address (EVM), the output
    script in hex (Bitcoin family, so every spelling of one address is one destination).
    Raises ValueError for an address of another network."""
    if isinstance(network, EvmNetworkPolicy):
        if len(address) != 42 or not address.startswith(("0x", "0X")):
            raise ValueError(f"not an EVM address: {address!r}")
        bytes.fromhex(address[2:])
        return address.lower()
    try:
        return output_script(address, network.params).hex()
    except BadAddress as exc:
        raise ValueError(str(exc)) from None


def load_policy(path: Path) -> Policy:
    """Read and check the policy file. Raises PolicyError naming the problem."""
    try:
        data = path.read_bytes()
        document = tomllib.loads(data.decode())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read the policy {path.name}: {exc}") from None
    try:
        policy = Policy(**document, digest=hashlib.sha256(data).hexdigest())
    except (ValidationError, ValueError) as exc:
        raise PolicyError(f"the policy {path.name} is not usable: {exc}") from None
    return policy


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def add_destination(path: Path, destination: Destination) -> Policy:
    """Append a `[[destinations]]` entry (the operator's comments stay as they are), check
    the whole file still loads, then replace it atomically. Raises PolicyError."""
    lines = ["", "[[destinations]]", f"network = {_toml_string(destination.network)}"]
    if destination.merchant is not None:
        lines.append(f"merchant = {_toml_string(destination.merchant)}")
    lines.append(f"address = {_toml_string(destination.address)}")
    lines.append(f"kind = {_toml_string(destination.kind)}")
    if destination.label is not None:
        lines.append(f"label = {_toml_string(destination.label)}")
    current = path.read_text() if path.exists() else ""
    candidate = path.with_name(path.name + ".new")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(current.rstrip("\n") + "\n" + "\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        policy = load_policy(candidate)
    except PolicyError:
        candidate.unlink()
        raise
    os.replace(candidate, path)
    return policy
