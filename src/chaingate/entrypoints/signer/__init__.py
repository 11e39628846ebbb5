"""`chaingate signer ...`: the isolated signer process and its operator commands.

Options go after the last command word (`chaingate signer audit verify --state-dir D`).

Only the argument parser lives here. The commands themselves (`commands.py`) import the signer
package, which loads key material; they are imported when a signer command runs, so that
`chaingate api` and `chaingate worker` — the same executable — never load the signer's code.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

ENV_PREFIX = "CHAINGATE_SIGNER_"


def _env(name: str) -> str | None:
    return os.environ.get(ENV_PREFIX + name) or None


def _run(args: argparse.Namespace) -> int:
    # Everything the signer writes (state database, audit log, keystore, socket) is for its
    # own user only.
    os.umask(0o077)
    # Deliberately here and not at the top: see the module docstring.
    from chaingate.entrypoints.signer import commands

    handler: Any = getattr(commands, args.signer_command)
    result: int = handler(args)
    return result


def _state_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        default=_env("STATE_DIR"),
        help="the signer's own directory: keystore, policy, state, audit log "
        f"(env {ENV_PREFIX}STATE_DIR)",
    )


def _unlock_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "unlocking", f"the keystore passphrase: a file, env {ENV_PREFIX}PASSPHRASE, or stdin"
    )
    group.add_argument("--passphrase-file", default=_env("PASSPHRASE_FILE"))
    group.add_argument("--passphrase-stdin", action="store_true")


def _hsm_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("PKCS#11 (an HSM; optional)")
    group.add_argument(
        "--pkcs11-module", default=_env("PKCS11_MODULE"), help="the token's PKCS#11 library"
    )
    group.add_argument("--pkcs11-token", default=_env("PKCS11_TOKEN"), help="the token label")
    group.add_argument(
        "--pkcs11-pin-file",
        default=_env("PKCS11_PIN_FILE"),
        help=f"a file holding the user PIN (or env {ENV_PREFIX}PKCS11_PIN)",
    )


def add_signer_parser(commands: Any) -> None:
    """Add `chaingate signer` and its subcommands to the CLI's subparsers."""
    signer = commands.add_parser(
        "signer", help="the isolated signer: serve (default), init, rotate, policy, audit"
    )
    _state_options(signer)
    _unlock_options(signer)
    _hsm_options(signer)
    signer.add_argument("--socket", default=_env("SOCKET"), help="default <state-dir>/signer.sock")
    signer.add_argument(
        "--token-file", default=_env("TOKEN_FILE"), help="default <state-dir>/token"
    )
    signer.add_argument(
        "--socket-mode",
        default="600",
        help="octal file mode of the socket (600; 660 lets --socket-group in)",
    )
    signer.add_argument(
        "--socket-group",
        default=_env("SOCKET_GROUP"),
        help="the group of the socket: the gateway's processes run as another user in it",
    )
    signer.set_defaults(handler=_run, signer_command="serve")
    sub = signer.add_subparsers(title="signer commands")

    init = sub.add_parser("init", help="create the state directory, keystore, policy and token")
    _state_options(init)
    _unlock_options(init)
    init.add_argument("--kdf-memory-mib", type=int, default=64, help="argon2id memory (64)")
    init.add_argument("--kdf-time-cost", type=int, default=3, help="argon2id passes (3)")
    init.set_defaults(handler=_run, signer_command="init")

    rotate = sub.add_parser("rotate", help="add a key version; new accounts use it")
    _state_options(rotate)
    _unlock_options(rotate)
    _hsm_options(rotate)
    rotate.add_argument("--store", choices=["file", "pkcs11"], default="file")
    rotate.set_defaults(handler=_run, signer_command="rotate")

    policy = sub.add_parser("policy", help="check or edit the policy file")
    policy_sub = policy.add_subparsers(title="policy commands", required=True)
    check = policy_sub.add_parser("check", help="load the policy file and report")
    _state_options(check)
    check.set_defaults(handler=_run, signer_command="policy_check")
    add = policy_sub.add_parser("add-destination", help="allow a cold (or payout) destination")
    _state_options(add)
    add.add_argument("--network", required=True)
    add.add_argument("--address", required=True)
    add.add_argument("--merchant", help="the merchant it belongs to (default: every merchant)")
    add.add_argument("--kind", choices=["cold", "payout"], default="cold")
    add.add_argument("--label")
    add.set_defaults(handler=_run, signer_command="policy_add_destination")

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(title="audit commands", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain; name the first bad line")
    _state_options(verify)
    verify.set_defaults(handler=_run, signer_command="audit_verify")
