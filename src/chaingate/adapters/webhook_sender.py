"""Signing and sending one webhook request; every outcome comes back as an AttemptResult.

Signature header: `ChainGate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`,
where "t.body" is the timestamp, a dot, and the raw request body.
The timestamp is signed with the body so a captured request cannot be replayed later; receivers
should refuse timestamps older than a few minutes (see `verify`, which merchants may copy).

The sender never follows redirects (a 3xx could point at a private address) and connects only
to an address the UrlGuard approved a moment before, so DNS cannot switch between check and use.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from chaingate.adapters.ssrf import CheckedUrl, UrlGuard
from chaingate.domain.errors import WebhookUrlForbidden
from chaingate.domain.records import AttemptResult

SIGNATURE_HEADER = "ChainGate-Signature"
USER_AGENT = "ChainGate-Webhooks/1.0"
EXCERPT_BYTES = 512
_MAX_ERROR_CHARS = 500
# A host with many addresses is tried on at most this many before the attempt counts as failed.
_MAX_ADDRESSES_TRIED = 3


def sign(secret: str, timestamp: int, body: str | bytes) -> str:
    """The `ChainGate-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: str | bytes,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if `header` signs exactly `body` with `secret` within `tolerance_s` of `now`.

    Reference verifier for receivers (standard library only): pass the raw request body, not a
    re-serialised JSON object. Several `v1=` values are accepted, any one matching suffices.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, c) for c in candidates)


def webhook_http_client(ca_bundle: Path | None = None) -> httpx.AsyncClient:
    """The HTTP client webhooks go out through: no redirects, no proxy from the environment
    (it would bypass the address pinning), certificates checked against the public roots and
    the authorities in `ca_bundle` (a PEM file). Raises OSError/ssl.SSLError for an unreadable
    bundle, at start rather than at the first delivery."""
    tls = httpx.create_ssl_context(trust_env=False)
    if ca_bundle is not None:
        tls.load_verify_locations(cafile=ca_bundle)
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=tls)


class WebhookSender:
    """Sends signed webhook POSTs through a shared httpx client, one attempt per call."""

    def __init__(self, client: httpx.AsyncClient, guard: UrlGuard, timeout: float) -> None:
        self._client = client
        self._guard = guard
        self._timeout = timeout

    async def send(
        self,
        url: str,
        body: str,
        secret: str,
        headers: Mapping[str, str],
        *,
        timestamp: int | None = None,
    ) -> AttemptResult:
        """POST `body` byte for byte to `url`, signed with `secret` at `timestamp` (default now).

        Never raises for HTTP, network, DNS or URL-guard problems: they come back as an
        AttemptResult. The whole attempt (resolution included) is bounded by the timeout.
        """
        started = time.perf_counter()

        def result(
            status: int | None, error: str | None, excerpt: str | None, network: bool
        ) -> AttemptResult:
            elapsed = round((time.perf_counter() - started) * 1000)
            short = None if error is None else error[:_MAX_ERROR_CHARS]
            return AttemptResult(status, elapsed, short, excerpt, network)

        raw = body.encode()
        signed_at = int(time.time()) if timestamp is None else timestamp
        signed = {
            **headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, signed_at, raw),
            # Plain bytes back: the excerpt is read without decompressing anything.
            "Accept-Encoding": "identity",
            # No reuse: a pooled connection is keyed by IP and would skip the TLS name check.
            "Connection": "close",
        }
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._guard.resolve(url)
                status, excerpt, location = await self._post(target, raw, signed)
        except WebhookUrlForbidden as exc:
            # Retried like a network error: the next attempt re-resolves and re-checks.
            return result(None, f"refused: {exc.detail}", None, True)
        except (TimeoutError, httpx.TimeoutException):
            return result(None, f"timed out after {self._timeout:g}s", None, True)
        except httpx.InvalidURL as exc:
            return result(None, f"invalid URL: {exc}", None, False)
        except (httpx.HTTPError, OSError) as exc:
            return result(None, f"{type(exc).__name__}: {exc}".rstrip(": "), None, True)
        if 300 <= status < 400:
            where = (location or "")[:200]
            return result(status, f"redirect not followed (Location: {where})", excerpt, False)
        return result(status, None, excerpt, False)

    async def _post(
        self, target: CheckedUrl, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str | None, str | None]:
        pinned_headers = {**headers, "Host": target.url.netloc.decode("ascii")}
        extensions: dict[str, str] = {}
        if target.url.scheme == "https" and not target.host_is_address:
            extensions["sni_hostname"] = target.host  # certificate checked against the name
        failure: httpx.ConnectError | None = None
        for address in target.addresses[:_MAX_ADDRESSES_TRIED]:
            try:
                async with self._client.stream(
                    "POST",
                    target.url.copy_with(host=str(address)),
                    content=body,
                    headers=pinned_headers,
                    extensions=extensions,
                    follow_redirects=False,
                    timeout=self._timeout,
                ) as response:
                    excerpt = await _read_excerpt(response)
                    return response.status_code, excerpt, response.headers.get("location")
            except httpx.ConnectError as exc:
                failure = exc  # nothing was sent; the next address may answer
        assert failure is not None
        raise failure


async def _read_excerpt(response: httpx.Response) -> str | None:
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None  # we asked for identity; decompressing an unknown body is not worth it
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) >= EXCERPT_BYTES:
            break
    text = bytes(buffer[:EXCERPT_BYTES]).decode("utf-8", "replace").strip()
    return text or None
