"""Running a POST under its Idempotency-Key (see services/idempotency.py for the rules)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from chaingate.bootstrap import Container
from chaingate.entrypoints.api.deps import Caller
from chaingate.services.idempotency import Claim, Replay, claim, fingerprint, release

Action = Callable[[Claim | None], Awaitable[tuple[int, dict[str, Any]]]]


def _idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1-255 printable characters. A retry with the same key and body gets "
            "the first answer again (`Idempotent-Replayed: true`) instead of a second effect.",
        ),
    ] = None,
) -> None:
    """Declares the header in the OpenAPI document; `run_idempotent` reads and checks it."""


# `dependencies=IDEMPOTENT` on a route that calls run_idempotent.
IDEMPOTENT = [Depends(_idempotency_key_header)]


async def run_idempotent(
    request: Request,
    container: Container,
    caller: Caller,
    action: Action,
    *,
    holds_secret: bool = False,
) -> Response:
    """Run `action` once per (merchant, key); a retry with the same key gets the first answer.

    `action` must call `claim.complete(uow, ...)` inside the transaction that does the work.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        status, body = await action(None)
        return JSONResponse(body, status_code=status)
    raw = request.scope.get("state", {}).get("raw_body")
    if raw is None:
        raw = await request.body()
    outcome = await claim(
        container.db,
        caller.merchant_id,
        key,
        fingerprint(request.method, request.url.path, raw),
        container.clock.now(),
        timedelta(seconds=container.settings.idempotency_ttl_seconds),
        container.secret_box if holds_secret else None,
    )
    if isinstance(outcome, Replay):
        return Response(
            outcome.body,
            status_code=outcome.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        status, body = await action(outcome)
    except BaseException:
        await release(container.db, outcome)
        raise
    return JSONResponse(body, status_code=status)


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
