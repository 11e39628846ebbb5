"""A whole gateway for tests: real database (migrated), real app over ASGI, real services.

The tracker is driven step by step (`sync`) so tests decide exactly when blocks are read.
`running_gateway` runs in dev mode (webhooks may reach the loopback test receivers);
`running_production_gateway` runs as a deployment does: dev mode off, its own secret key,
reached over https, every webhook setting at its production default unless a test names it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.bootstrap import Container, build_container
from chaingate.config import NetworkConfig, Settings
from chaingate.entrypoints.api.app import create_app
from chaingate.ports import Clock
from chaingate.services.merchants import create_merchant
from chaingate.services.tracking import SyncOutcome, Tracker, sync_once

MERCHANT_MNEMONICS = [
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    "legal winner thank year wave sausage worth useful legal winner thank yellow",
    "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
]


@dataclass
class MerchantHandle:
    merchant_id: str
    api_key: str
    client: httpx.AsyncClient

    async def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {self.api_key}", **headers}
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.api_key}"}
        )

    async def invoice(self, **fields: Any) -> dict[str, Any]:
        answer = await self.post("/v1/invoices", fields)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def fetch(self, invoice_id: str) -> dict[str, Any]:
        answer = await self.get(f"/v1/invoices/{invoice_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def events(self, invoice_id: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 500, **({"invoice_id": invoice_id} if invoice_id else {})}
        answer = await self.get("/v1/events", **params)
        assert answer.status_code == 200, answer.text
        data: list[dict[str, Any]] = answer.json()["data"]
        return data


@dataclass
class Gateway:
    container: Container
    client: httpx.AsyncClient
    trackers: dict[str, Tracker] = field(default_factory=dict)
    _merchants: int = 0

    async def merchant(self, name: str = "Shop", *, with_wallets: bool = True) -> MerchantHandle:
        """A merchant with a full-scope key and (by default) a wallet on every network."""
        async with self.container.db.uow() as uow:
            merchant, api_key = await create_merchant(uow, name, self.container.clock.now())
        handle = MerchantHandle(merchant.id, api_key, self.client)
        if with_wallets:
            xpub = account_xpub_from_mnemonic(MERCHANT_MNEMONICS[self._merchants])
            self._merchants += 1
            for network in self.container.settings.networks:
                answer = await handle.post("/v1/wallets", {"network": network.name, "xpub": xpub})
                assert answer.status_code == 201, answer.text
        return handle

    def tracker(self, network: str) -> Tracker:
        if network not in self.trackers:
            config = self.container.settings.network(network)
            assert config is not None
            self.trackers[network] = Tracker(
                db=self.container.db,
                chain=self.container.chain_client(config),
                network=config,
                family=self.container.family(config),
                clock=self.container.clock,
                checkout_base=self.container.settings.checkout_base_url,
            )
        return self.trackers[network]

    async def sync(self, network: str) -> SyncOutcome:
        """Run the tracker until it stands on the node's tip."""
        while True:
            outcome = await sync_once(self.tracker(network))
            if outcome.at_tip:
                return outcome


@asynccontextmanager
async def running_gateway(
    database_url: str,
    networks: list[NetworkConfig],
    *,
    clock: Clock | None = None,
    base_url: str = "http://gateway.test",
    **settings: Any,
) -> AsyncIterator[Gateway]:
    defaults: dict[str, Any] = {"dev_mode": True, "secret_key": "test-secret-key"}
    container = build_container(
        Settings(database_url=database_url, networks=networks, **{**defaults, **settings})
    )
    if clock is not None:
        container.clock = clock
    await container.migrate()
    transport = httpx.ASGITransport(app=create_app(container))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        gateway = Gateway(container, client)
        try:
            yield gateway
        finally:
            for tracker in gateway.trackers.values():
                await tracker.chain.close()
            await container.close()


PRODUCTION_BASE_URL = "https://gateway.test"  # behind TLS, as deployed: Secure cookies travel


@asynccontextmanager
async def running_production_gateway(
    database_url: str,
    networks: list[NetworkConfig],
    *,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[Gateway]:
    """A gateway with production settings: dev mode off, a random CHAINGATE_SECRET_KEY, an
    https base URL. `settings` may add what an operator would set (e.g. an allow-list of
    internal webhook networks, a CA bundle); dev_mode cannot be turned back on here."""
    assert "dev_mode" not in settings, "a production gateway is never in dev mode"
    production: dict[str, Any] = {"dev_mode": False, "secret_key": secrets.token_hex(32)}
    async with running_gateway(
        database_url,
        networks,
        clock=clock,
        base_url=PRODUCTION_BASE_URL,
        **{**production, **settings},
    ) as gateway:
        assert not gateway.container.settings.dev_mode
        yield gateway
