"""The dashboard in a real Chromium against a real gateway (API, tracker, dispatcher) on anvil:
sign in, find a paid invoice by search, read its payment and timeline, redeliver a webhook and
watch the new attempt appear. Optionally writes docs/screenshots/dashboard-overview.png."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.bootstrap import Container, build_container
from chaingate.config import NetworkConfig, Settings, TokenConfig
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus
from chaingate.entrypoints.runtime import serve
from chaingate.services.merchants import create_merchant
from tests.support.anvil import AnvilNode
from tests.support.dashboard import PASSWORD, add_user, settle_with_payment
from tests.support.gateway import MERCHANT_MNEMONICS
from tests.support.net import free_port
from tests.support.webhook_receiver import Receiver, always

ETH = 10**18
EMAIL = "owner@coffee.example"


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Running:
    container: Container
    base_url: str
    api: httpx.AsyncClient  # authenticated with the merchant's key
    merchant_id: str


@asynccontextmanager
async def running(
    database_url: str, network: NetworkConfig, workers: tuple[str, ...] | None = None
) -> AsyncIterator[Running]:
    """The gateway serving HTTP on a free port, with a merchant, a wallet and a dashboard user."""
    port = free_port()
    settings = Settings(
        database_url=database_url,
        networks=[network],
        dev_mode=True,
        secret_key="dashboard-e2e",
        api_port=port,
    )
    container = build_container(settings)
    await upgrade_to_head(container.db.engine)
    stop, ready = asyncio.Event(), asyncio.Event()
    options = {} if workers is None else {"workers": workers}
    runtime = asyncio.ensure_future(serve(container, stop=stop, ready=ready, **options))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        async with container.db.uow() as uow:
            merchant, key = await create_merchant(uow, "Corner Coffee", container.clock.now())
        await add_user(container.db, merchant.id, EMAIL, container.clock.now())
        base_url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base_url, headers=auth) as api:
            xpub = account_xpub_from_mnemonic(MERCHANT_MNEMONICS[0])
            wallet = await api.post("/v1/wallets", json={"network": network.name, "xpub": xpub})
            assert wallet.status_code == 201, wallet.text
            yield Running(container, base_url, api, merchant.id)
    finally:
        stop.set()
        await asyncio.wait_for(runtime, 20)


async def sign_in(page: Page, base_url: str) -> None:
    await page.goto(f"{base_url}/dashboard/")
    await expect(page).to_have_url(f"{base_url}/dashboard/login")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()


@pytest.mark.anvil
async def test_find_a_paid_invoice_and_redeliver_its_webhook(
    anvil_isolated: AnvilNode, clean_database_url: str, browser: Browser
) -> None:
    node = anvil_isolated
    network = node.network(required_confirmations=2, start_block=await node.tip())
    receiver = Receiver()
    try:
        async with running(clean_database_url, network) as gw:
            hook = await gw.api.post(
                "/v1/webhooks", json={"url": receiver.route("/h", always(200))}
            )
            assert hook.status_code == 201, hook.text
            created = await gw.api.post(
                "/v1/invoices",
                json={
                    "amount": "0.05",
                    "currency": "ETH",
                    "network": "anvil",
                    "order_id": "CC-7731",
                },
            )
            invoice = created.json()
            txid = await node.rpc(
                "eth_sendTransaction",
                {
                    "from": node.accounts[1].address,
                    "to": invoice["address"],
                    "value": hex(ETH // 20),
                },
            )

            async def settled() -> bool:
                await node.mine(1)
                answer = await gw.api.get(f"/v1/invoices/{invoice['id']}")
                return bool(answer.json()["status"] == "settled")

            await wait_for(settled, 30, "the invoice to settle")

            async def delivered() -> bool:
                return len(receiver.at("/h")) >= 4  # created, payment_received, processing, settled

            await wait_for(delivered, 30, "the webhooks to arrive")

            page = await browser.new_page()
            await sign_in(page, gw.base_url)
            await page.get_by_role("navigation").get_by_role("link", name="Invoices").click()
            await page.get_by_role("searchbox").fill(txid)
            await page.get_by_role("button", name="Filter").click()
            await page.get_by_role("link", name=invoice["id"]).click()

            await expect(page.get_by_role("heading", name=invoice["id"])).to_be_visible()
            payment = page.locator("#payments tr.payment")
            await expect(payment).to_have_count(1)
            await expect(payment).to_contain_text("0.05 ETH")
            await expect(payment).to_contain_text(txid[:10])
            await expect(payment).to_contain_text("confirmed")
            timeline = page.locator("#timeline .event-type")
            await expect(timeline).to_have_text(
                [
                    "invoice.created",
                    "invoice.payment_received",
                    "invoice.processing",
                    "invoice.settled",
                ]
            )

            settled_row = page.locator("tr.delivery", has_text="invoice.settled")
            await expect(settled_row.locator(".attempt")).to_have_count(1)
            await settled_row.get_by_role("button", name="Redeliver").click()
            # The dispatcher sends it again; the page refreshes its table until nothing is pending.
            await expect(settled_row.locator(".attempt")).to_have_count(2, timeout=20_000)
            await expect(settled_row).to_contain_text("succeeded")
            assert len(receiver.at("/h")) == 5
            await page.close()
    finally:
        receiver.close()


USDC = TokenConfig(symbol="USDC", contract="0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", decimals=6)
SHOWCASE = EvmNetworkConfig(
    name="ethereum",
    chain_id=1,
    rpc_urls=["http://127.0.0.1:9"],
    required_confirmations=12,
    tokens=[USDC],
)


async def test_overview_screenshot(
    clean_database_url: str, browser: Browser, tmp_path: Path
) -> None:
    """A seeded overview renders its counts and charts; with CHAINGATE_SCREENSHOTS_DIR set, the
    picture goes there (the README's screenshot), else to a temporary folder."""
    target = os.environ.get("CHAINGATE_SCREENSHOTS_DIR") or str(tmp_path)
    picker = random.Random(7)  # the same picture on every run
    async with running(clean_database_url, SHOWCASE, workers=()) as gw:
        now = gw.container.clock.now()
        counted = {"settled": 0, "new": 0}
        for n in range(46):
            asset = "USDC" if n % 3 else "ETH"
            amount = (
                f"{picker.randint(12, 480)}.{picker.randint(0, 99):02d}"
                if asset == "USDC"
                else f"0.{picker.randint(8, 190):03d}"
            )
            created = await gw.api.post(
                "/v1/invoices",
                json={
                    "amount": amount,
                    "currency": asset,
                    "network": "ethereum",
                    "order_id": f"CC-{7000 + n}",
                },
            )
            assert created.status_code == 201, created.text
            invoice = created.json()
            decimals = 6 if asset == "USDC" else 18
            units = int(amount.replace(".", "")) * 10 ** (decimals - len(amount.split(".")[1]))
            day = now - timedelta(days=picker.randint(0, 12), hours=picker.randint(0, 8))
            fate = picker.random()
            if fate < 0.72:
                await settle_with_payment(gw.container.db, invoice["id"], units, day)
                counted["settled"] += 1
            elif fate < 0.82:
                await settle_with_payment(
                    gw.container.db, invoice["id"], units, now, status=InvoiceStatus.PROCESSING
                )
            elif fate < 0.94:
                async with gw.container.db.uow() as uow:
                    await uow.invoices.save_state(
                        invoice["id"],
                        status=InvoiceStatus.EXPIRED,
                        additional_status=AdditionalStatus.NONE,
                        amount_paid=0,
                        at=now,
                    )
                    await uow.commit()
            else:
                counted["new"] += 1
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await sign_in(page, gw.base_url)
        await expect(page.locator('[data-stat="settled"]')).to_have_text(str(counted["settled"]))
        await expect(page.locator("figure.chart")).to_have_count(2)
        path = Path(target) / "dashboard-overview.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path), full_page=True)
        await page.close()
    assert path.stat().st_size > 10_000
