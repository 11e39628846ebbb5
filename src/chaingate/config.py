"""All settings in one place: `CHAINGATE_*` environment variables plus an optional networks TOML.

The chain-neutral part of a network lives here; each chain family adds its own fields in
`adapters/chains/<family>/config.py`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chaingate.domain.errors import ConfigurationError, DomainError
from chaingate.domain.money import parse_amount

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chaingate.db"


class TokenConfig(BaseModel):
    """A whitelisted token. Only these can ever credit an invoice.

    `contract` is the token's identifier on its chain; each family checks its own form (an EVM
    network: a 0x contract address, stored in lower case).
    """

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    contract: str = Field(min_length=1, max_length=128)
    decimals: int = Field(ge=0, le=36)
    # Transfers below this (a decimal string in token units) are dust: recorded, never counted
    # and not announced — address-poisoning spam must not move invoices or flood webhooks.
    min_amount: str | None = None


class NetworkConfig(BaseModel):
    """What every network has, whatever its chain family: the fields the services read.

    Each family extends it with its own fields in `adapters/chains/<family>/config.py` (an
    unknown field is an error, so no EVM setting can sit unnoticed on a Bitcoin network), and
    `load_networks` picks the family's model by the table's `kind`.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    kind: str  # the chain family's name; each family's model fixes it
    rpc_urls: list[str] = Field(min_length=1)
    native_symbol: str
    native_decimals: int = Field(ge=0, le=36)
    native_min_amount: str | None = None  # dust threshold for the native coin, as for tokens
    required_confirmations: int = Field(ge=1, le=1000)
    tokens: list[TokenConfig] = Field(default_factory=list)
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    scan_batch_blocks: int = Field(default=20, ge=1, le=1000)
    # How far back reorgs are followed; deeper ones stop the tracker for an operator.
    reorg_window_blocks: int = Field(default=256, ge=8)
    start_block: int | None = None

    @model_validator(mode="after")
    def _built_by_a_family(self) -> NetworkConfig:
        if type(self) is NetworkConfig:
            raise ValueError(
                f"{self.name}: a network is read by its family's model (kind {self.kind!r}); "
                "load it with load_networks and the family table"
            )
        return self

    @model_validator(mode="after")
    def _dust_thresholds_parse(self) -> NetworkConfig:
        for asset in self.assets:
            try:
                self.min_amount(asset)
            except DomainError as exc:
                raise ValueError(f"{self.name}: dust threshold of {asset}: {exc.detail}") from None
        return self

    def asset_decimals(self, asset: str) -> int | None:
        if asset == self.native_symbol:
            return self.native_decimals
        token = self.token(asset)
        return None if token is None else token.decimals

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
    # Internal networks webhooks may reach although loopback/private (comma-separated CIDRs,
    # e.g. "10.20.0.0/24"): narrower than allow_private_webhook_urls.
    webhook_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # A PEM file of certificate authorities trusted for https webhook URLs in addition to the
    # public roots (receivers behind a company CA).
    webhook_ca_bundle: Path | None = None
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
    # The isolated signer (`chaingate signer`): its Unix socket and the file holding the token
    # that authenticates each request. Unset: managed custody answers signer_unavailable. The
    # gateway never has a keystore setting: keys live only in the signer's own directory.
    signer_socket: Path | None = None
    signer_token_file: Path | None = None
    signer_timeout_seconds: float = Field(default=30.0, gt=0)

    networks: list[NetworkConfig] = Field(default_factory=list)

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def network(self, name: str) -> NetworkConfig | None:
        return next((n for n in self.networks if n.name == name), None)

    @model_validator(mode="after")
    def _public_url_is_a_base(self) -> Settings:
        if self.public_url is not None:
            self.public_url = public_base(self.public_url)
        return self

    @property
    def checkout_base_url(self) -> str | None:
        """Where payers reach this gateway: `public_url`; in dev mode without it the API's
        own address; otherwise None (links would have to guess the host, so there are none)."""
        if self.public_url is not None:
            return self.public_url
        if not self.dev_mode:
            return None
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(  # noqa: S104
            self.api_host, self.api_host
        )
        return f"http://{f'[{host}]' if ':' in host else host}:{self.api_port}"


def public_base(url: str) -> str:
    """`url` as a base for absolute links: http(s), a host, no credentials, query or
    fragment; without a trailing slash. Raises ValueError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"public_url must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("public_url must not hold credentials, a query or a fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


NetworkModels = Mapping[str, type[NetworkConfig]]
"""The config model of each chain family, by the `kind` that names it (from bootstrap's table)."""


def load_networks(path: Path, models: NetworkModels, *, default_kind: str) -> list[NetworkConfig]:
    """Read the `[networks.<name>]` tables of a TOML file, each into its family's model.

    A table without `kind` is of `default_kind`. Raises ConfigurationError naming the network
    for an unknown kind (and the known ones) or a field its family refuses.
    """
    with path.open("rb") as fh:
        document = tomllib.load(fh)
    tables = document.get("networks", {})
    networks = []
    for name, table in tables.items():
        kind = table.get("kind", default_kind)
        model = models.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise ConfigurationError(
                f"{path}: network {name!r} has unknown kind {kind!r} "
                f"(known kinds: {', '.join(sorted(models))})"
            )
        try:
            networks.append(model(name=name, **table))
        except ValidationError as exc:
            raise ConfigurationError(f"{path}: network {name!r}: {exc}") from exc
    return networks


def load_settings(models: NetworkModels, *, default_kind: str, **overrides: object) -> Settings:
    """Settings from the environment, with networks from `networks_file` when set.

    Raises ConfigurationError for a setting that does not validate (CHAINGATE_PUBLIC_URL not
    an http(s) base URL, say) or a networks file that does not describe runnable networks.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(f"settings: {exc}") from exc
    if settings.networks_file is not None and not settings.networks:
        settings.networks = load_networks(settings.networks_file, models, default_kind=default_kind)
    return settings
