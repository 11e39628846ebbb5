"""`chaingate dev` and `chaingate dev pay`: the local demo, start to finish."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from chaingate.adapters.chains.evm.rpc import JsonRpcClient
from chaingate.adapters.chains.evm.wallet_ops import send_native, send_token
from chaingate.bootstrap import build_container, load_networks
from chaingate.config import Settings
from chaingate.domain.errors import DomainError
from chaingate.domain.money import parse_amount
from chaingate.entrypoints.dev.anvil import AnvilNotFound, AnvilProcess, find_anvil, start_anvil
from chaingate.entrypoints.dev.lifetime import StateDirBusy, Tether, hold_state_dir
from chaingate.entrypoints.dev.litecoind import (
    LitecoindNotFound,
    LitecoindProcess,
    LitecoindRpcError,
)
from chaingate.entrypoints.dev.ltc import (
    MINE_EVERY_SECONDS,
    dev_json_entry,
    ensure_ltc_wallet,
    mine_forever,
    networks_toml_entry,
    pay_and_mine,
    start_dev_litecoind,
)
from chaingate.entrypoints.dev.setup import (
    DEMO_MERCHANT_MNEMONIC,
    NETWORK_NAME,
    DevState,
    demo_dashboard_password,
    ensure_dashboard_user,
    ensure_demo_chain,
    ensure_demo_merchant,
    write_networks_file,
)
from chaingate.entrypoints.runtime import serve


def add_dev_parser(commands: Any) -> None:
    dev = commands.add_parser("dev", help="run everything locally with an anvil chain")
    dev.add_argument("--port", type=int, default=8080, help="API port (default 8080)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--state-dir", type=Path, default=Path(".chaingate"))
    dev.add_argument("--rpc-url", help="use this node instead of starting anvil")
    dev.add_argument(
        "--chains",
        type=_chains,
        default=frozenset({"eth"}),
        help="comma-separated demo chains: eth (always), ltc (a regtest litecoind); default eth",
    )
    dev.set_defaults(handler=_dev)
    dev_commands = dev.add_subparsers(title="dev commands")
    pay = dev_commands.add_parser("pay", help="pay an invoice from the funded dev account")
    pay.add_argument("invoice_id")
    pay.add_argument("--amount", help="decimal amount (default: what is still due)")
    pay.add_argument("--state-dir", type=Path, default=Path(".chaingate"))
    pay.set_defaults(handler=_pay)


def _chains(text: str) -> frozenset[str]:
    chosen = frozenset(c.strip() for c in text.split(",") if c.strip())
    unknown = chosen - {"eth", "ltc"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown chain(s): {', '.join(sorted(unknown))}")
    return chosen | {"eth"}


def _dev(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    try:
        with hold_state_dir(state_dir) as tether:
            return _dev_holding(args, state_dir, tether)
    except StateDirBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _dev_holding(args: argparse.Namespace, state_dir: Path, tether: Tether) -> int:
    """`chaingate dev` once it holds `state_dir`; its nodes are tethered to this process."""
    default_db = f"sqlite+aiosqlite:///{state_dir / 'chaingate.db'}"
    database_url = os.environ.get("CHAINGATE_DATABASE_URL", default_db)
    node: AnvilProcess | None = None
    ltc_node: LitecoindProcess | None = None
    new_ltc_chain = "ltc" in args.chains and not (state_dir / "litecoind").exists()
    if args.rpc_url:
        rpc_url, ws_url = args.rpc_url, None
    else:
        state_file = state_dir / "anvil-state.json"
        if (not state_file.exists() or new_ltc_chain) and database_url == default_db:
            # A new chain: a database that followed the old one would see a huge "reorg".
            for suffix in ("", "-wal", "-shm"):
                Path(f"{state_dir / 'chaingate.db'}{suffix}").unlink(missing_ok=True)
        try:
            node = start_anvil(find_anvil(Path.cwd()), state_file, tether=tether)
        except AnvilNotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        rpc_url, ws_url = node.rpc_url, node.ws_url
    try:
        if "ltc" in args.chains:
            try:
                ltc_node = start_dev_litecoind(state_dir, tether)
            except (LitecoindNotFound, RuntimeError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        return asyncio.run(_run_dev(args, state_dir, database_url, rpc_url, ws_url, ltc_node))
    except KeyboardInterrupt:
        return 0
    finally:
        if ltc_node is not None:
            ltc_node.stop()
        if node is not None:
            node.stop()


async def _run_dev(
    args: argparse.Namespace,
    state_dir: Path,
    database_url: str,
    rpc_url: str,
    ws_url: str | None,
    ltc_node: LitecoindProcess | None,
) -> int:
    previous = DevState.load(state_dir)
    chain = await ensure_demo_chain(rpc_url, previous)
    networks_file = write_networks_file(
        state_dir, rpc_url, ws_url, chain.token_contract, chain.chain_id
    )
    if ltc_node is not None:
        with networks_file.open("a") as toml:
            toml.write(networks_toml_entry(ltc_node))
    settings = Settings(
        database_url=database_url,
        networks=load_networks(networks_file),
        dev_mode=True,
        secret_key=_dev_secret(state_dir),
        api_host=args.host,
        api_port=args.port,
    )
    container = build_container(settings)
    await container.migrate()
    merchant = await ensure_demo_merchant(container, previous)
    if ltc_node is not None:
        await ensure_ltc_wallet(container, merchant.merchant_id, DEMO_MERCHANT_MNEMONIC)
    password = demo_dashboard_password(settings.secret_key or "")
    email = await ensure_dashboard_user(container, merchant.merchant_id, password)
    state = DevState(
        api_url=f"http://{args.host}:{args.port}",
        api_key=merchant.api_key,
        merchant_id=merchant.merchant_id,
        rpc_url=rpc_url,
        chain_id=chain.chain_id,
        network=NETWORK_NAME,
        tokens={"USDT": chain.token_contract},
        payer_address=chain.payer_address,
        payer_private_key=chain.payer_private_key,
        ltc=dev_json_entry(ltc_node) if ltc_node is not None else None,
        dashboard_email=email,
        dashboard_password=password,
    )
    state.save(state_dir)
    ready = asyncio.Event()
    server = asyncio.ensure_future(serve(container, ready=ready))
    miner = asyncio.ensure_future(mine_forever(ltc_node)) if ltc_node is not None else None
    try:
        await ready.wait()
        if not server.done():
            _print_next_steps(state, state_dir)
        await server
    finally:
        if miner is not None:
            miner.cancel()
    return 0


def _dev_secret(state_dir: Path) -> str:
    path = state_dir / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _print_next_steps(state: DevState, state_dir: Path) -> None:
    print(
        f"""
ChainGate dev is running.
  API        {state.api_url}   (docs: {state.api_url}/docs)
  chain      {state.rpc_url}   (chain id {state.chain_id}, a block every second)
  merchant   {state.merchant_id}
  API key    {state.api_key}
  dashboard  {state.api_url}/dashboard   ({state.dashboard_email} / {state.dashboard_password})
  settings   {state_dir / "dev.json"}

Try it:
  curl -s -X POST {state.api_url}/v1/invoices \\
    -H "Authorization: Bearer {state.api_key}" -H "Content-Type: application/json" \\
    -d '{{"amount": "10", "currency": "USDT", "network": "{state.network}"}}'
  chaingate dev pay <invoice id>          # pays it from the funded dev account
  curl -s {state.api_url}/v1/invoices/<invoice id> -H "Authorization: Bearer {state.api_key}"

{_ltc_steps(state)}Ctrl-C stops the gateway and the chain (both keep their state in {state_dir}).
""",
        flush=True,
    )


def _ltc_steps(state: DevState) -> str:
    if state.ltc is None:
        return ""
    ltc = state.ltc
    return (
        f"Litecoin regtest: network {ltc['network']!r}, a block every {MINE_EVERY_SECONDS:g} s\n"
        f"  node       {ltc['rpc_url']}   (user/password in dev.json, wallet {ltc['wallet']!r})\n"
        f"  an LTC invoice: the curl above with "
        f'\'{{"amount": "0.05", "currency": "LTC", "network": "{ltc["network"]}"}}\''
        f", then chaingate dev pay <invoice id>\n\n"
    )


def _pay(args: argparse.Namespace) -> int:
    state = DevState.load(args.state_dir.resolve())
    if state is None:
        print("no dev.json found: start `chaingate dev` first", file=sys.stderr)
        return 1
    answer = httpx.get(
        f"{state.api_url}/v1/invoices/{args.invoice_id}",
        headers={"Authorization": f"Bearer {state.api_key}"},
        timeout=10,
    )
    if answer.status_code != 200:
        print(f"cannot read the invoice: {answer.status_code} {answer.text}", file=sys.stderr)
        return 1
    invoice = answer.json()
    if state.ltc is not None and invoice["network"] == state.ltc["network"]:
        try:
            txid = pay_and_mine(state.ltc, invoice["address"], args.amount or invoice["amount_due"])
        except (DomainError, LitecoindRpcError, httpx.HTTPError) as exc:
            print(f"cannot pay: {exc}", file=sys.stderr)
            return 1
    else:
        txid = asyncio.run(_send_payment(state, invoice, args.amount))
    print(
        f"sent {args.amount or invoice['amount_due']} {invoice['currency']} "
        f"to {invoice['address']}: {txid}"
    )
    return 0


async def _send_payment(state: DevState, invoice: dict[str, Any], amount: str | None) -> str:
    networks = load_networks(Path(state.networks_file)) if state.networks_file else []
    network = next(n for n in networks if n.name == invoice["network"])
    decimals = network.asset_decimals(invoice["currency"])
    assert decimals is not None
    units = parse_amount(amount or invoice["amount_due"], decimals)
    rpc = JsonRpcClient([state.rpc_url], timeout=10)
    try:
        if invoice["currency"] == network.native_symbol:
            return await send_native(rpc, state.payer_private_key, invoice["address"], units)
        token = network.token(invoice["currency"])
        assert token is not None
        return await send_token(
            rpc, state.payer_private_key, token.contract, invoice["address"], units
        )
    finally:
        await rpc.close()
