"""A gateway prepared for a benchmark: settings, networks file, environment, merchant, wallet.

Setup goes through the real services (and the real migrations); only the measured part differs
from one benchmark to the next.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.bootstrap import Container, build_container
from chaingate.config import NetworkConfig, Settings
from chaingate.services.merchants import create_merchant
from chaingate.services.wallets import NewWallet, register_wallet
from chaingate.services.webhooks import create_endpoint

NETWORK = "bench"
CHAIN_ID = 31337
SECRET_KEY = "bench-secret-key"  # noqa: S105 - encrypts throw-away webhook secrets of a bench run
# A public BIP-39 test vector; the merchant's deposit addresses derive from it (watch-only).
MERCHANT_MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)


def network(rpc_url: str, **overrides: Any) -> NetworkConfig:
    """The benchmark network (anvil's chain id), one confirmation unless overridden."""
    fields: dict[str, Any] = {
        "name": NETWORK,
        "chain_id": CHAIN_ID,
        "rpc_urls": [rpc_url],
        "required_confirmations": 1,
    }
    fields.update(overrides)
    return EvmNetworkConfig(**fields)


def networks_toml(config: NetworkConfig) -> str:
    """`config` as the `[networks.<name>]` table `CHAINGATE_NETWORKS_FILE` reads."""
    lines = [f"[networks.{config.name}]"]
    for key, value in config.model_dump(exclude={"name", "tokens"}, exclude_none=True).items():
        lines.append(f"{key} = {_toml(value)}")
    for token in config.tokens:
        lines += [
            f"[[networks.{config.name}.tokens]]",
            f'symbol = "{token.symbol}"',
            f'contract = "{token.contract}"',
            f"decimals = {token.decimals}",
        ]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings(database_url: str, networks: list[NetworkConfig], **overrides: Any) -> Settings:
    """Settings as a production run has them, except that loopback webhooks are allowed."""
    fields: dict[str, Any] = {
        "database_url": database_url,
        "networks": networks,
        "secret_key": SECRET_KEY,
        "allow_private_webhook_urls": True,
    }
    fields.update(overrides)
    return Settings(**fields)


def environment(config: Settings, networks_file: Path, api_port: int) -> dict[str, str]:
    """The environment for `chaingate api|run` to see the same settings as `config`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINGATE_")}
    env.update(
        {
            "CHAINGATE_DATABASE_URL": config.database_url,
            "CHAINGATE_NETWORKS_FILE": str(networks_file),
            "CHAINGATE_SECRET_KEY": SECRET_KEY,
            "CHAINGATE_API_PORT": str(api_port),
            "CHAINGATE_ALLOW_PRIVATE_WEBHOOK_URLS": "true",
            "CHAINGATE_WEBHOOK_RETRY_BASE_SECONDS": str(config.webhook_retry_base_seconds),
            # Capacity is measured, not the per-key rate limiter (0 switches it off).
            "CHAINGATE_RATE_LIMIT_PER_SECOND": "0",
        }
    )
    return env


@dataclass(frozen=True)
class Shop:
    merchant_id: str
    api_key: str
    wallet_id: str


async def prepare(container: Container) -> Shop:
    """Migrate, then create a merchant with a full-scope API key and a wallet on the network."""
    await upgrade_to_head(container.db.engine)
    now = container.clock.now()
    async with container.db.uow() as uow:
        merchant, api_key = await create_merchant(uow, "Bench shop", now)
    config = container.settings.networks[0]
    async with container.db.uow() as uow:
        wallet, _ = await register_wallet(
            uow,
            NewWallet(merchant.id, account_xpub_from_mnemonic(MERCHANT_MNEMONIC)),
            config,
            container.family(config),
            now,
        )
    return Shop(merchant.id, api_key, wallet.id)


async def add_webhook(container: Container, shop: Shop, url: str) -> str:
    """Register `url` for every event; returns the endpoint id."""
    async with container.db.uow() as uow:
        endpoint, _ = await create_endpoint(
            uow,
            shop.merchant_id,
            url,
            None,
            None,
            container.secret_box,
            container.url_guard,
            container.clock.now(),
        )
    return endpoint.id


async def prepared(config: Settings) -> tuple[Container, Shop]:
    container = build_container(config)
    return container, await prepare(container)
