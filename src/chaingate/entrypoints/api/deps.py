"""Typed dependencies so routes stay short: the container and the authenticated merchant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chaingate.bootstrap import Container
from chaingate.entrypoints.api.problems import ApiProblem
from chaingate.entrypoints.api.ratelimit import charge_api_key
from chaingate.services.merchants import authenticate


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]
# Declared through FastAPI so the OpenAPI document says how to authenticate; errors are ours.
BearerDep = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")),
]


@dataclass(frozen=True, slots=True)
class Caller:
    merchant_id: str
    key_id: str
    scopes: frozenset[str]


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency that authenticates the Bearer key and checks it carries `scope`."""

    async def dependency(request: Request, container: ContainerDep, bearer: BearerDep) -> Caller:
        token = bearer.credentials.strip() if bearer is not None else ""
        if not token:
            raise ApiProblem(
                401, "unauthorized", "send your API key as 'Authorization: Bearer <key>'"
            )
        async with container.db.uow() as uow:
            key = await authenticate(uow, token)
        if key is None:
            raise ApiProblem(401, "unauthorized", "the API key is invalid or revoked")
        await charge_api_key(request, container.rate_limiter, key.id)
        if scope not in key.scopes:
            raise ApiProblem(403, "insufficient_scope", f"this API key lacks the {scope!r} scope")
        refuse_unknown_query(request)
        return Caller(merchant_id=key.merchant_id, key_id=key.id, scopes=key.scopes)

    return dependency


def refuse_unknown_query(request: Request) -> None:
    """Raise a 422 for query parameters the route does not declare, as for unknown body fields:
    a typo such as `?limt=5` must not quietly answer the default page."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - set(_query_names(route.dependant)))
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown parameter"}
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> Iterator[str]:
    yield from (param.alias for param in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


InvoicesRead = Annotated[Caller, Depends(require("invoices:read"))]
InvoicesWrite = Annotated[Caller, Depends(require("invoices:write"))]
WebhooksRead = Annotated[Caller, Depends(require("webhooks:read"))]
WebhooksWrite = Annotated[Caller, Depends(require("webhooks:write"))]
WalletsRead = Annotated[Caller, Depends(require("wallets:read"))]
WalletsWrite = Annotated[Caller, Depends(require("wallets:write"))]
EventsRead = Annotated[Caller, Depends(require("events:read"))]
