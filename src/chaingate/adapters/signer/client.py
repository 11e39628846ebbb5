"""The `Signer` port, served by the `chaingate signer` process over its Unix socket.

Every request is HMAC-authenticated with the shared token (auth.py). Anything that keeps the
signer from deciding — no socket, a refused connection, a timeout, a 401, a 5xx, an answer
that does not parse — is `SignerUnavailable` (nothing changed; retry). A decision against the
request is `SignerRefused` with the signer's reason code. Answers are untrusted input: they
are parsed strictly and must answer the request that was asked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from chaingate.adapters.signer import wire
from chaingate.adapters.signer.auth import sign_headers
from chaingate.domain.custody import (
    AccountRequest,
    ManagedAccount,
    SignedTransaction,
    SignerRefused,
    SignerStatus,
    SignerUnavailable,
    SignRequest,
)

T = TypeVar("T")


class SocketSigner:
    def __init__(
        self,
        socket_path: Path,
        token: bytes,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._socket_path = socket_path
        self._token = token
        self._clock = clock
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
            base_url="http://signer",
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    async def create_account(self, request: AccountRequest) -> ManagedAccount:
        answer = await self._call("POST", "/v1/accounts", wire.account_request(request))
        account = self._parse(wire.parse_managed_account, answer)
        if account.request_id != request.request_id or account.network != request.network:
            raise SignerUnavailable("the signer answered another account request")
        return account

    async def sign(self, request: SignRequest) -> SignedTransaction:
        answer = await self._call("POST", "/v1/sign", wire.sign_request(request))
        signed = self._parse(wire.parse_signed_transaction, answer)
        if signed.request_id != request.request_id:
            raise SignerUnavailable("the signer answered another signing request")
        return signed

    async def status(self) -> SignerStatus:
        return self._parse(wire.parse_signer_status, await self._call("GET", "/v1/status", None))

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, document: dict[str, Any] | None) -> Any:
        body = b"" if document is None else wire.canonical(document)
        headers = sign_headers(self._token, method, path, body, int(self._clock()))
        headers["content-type"] = "application/json"
        try:
            response = await self._http.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SignerUnavailable(
                f"the signer at {self._socket_path} cannot be reached ({type(exc).__name__})"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 200 and answer is not None:
            return answer
        if response.status_code == 422 and isinstance(answer, dict):
            reason, detail = answer.get("reason"), answer.get("detail")
            if isinstance(reason, str) and isinstance(detail, str):
                raise SignerRefused(reason, detail[:500])
        if response.status_code == 401:
            raise SignerUnavailable(
                "the signer refused to authenticate this gateway: check that "
                "CHAINGATE_SIGNER_TOKEN_FILE holds the signer's token and both clocks are right"
            )
        raise SignerUnavailable(f"the signer answered HTTP {response.status_code}")

    @staticmethod
    def _parse(parse: Callable[[object], T], answer: Any) -> T:
        try:
            return parse(answer)
        except (wire.WireError, ValueError, TypeError):
            snippet = json.dumps(answer)[:200] if answer is not None else ""
            raise SignerUnavailable(f"the signer's answer does not parse: {snippet}") from None


class UnconfiguredSigner:
    """The `Signer` of a gateway started without CHAINGATE_SIGNER_SOCKET: custody requests
    are answered `signer_unavailable`, everything else works as before."""

    async def create_account(self, request: AccountRequest) -> ManagedAccount:
        raise self._error()

    async def sign(self, request: SignRequest) -> SignedTransaction:
        raise self._error()

    async def status(self) -> SignerStatus:
        raise self._error()

    async def close(self) -> None:
        return None

    @staticmethod
    def _error() -> SignerUnavailable:
        return SignerUnavailable(
            "no signer is configured: set CHAINGATE_SIGNER_SOCKET and CHAINGATE_SIGNER_TOKEN_FILE"
        )
