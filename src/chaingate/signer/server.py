"""The signer's HTTP interface on a Unix socket: three routes, each request authenticated.

`GET /v1/status`, `POST /v1/accounts`, `POST /v1/sign`. Before anything else a request must
carry a valid HMAC of its method, path, timestamp, nonce and body (see `adapters/signer/auth`),
a timestamp within the window, and a nonce never seen inside the window (remembered in the
signer's state, so a restart opens no replay window). Every refusal — unauthenticated, stale,
replayed, malformed or against the policy — is written to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import json
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chaingate.adapters.signer import wire
from chaingate.adapters.signer.auth import WINDOW_SECONDS, check_headers
from chaingate.domain.custody import RefusalReason, SignerRefused
from chaingate.signer.core import SignerCore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024  # a PSBT consolidating a few thousand inputs


def _refused(reason: str, detail: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": "refused", "reason": reason, "detail": detail}, status)


Handler = Callable[[Request, bytes], Awaitable[Response]]


def build_app(core: SignerCore, token: bytes, clock: Callable[[], float] = time.time) -> Starlette:
    """The signer's ASGI application."""

    def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await _read_body(request)
            if body is None:
                return _refused(RefusalReason.MALFORMED_REQUEST.value, "body too large", 413)
            now = int(clock())
            verdict = check_headers(
                token,
                request.method,
                request.url.path,
                body,
                {k.lower(): v for k, v in request.headers.items()},
                now,
            )
            if verdict.ok and verdict.nonce is not None:
                claimed = await asyncio.to_thread(
                    core.state.claim_request_nonce, verdict.nonce, now, 2 * WINDOW_SECONDS
                )
                if not claimed:
                    verdict = type(verdict)(False, "replayed")
            if not verdict.ok:
                await asyncio.to_thread(
                    core.record_refusal,
                    {
                        "operation": f"{request.method} {request.url.path}",
                        "reason": verdict.reason,
                        "body_sha256": _sha256(body),
                    },
                )
                return _refused(verdict.reason, "the request is not authenticated", 401)
            return await handler(request, body)

        return endpoint

    async def status(request: Request, body: bytes) -> Response:
        answer = await asyncio.to_thread(core.status)
        return JSONResponse(wire.signer_status(answer))

    async def accounts(request: Request, body: bytes) -> Response:
        try:
            account_request = wire.parse_account_request(_json(body))
        except wire.WireError as exc:
            return await _malformed(core, request, body, str(exc))
        try:
            account = await asyncio.to_thread(core.create_account, account_request)
        except SignerRefused as exc:
            return _refused(exc.reason_code, exc.detail)
        return JSONResponse(wire.managed_account(account))

    async def sign(request: Request, body: bytes) -> Response:
        try:
            sign_request = wire.parse_sign_request(_json(body))
        except wire.WireError as exc:
            return await _malformed(core, request, body, str(exc))
        try:
            signed = await asyncio.to_thread(core.sign, sign_request)
        except SignerRefused as exc:
            return _refused(exc.reason_code, exc.detail)
        return JSONResponse(wire.signed_transaction(signed))

    return Starlette(
        routes=[
            Route("/v1/status", authenticated(status), methods=["GET"]),
            Route("/v1/accounts", authenticated(accounts), methods=["POST"]),
            Route("/v1/sign", authenticated(sign), methods=["POST"]),
        ]
    )


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise wire.WireError("the body is not JSON") from None


async def _malformed(core: SignerCore, request: Request, body: bytes, detail: str) -> Response:
    await asyncio.to_thread(
        core.record_refusal,
        {
            "operation": f"{request.method} {request.url.path}",
            "reason": RefusalReason.MALFORMED_REQUEST.value,
            "detail": detail,
            "body_sha256": _sha256(body),
        },
    )
    return _refused(RefusalReason.MALFORMED_REQUEST.value, detail)


async def _read_body(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class SocketInUse(RuntimeError):
    """Another process answers on the socket path (a second signer on one state)."""


def bind_socket(path: Path, mode: int = 0o600, group: str | None = None) -> socket.socket:
    """A listening Unix socket at `path` with `mode` (and `group`, when the gateway runs as
    another user in that group), created without a moment of wider access (umask). A stale
    socket file left by a killed signer is replaced; a live one is refused with
    SocketInUse. Raises KeyError for an unknown group."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocketInUse(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody listens: left behind by a signer that died
        else:
            raise SocketInUse(f"another process already serves {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(previous)
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    os.chmod(path, mode)
    sock.listen(128)
    return sock


async def serve(core: SignerCore, sock: socket.socket, token: bytes) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads the policy file."""
    config = uvicorn.Config(
        build_app(core, token),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, core.reload_policy)
    await server.serve(sockets=[sock])
