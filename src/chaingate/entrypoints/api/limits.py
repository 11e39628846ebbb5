"""Refuse oversized and absurdly nested bodies before any parser sees them, and text no
route should see (entrypoints/api/text_guard.py) in the path, query string or body.

Python's json module recurses per nesting level; a few thousand '[' would raise
RecursionError deep inside the framework (a 500). We check depth on the raw bytes first.
Mounted apps (the dashboard, the checkout) sit behind this middleware too.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaingate.entrypoints.api.text_guard import check_body, check_target

MAX_JSON_DEPTH = 32


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when brackets outside strings nest deeper than `limit`."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = check_target(scope.get("path", ""), scope.get("query_string", b""))
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(
                    send,
                    413,
                    "payload_too_large",
                    f"request body is larger than {self.max_bytes} bytes",
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth_exceeds(body, self.max_depth):
            await _refuse(
                send, 422, "json_too_deep", f"JSON nests deeper than {self.max_depth} levels"
            )
            return
        refusal = check_body(body, _header(scope, b"content-type"))
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        scope.setdefault("state", {})["raw_body"] = body
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


_TITLES = {400: "Bad Request", 413: "Content Too Large", 422: "Unprocessable Content"}


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps(
        {
            "type": f"https://chaingate.dev/problems/{code}",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "code": code,
            "detail": detail,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
