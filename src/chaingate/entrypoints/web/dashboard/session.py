"""Who is signed in: the session cookie, its CSRF token, and the page-rendering helper."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from chaingate.bootstrap import Container
from chaingate.entrypoints.web.templating import templates
from chaingate.services.dashboard import amount_text
from chaingate.services.dashboard_auth import SignedIn, csrf_ok, resume_session

SESSION_COOKIE = "cg_session"
LOGIN_CSRF_COOKIE = "cg_login_csrf"


class LoginRequired(Exception):
    """No live session: the handler sends the browser to the login page."""


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(container_of)]


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def signed_in(request: Request, container: ContainerDep) -> SignedIn:
    token = request.cookies.get(SESSION_COOKIE, "")
    async with container.db.uow() as uow:
        user = await resume_session(uow, token, container.clock.now())
    if user is None:
        raise LoginRequired()
    return user


UserDep = Annotated[SignedIn, Depends(signed_in)]


async def checked_csrf(
    request: Request, user: UserDep, csrf_token: Annotated[str, Form()] = ""
) -> SignedIn:
    """The signed-in user, once the form's CSRF token matched the session's."""
    if not csrf_ok(request.cookies.get(SESSION_COOKIE, ""), csrf_token):
        raise CsrfRefused()
    return user


EditorDep = Annotated[SignedIn, Depends(checked_csrf)]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    page = templates.get_template(f"dashboard/{template}")
    html = page.render(base=base_path(request), request_path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code)


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(base_path(request) + path, status_code=303)


def page(
    request: Request,
    container: Container,
    user: SignedIn,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A signed-in page: the user, their CSRF token and an amount formatter in the context."""
    settings = container.settings

    def amount(network: str, asset: str, units: int) -> str:
        return amount_text(settings, network, asset, units)

    return render(
        request, template, status_code, user=user, csrf=user.csrf_token, amount=amount, **context
    )
