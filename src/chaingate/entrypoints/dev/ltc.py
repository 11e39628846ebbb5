"""The Litecoin part of the dev demo (`chaingate dev --chains eth,ltc`): a regtest litecoind,
its networks.toml entry, the demo merchant's LTC wallet, a background miner, and `dev pay`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from pathlib import Path

from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.bootstrap import Container
from chaingate.domain.money import format_amount, parse_amount
from chaingate.entrypoints.dev.lifetime import Tether
from chaingate.entrypoints.dev.litecoind import (
    LitecoindProcess,
    LitecoindRpc,
    LitecoindRpcError,
    find_litecoind,
    fund_wallets,
    start_litecoind,
)
from chaingate.services.wallets import NewWallet, register_wallet

log = logging.getLogger(__name__)

LTC_NETWORK = "ltc"
LTC_DECIMALS = 8
MINE_EVERY_SECONDS = 5.0
PAYER_WALLET = "payer"
# The demo merchant's LTC key: m/84'/1'/0' of the same public test mnemonic as its ETH key.
# Deterministic, so a restart finds the same wallet. Never use it for real money.
_LTC_REGTEST = BUILT_IN[("litecoin", "regtest")]


def demo_ltc_key(mnemonic: str) -> str:
    """The demo merchant's vpub (BIP-84, Litecoin regtest)."""
    return account_key_from_mnemonic(mnemonic, _LTC_REGTEST, "p2wpkh")


def start_dev_litecoind(state_dir: Path, tether: Tether | None = None) -> LitecoindProcess:
    """Start (or restart, on the same datadir) the demo litecoind and fund its wallets.

    Raises LitecoindNotFound when the binary is missing, RuntimeError when it does not start.
    """
    node = start_litecoind(find_litecoind(), state_dir / "litecoind", tether=tether)
    try:
        fund_wallets(node)
    except Exception:
        node.stop()
        raise
    return node


def networks_toml_entry(node: LitecoindProcess) -> str:
    return f"""
[networks.{LTC_NETWORK}]
kind = "bitcoin"
chain = "litecoin"
chain_network = "regtest"
rpc_urls = ["{node.rpc_url}"]
rpc_user = "{node.rpc_user}"
rpc_password = "{node.rpc_password}"
required_confirmations = 2
poll_interval_seconds = 1.0
"""


def dev_json_entry(node: LitecoindProcess) -> dict[str, str]:
    """The `ltc` object of dev.json: enough for an outside tool to pay and mine."""
    return {
        "network": LTC_NETWORK,
        "rpc_url": node.rpc_url,
        "rpc_user": node.rpc_user,
        "rpc_password": node.rpc_password,
        "wallet": PAYER_WALLET,
    }


async def ensure_ltc_wallet(container: Container, merchant_id: str, mnemonic: str) -> None:
    """Register the demo merchant's LTC wallet unless it has one."""
    network = container.settings.network(LTC_NETWORK)
    assert network is not None
    async with container.db.uow() as uow:
        if await uow.wallets.for_network(merchant_id, LTC_NETWORK) is not None:
            return
    async with container.db.uow() as uow:
        await register_wallet(
            uow,
            NewWallet(merchant_id, demo_ltc_key(mnemonic), address_type="p2wpkh"),
            network,
            container.family(network),
            container.clock.now(),
        )


async def mine_forever(node: LitecoindProcess, every: float = MINE_EVERY_SECONDS) -> None:
    """A block every `every` seconds, as a live chain would make them (cancel to stop)."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(LitecoindRpcError, OSError, ValueError):
            await asyncio.to_thread(node.mine, 1)


def pay_and_mine(entry: dict[str, str], address: str, amount: str) -> str:
    """Send `amount` LTC (a decimal string) from the payer wallet and mine one block; the txid.

    Raises DomainError (InvalidAmount) for a bad amount, LitecoindRpcError for a refusal.
    """
    units = parse_amount(amount, LTC_DECIMALS)
    node = LitecoindRpc(entry["rpc_url"], entry["rpc_user"], entry["rpc_password"])
    txid = node.pay(address, Decimal(format_amount(units, LTC_DECIMALS)), wallet=entry["wallet"])
    node.mine(1)
    return txid
