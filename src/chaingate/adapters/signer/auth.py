"""Per-request authentication between the gateway and the signer (both sides use this).

Beyond the socket's file mode, every request carries an HMAC-SHA256, keyed with a shared token
read from a file, over `method|path|timestamp|nonce|sha256(body)`. The signer accepts a
timestamp within WINDOW_SECONDS of its clock and each nonce once (it remembers them for the
window, across restarts), so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

WINDOW_SECONDS = 60
TIMESTAMP_HEADER = "x-chaingate-timestamp"
NONCE_HEADER = "x-chaingate-nonce"
SIGNATURE_HEADER = "x-chaingate-signature"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class TokenFileError(ValueError):
    """The token file is missing, unreadable or too short to be a key."""


def read_token(path: Path) -> bytes:
    """The shared key in `path` (surrounding whitespace ignored). Raises TokenFileError."""
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read the signer token file: {exc.strerror}") from None
    if len(token) < 32:
        raise TokenFileError("the signer token file holds fewer than 32 characters")
    return token


def new_token() -> str:
    return secrets.token_hex(32)


def _message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}|{path}|{timestamp}|{nonce}|{body_hash}".encode()


def sign_headers(token: bytes, method: str, path: str, body: bytes, now: int) -> dict[str, str]:
    """The authentication headers of one request."""
    timestamp, nonce = str(now), secrets.token_urlsafe(24)
    mac = hmac.new(token, _message(method, path, timestamp, nonce, body), hashlib.sha256)
    return {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: mac.hexdigest()}


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str  # "ok", "unauthenticated", "stale", "replayed"
    nonce: str | None = None


def check_headers(
    token: bytes,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    now: int,
) -> Verdict:
    """Whether the headers authenticate this exact request at `now` (the nonce is not checked
    for reuse here: the caller claims it in durable state, see `Verdict.nonce`)."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit() or not _NONCE.fullmatch(nonce) or len(signature) != 64:
        return Verdict(False, "unauthenticated")
    expected = hmac.new(token, _message(method, path, timestamp, nonce, body), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature.lower()):
        return Verdict(False, "unauthenticated")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return Verdict(False, "stale")
    return Verdict(True, "ok", nonce)
