"""A Bitcoin-family network's settings: which chain and network, node auth, mempool, and the
address parameters of a Core fork the gateway has no built-in table for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaingate.config import NetworkConfig

_HEX_VERSION = r"^[0-9a-fA-F]{8}$"


class ChainParamsConfig(BaseModel):
    """Address parameters of a Bitcoin Core fork the gateway has no built-in table for
    (Dogecoin, ...), or overrides of a built-in one. Byte values as integers, extended key
    versions as 8 hex digits (BIP-32 / SLIP-132)."""

    model_config = ConfigDict(extra="forbid")

    bech32_hrp: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,20}$")
    p2pkh_version: int | None = Field(default=None, ge=0, le=255)
    p2sh_version: int | None = Field(default=None, ge=0, le=255)
    xpub_versions: list[str] | None = Field(default=None, max_length=8)  # BIP-32 plain (xpub)
    ypub_versions: list[str] | None = Field(default=None, max_length=8)  # BIP-49 (ypub/upub/Mtub)
    zpub_versions: list[str] | None = Field(default=None, max_length=8)  # BIP-84 (zpub/vpub)
    uri_scheme: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9+.-]{0,31}$")
    coin_type: int | None = Field(default=None, ge=0, lt=2**31)
    genesis_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    segwit: bool | None = None  # False for forks without SegWit (Dogecoin): P2PKH addresses
    mweb: bool | None = None  # True for chains with Litecoin's MWEB extension blocks
    pow_hash: Literal["sha256d", "scrypt", "none"] | None = None  # header proof of work
    pow_limit: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # easiest target
    # The prefix of signed messages (Core's MESSAGE_MAGIC): "Dogecoin Signed Message:\n", ...
    message_magic: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("xpub_versions", "ypub_versions", "zpub_versions")
    @classmethod
    def _versions_hex(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(re.fullmatch(_HEX_VERSION, v) for v in value):
            raise ValueError("extended key versions are 8 hex digits, e.g. 04b24746")
        return None if value is None else [v.lower() for v in value]


# Confirmations a payment needs by default, per chain (regtest: 1). Bitcoin blocks come every
# ~10 minutes, Litecoin's every ~2.5: both defaults wait roughly 15-30 minutes.
DEFAULT_CONFIRMATIONS = {"bitcoin": 3, "litecoin": 6}
BUILT_IN_SYMBOLS = {"bitcoin": "BTC", "litecoin": "LTC"}


class BitcoinNetworkConfig(NetworkConfig):
    kind: Literal["bitcoin"] = "bitcoin"
    # Which chain and which of its networks; chain_params for other Core forks.
    chain: str = Field(default="bitcoin", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    chain_network: Literal["mainnet", "testnet", "signet", "regtest"] = "mainnet"
    chain_params: ChainParamsConfig | None = None
    rpc_user: str | None = None
    rpc_password: str | None = Field(default=None, repr=False)
    rpc_cookie_file: Path | None = None  # Core's .cookie, read at every (re)connect
    track_mempool: bool = True  # announce unconfirmed payments

    @model_validator(mode="before")
    @classmethod
    def _chain_defaults(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        chain = str(filled.get("chain") or "bitcoin")
        filled.setdefault("native_symbol", BUILT_IN_SYMBOLS.get(chain, chain.upper()[:12]))
        filled.setdefault("native_decimals", 8)
        regtest = filled.get("chain_network") == "regtest"
        filled.setdefault(
            "required_confirmations", 1 if regtest else DEFAULT_CONFIRMATIONS.get(chain, 6)
        )
        return filled

    @model_validator(mode="after")
    def _family_fields(self) -> BitcoinNetworkConfig:
        if self.tokens:
            raise ValueError(f"{self.name}: Bitcoin-family networks have no tokens")
        if self.chain not in BUILT_IN_SYMBOLS and self.chain_params is None:
            raise ValueError(
                f"{self.name}: chain {self.chain!r} has no built-in parameters "
                f"(built in: {', '.join(BUILT_IN_SYMBOLS)}); give chain_params"
            )
        if self.rpc_cookie_file is not None and (self.rpc_user or self.rpc_password):
            raise ValueError(f"{self.name}: use rpc_cookie_file or rpc_user/rpc_password")
        return self
