"""The composition root: settings -> adapters -> the container the entrypoints use.

This is the one place that knows which concrete adapter serves each port, and the one table
of chain families: a new family is a folder under `adapters/chains/` plus one line in
`FAMILIES`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from chaingate import config
from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.adapters.clock import SystemClock
from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.adapters.db.uow import Database as SqlDatabase
from chaingate.adapters.passwords import Argon2PasswordHasher
from chaingate.adapters.ratelimit import InMemoryRateLimiter, RedisRateLimiter
from chaingate.adapters.secrets import SecretBox as AesGcmSecretBox
from chaingate.adapters.signer.auth import TokenFileError, read_token
from chaingate.adapters.signer.client import SocketSigner, UnconfiguredSigner
from chaingate.adapters.ssrf import UrlGuard as DnsUrlGuard
from chaingate.adapters.totp import Rfc6238Totp
from chaingate.adapters.webhook_sender import WebhookSender as HttpWebhookSender
from chaingate.adapters.webhook_sender import webhook_http_client
from chaingate.config import NetworkConfig, Settings
from chaingate.domain.errors import ConfigurationError
from chaingate.ports import (
    AddressDeriver,
    ChainClient,
    ChainFamily,
    Clock,
    Database,
    PasswordHasher,
    RateLimiter,
    SecretBox,
    Signer,
    TotpCheck,
    UrlGuard,
    WebhookSender,
)
from chaingate.services.dashboard_auth import LOGIN_ATTEMPTS_BURST, LOGIN_ATTEMPTS_PER_SECOND
from chaingate.services.invoicing import InvoiceContext
from chaingate.services.wallets import WalletContext

log = logging.getLogger(__name__)


def _table(*families: ChainFamily) -> Mapping[str, ChainFamily]:
    return {family.name: family for family in families}


# Every chain family the gateway runs, by the `kind` its networks are configured with.
FAMILIES: Mapping[str, ChainFamily] = _table(
    EvmFamily(),
    BitcoinFamily(),
)
# A networks table without `kind` (files written before there was a second family) is EVM.
DEFAULT_KIND = "evm"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and the networks file, each network read by its family's
    model. Raises ConfigurationError (naming the known kinds for an unknown one)."""
    models = {kind: family.config_model for kind, family in FAMILIES.items()}
    return config.load_settings(models, default_kind=DEFAULT_KIND, **overrides)


def load_networks(path: Path) -> list[NetworkConfig]:
    """The networks of a TOML file, each read by its family's model (see load_settings)."""
    models = {kind: family.config_model for kind, family in FAMILIES.items()}
    return config.load_networks(path, models, default_kind=DEFAULT_KIND)


def family_of(network: NetworkConfig) -> ChainFamily:
    """The family serving `network`. Raises ConfigurationError for a kind no family serves."""
    family = FAMILIES.get(network.kind)
    if family is None or not isinstance(network, family.config_model):
        raise ConfigurationError(
            f"network {network.name!r} has unknown kind {network.kind!r} "
            f"(known kinds: {', '.join(sorted(FAMILIES))})"
        )
    return family


@dataclass
class Container:
    """Every adapter the entrypoints use, each typed by the port it serves."""

    settings: Settings
    db: Database
    engine: AsyncEngine  # migrations only; everything else goes through `db`
    clock: Clock
    secret_box: SecretBox
    url_guard: UrlGuard
    passwords: PasswordHasher
    totp: TotpCheck
    webhook_sender: WebhookSender
    # Dashboard sign-in attempts per client address, on top of each account's own lockout.
    login_limiter: RateLimiter
    # The isolated signer process (managed custody); answers signer_unavailable when unset.
    signer: Signer = field(default_factory=UnconfiguredSigner)
    rate_limiter: RateLimiter | None = None  # None: API rate limiting is off
    http: httpx.AsyncClient | None = None  # the webhook sender's connections, closed with us
    invoice_context: InvoiceContext = field(init=False)
    wallet_context: WalletContext = field(init=False)

    def __post_init__(self) -> None:
        self.invoice_context = InvoiceContext(settings=self.settings, family_of=family_of)
        self.wallet_context = WalletContext(settings=self.settings, family_of=family_of)

    def family(self, network: NetworkConfig) -> ChainFamily:
        return family_of(network)

    def chain_client(self, network: NetworkConfig) -> ChainClient:
        return family_of(network).client(network)

    def deriver(self, network: NetworkConfig, address_type: str | None = None) -> AddressDeriver:
        """The watch-only deriver of a wallet on `network` (see ChainFamily.deriver)."""
        return family_of(network).deriver(network, address_type)

    async def migrate(self) -> None:
        """Bring the database to the newest schema."""
        await upgrade_to_head(self.engine)

    async def close(self) -> None:
        if self.rate_limiter is not None:
            await self.rate_limiter.close()
        await self.login_limiter.close()
        await self.signer.close()
        if self.http is not None:
            await self.http.aclose()
        await self.db.dispose()


async def migrate_database(settings: Settings) -> None:
    """Bring the configured database to the newest schema (without building the rest)."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    if settings.dev_mode:
        # Dev only: derived from the database URL so restarts can still read stored secrets.
        return hashlib.sha256(b"chaingate-dev:" + settings.database_url.encode()).hexdigest()
    raise ConfigurationError(
        "CHAINGATE_SECRET_KEY must be set (it encrypts webhook signing secrets at rest)"
    )


def build_container(settings: Settings) -> Container:
    """Wire every adapter. Raises ConfigurationError for settings that cannot run."""
    for network in settings.networks:
        family_of(network)  # an unknown kind stops start-up here, before anything runs
    if settings.checkout_base_url is None:
        log.warning(
            "CHAINGATE_PUBLIC_URL is not set: invoices carry no checkout_url (checkout_url: null)"
        )
    engine = create_engine(settings.database_url)
    db: Database = SqlDatabase(engine)
    secret_box: SecretBox = AesGcmSecretBox(_secret_key(settings))
    guard = DnsUrlGuard(
        allow_private=settings.allow_private_webhook_urls,
        allow_loopback=settings.dev_mode or settings.allow_private_webhook_urls,
        allowed_networks=settings.webhook_allowed_networks,
    )
    url_guard: UrlGuard = guard
    http = webhook_http_client(settings.webhook_ca_bundle)
    sender: WebhookSender = HttpWebhookSender(http, guard, settings.webhook_timeout_seconds)
    passwords: PasswordHasher = Argon2PasswordHasher()
    totp: TotpCheck = Rfc6238Totp()
    clock: Clock = SystemClock()
    return Container(
        settings=settings,
        db=db,
        engine=engine,
        clock=clock,
        secret_box=secret_box,
        url_guard=url_guard,
        passwords=passwords,
        totp=totp,
        webhook_sender=sender,
        login_limiter=_login_limiter(settings),
        signer=_signer(settings),
        rate_limiter=_rate_limiter(settings),
        http=http,
    )


def _signer(settings: Settings) -> Signer:
    if settings.signer_socket is None:
        return UnconfiguredSigner()
    if settings.signer_token_file is None:
        raise ConfigurationError(
            "CHAINGATE_SIGNER_SOCKET needs CHAINGATE_SIGNER_TOKEN_FILE (the signer's token)"
        )
    try:
        token = read_token(settings.signer_token_file)
    except TokenFileError as exc:
        raise ConfigurationError(str(exc)) from None
    return SocketSigner(settings.signer_socket, token, timeout=settings.signer_timeout_seconds)


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if rate == 0:
        return None
    return _limiter(settings, rate, burst, "ratelimit:")


def _login_limiter(settings: Settings) -> RateLimiter:
    # Always on, whatever the API limit: it bounds password guessing per client address. Shared
    # through Redis like the API's buckets, so N API processes do not allow N times the guesses.
    return _limiter(settings, LOGIN_ATTEMPTS_PER_SECOND, LOGIN_ATTEMPTS_BURST, "login:")


def _limiter(settings: Settings, rate: float, burst: int, name: str) -> RateLimiter:
    if settings.redis_url:
        prefix = f"{settings.redis_key_prefix}{name}"
        return RedisRateLimiter.from_url(settings.redis_url, rate, burst, prefix=prefix)
    return InMemoryRateLimiter(rate, burst)
