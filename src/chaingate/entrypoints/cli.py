"""`chaingate` command line: thin wrappers around services and the runtime."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Sequence

from chaingate.bootstrap import build_container, load_settings, migrate_database
from chaingate.config import Settings
from chaingate.domain.errors import ConfigurationError, DomainError
from chaingate.entrypoints.dev.command import add_dev_parser
from chaingate.entrypoints.runtime import WORKERS, serve
from chaingate.entrypoints.signer import add_signer_parser
from chaingate.services.dashboard_auth import create_user
from chaingate.services.invoicing import resolve_network
from chaingate.services.merchants import create_merchant
from chaingate.services.wallets import NewWallet, register_wallet


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Every node request at INFO would drown the gateway's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        result: int = args.handler(args)
    except DomainError as exc:
        print(f"error ({exc.code}): {exc.detail}", file=sys.stderr)
        return 1
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaingate", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=_migrate)

    merchant = commands.add_parser("merchant", help="manage merchants")
    merchant_commands = merchant.add_subparsers(title="merchant commands", required=True)
    create = merchant_commands.add_parser("create", help="create a merchant and an API key")
    create.add_argument("--name", required=True)
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=_merchant_create)

    user = commands.add_parser("user", help="manage dashboard users")
    user_commands = user.add_subparsers(title="user commands", required=True)
    user_create = user_commands.add_parser("create", help="create a dashboard user for a merchant")
    user_create.add_argument("--merchant-id", required=True)
    user_create.add_argument("--email", required=True)
    user_create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_create.set_defaults(handler=_user_create)

    wallet = commands.add_parser("wallet", help="manage watch-only wallets")
    wallet_commands = wallet.add_subparsers(title="wallet commands", required=True)
    add = wallet_commands.add_parser("add", help="register an account xpub for a network")
    add.add_argument("--merchant", required=True)
    add.add_argument("--network", required=True)
    add.add_argument("--xpub", required=True)
    add.add_argument(
        "--address-type",
        choices=["p2wpkh", "p2sh-p2wpkh", "p2tr"],
        help="Bitcoin family: script type (default: as the key's version says, else p2wpkh)",
    )
    add.add_argument(
        "--gap-limit",
        type=int,
        default=20,
        help="Bitcoin family: the gap limit of your wallet app (default 20). Wallet apps stop "
        "looking after that many unused addresses in a row; GET /v1/wallets/{id} says which gap "
        "limit the app needs. EVM wallets have no gap rule.",
    )
    add.add_argument(
        "--on-gap",
        choices=["warn", "refuse"],
        default="warn",
        help="Bitcoin family: past the gap limit, warn (default: addresses are still handed "
        "out, a wallet.gap_warning event at each multiple of the gap limit) or refuse new "
        "invoices (409 gap_limit_reached)",
    )
    add.add_argument(
        "--key-origin",
        help="Bitcoin family: master key fingerprint and account path (d34db33f/84h/0h/0h), "
        "for the output descriptor hardware wallets sign with",
    )
    add.set_defaults(handler=_wallet_add)

    run = commands.add_parser("run", help="run the API and all workers in one process")
    run.set_defaults(handler=_run, api=True, workers=",".join(WORKERS))

    api = commands.add_parser("api", help="run only the API")
    api.set_defaults(handler=_run, api=True, workers="")

    worker = commands.add_parser("worker", help="run workers only (scale out)")
    worker.add_argument("names", nargs="*", default=list(WORKERS), help=", ".join(WORKERS))
    worker.add_argument("--network", action="append", help="only these networks")
    worker.set_defaults(handler=_worker)

    add_dev_parser(commands)
    add_signer_parser(commands)
    return parser


def _settings() -> Settings:
    return load_settings()


def _migrate(_: argparse.Namespace) -> int:
    asyncio.run(migrate_database(_settings()))
    print("database is at the newest schema")
    return 0


def _merchant_create(args: argparse.Namespace) -> int:
    async def go() -> tuple[str, str]:
        container = build_container(_settings())
        await container.migrate()
        try:
            async with container.db.uow() as uow:
                merchant, api_key = await create_merchant(uow, args.name, container.clock.now())
        finally:
            await container.close()
        return merchant.id, api_key

    merchant_id, api_key = asyncio.run(go())
    if args.json:
        print(json.dumps({"merchant_id": merchant_id, "api_key": api_key}))
    else:
        print(f"merchant id: {merchant_id}")
        print(f"API key:     {api_key}")
        print("The API key is shown only once; store it now.")
    return 0


def _user_create(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1

    async def go() -> str:
        container = build_container(_settings())
        await container.migrate()
        try:
            async with container.db.uow() as uow:
                user = await create_user(
                    uow,
                    args.merchant_id,
                    args.email,
                    password,
                    container.clock.now(),
                    passwords=container.passwords,
                )
        finally:
            await container.close()
        return user.id

    user_id = asyncio.run(go())
    print(f"user id: {user_id}; sign in at /dashboard/login")
    return 0


def _wallet_add(args: argparse.Namespace) -> int:
    async def go() -> str:
        container = build_container(_settings())
        try:
            network = resolve_network(container.settings, args.network)
            request = NewWallet(
                args.merchant,
                args.xpub,
                address_type=args.address_type,
                gap_limit=args.gap_limit,
                on_gap=args.on_gap,
                key_origin=args.key_origin,
            )
            async with container.db.uow() as uow:
                wallet, _ = await register_wallet(
                    uow, request, network, container.family(network), container.clock.now()
                )
        finally:
            await container.close()
        return wallet.id

    print(asyncio.run(go()))
    return 0


def _run(args: argparse.Namespace) -> int:
    workers = tuple(w for w in args.workers.split(",") if w)
    return _serve(api=args.api, workers=workers, networks=None)


def _worker(args: argparse.Namespace) -> int:
    unknown = set(args.names) - set(WORKERS)
    if unknown:
        print(f"unknown workers: {sorted(unknown)}; choose from {WORKERS}", file=sys.stderr)
        return 2
    networks = tuple(args.network) if args.network else None
    return _serve(api=False, workers=tuple(args.names), networks=networks)


def _serve(*, api: bool, workers: tuple[str, ...], networks: tuple[str, ...] | None) -> int:
    async def go() -> None:
        container = build_container(_settings())
        await container.migrate()
        await serve(container, api=api, workers=workers, networks=networks)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
