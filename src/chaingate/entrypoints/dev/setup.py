"""What the dev demo needs on chain and in the database, created once and reused after."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account import Account

from chaingate.adapters.chains.evm import wallet_ops
from chaingate.adapters.chains.evm.artifacts import DEMO_TOKEN, load_artifact
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.chains.evm.rpc import JsonRpcClient
from chaingate.bootstrap import Container
from chaingate.entrypoints.dev.anvil import ANVIL_MNEMONIC
from chaingate.services.dashboard_auth import create_user
from chaingate.services.merchants import SCOPES, authenticate, create_merchant, issue_api_key
from chaingate.services.wallets import NewWallet, register_wallet

NETWORK_NAME = "anvil"
USDT_DECIMALS = 6
PAYER_USDT = 1_000_000 * 10**USDT_DECIMALS
# The demo merchant's wallet: a public BIP-39 test mnemonic, distinct from anvil's accounts,
# so deposit addresses are fresh addresses nobody else spends from. Never use it for real money.
DEMO_MERCHANT_MNEMONIC = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)


@dataclass
class DevState:
    """The contents of dev.json: everything an outside tool needs to use the demo."""

    api_url: str
    api_key: str
    merchant_id: str
    rpc_url: str
    chain_id: int
    network: str
    tokens: dict[str, str]
    payer_address: str
    payer_private_key: str
    networks_file: str = ""
    # With `--chains eth,ltc`: {network, rpc_url, rpc_user, rpc_password, wallet}.
    ltc: dict[str, str] | None = None
    dashboard_email: str = ""
    dashboard_password: str = ""

    @classmethod
    def load(cls, state_dir: Path) -> DevState | None:
        path = state_dir / "dev.json"
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        document.setdefault("networks_file", str(state_dir / "networks.toml"))
        known = {k: v for k, v in document.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, state_dir: Path) -> None:
        self.networks_file = str(state_dir / "networks.toml")
        path = state_dir / "dev.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        path.chmod(0o600)  # it holds an API key and a (public test) private key


@dataclass(frozen=True)
class DemoChain:
    chain_id: int
    token_contract: str
    payer_address: str
    payer_private_key: str


def _anvil_account(index: int) -> tuple[str, str]:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return str(account.address).lower(), "0x" + bytes(account.key).hex()


async def ensure_demo_chain(rpc_url: str, previous: DevState | None) -> DemoChain:
    """Deploy the demo USDT (6 decimals) and fund the payer, unless the chain already has it."""
    _, deployer_key = _anvil_account(0)
    payer_address, payer_key = _anvil_account(1)
    rpc = JsonRpcClient([rpc_url], timeout=30)
    try:
        chain_id = int(await rpc.call("eth_chainId"), 16)
        contract = previous.tokens.get("USDT") if previous else None
        if contract and await rpc.call("eth_getCode", [contract, "latest"]) not in ("0x", None):
            return DemoChain(chain_id, contract, payer_address, payer_key)
        contract = await wallet_ops.deploy_contract(
            rpc, deployer_key, load_artifact(DEMO_TOKEN), ["Tether USD (demo)", "USDT", 6]
        )
        txid = await wallet_ops.mint_token(rpc, deployer_key, contract, payer_address, PAYER_USDT)
        await wallet_ops.wait_receipt(rpc, txid)
        return DemoChain(chain_id, contract, payer_address, payer_key)
    finally:
        await rpc.close()


def write_networks_file(
    state_dir: Path, rpc_url: str, ws_url: str | None, usdt_contract: str, chain_id: int = 31337
) -> Path:
    path = state_dir / "networks.toml"
    ws_line = f'ws_url = "{ws_url}"\n' if ws_url else ""
    path.write_text(
        f"""# Written by `chaingate dev`: the local anvil chain and its demo token.
[networks.{NETWORK_NAME}]
kind = "evm"
chain_id = {chain_id}
rpc_urls = ["{rpc_url}"]
{ws_line}native_symbol = "ETH"
native_decimals = 18
required_confirmations = 3
poll_interval_seconds = 1.0

[[networks.{NETWORK_NAME}.tokens]]
symbol = "USDT"
contract = "{usdt_contract}"
decimals = {USDT_DECIMALS}
"""
    )
    return path


@dataclass(frozen=True)
class DemoMerchant:
    merchant_id: str
    api_key: str


async def ensure_demo_merchant(container: Container, previous: DevState | None) -> DemoMerchant:
    """Reuse the demo merchant while its key still works; otherwise create one with a wallet."""
    now = container.clock.now()
    if previous is not None:
        async with container.db.uow() as uow:
            key = await authenticate(uow, previous.api_key)
        if key is not None and key.merchant_id == previous.merchant_id:
            return DemoMerchant(previous.merchant_id, previous.api_key)
    network = container.settings.network(NETWORK_NAME)
    assert network is not None
    xpub = account_xpub_from_mnemonic(DEMO_MERCHANT_MNEMONIC)
    identity = container.deriver(network).key_identity(xpub)
    async with container.db.uow() as uow:
        existing = await uow.wallets.by_key_identity(network.name, identity)
    if existing is not None:
        # dev.json was lost but the database kept the demo merchant: give it a fresh key.
        async with container.db.uow() as uow:
            _, api_key = await issue_api_key(uow, existing.merchant_id, "dev", SCOPES, now)
        return DemoMerchant(existing.merchant_id, api_key)
    async with container.db.uow() as uow:
        merchant, api_key = await create_merchant(uow, "Demo shop", now)
    async with container.db.uow() as uow:
        await register_wallet(
            uow, NewWallet(merchant.id, xpub), network, container.family(network), now
        )
    return DemoMerchant(merchant.id, api_key)


DEMO_DASHBOARD_EMAIL = "demo@example.com"


def demo_dashboard_password(dev_secret: str) -> str:
    """Derived from the state directory's secret, so a lost dev.json loses no login."""
    return hmac.new(dev_secret.encode(), b"dashboard", hashlib.sha256).hexdigest()[:20]


async def ensure_dashboard_user(container: Container, merchant_id: str, password: str) -> str:
    """The demo merchant's dashboard login; returns its e-mail address."""
    async with container.db.uow() as uow:
        existing = await uow.users.by_email(DEMO_DASHBOARD_EMAIL)
    if existing is None:
        async with container.db.uow() as uow:
            await create_user(
                uow,
                merchant_id,
                DEMO_DASHBOARD_EMAIL,
                password,
                container.clock.now(),
                passwords=container.passwords,
            )
    return DEMO_DASHBOARD_EMAIL
