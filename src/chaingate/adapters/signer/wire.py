"""The JSON the gateway and the signer exchange over their socket, for both sides.

Integers that can pass 2^53 (amounts, fees, gas prices) travel as decimal strings; bytes as
0x-hex; key refs in their `store:version:path-or-label` form. Decoding is strict: an unknown
or missing field is a WireError, never a default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    BitcoinPsbt,
    EvmTransaction,
    KeyRef,
    KeyStoreKind,
    KeyVersion,
    ManagedAccount,
    SignedTransaction,
    SignerStatus,
    SignPurpose,
    SignRequest,
)


class WireError(ValueError):
    """A message that is not what the other side must send."""


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON: one request, one digest, whatever the key order."""
    return hashlib.sha256(canonical(document)).hexdigest()


# ---- encoding ---------------------------------------------------------------------------------
def account_request(request: AccountRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "network": request.network,
        "merchant_id": request.merchant_id,
        "role": request.role.value,
        "store": request.store.value,
        "address_type": request.address_type,
    }


def managed_account(account: ManagedAccount) -> dict[str, Any]:
    return {
        "request_id": account.request_id,
        "network": account.network,
        "merchant_id": account.merchant_id,
        "role": account.role.value,
        "key_ref": str(account.key_ref),
        "account_key": account.account_key,
        "address": account.address,
        "address_type": account.address_type,
    }


def sign_request(request: SignRequest) -> dict[str, Any]:
    payload: dict[str, Any]
    if isinstance(request.payload, EvmTransaction):
        tx = request.payload
        payload = {
            "type": "evm_eip1559",
            "chain_id": str(tx.chain_id),
            "nonce": str(tx.nonce),
            "max_priority_fee_per_gas": str(tx.max_priority_fee_per_gas),
            "max_fee_per_gas": str(tx.max_fee_per_gas),
            "gas_limit": str(tx.gas_limit),
            "to": tx.to,
            "value": str(tx.value),
            "data": "0x" + tx.data.hex(),
        }
    else:
        payload = {"type": "psbt", "psbt": request.payload.psbt}
    return {
        "request_id": request.request_id,
        "family": request.family,
        "network": request.network,
        "purpose": request.purpose.value,
        "keys": [str(key) for key in request.keys],
        "payload": payload,
        "replaces": request.replaces,
        "destination_keys": [str(key) for key in request.destination_keys],
    }


def signed_transaction(signed: SignedTransaction) -> dict[str, Any]:
    return {
        "request_id": signed.request_id,
        "txid": signed.txid,
        "raw": "0x" + signed.raw.hex(),
        "fee": str(signed.fee),
    }


def signer_status(status: SignerStatus) -> dict[str, Any]:
    return {
        "unlocked": status.unlocked,
        "key_versions": [
            {"store": v.store.value, "version": v.version, "current": v.current}
            for v in status.key_versions
        ],
        "networks": list(status.networks),
        "policy_digest": status.policy_digest,
    }


# ---- decoding ---------------------------------------------------------------------------------
def _fields(document: object, required: set[str]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise WireError("expected a JSON object")
    keys = set(document)
    missing, unknown = required - keys, keys - required
    if missing or unknown:
        raise WireError(f"missing fields {sorted(missing)}, unknown fields {sorted(unknown)}")
    return document


def _text(value: object, name: str, *, nullable: bool = False, limit: int = 200) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise WireError(f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _uint(value: object, name: str) -> int:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 78:
        raise WireError(f"{name} must be a decimal string")
    number = int(value)
    if number >= 2**256:
        raise WireError(f"{name} is out of range")
    return number


def _hex(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise WireError(f"{name} must be 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise WireError(f"{name} must be 0x-hex") from None


def _key_ref(value: object, name: str) -> KeyRef:
    try:
        return KeyRef.parse(_text(value, name))
    except ValueError as exc:
        raise WireError(f"{name}: {exc}") from None


def _enum(kind: type[Any], value: object, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise WireError(f"{name}: unknown value {value!r}") from None


def parse_account_request(document: object) -> AccountRequest:
    fields = _fields(
        document, {"request_id", "network", "merchant_id", "role", "store", "address_type"}
    )
    return AccountRequest(
        request_id=_text(fields["request_id"], "request_id"),
        network=_text(fields["network"], "network"),
        merchant_id=_text(fields["merchant_id"], "merchant_id", nullable=True),
        role=_enum(AddressRole, fields["role"], "role"),
        store=_enum(KeyStoreKind, fields["store"], "store"),
        address_type=_text(fields["address_type"], "address_type", nullable=True),
    )


def parse_managed_account(document: object) -> ManagedAccount:
    fields = _fields(
        document,
        {
            "request_id",
            "network",
            "merchant_id",
            "role",
            "key_ref",
            "account_key",
            "address",
            "address_type",
        },
    )
    return ManagedAccount(
        request_id=_text(fields["request_id"], "request_id"),
        network=_text(fields["network"], "network"),
        merchant_id=_text(fields["merchant_id"], "merchant_id", nullable=True),
        role=_enum(AddressRole, fields["role"], "role"),
        key_ref=_key_ref(fields["key_ref"], "key_ref"),
        account_key=_text(fields["account_key"], "account_key", nullable=True),
        address=_text(fields["address"], "address"),
        address_type=_text(fields["address_type"], "address_type", nullable=True),
    )


def parse_sign_request(document: object) -> SignRequest:
    fields = _fields(
        document,
        {
            "request_id",
            "family",
            "network",
            "purpose",
            "keys",
            "payload",
            "replaces",
            "destination_keys",
        },
    )
    keys, hints = fields["keys"], fields["destination_keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= 500:
        raise WireError("keys must list 1 to 500 key refs")
    if not isinstance(hints, list) or len(hints) > 500:
        raise WireError("destination_keys must list at most 500 key refs")
    payload = fields["payload"]
    kind = payload.get("type") if isinstance(payload, dict) else None
    parsed: EvmTransaction | BitcoinPsbt
    if kind == "evm_eip1559":
        tx = _fields(
            payload,
            {
                "type",
                "chain_id",
                "nonce",
                "max_priority_fee_per_gas",
                "max_fee_per_gas",
                "gas_limit",
                "to",
                "value",
                "data",
            },
        )
        parsed = EvmTransaction(
            chain_id=_uint(tx["chain_id"], "chain_id"),
            nonce=_uint(tx["nonce"], "nonce"),
            max_priority_fee_per_gas=_uint(tx["max_priority_fee_per_gas"], "tip"),
            max_fee_per_gas=_uint(tx["max_fee_per_gas"], "max_fee_per_gas"),
            gas_limit=_uint(tx["gas_limit"], "gas_limit"),
            to=_text(tx["to"], "to", limit=42),
            value=_uint(tx["value"], "value"),
            data=_hex(tx["data"], "data"),
        )
    elif kind == "psbt":
        psbt = _fields(payload, {"type", "psbt"})
        parsed = BitcoinPsbt(_text(psbt["psbt"], "psbt", limit=4_000_000))
    else:
        raise WireError("payload.type must be evm_eip1559 or psbt")
    return SignRequest(
        request_id=_text(fields["request_id"], "request_id"),
        family=_text(fields["family"], "family"),
        network=_text(fields["network"], "network"),
        purpose=_enum(SignPurpose, fields["purpose"], "purpose"),
        keys=tuple(_key_ref(k, "keys") for k in keys),
        payload=parsed,
        replaces=_text(fields["replaces"], "replaces", nullable=True),
        destination_keys=tuple(_key_ref(k, "destination_keys") for k in hints),
    )


def parse_signed_transaction(document: object) -> SignedTransaction:
    fields = _fields(document, {"request_id", "txid", "raw", "fee"})
    return SignedTransaction(
        request_id=_text(fields["request_id"], "request_id"),
        txid=_text(fields["txid"], "txid", limit=100),
        raw=_hex(fields["raw"], "raw"),
        fee=_uint(fields["fee"], "fee"),
    )


def parse_signer_status(document: object) -> SignerStatus:
    fields = _fields(document, {"unlocked", "key_versions", "networks", "policy_digest"})
    versions = fields["key_versions"]
    if not isinstance(versions, list) or not isinstance(fields["networks"], list):
        raise WireError("key_versions and networks are lists")
    parsed = []
    for entry in versions:
        version = _fields(entry, {"store", "version", "current"})
        if not isinstance(version["version"], int) or not isinstance(version["current"], bool):
            raise WireError("a key version has an integer version and a boolean current")
        parsed.append(
            KeyVersion(
                _enum(KeyStoreKind, version["store"], "store"),
                version["version"],
                version["current"],
            )
        )
    return SignerStatus(
        unlocked=bool(fields["unlocked"]),
        key_versions=tuple(parsed),
        networks=tuple(_text(n, "networks") for n in fields["networks"]),
        policy_digest=_text(fields["policy_digest"], "policy_digest", nullable=True) or "",
    )
