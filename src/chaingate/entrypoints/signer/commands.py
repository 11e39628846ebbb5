"""What each `chaingate signer` command does (the parser is in `__init__.py`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from chaingate.adapters.signer.auth import TokenFileError, new_token, read_token
from chaingate.domain.custody import KeyStoreKind
from chaingate.domain.errors import ConfigurationError
from chaingate.signer.audit import AuditLogDamaged, verify
from chaingate.signer.core import KEYSTORE_FILE, POLICY_FILE, STATE_FILE, SignerCore
from chaingate.signer.keystores import KeyStore
from chaingate.signer.keystores.file import (
    FileKeyStore,
    KdfParams,
    KeystoreFileError,
    WrongPassphrase,
    add_key_version,
    create_keystore,
)
from chaingate.signer.keystores.pkcs11 import Pkcs11KeyStore
from chaingate.signer.policy import Destination, PolicyError, add_destination, load_policy
from chaingate.signer.server import SocketInUse, bind_socket
from chaingate.signer.server import serve as serve_socket
from chaingate.signer.state import SignerState

log = logging.getLogger("chaingate.signer")

POLICY_TEMPLATE = """\
# ChainGate signer policy. Only what this file allows is ever signed; the gateway's database
# cannot widen it. `kill -HUP <signer pid>` reloads it (a file that does not load is ignored
# and the refusal to reload is written to the audit log).
#
# Amounts are decimal strings in the asset's units; gas prices integers in wei.
#
# [networks.ethereum]
# family = "evm"
# chain_id = 1
# max_fee_per_gas = 200_000_000_000        # 200 gwei
# max_priority_fee_per_gas = 5_000_000_000 # 5 gwei
# max_fee = "0.02"                          # ETH, gas_limit * max_fee_per_gas
# restrict_payouts = false                  # true: hot keys pay listed destinations only
# [[networks.ethereum.tokens]]
# symbol = "USDT"
# contract = "0xdac17f958d2ee523a2206206994597c13d831ec7"
# decimals = 6
# [networks.ethereum.limits.ETH]
# per_tx = "5"
# per_day = "50"
#
# [networks.litecoin]
# family = "bitcoin"
# chain = "litecoin"
# chain_network = "mainnet"
# native_symbol = "LTC"
# max_fee_rate = 200        # sat/vB of the signed transaction
# max_fee = "0.01"
#
# Cold storage the merchants' deposit keys may sweep to (`chaingate signer policy
# add-destination` appends these):
# [[destinations]]
# network = "ethereum"
# merchant = "mer_..."
# address = "0x..."
# kind = "cold"
"""


def _state_dir(args: argparse.Namespace) -> Path:
    if not args.state_dir:
        raise ConfigurationError("--state-dir (or CHAINGATE_SIGNER_STATE_DIR) is required")
    return Path(args.state_dir).resolve()


def _passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes:
    """From a file, the environment (then removed from it, so children do not inherit it),
    stdin, or a terminal prompt."""
    if args.passphrase_file:
        try:
            return Path(args.passphrase_file).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigurationError(f"cannot read the passphrase file: {exc.strerror}") from None
    from_env = os.environ.pop("CHAINGATE_SIGNER_PASSPHRASE", None)
    if from_env:
        return from_env.encode()
    if args.passphrase_stdin or not sys.stdin.isatty():
        return sys.stdin.buffer.readline().rstrip(b"\r\n")
    first = getpass.getpass("Keystore passphrase: ").encode()
    if confirm and getpass.getpass("Repeat it: ").encode() != first:
        raise ConfigurationError("the passphrases differ")
    return first


def _unlock(args: argparse.Namespace) -> FileKeyStore:
    try:
        return FileKeyStore.unlock(_state_dir(args) / KEYSTORE_FILE, _passphrase(args))
    except WrongPassphrase:
        raise ConfigurationError("the passphrase does not open the keystore") from None
    except KeystoreFileError as exc:
        raise ConfigurationError(str(exc)) from None


def _hsm(args: argparse.Namespace) -> Pkcs11KeyStore | None:
    if not args.pkcs11_module:
        return None
    if not args.pkcs11_token:
        raise ConfigurationError("--pkcs11-token names the token to use")
    pin = os.environ.pop("CHAINGATE_SIGNER_PKCS11_PIN", None)
    if args.pkcs11_pin_file:
        pin = Path(args.pkcs11_pin_file).read_text().strip()
    if not pin:
        raise ConfigurationError(
            "the token's PIN: --pkcs11-pin-file or CHAINGATE_SIGNER_PKCS11_PIN"
        )
    try:
        return Pkcs11KeyStore(Path(args.pkcs11_module), args.pkcs11_token, pin)
    except Exception as exc:  # python-pkcs11 raises per-error types: all mean "cannot open"
        raise ConfigurationError(
            f"cannot open PKCS#11 token {args.pkcs11_token!r}: {exc!r}"
        ) from None


def _core(args: argparse.Namespace) -> SignerCore:
    keystores: dict[KeyStoreKind, KeyStore] = {KeyStoreKind.FILE: _unlock(args)}
    hsm = _hsm(args)
    if hsm is not None:
        keystores[KeyStoreKind.PKCS11] = hsm
    try:
        return SignerCore(_state_dir(args), keystores)
    except (PolicyError, AuditLogDamaged) as exc:
        raise ConfigurationError(str(exc)) from None


def serve(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    socket_path = Path(args.socket) if args.socket else state_dir / "signer.sock"
    token_path = Path(args.token_file) if args.token_file else state_dir / "token"
    try:
        token = read_token(token_path)
    except TokenFileError as exc:
        raise ConfigurationError(str(exc)) from None
    core = _core(args)
    try:
        sock = bind_socket(socket_path, int(args.socket_mode, 8), args.socket_group)
    except (SocketInUse, KeyError, ValueError) as exc:
        core.close()
        raise ConfigurationError(f"cannot serve on {socket_path}: {exc}") from None
    log.info(
        "signer unlocked (key versions %s), serving on %s",
        ", ".join(f"{v.store.value} v{v.version}" for v in core.status().key_versions),
        socket_path,
    )
    try:
        asyncio.run(serve_socket(core, sock, token))
    finally:
        sock.close()
        socket_path.unlink(missing_ok=True)
        core.close()
    return 0


def init(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    keystore = state_dir / KEYSTORE_FILE
    if keystore.exists():
        raise ConfigurationError(f"{keystore} exists; `chaingate signer rotate` adds a key version")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    kdf = KdfParams(time_cost=args.kdf_time_cost, memory_cost_kib=args.kdf_memory_mib * 1024)
    passphrase = _passphrase(args, confirm=True)
    try:
        create_keystore(keystore, passphrase, kdf)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    policy = state_dir / POLICY_FILE
    if not policy.exists():
        policy.write_text(POLICY_TEMPLATE)
        os.chmod(policy, 0o600)
    token = state_dir / "token"
    if not token.exists():
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_token() + "\n")
    print(f"keystore created: {keystore} (key version 1)")
    print(f"policy: {policy} — add the networks the signer may sign for")
    print(f"token: {token} — give the gateway a copy (CHAINGATE_SIGNER_TOKEN_FILE)")
    print("Back up the keystore file AND the passphrase: either alone opens nothing.")
    return 0


def rotate(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if args.store == "pkcs11":
        core = _core(args)
        try:
            version = core.rotate_hsm_version()
        finally:
            core.close()
        print(f"new HSM accounts get key version {version}; existing keys keep signing")
        return 0
    try:
        version = add_key_version(state_dir / KEYSTORE_FILE, _passphrase(args))
    except WrongPassphrase:
        raise ConfigurationError("the passphrase does not open the keystore") from None
    except KeystoreFileError as exc:
        raise ConfigurationError(str(exc)) from None
    print(f"file keystore key version {version} added; restart the signer to use it for new")
    print("accounts. Old key refs keep signing with their version. Back up the file again.")
    return 0


def policy_check(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(_state_dir(args) / POLICY_FILE)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"policy {policy.digest[:16]}: networks {', '.join(sorted(policy.networks)) or '-'}; ")
    print(f"{len(policy.destinations)} listed destinations")
    return 0


def policy_add_destination(args: argparse.Namespace) -> int:
    destination = Destination(
        network=args.network,
        merchant=args.merchant,
        address=args.address,
        kind=args.kind,
        label=args.label,
    )
    try:
        policy = add_destination(_state_dir(args) / POLICY_FILE, destination)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"added; policy is now {policy.digest[:16]} — `kill -HUP` the signer to load it")
    return 0


def audit_verify(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state_file = state_dir / STATE_FILE
    head = None
    if state_file.exists():
        state = SignerState(state_file)
        try:
            head = state.audit_head()
        finally:
            state.close()
    result = verify(state_dir / "audit.jsonl", head)
    if result.ok:
        print(f"audit log intact: {result.lines} lines")
        return 0
    print(
        f"audit log BROKEN at line {result.first_bad_line}: {result.reason} "
        f"({result.lines} good lines before it)",
        file=sys.stderr,
    )
    return 1
