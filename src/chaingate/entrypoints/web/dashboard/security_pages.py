"""The signed-in user's own security settings: two-factor sign-in (TOTP)."""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from chaingate.entrypoints.web.dashboard.session import (
    ContainerDep,
    EditorDep,
    UserDep,
    page,
    redirect,
)
from chaingate.services.dashboard_auth import disable_totp, enable_totp, has_totp

router = APIRouter()
Code = Annotated[str, Form(max_length=20)]


def _qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return out.getvalue().decode()


@router.get("/security")
async def security(request: Request, container: ContainerDep, user: UserDep) -> Response:
    async with container.db.uow() as uow:
        enabled = await has_totp(uow, user.user_id)
    secret = container.totp.new_secret()  # fresh each view; stored only once a code proves it
    uri = container.totp.provisioning_uri(secret, user.email)
    return page(
        request,
        container,
        user,
        "security.html",
        enabled=enabled,
        secret=secret,
        qr_svg="" if enabled else _qr_svg(uri),
    )


@router.post("/security/totp")
async def turn_on(
    request: Request,
    container: ContainerDep,
    user: EditorDep,
    code: Code = "",
    secret: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    async with container.db.uow() as uow:
        await enable_totp(
            uow,
            user.user_id,
            secret,
            code,
            container.clock.now(),
            box=container.secret_box,
            totp=container.totp,
        )
    return redirect(request, "/security")


@router.post("/security/totp/disable")
async def turn_off(
    request: Request, container: ContainerDep, user: EditorDep, code: Code = ""
) -> Response:
    async with container.db.uow() as uow:
        await disable_totp(
            uow,
            user.user_id,
            code,
            container.clock.now(),
            box=container.secret_box,
            totp=container.totp,
        )
    return redirect(request, "/security")
