"""All settings in one place: `CHAINGATE_*` environment variables plus an optional networks TOML."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chaingate.domain.errors import DomainError
from chaingate.domain.money import parse_amount

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chaingate.db"


class TokenConfig(BaseModel):
    """A whitelisted token contract. Only these contracts can ever credit an invoice."""

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    contract: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    decimals: int = Field(ge=0, le=36)
    # Transfers below this (a decimal string in token units) are dust: recorded, never counted
    # and not announced — address-poisoning spam must not move invoices or flood webhooks.
    min_amount: str | None = None

    @field_validator("contract")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


_HEX_VERSION = r"^[0-9a-fA-F]{8}$"


class ChainParamsConfig(BaseModel):
    """Address parameters of a Bitcoin Core fork the gateway has no built-in table for
    (Dogecoin, ...), or overrides of a built-in one. Byte values as integers, extended key
    versions as 8 hex digits (BIP-32 / SLIP-132)."""

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

    @field_validator("xpub_versions", "ypub_versions", "zpub_versions")
    @classmethod
    def _versions_hex(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(re.fullmatch(_HEX_VERSION, v) for v in value):
            raise ValueError("extended key versions are 8 hex digits, e.g. 04b24746")
        return None if value is None else [v.lower() for v in value]


# Confirmations a payment needs by default, per chain (regtest: 1). Bitcoin blocks come every
# ~10 minutes, Litecoin's every ~2.5: both defaults wait roughly 15-30 minutes.
DEFAULT_CONFIRMATIONS = {"bitcoin": 3, "litecoin": 6}
_BITCOIN_SYMBOLS = {"bitcoin": "BTC", "litecoin": "LTC"}


class NetworkConfig(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    kind: Literal["evm", "bitcoin"] = "evm"
    chain_id: int | None = Field(default=None, ge=1)  # EVM only, required there
    rpc_urls: list[str] = Field(min_length=1)
    # Bitcoin family: which chain and which of its networks; chain_params for other Core forks.
    chain: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    chain_network: Literal["mainnet", "testnet", "signet", "regtest"] | None = None
    chain_params: ChainParamsConfig | None = None
    rpc_user: str | None = None
    rpc_password: str | None = Field(default=None, repr=False)
    rpc_cookie_file: Path | None = None  # Core's .cookie, read at every (re)connect
    track_mempool: bool = True  # Bitcoin family: announce unconfirmed payments
    ws_url: str | None = None
    native_symbol: str = "ETH"
    native_decimals: int = 18
    native_min_amount: str | None = None  # dust threshold for the native coin, as for tokens
    required_confirmations: int = Field(default=12, ge=1, le=1000)
    tokens: list[TokenConfig] = Field(default_factory=list)
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    scan_batch_blocks: int = Field(default=20, ge=1, le=1000)
    # How far back reorgs are followed; deeper ones stop the tracker for an operator.
    reorg_window_blocks: int = Field(default=256, ge=8)
    start_block: int | None = None
    # Refuse blocks whose hash is not keccak(rlp(header)). Turn off only for chains that hash
    # blocks another way (zkSync Era, Avalanche C-Chain, Celo): a node's hash is then trusted.
    verify_block_hashes: bool = True

    @model_validator(mode="before")
    @classmethod
    def _family_defaults(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("kind") != "bitcoin":
            return data
        filled = dict(data)
        chain = str(filled.get("chain") or "bitcoin")
        filled.setdefault("chain", chain)
        filled.setdefault("chain_network", "mainnet")
        filled.setdefault("native_symbol", _BITCOIN_SYMBOLS.get(chain, chain.upper()[:12]))
        filled.setdefault("native_decimals", 8)
        regtest = filled["chain_network"] == "regtest"
        filled.setdefault(
            "required_confirmations", 1 if regtest else DEFAULT_CONFIRMATIONS.get(chain, 6)
        )
        return filled

    @model_validator(mode="after")
    def _family_fields(self) -> NetworkConfig:
        if self.kind == "evm":
            if self.chain_id is None:
                raise ValueError(f"{self.name}: an EVM network needs chain_id")
            if self.chain is not None or self.chain_params is not None:
                raise ValueError(f"{self.name}: chain and chain_params are for kind 'bitcoin'")
            return self
        if self.tokens:
            raise ValueError(f"{self.name}: Bitcoin-family networks have no tokens")
        if self.chain not in _BITCOIN_SYMBOLS and self.chain_params is None:
            raise ValueError(
                f"{self.name}: chain {self.chain!r} has no built-in parameters "
                f"(built in: {', '.join(_BITCOIN_SYMBOLS)}); give chain_params"
            )
        if self.rpc_cookie_file is not None and (self.rpc_user or self.rpc_password):
            raise ValueError(f"{self.name}: use rpc_cookie_file or rpc_user/rpc_password")
        return self

    def asset_decimals(self, asset: str) -> int | None:
        if asset == self.native_symbol:
            return self.native_decimals
        token = self.token(asset)
        return None if token is None else token.decimals

    @model_validator(mode="after")
    def _dust_thresholds_parse(self) -> NetworkConfig:
        for asset in self.assets:
            try:
                self.min_amount(asset)
            except DomainError as exc:
                raise ValueError(f"{self.name}: dust threshold of {asset}: {exc.detail}") from None
        return self

    def min_amount(self, asset: str) -> int:
        """The dust threshold for `asset` in base units (0: none)."""
        token = self.token(asset)
        text = (
            self.native_min_amount
            if asset == self.native_symbol
            else (token.min_amount if token is not None else None)
        )
        decimals = self.asset_decimals(asset)
        if text is None or decimals is None:
            return 0
        return parse_amount(text, decimals, field="min_amount")

    def token(self, symbol: str) -> TokenConfig | None:
        return next((t for t in self.tokens if t.symbol == symbol), None)

    @property
    def assets(self) -> list[str]:
        return [self.native_symbol, *(t.symbol for t in self.tokens)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAINGATE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    networks_file: Path | None = None
    # Encrypts webhook signing secrets at rest. Required outside dev mode.
    secret_key: str | None = None
    dev_mode: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    public_url: str | None = None
    allow_private_webhook_urls: bool = False
    default_expires_in_seconds: int = 900
    monitoring_window_seconds: int = 86_400
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 10.0
    webhook_retry_max_seconds: float = 3_600.0
    webhook_retry_window_seconds: float = 3 * 86_400.0
    webhook_concurrency: int = 32
    idempotency_ttl_seconds: int = 86_400
    max_body_bytes: int = 65_536
    # Token bucket per API key, and per client address for requests without a valid key.
    # 0 disables. Set CHAINGATE_REDIS_URL to share the buckets between API processes.
    rate_limit_per_second: float = Field(default=100.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    redis_url: str | None = None
    redis_key_prefix: str = "chaingate:"  # gateways sharing one Redis need different prefixes
    log_level: str = "INFO"
    # Hosted checkout (/i/{id}): live-status streams at once per API process (over it the page
    # polls instead), and how often each stream re-reads its invoice.
    checkout_max_streams: int = Field(default=500, ge=0)
    checkout_poll_seconds: float = Field(default=1.0, gt=0)

    networks: list[NetworkConfig] = Field(default_factory=list)

    def network(self, name: str) -> NetworkConfig | None:
        return next((n for n in self.networks if n.name == name), None)


def load_networks(path: Path) -> list[NetworkConfig]:
    """Read `[networks.<name>]` tables from a TOML file."""
    with path.open("rb") as fh:
        document = tomllib.load(fh)
    tables = document.get("networks", {})
    return [NetworkConfig(name=name, **table) for name, table in tables.items()]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with networks from `networks_file` when set."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.networks_file is not None and not settings.networks:
        settings.networks = load_networks(settings.networks_file)
    return settings
