"""Sign in and out. Failures all read the same, whether or not the account exists."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from chaingate.entrypoints.api.ratelimit import client_bucket
from chaingate.entrypoints.web.dashboard.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ContainerDep,
    EditorDep,
    base_path,
    redirect,
    render,
)
from chaingate.services.dashboard_auth import ABSOLUTE_TIMEOUT, log_in, log_out

router = APIRouter()
LOGIN_FAILED = "Wrong e-mail, password or code, or too many attempts. Try again in a few minutes."


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(request, "login.html", status, user=None, login_csrf=token, error=error)
    page.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=base_path(request) + "/login",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return page


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(
    request: Request,
    container: ContainerDep,
    email: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(request, 403, "The form expired. Please sign in again.")
    # Per client address, shared by every API process (Redis) like the API's own limits.
    if not (await container.login_limiter.spend(client_bucket(request.scope))).allowed:
        return _login_page(request, 429, LOGIN_FAILED)
    token = await log_in(
        container.db,
        email,
        password,
        container.clock.now(),
        box=container.secret_box,
        passwords=container.passwords,
        totp=container.totp,
        code=code,
    )
    if token is None:
        return _login_page(request, 401, LOGIN_FAILED)
    answer = redirect(request, "/")
    answer.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
        path=base_path(request) or "/",
        httponly=True,
        secure=not container.settings.dev_mode,
        samesite="lax",
    )
    answer.delete_cookie(LOGIN_CSRF_COOKIE, path=base_path(request) + "/login")
    return answer


@router.post("/logout")
async def logout(request: Request, container: ContainerDep, user: EditorDep) -> Response:
    async with container.db.uow() as uow:
        await log_out(uow, request.cookies.get(SESSION_COOKIE, ""))
    answer = redirect(request, "/login")
    answer.delete_cookie(SESSION_COOKIE, path=base_path(request) or "/")
    return answer
