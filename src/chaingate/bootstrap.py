"""The composition root: settings -> adapters -> the container the entrypoints use.

This is the one place that knows which concrete adapter serves each port.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.adapters.chains.bitcoin.derivation import (
    DEFAULT_ADDRESS_TYPE,
    BitcoinAddressDeriver,
    implied_address_type,
)
from chaingate.adapters.chains.bitcoin.params import params_for
from chaingate.adapters.chains.bitcoin.uri import payment_uri as bitcoin_payment_uri
from chaingate.adapters.chains.evm.client import EvmChainClient
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver
from chaingate.adapters.chains.evm.uri import payment_uri as evm_payment_uri
from chaingate.adapters.clock import SystemClock
from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.uow import Database
from chaingate.adapters.ratelimit import InMemoryRateLimiter, RedisRateLimiter
from chaingate.adapters.secrets import SecretBox
from chaingate.adapters.ssrf import UrlGuard
from chaingate.config import NetworkConfig, Settings
from chaingate.domain.errors import InvalidWallet
from chaingate.ports import AddressDeriver, ChainClient, Clock, PaymentUriBuilder, RateLimiter
from chaingate.services.invoicing import InvoiceContext

log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """Settings that cannot run safely."""


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    derivers: dict[str, AddressDeriver]
    uri_builders: dict[str, PaymentUriBuilder]
    secret_box: SecretBox
    url_guard: UrlGuard
    rate_limiter: RateLimiter | None = None  # None: rate limiting is off
    invoice_context: InvoiceContext = field(init=False)
    _bitcoin_derivers: dict[tuple[str, str], AddressDeriver] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.invoice_context = InvoiceContext(
            settings=self.settings, deriver=self.deriver, uri_builders=self.uri_builders
        )

    def uri_builder(self, network: NetworkConfig) -> PaymentUriBuilder:
        return self.uri_builders[network.kind]

    def chain_client(self, network: NetworkConfig) -> ChainClient:
        if network.kind == "bitcoin":
            return BitcoinChainClient(network)
        return EvmChainClient(network)

    def deriver(self, network: NetworkConfig, address_type: str | None = None) -> AddressDeriver:
        """The deriver of `network`'s family; Bitcoin family: for `address_type` (default
        p2wpkh). Raises ValueError for an address type the network cannot derive."""
        if network.kind != "bitcoin":
            return self.derivers[network.kind]
        key = (network.name, address_type or DEFAULT_ADDRESS_TYPE)
        if key not in self._bitcoin_derivers:
            self._bitcoin_derivers[key] = BitcoinAddressDeriver(params_for(network), key[1])
        return self._bitcoin_derivers[key]

    def address_type_for(
        self, network: NetworkConfig, account_key: str, requested: str | None
    ) -> str | None:
        """The script type a new wallet derives: as requested, else as the key's SLIP-132
        version names it (ypub: p2sh-p2wpkh), else p2wpkh; None on EVM. Raises InvalidWallet
        for an unusable key."""
        if network.kind != "bitcoin":
            return None
        params = params_for(network)
        if not params.segwit:
            if requested not in (None, "p2pkh"):
                raise InvalidWallet(
                    f"{params.chain} has no SegWit: only p2pkh addresses",
                    code="address_type_unsupported",
                    field="address_type",
                )
            return "p2pkh"
        if requested is not None:
            return requested
        return implied_address_type(params, account_key) or DEFAULT_ADDRESS_TYPE

    async def close(self) -> None:
        if self.rate_limiter is not None:
            await self.rate_limiter.close()
        await self.db.dispose()


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
    return Container(
        settings=settings,
        db=Database(create_engine(settings.database_url)),
        clock=SystemClock(),
        derivers={"evm": EvmAddressDeriver()},
        uri_builders={"evm": evm_payment_uri, "bitcoin": bitcoin_payment_uri},
        secret_box=SecretBox(_secret_key(settings)),
        url_guard=UrlGuard(
            allow_private=settings.allow_private_webhook_urls,
            allow_loopback=settings.dev_mode or settings.allow_private_webhook_urls,
        ),
        rate_limiter=_rate_limiter(settings),
    )


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if rate == 0:
        return None
    if settings.redis_url:
        prefix = f"{settings.redis_key_prefix}ratelimit:"
        return RedisRateLimiter.from_url(settings.redis_url, rate, burst, prefix=prefix)
    return InMemoryRateLimiter(rate, burst)
