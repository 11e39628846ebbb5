"""Typed dependencies so routes stay short: the container and the authenticated merchant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chaingate.bootstrap import Container
from chaingate.entrypoints.api.problems import ApiProblem
from chaingate.services.merchants import authenticate


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


@dataclass(frozen=True, slots=True)
class Caller:
    merchant_id: str
    key_id: str
    scopes: frozenset[str]


def require(scope: str) -> Callable[[Request, Container], Awaitable[Caller]]:
    """A dependency that authenticates the Bearer key and checks it carries `scope`."""

    async def dependency(request: Request, container: ContainerDep) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiProblem(
                401, "unauthorized", "send your API key as 'Authorization: Bearer <key>'"
            )
        async with container.db.uow() as uow:
            key = await authenticate(uow, token.strip())
        if key is None:
            raise ApiProblem(401, "unauthorized", "the API key is invalid or revoked")
        if scope not in key.scopes:
            raise ApiProblem(403, "insufficient_scope", f"this API key lacks the {scope!r} scope")
        return Caller(merchant_id=key.merchant_id, key_id=key.id, scopes=key.scopes)

    return dependency


InvoicesRead = Annotated[Caller, Depends(require("invoices:read"))]
InvoicesWrite = Annotated[Caller, Depends(require("invoices:write"))]
WebhooksRead = Annotated[Caller, Depends(require("webhooks:read"))]
WebhooksWrite = Annotated[Caller, Depends(require("webhooks:write"))]
WalletsRead = Annotated[Caller, Depends(require("wallets:read"))]
WalletsWrite = Annotated[Caller, Depends(require("wallets:write"))]
EventsRead = Annotated[Caller, Depends(require("events:read"))]
