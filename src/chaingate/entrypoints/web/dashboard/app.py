"""The dashboard as a FastAPI sub-application mounted at /dashboard.

Its own error handlers answer with HTML pages (never a 500 for bad input), and every answer
carries the security headers. The API's handlers and problem+json stay with the API.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from chaingate.bootstrap import Container
from chaingate.domain.errors import DomainError
from chaingate.entrypoints.web.dashboard import (
    auth,
    export,
    invoices,
    security_pages,
    settings_pages,
    webhooks,
)
from chaingate.entrypoints.web.dashboard.security import SecurityHeadersMiddleware
from chaingate.entrypoints.web.dashboard.session import (
    CsrfRefused,
    LoginRequired,
    base_path,
    render,
)

log = logging.getLogger(__name__)
MOUNT_PATH = "/dashboard"


def create_dashboard(container: Container) -> FastAPI:
    dashboard = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    dashboard.state.container = container
    dashboard.add_middleware(SecurityHeadersMiddleware)
    _install_error_pages(dashboard)
    for module in (auth, invoices, webhooks, settings_pages, export, security_pages):
        dashboard.include_router(module.router)
    return dashboard


def mount_dashboard(app: FastAPI, container: Container) -> None:
    """Serve the dashboard under /dashboard of the API application."""
    app.mount(MOUNT_PATH, create_dashboard(container), name="dashboard")


def _error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status, title=title, detail=detail, user=None)


def _install_error_pages(dashboard: FastAPI) -> None:
    @dashboard.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(base_path(request) + "/login", status_code=303)

    @dashboard.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        detail = "The form was stale or did not come from this dashboard. Reload and try again."
        return _error(request, 403, "Request refused", detail)

    @dashboard.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        title = "Not found" if exc.status == 404 else "Request refused"
        return _error(request, exc.status, title, exc.detail)

    @dashboard.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors())
        return _error(request, 422, "Invalid input", f"Check these fields: {fields}.")

    @dashboard.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return _error(request, exc.status_code, title, str(exc.detail))

    @dashboard.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, "Something went wrong", "The error was logged.")
