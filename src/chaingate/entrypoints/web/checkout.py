"""The hosted checkout: `/i/{invoice_id}`, public by design (no API key), rate-limited per address.

Routes: the page (HTML), its QR code (SVG), its status (JSON) and a Server-Sent Events stream of
status changes. Streams are capped per process; over the cap the page polls status.json.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import segno
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from chaingate.bootstrap import Container
from chaingate.entrypoints.api.deps import ContainerDep
from chaingate.entrypoints.web.templating import templates
from chaingate.services.checkout import Checkout, load_checkout

router = APIRouter(prefix="/i", include_in_schema=False)

# Scripts, styles and images from this origin only; nothing inline, no forms, no plugins.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "
)
KEEPALIVE_SECONDS = 2.0
STREAM_LIFETIME_SECONDS = 300.0  # then EventSource reconnects: no connection lives for ever


class StreamSlots:
    """A counter of open status streams with a ceiling."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


def page_headers(*, embed: bool) -> dict[str, str]:
    """Security headers of every checkout answer; only embed mode may be framed."""
    headers = {
        "Content-Security-Policy": _CSP + ("*" if embed else "'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    if not embed:
        headers["X-Frame-Options"] = "DENY"
    return headers


async def _checkout(container: Container, invoice_id: str) -> Checkout | None:
    async with container.db.uow() as uow:
        return await load_checkout(uow, invoice_id, container.settings, container.family)


def _not_found(*, embed: bool) -> HTMLResponse:
    html = templates.get_template("checkout/not_found.html").render(embed=embed)
    return HTMLResponse(html, status_code=404, headers=page_headers(embed=embed))


def _embed(request: Request) -> bool:
    return request.query_params.get("embed") == "1"


@router.get("/{invoice_id}", response_class=HTMLResponse)
async def page(invoice_id: str, request: Request, container: ContainerDep) -> Response:
    embed = _embed(request)
    checkout = await _checkout(container, invoice_id)
    if checkout is None:
        return _not_found(embed=embed)
    html = templates.get_template("checkout/page.html").render(
        checkout=checkout,
        status=checkout.status_document(),
        status_json=json.dumps(checkout.status_document(), separators=(",", ":")),
        embed=embed,
    )
    return HTMLResponse(html, headers=page_headers(embed=embed))


@router.get("/{invoice_id}/qr.svg")
async def qr_code(invoice_id: str, request: Request, container: ContainerDep) -> Response:
    """The current payment request (the remainder, once something was paid) as a QR code."""
    checkout = await _checkout(container, invoice_id)
    if checkout is None:
        return _not_found(embed=_embed(request))
    svg = io.BytesIO()
    segno.make(checkout.payment_uri, error="m").save(
        svg, kind="svg", scale=1, border=2, omitsize=True, xmldecl=False, dark="#000", light="#fff"
    )
    return Response(svg.getvalue(), media_type="image/svg+xml", headers=page_headers(embed=False))


@router.get("/{invoice_id}/status.json")
async def status(invoice_id: str, container: ContainerDep) -> Response:
    checkout = await _checkout(container, invoice_id)
    if checkout is None:
        return JSONResponse({"state": "not_found"}, 404, headers=page_headers(embed=False))
    return JSONResponse(checkout.status_document(), headers=page_headers(embed=False))


@router.get("/{invoice_id}/events")
async def events(invoice_id: str, request: Request, container: ContainerDep) -> Response:
    """Server-Sent Events: a `status` message now and at every change, until a final state."""
    checkout = await _checkout(container, invoice_id)
    if checkout is None:
        return JSONResponse({"state": "not_found"}, 404, headers=page_headers(embed=False))
    slots: StreamSlots = request.app.state.checkout_streams
    if not slots.take():
        headers = {**page_headers(embed=False), "Retry-After": "30"}
        return JSONResponse({"state": "busy", "poll": True}, 503, headers=headers)
    headers = {**page_headers(embed=False), "X-Accel-Buffering": "no"}
    return SlotStream(_status_stream(container, checkout), slots, headers=headers)


class SlotStream(StreamingResponse):
    """An event stream that gives its slot back however it ends, even before its first byte."""

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncIterator[str], slots: StreamSlots, headers: dict[str, str]
    ) -> None:
        super().__init__(content, headers=headers)
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.give_back()


async def _status_stream(container: Container, first: Checkout) -> AsyncIterator[str]:
    poll = container.settings.checkout_poll_seconds
    loop = asyncio.get_running_loop()
    started = last_sent = loop.time()
    yield "retry: 3000\n\n"
    checkout: Checkout | None = first
    previous = None
    while checkout is not None and loop.time() - started < STREAM_LIFETIME_SECONDS:
        document = checkout.status_document()
        if document != previous:
            yield f"event: status\ndata: {json.dumps(document, separators=(',', ':'))}\n\n"
            previous, last_sent = document, loop.time()
        elif loop.time() - last_sent > KEEPALIVE_SECONDS:
            # Also how a departed client is noticed: writing to it fails, the stream ends.
            yield ": keep-alive\n\n"
            last_sent = loop.time()
        if checkout.state.final:
            return
        await asyncio.sleep(poll)
        checkout = await _checkout(container, first.invoice_id)


def install_checkout(app: FastAPI, container: Container) -> None:
    """Add the hosted checkout routes to `app`."""
    app.state.checkout_streams = StreamSlots(container.settings.checkout_max_streams)
    app.include_router(router)
