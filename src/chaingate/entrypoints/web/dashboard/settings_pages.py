"""Wallets (read-only: gap figures where the family has a gap rule, the output descriptor)
and API keys (create with scopes, revoke)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from chaingate.entrypoints.web.dashboard.session import (
    ContainerDep,
    EditorDep,
    UserDep,
    page,
    redirect,
)
from chaingate.services import dashboard, merchants

router = APIRouter()


@router.get("/wallets")
async def wallet_list(request: Request, container: ContainerDep, user: UserDep) -> Response:
    async with container.db.uow() as uow:
        wallets = await dashboard.wallets(
            uow, user.merchant_id, container.settings, container.family
        )
    return page(request, container, user, "wallets.html", wallets=wallets)


async def _keys_page(
    request: Request, container: ContainerDep, user: UserDep, status: int = 200, **extra: object
) -> Response:
    async with container.db.uow() as uow:
        keys = await merchants.list_api_keys(uow, user.merchant_id)
    scopes = sorted(merchants.SCOPES)
    return page(request, container, user, "keys.html", status, keys=keys, scopes=scopes, **extra)


@router.get("/keys")
async def key_list(request: Request, container: ContainerDep, user: UserDep) -> Response:
    return await _keys_page(request, container, user)


@router.post("/keys")
async def create_key(
    request: Request,
    container: ContainerDep,
    user: EditorDep,
    name: Annotated[str, Form(max_length=200)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    label = name.strip() or "dashboard key"
    async with container.db.uow() as uow:
        key, plaintext = await merchants.issue_api_key(
            uow, user.merchant_id, label, scopes or [], container.clock.now()
        )
    # Rendered straight from the POST (no redirect): the key exists in this answer only.
    return await _keys_page(request, container, user, 201, new_key=key, plaintext=plaintext)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    request: Request, container: ContainerDep, user: EditorDep, key_id: str
) -> Response:
    async with container.db.uow() as uow:
        await merchants.revoke_api_key(uow, user.merchant_id, key_id[:100], container.clock.now())
    return redirect(request, "/keys")
