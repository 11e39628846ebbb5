"""Ethereum signed messages (EIP-191 `personal_sign`, what MetaMask and hardware wallets sign)."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct


def personal_sign_signer(message: str, signature: str) -> str | None:
    """The lower-case address that signed `message`, or None for a malformed signature."""
    text = signature.strip()
    try:
        raw = bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)
        if len(raw) != 65:
            return None
        signer: str = Account.recover_message(encode_defunct(text=message), signature=raw)
    except Exception:  # eth-account raises several types for an unrecoverable signature
        return None
    return signer.lower()
