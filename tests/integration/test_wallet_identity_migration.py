"""Migration 0006 on a database written before key identities (SQLite and PostgreSQL): every
wallet gets the identity its deriver computes, a key registered twice under two serializations
keeps one holder (the wallet with invoices), the other answers 409, never 500 — and gets the key
back once its merchant proves control of it (signed by litecoind)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic import command
from embit import base58, bip32, bip39
from sqlalchemy import text
from sqlalchemy.engine import Connection

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    BitcoinAddressDeriver,
    account_key_from_mnemonic,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver, account_xpub_from_mnemonic
from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import alembic_config, upgrade_to_head
from chaingate.adapters.db.tables import invoices
from chaingate.services.merchants import issue_api_key
from tests.support.gateway import MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode
from tests.support.services import postgres_admin_url, require_or_skip

MNEMONIC = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
LTC = BUILT_IN[("litecoin", "regtest")]
NETWORKS = [
    BitcoinNetworkConfig(
        name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
    ),
    EvmNetworkConfig(name="eth", chain_id=31337, rpc_urls=["http://127.0.0.1:9"]),
]


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    admin = postgres_admin_url()
    name = f"chaingate_identity_{os.getpid()}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        require_or_skip(f"PostgreSQL is not reachable at {admin}: {exc}")
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    url: str = request.getfixturevalue("own_postgres_url")
    return url


async def on(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def upgrade(target: str) -> Any:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, target)

    return run


def disguised(extended_key: str) -> str:
    raw = base58.decode_check(extended_key)
    other = raw[:5] + b"\xde\xad\xbe\xef" + (2**31 + 99).to_bytes(4, "big") + raw[13:]
    return str(base58.encode_check(other))


async def test_key_identities_are_backfilled_and_a_duplicate_stops_cleanly(
    fresh_url: str, litecoind: LitecoindNode
) -> None:
    await on(fresh_url, upgrade("0005"))
    btc = BitcoinAddressDeriver(LTC, "p2wpkh")
    key = btc.normalize_account_key(account_key_from_mnemonic(MNEMONIC, LTC))
    evm_key = account_xpub_from_mnemonic(MNEMONIC)
    now = datetime.now(UTC)

    def seed(connection: Connection) -> None:
        """What main allowed: one key under two serializations, in two merchants' wallets;
        the second one's invoice took index 0, so the first one could never hand one out."""
        for merchant in ("mer_first", "mer_second"):
            connection.execute(
                text("INSERT INTO merchants (id, name, created_at) VALUES (:id, :id, :at)"),
                {"id": merchant, "at": now},
            )
        wallet = text(
            "INSERT INTO wallets (id, merchant_id, network, account_key, next_index, "
            "address_type, gap_limit, created_at) VALUES (:id, :merchant, :network, :key, "
            ":next, :type, 20, :at)"
        )
        for row in (
            ("wal_first", "mer_first", "ltc", key, 0, "p2wpkh", now),
            ("wal_second", "mer_second", "ltc", disguised(key), 1, "p2wpkh", now + timedelta(1)),
            ("wal_evm", "mer_first", "eth", evm_key, 0, None, now),
        ):
            names = ("id", "merchant", "network", "key", "next", "type", "at")
            connection.execute(wallet, dict(zip(names, row, strict=True)))
        connection.execute(
            invoices.insert().values(
                id="inv_1",
                merchant_id="mer_second",
                network="ltc",
                asset="LTC",
                amount_due=1_000_000,
                amount_paid=0,
                status="new",
                additional_status="none",
                address=btc.derive(key, 0),
                wallet_id="wal_second",
                derivation_index=0,
                metadata="{}",
                required_confirmations=1,
                tolerance_bps=0,
                expires_at=now,
                watch_until=now,
                created_at=now,
                updated_at=now,
            )
        )

    await on(fresh_url, seed)
    engine = create_engine(fresh_url)
    try:
        await upgrade_to_head(engine)  # as `chaingate migrate` and every start run it
    finally:
        await engine.dispose()

    def identities(connection: Connection) -> dict[str, str | None]:
        rows = connection.execute(text("SELECT id, key_identity FROM wallets")).all()
        return {wallet_id: identity for wallet_id, identity in rows}

    assert await on(fresh_url, identities) == {
        "wal_first": None,  # stuck since its registration; now it says why
        "wal_second": btc.key_identity(key),  # the one with invoices keeps the key
        "wal_evm": EvmAddressDeriver().key_identity(evm_key),
    }

    async with running_gateway(fresh_url, NETWORKS) as gateway:
        handles = {}
        for merchant in ("mer_first", "mer_second"):
            async with gateway.container.db.uow() as uow:
                _, api_key = await issue_api_key(
                    uow, merchant, "test", ["invoices:write", "wallets:read", "wallets:write"], now
                )
            handles[merchant] = MerchantHandle(merchant, api_key, gateway.client)
        body = {"network": "ltc", "currency": "LTC", "amount": "0.01"}
        stuck = await handles["mer_first"].post("/v1/invoices", body)
        assert (stuck.status_code, stuck.json()["code"]) == (409, "wallet_key_released")
        assert (await handles["mer_second"].post("/v1/invoices", body)).status_code == 201
        evm = {"network": "eth", "currency": "ETH", "amount": "1"}
        assert (await handles["mer_first"].post("/v1/invoices", evm)).status_code == 201
        listed = (await handles["mer_first"].get("/v1/wallets")).json()
        assert {w["network"]: w["status"] for w in listed} == {"ltc": "released", "eth": "active"}

        # The stuck wallet's merchant holds the private key: it claims the key back and goes on
        # after every index the other wallet used.
        first = handles["mer_first"]
        unproven = await first.post("/v1/wallets/wal_first/claim", {})
        assert (unproven.status_code, unproven.json()["code"]) == (409, "wallet_key_in_use")
        claim = unproven.json()["claim"]
        assert claim["address"] == btc.derive(key, 0)
        wif = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(MNEMONIC)).derive("m/84h/1h/0h/0/0")
        proof = await litecoind.rpc(
            "signmessagewithprivkey", wif.key.wif(network={"wif": b"\xef"}), claim["message"]
        )
        claimed = await first.post("/v1/wallets/wal_first/claim", {"ownership_proof": proof})
        assert claimed.status_code == 200, claimed.text
        assert (claimed.json()["status"], claimed.json()["next_index"]) == ("active", 2)
        invoice = await first.post("/v1/invoices", body)
        assert invoice.json()["address"] == btc.derive(key, 2), invoice.text
        moved = await handles["mer_second"].post("/v1/invoices", body)
        assert (moved.status_code, moved.json()["code"]) == (409, "wallet_key_released")
