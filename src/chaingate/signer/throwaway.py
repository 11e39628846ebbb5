"""A throwaway signer state directory (keystore, policy, token) for tests and the dev demo.

Cheap KDF parameters and a known passphrase: never for real keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaingate.adapters.signer.auth import new_token
from chaingate.domain.custody import KeyStoreKind
from chaingate.signer.core import KEYSTORE_FILE, POLICY_FILE, SignerCore
from chaingate.signer.keystores import KeyStore
from chaingate.signer.keystores.file import FileKeyStore, KdfParams, create_keystore

THROWAWAY_PASSPHRASE = b"throwaway signer passphrase"


@dataclass(frozen=True, slots=True)
class ThrowawaySigner:
    state_dir: Path
    passphrase_file: Path
    token_file: Path

    @property
    def keystore(self) -> Path:
        return self.state_dir / KEYSTORE_FILE

    @property
    def policy(self) -> Path:
        return self.state_dir / POLICY_FILE

    @property
    def socket(self) -> Path:
        return self.state_dir / "signer.sock"

    def core(self, extra_keystores: Mapping[KeyStoreKind, KeyStore] | None = None) -> SignerCore:
        """An unlocked core on this directory (in process)."""
        keystores: dict[KeyStoreKind, KeyStore] = {
            KeyStoreKind.FILE: FileKeyStore.unlock(self.keystore, THROWAWAY_PASSPHRASE)
        }
        keystores.update(extra_keystores or {})
        return SignerCore(self.state_dir, keystores)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list) and all(not isinstance(v, dict) for v in value):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def _table(name: str, body: Mapping[str, Any], out: list[str]) -> None:
    scalars = {k: v for k, v in body.items() if not isinstance(v, dict | list) or _plain(v)}
    out.append(f"[{name}]")
    out.extend(f"{key} = {_value(value)}" for key, value in scalars.items())
    out.append("")
    for key, value in body.items():
        if isinstance(value, dict):
            _table(f"{name}.{key}", value, out)
        elif isinstance(value, list) and not _plain(value):
            for item in value:
                out.append(f"[[{name}.{key}]]")
                out.extend(f"{k} = {_value(v)}" for k, v in item.items())
                out.append("")


def _plain(value: object) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict) for v in value)


def render_policy(
    networks: Mapping[str, Mapping[str, Any]], destinations: Sequence[Mapping[str, Any]] = ()
) -> str:
    """A policy file from plain dicts (`{"anvil": {"family": "evm", "chain_id": 31337, ...}}`)."""
    out = ["# ChainGate signer policy (generated)", ""]
    for name, body in networks.items():
        _table(f"networks.{name}", body, out)
    for destination in destinations:
        out.append("[[destinations]]")
        out.extend(f"{k} = {_value(v)}" for k, v in destination.items())
        out.append("")
    return "\n".join(out)


def create_throwaway_signer(
    state_dir: Path,
    networks: Mapping[str, Mapping[str, Any]],
    destinations: Sequence[Mapping[str, Any]] = (),
) -> ThrowawaySigner:
    """Make `state_dir` (mode 0700) with a fresh keystore, a policy and a token file."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    create_keystore(state_dir / KEYSTORE_FILE, THROWAWAY_PASSPHRASE, KdfParams.fast())
    policy = state_dir / POLICY_FILE
    policy.write_text(render_policy(networks, destinations))
    os.chmod(policy, 0o600)
    passphrase = state_dir / "passphrase"
    passphrase.write_bytes(THROWAWAY_PASSPHRASE + b"\n")
    os.chmod(passphrase, 0o600)
    token = state_dir / "token"
    token.write_text(new_token() + "\n")
    os.chmod(token, 0o600)
    return ThrowawaySigner(state_dir, passphrase, token)
