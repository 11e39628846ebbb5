"""The hosted checkout in a real Chromium, against a real gateway (uvicorn on a loopback port, a
real database on SQLite and PostgreSQL) and a real anvil chain paid by an independent client.

The tracker and the expirer are stepped by the test, so each assertion sees exactly the blocks
the test mined; the page learns of them by itself (SSE, or polling when streams are refused).
Playwright's waits (`expect`) are for the page to update, not speed assertions.

Set CHAINGATE_SCREENSHOTS_DIR to also write docs screenshots (checkout-*.png) there.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno
from playwright.async_api import Browser, BrowserContext, Page, expect
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from chaingate.entrypoints.api.app import create_app
from chaingate.services.expiry import expire_due
from tests.support.anvil import AnvilNode
from tests.support.clock import SteerableClock
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.payer import Payer
from tests.support.uvicorn_server import serving

pytestmark = pytest.mark.anvil

ETH = 10**18
SHOP_NAME = "Aurora Coffee Roasters"
SHOP_ORIGIN = "http://shop.test"  # the merchant's own site, served by Playwright's router


@dataclass
class World:
    node: AnvilNode
    gateway: Gateway
    shop: MerchantHandle
    clock: SteerableClock
    base_url: str
    payer: Payer

    async def invoice(self, amount: str = "0.5", **fields: Any) -> dict[str, Any]:
        return await self.shop.invoice(amount=amount, currency="ETH", network="anvil", **fields)

    async def sync(self) -> None:
        await self.gateway.sync("anvil")

    async def expire(self) -> int:
        network = self.gateway.container.settings.networks[0]
        family = self.gateway.container.family(network)
        return await expire_due(self.gateway.container.db, network, family, self.clock)


@asynccontextmanager
async def checkout_world(
    node: AnvilNode, database_url: str, **settings: Any
) -> AsyncIterator[World]:
    """A gateway served over HTTP on this event loop, a merchant, and a payer on `node`."""
    network = node.network(required_confirmations=2, start_block=await node.tip())
    block = await node.rpc("eth_getBlockByNumber", "latest", False)
    chain_now = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    clock = SteerableClock(max(chain_now, datetime.now(UTC)))
    settings = {"checkout_poll_seconds": 0.1, **settings}
    async with running_gateway(database_url, [network], clock=clock, **settings) as gateway:
        shop = await gateway.merchant(SHOP_NAME)
        await gateway.sync("anvil")
        async with serving(create_app(gateway.container)) as base_url:
            payer = Payer(node, node.accounts[1].address, [])
            yield World(node, gateway, shop, clock, base_url, payer)


def merchant_site(html: str) -> ASGIApp:
    """The merchant's own web site: another origin, serving one page."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await HTMLResponse(html)(scope, receive, send)

    return app


@pytest.fixture
async def world(anvil_isolated: AnvilNode, clean_database_url: str) -> AsyncIterator[World]:
    async with checkout_world(anvil_isolated, clean_database_url) as built:
        yield built


@asynccontextmanager
async def opened(
    browser: Browser, url: str, **context_options: Any
) -> AsyncIterator[tuple[BrowserContext, Page]]:
    context = await browser.new_context(**context_options)
    try:
        page = await context.new_page()
        await page.goto(url)
        yield context, page
    finally:
        await context.close()  # ends the page's event stream before the server stops


def screenshot_path(name: str) -> Path | None:
    directory = os.environ.get("CHAINGATE_SCREENSHOTS_DIR")
    return Path(directory) / name if directory else None


async def watch_navigations(page: Page) -> list[str]:
    """Main-frame navigations from now on, plus a marker a reload would wipe."""
    navigations: list[str] = []
    page.on("framenavigated", lambda f: navigations.append(f.url) if f == page.main_frame else None)
    await page.evaluate("window.__noReload = 'still here'")
    return navigations


async def test_page_turns_paid_without_reload(world: World, browser: Browser) -> None:
    invoice = await world.invoice("0.5")
    url = f"{world.base_url}/i/{invoice['id']}"
    async with opened(browser, url, viewport={"width": 1280, "height": 960}) as (_, page):
        checkout = page.locator("#checkout")
        await expect(checkout).to_have_attribute("data-state", "waiting")
        await expect(checkout).to_have_attribute("data-live", "stream")
        await expect(page.locator("#amount-due")).to_have_text("0.5")
        await expect(page.locator("#address")).to_have_value(invoice["address"])
        await expect(page.get_by_role("status")).to_contain_text("Waiting for your payment")
        if (shot := screenshot_path("checkout-desktop.png")) is not None:
            await page.screenshot(path=str(shot), full_page=True)
        navigations = await watch_navigations(page)

        await world.payer.send(invoice["address"], "ETH", ETH // 2)
        await world.sync()
        await expect(checkout).to_have_attribute("data-state", "seen")
        await expect(page.get_by_role("status")).to_contain_text("1/2 confirmations")

        await world.node.mine(1)
        await world.sync()
        await expect(checkout).to_have_attribute("data-state", "paid")
        await expect(page.get_by_role("status")).to_have_text("Paid. Thank you!")
        await expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
        await expect(page.locator("#qr")).to_be_hidden()
        await expect(page.locator("#redirect-note")).to_be_hidden()  # no redirect_url set
        assert await page.evaluate("window.__noReload") == "still here"
        assert navigations == []
        assert page.url == url


async def test_paid_invoice_sends_the_payer_to_redirect_url(world: World, browser: Browser) -> None:
    thanks = f"{SHOP_ORIGIN}/orders/77/thanks"
    invoice = await world.invoice("0.25", redirect_url=thanks, required_confirmations=1)
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (context, page):
        await context.route(
            f"{SHOP_ORIGIN}/**",
            lambda route: route.fulfill(
                body="<h1>Thanks for your order</h1>", content_type="text/html"
            ),
        )
        await expect(page.locator("#checkout")).to_have_attribute("data-live", "stream")
        await world.payer.send(invoice["address"], "ETH", ETH // 4)
        await world.sync()
        await expect(page.locator("#redirect-note")).to_be_visible()
        await page.wait_for_url(thanks)
        await expect(page.get_by_role("heading")).to_have_text("Thanks for your order")


async def test_underpaid_shows_the_remainder_and_a_fresh_qr(world: World, browser: Browser) -> None:
    invoice = await world.invoice("0.5")
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (_, page):
        qr = page.locator("#qr")
        first_qr = await qr.get_attribute("src")
        await expect(page.locator("#checkout")).to_have_attribute("data-live", "stream")
        await world.payer.send(invoice["address"], "ETH", ETH // 5)
        await world.sync()
        await expect(page.locator("#checkout")).to_have_attribute("data-state", "underpaid")
        await expect(page.get_by_role("status")).to_contain_text("pay the remaining 0.3 ETH")
        await expect(page.locator("#amount-due")).to_have_text("0.3")
        await expect(page.locator("#amount-paid")).to_have_text("0.2")
        await expect(qr).to_have_attribute(
            "src", f"/i/{invoice['id']}/qr.svg?units={3 * ETH // 10}"
        )
        assert await qr.get_attribute("src") != first_qr
        wallet = page.get_by_role("link", name="Open in wallet")
        remainder_uri = f"ethereum:{invoice['address']}@31337?value={3 * ETH // 10}"
        await expect(wallet).to_have_attribute("href", remainder_uri)
        metamask = page.get_by_role("link", name="Open in MetaMask")
        await expect(metamask).to_have_attribute(
            "href", "https://metamask.app.link/send/" + remainder_uri.removeprefix("ethereum:")
        )
        # The image the page now shows is the QR of the remainder (same dark modules as a code
        # built independently from the remainder's URI).
        async with httpx.AsyncClient(base_url=world.base_url) as http:
            shown = await http.get(str(await qr.get_attribute("src")))
        expected = io.BytesIO()
        segno.make(remainder_uri, error="m").save(expected, kind="svg", border=2, omitsize=True)
        modules = re.compile(rb' d="([^"]+)"')
        assert modules.findall(shown.content)[-1] == modules.findall(expected.getvalue())[-1]
        natural_width = await qr.evaluate("img => img.naturalWidth")
        assert natural_width > 0  # the browser decoded the new SVG

        await world.payer.send(invoice["address"], "ETH", 3 * ETH // 10)
        await world.node.mine(1)
        await world.sync()
        await expect(page.locator("#checkout")).to_have_attribute("data-state", "paid")


async def test_expired_invoice(world: World, browser: Browser) -> None:
    invoice = await world.invoice("1", expires_in=60)
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (_, page):
        await expect(page.locator("#countdown")).to_have_text(re.compile(r"^[0-9]+:[0-5][0-9]$"))
        await expect(page.locator("#checkout")).to_have_attribute("data-live", "stream")
        later = world.clock.advance(61)
        await world.node.rpc("evm_mine", int(later.timestamp()))
        await world.sync()
        assert await world.expire() == 1
        await expect(page.locator("#checkout")).to_have_attribute("data-state", "expired")
        await expect(page.get_by_role("heading", name="This invoice has expired")).to_be_visible()
        await expect(page.locator("#address")).to_be_hidden()


async def test_time_up_before_the_chain_confirms_expiry(world: World, browser: Browser) -> None:
    # Created two minutes before the browser's now (the chain's clock may run ahead of it), so
    # its expiry is a minute in the browser's past while no block proves it yet.
    behind = (world.clock.now() - datetime.now(UTC)).total_seconds() + 120
    world.clock.advance(-behind)
    invoice = await world.invoice("1", expires_in=60)
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (_, page):
        checkout = page.locator("#checkout")
        await expect(page.locator("#countdown")).to_have_text("0:00")
        await expect(checkout).to_have_attribute("data-timeup", "")
        await expect(page.get_by_role("status")).to_have_text(
            "Time is up. Please do not send a payment now."
        )
        assert await checkout.get_attribute("data-state") == "waiting"  # the server decides


async def test_page_polls_when_streams_are_refused(
    anvil_isolated: AnvilNode, clean_database_url: str, browser: Browser
) -> None:
    async with checkout_world(anvil_isolated, clean_database_url, checkout_max_streams=0) as world:
        invoice = await world.invoice("0.1", required_confirmations=1)
        async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (_, page):
            await expect(page.locator("#checkout")).to_have_attribute("data-live", "polling")
            navigations = await watch_navigations(page)
            await world.payer.send(invoice["address"], "ETH", ETH // 10)
            await world.sync()
            await expect(page.locator("#checkout")).to_have_attribute("data-state", "paid")
            assert navigations == []


@pytest.mark.parametrize("width", [320, 375])
async def test_small_screens_have_no_horizontal_scroll(
    world: World, browser: Browser, width: int
) -> None:
    invoice = await world.invoice("0.123456789012345678")
    options = {"viewport": {"width": width, "height": 800}, "is_mobile": True, "has_touch": True}
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}", **options) as (_, page):
        await expect(page.locator("#amount-due")).to_have_text("0.123456789012345678")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow == 0, f"{overflow}px of horizontal scroll at {width}px"
        for name in ("Copy address", "Open in wallet"):
            box = (
                await page.get_by_role("button", name=name)
                .or_(page.get_by_role("link", name=name))
                .bounding_box()
            )
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, name
        if width == 375 and (shot := screenshot_path("checkout-mobile.png")) is not None:
            await page.screenshot(path=str(shot), full_page=True)


async def test_dark_mode_follows_the_system(world: World, browser: Browser) -> None:
    invoice = await world.invoice()
    url = f"{world.base_url}/i/{invoice['id']}"
    backgrounds = []
    for scheme in ("light", "dark"):
        async with opened(browser, url, color_scheme=scheme) as (_, page):
            backgrounds.append(
                await page.evaluate("getComputedStyle(document.body).backgroundColor")
            )
    assert backgrounds == ["rgb(243, 245, 249)", "rgb(13, 17, 23)"]


async def test_copy_address_with_the_keyboard(world: World, browser: Browser) -> None:
    invoice = await world.invoice()
    async with opened(browser, f"{world.base_url}/i/{invoice['id']}") as (context, page):
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        copy = page.get_by_role("button", name="Copy address")
        for _ in range(10):  # Tab through the page until the address's copy button has focus
            await page.keyboard.press("Tab")
            if await copy.evaluate("el => el === document.activeElement"):
                break
        else:
            raise AssertionError("the copy button is not reachable with Tab")
        await page.keyboard.press("Enter")
        await expect(copy).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == invoice["address"]
        assert await copy.evaluate("el => el === document.activeElement")  # focus stays


async def test_widget_opens_the_checkout_in_a_modal(world: World, browser: Browser) -> None:
    invoice = await world.invoice("0.05", required_confirmations=1)
    shop_page = f"""<!doctype html><html><head><title>Aurora Coffee</title></head>
<body style="font-family: system-ui; padding: 40px; background: #faf7f2">
<h1>Your basket</h1><p>Ethiopia Yirgacheffe, 250 g &mdash; 0.05 ETH</p>
<script src="{world.base_url}/static/widget.js" data-invoice="{invoice["id"]}"></script>
</body></html>"""
    # A real second server: Chromium lets only loopback pages load scripts from loopback.
    async with serving(merchant_site(shop_page)) as shop_url:
        await _pay_through_the_widget(world, browser, invoice, f"{shop_url}/basket")


async def _pay_through_the_widget(
    world: World, browser: Browser, invoice: dict[str, Any], shop_url: str
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        await page.goto(shop_url)
        await page.evaluate(
            "window.addEventListener('chaingate:paid', e => { window.__paid = e.detail.invoice })"
        )
        await page.get_by_role("button", name="Pay with crypto").click()
        dialog = page.get_by_role("dialog", name="Crypto payment")
        await expect(dialog).to_be_visible()
        frame = page.frame_locator("iframe[title='ChainGate checkout']")
        await expect(frame.get_by_role("heading", name=SHOP_NAME)).to_be_visible()
        await expect(frame.locator("#checkout")).to_have_attribute("data-live", "stream")
        pay_button = page.get_by_role("button", name="Pay with crypto")
        assert await pay_button.evaluate(
            "el => el.closest('[inert]') !== null"
        )  # modal: page inert
        close = page.get_by_role("button", name="Close payment window")
        await close.focus()
        for _ in range(3):
            await page.keyboard.press("Shift+Tab")
            assert not await pay_button.evaluate("el => el === document.activeElement")
        if (shot := screenshot_path("checkout-widget.png")) is not None:
            await page.screenshot(path=str(shot))

        await world.payer.send(invoice["address"], "ETH", ETH // 20)
        await world.sync()
        await expect(frame.locator("#checkout")).to_have_attribute("data-state", "paid")
        await page.wait_for_function("window.__paid !== undefined")
        assert await page.evaluate("window.__paid") == invoice["id"]

        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        await expect(pay_button).to_be_focused()
        assert await pay_button.evaluate("el => el.closest('[inert]') === null")

        # Without ?embed=1 the checkout refuses to be framed (X-Frame-Options, frame-ancestors).
        loaded = await page.evaluate_handle(
            "url => new Promise(done => { const f = document.createElement('iframe');"
            " f.onload = () => done(f); f.src = url; document.body.appendChild(f); })",
            f"{world.base_url}/i/{invoice['id']}",
        )
        element = loaded.as_element()
        assert element is not None
        plain = await element.content_frame()
        assert plain is not None
        assert not plain.url.startswith(world.base_url), plain.url  # Chromium's error page
        assert await plain.get_by_role("heading", name=SHOP_NAME).count() == 0
    finally:
        await context.close()
