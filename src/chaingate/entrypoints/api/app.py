"""The FastAPI application: routers, problem+json errors, body limits. No business logic."""

from __future__ import annotations

from fastapi import FastAPI

from chaingate import __version__
from chaingate.bootstrap import Container
from chaingate.entrypoints.api.limits import BodyLimitMiddleware
from chaingate.entrypoints.api.problems import install_problem_handlers, problem_responses
from chaingate.entrypoints.api.ratelimit import RateLimitMiddleware
from chaingate.entrypoints.api.routers import (
    events,
    invoices,
    system,
    treasury,
    wallets,
    webhooks,
)
from chaingate.entrypoints.web.checkout import install_checkout
from chaingate.entrypoints.web.dashboard import mount_dashboard
from chaingate.entrypoints.web.templating import mount_static

DESCRIPTION = """
Self-hosted crypto payments. Amounts are decimal strings; every error is
`application/problem+json` with a stable `code`; every POST accepts `Idempotency-Key`.
Authenticate with `Authorization: Bearer <api key>`.
"""


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="ChainGate",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.container = container
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=container.settings.max_body_bytes)
    if container.rate_limiter is not None:
        # Added last, so it runs first: a refused request costs no body read.
        app.add_middleware(RateLimitMiddleware, limiter=container.rate_limiter)
    app.include_router(system.router)
    # Every authenticated route can answer these; routes document their own others.
    for module in (invoices, wallets, treasury, webhooks, events):
        app.include_router(module.router, responses=problem_responses(401, 403, 422, 429))
    install_checkout(app, container)
    mount_static(app)
    mount_dashboard(app, container)
    return app
