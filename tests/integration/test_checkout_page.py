"""The hosted checkout over the real app and a real database (SQLite and PostgreSQL): what the
page shows and hides, its headers, its 404s, the redirect_url contract and the stream cap.

Payments and live updates in a real browser are in tests/e2e/test_checkout_browser.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import pytest
import segno

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from tests.support.gateway import (
    MERCHANT_MNEMONICS,
    Gateway,
    MerchantHandle,
    running_gateway,
    running_production_gateway,
)

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
SECRET_METADATA = {"customer_email": "alice@example.org", "note": "vip-secret-note"}


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [NETWORK]) as gw:
        yield gw


async def new_invoice(shop: MerchantHandle, **fields: Any) -> dict[str, Any]:
    body = {"amount": "0.125", "currency": "ETH", "network": "anvil", **fields}
    return await shop.invoice(**body)


async def test_page_shows_what_the_payer_needs_and_nothing_private(gateway: Gateway) -> None:
    shop = await gateway.merchant("Corner <Shop> & Co")
    invoice = await new_invoice(
        shop, order_id="ORDER-77-internal", metadata=SECRET_METADATA, redirect_url="https://x.io/"
    )
    page = await gateway.client.get(f"/i/{invoice['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Corner &lt;Shop&gt; &amp; Co" in html  # escaped, never markup
    assert "<Shop>" not in html
    assert ">0.125<" in html and "ETH" in html and "anvil" in html
    assert f'value="{invoice["address"]}"' in html
    assert f'src="/i/{invoice["id"]}/qr.svg?units=125000000000000000"' in html
    uri = invoice["payment_uri"]
    assert uri == f"ethereum:{invoice['address']}@31337?value=125000000000000000"
    assert f'href="{uri}"' in html
    assert f'href="https://metamask.app.link/send/{uri.removeprefix("ethereum:")}"' in html
    assert 'aria-live="polite"' in html and 'role="status"' in html
    assert 'for="address"' in html  # the address field is labelled
    for private in [
        "ORDER-77-internal",
        "alice@example.org",
        "vip-secret-note",
        "x.io",
        shop.merchant_id,
    ]:
        assert private not in unescape(html), private


async def test_headers_forbid_framing_except_in_embed_mode(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    invoice = await new_invoice(shop)
    plain = await gateway.client.get(f"/i/{invoice['id']}")
    assert plain.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
    assert "script-src 'self'" in plain.headers["content-security-policy"]
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in plain.text  # nothing inline: the CSP would block it

    embedded = await gateway.client.get(f"/i/{invoice['id']}", params={"embed": "1"})
    assert embedded.status_code == 200
    assert "x-frame-options" not in embedded.headers
    assert "frame-ancestors *" in embedded.headers["content-security-policy"]
    assert 'data-embed="1"' in embedded.text


@pytest.mark.parametrize(
    "invoice_id",
    [
        "inv_00000000000000000000000000",  # well-formed, unknown
        "inv_short",
        "not-an-id",
        "inv_" + "a" * 5000,
        "%27%22%3Cscript%3E",  # (NUL is refused app-wide with 422 invalid_character)
    ],
)
async def test_unknown_or_malformed_ids_are_a_404_page(gateway: Gateway, invoice_id: str) -> None:
    page = await gateway.client.get(f"/i/{invoice_id}")
    assert page.status_code == 404
    assert "Invoice not found" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    for suffix in ("/qr.svg", "/status.json", "/events"):
        answer = await gateway.client.get(f"/i/{invoice_id}{suffix}")
        assert answer.status_code == 404, suffix


async def test_qr_code_encodes_the_payment_request(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    invoice = await new_invoice(shop)
    answer = await gateway.client.get(f"/i/{invoice['id']}/qr.svg")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    expected = io.BytesIO()
    uri = f"ethereum:{invoice['address']}@31337?value=125000000000000000"
    segno.make(uri, error="m").save(
        expected, kind="svg", scale=1, border=2, omitsize=True, xmldecl=False
    )
    # Same dark modules (the last path; ours adds a white background) as an independently
    # built code of the expected URI.
    path = re.compile(rb' d="([^"]+)"')
    assert path.findall(answer.content)[-1] == path.findall(expected.getvalue())[-1]
    assert b'fill="#fff"' in answer.content  # scannable in dark mode too


async def test_status_json_is_the_public_view(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    invoice = await new_invoice(shop, redirect_url="https://shop.example/thanks", expires_in=900)
    answer = await gateway.client.get(f"/i/{invoice['id']}/status.json")
    assert answer.status_code == 200
    status = answer.json()
    assert status["state"] == "waiting"
    assert (status["amount"], status["amount_due"], status["amount_paid"]) == (
        "0.125",
        "0.125",
        "0",
    )
    assert status["confirmations"] == 0 and status["required_confirmations"] == 12
    assert status["expires_at"] == invoice["expires_at"]
    assert status["redirect_url"] is None  # only revealed once paid
    assert status["payment_uri"] == invoice["payment_uri"]


async def test_stream_over_the_cap_is_refused_so_the_page_polls(clean_database_url: str) -> None:
    async with running_gateway(clean_database_url, [NETWORK], checkout_max_streams=0) as gateway:
        shop = await gateway.merchant()
        invoice = await new_invoice(shop)
        answer = await gateway.client.get(f"/i/{invoice['id']}/events")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "30"
        assert answer.json() == {"state": "busy", "poll": True}


async def test_checkout_routes_are_rate_limited_per_address(clean_database_url: str) -> None:
    limits = {"rate_limit_per_second": 0.001, "rate_limit_burst": 3}
    async with running_gateway(clean_database_url, [NETWORK], **limits) as gateway:
        path = "/i/inv_00000000000000000000000000"
        answers = [(await gateway.client.get(path)).status_code for _ in range(5)]
    assert answers == [404, 404, 404, 429, 429]


# --- redirect_url on the invoice API ----------------------------------------------------------


async def test_redirect_url_is_stored_and_returned(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    url = "https://shop.example/orders/77/thanks?x=1#top"
    invoice = await new_invoice(shop, redirect_url=url)
    assert invoice["redirect_url"] == url
    assert (await shop.fetch(invoice["id"]))["redirect_url"] == url
    plain = await new_invoice(shop)
    assert plain["redirect_url"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example/thanks",  # outside dev mode: https only
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://",
        "https://user:pw@shop.example/",
        "https://shop.example/a b",
        "https://shop.example/" + "a" * 1990,
        "//shop.example/x",
    ],
)
async def test_bad_redirect_urls_are_refused(clean_database_url: str, url: str) -> None:
    async with running_production_gateway(clean_database_url, [NETWORK]) as gateway:
        shop = await gateway.merchant()
        answer = await shop.post(
            "/v1/invoices",
            {"amount": "1", "currency": "ETH", "network": "anvil", "redirect_url": url},
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "invalid_redirect_url"
        listed = await shop.get("/v1/invoices")
        assert listed.json()["data"] == []  # nothing written


async def test_dev_mode_accepts_http_redirects(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    invoice = await new_invoice(shop, redirect_url="http://127.0.0.1:3000/thanks")
    assert invoice["redirect_url"] == "http://127.0.0.1:3000/thanks"
    limit = "https://shop.example/" + "a" * (2000 - len("https://shop.example/"))
    assert (await new_invoice(shop, redirect_url=limit))["redirect_url"] == limit


async def test_invoice_of_a_network_no_longer_configured_is_a_404(clean_database_url: str) -> None:
    async with running_gateway(clean_database_url, [NETWORK]) as gateway:
        invoice = await new_invoice(await gateway.merchant())
    other = EvmNetworkConfig(name="base", chain_id=8453, rpc_urls=["http://127.0.0.1:9"])
    async with running_gateway(clean_database_url, [other]) as gateway:
        page = await gateway.client.get(f"/i/{invoice['id']}")
        assert page.status_code == 404 and "Invoice not found" in page.text


async def test_bitcoin_family_invoice_gets_a_bip21_request(clean_database_url: str) -> None:
    litecoin = BUILT_IN[("litecoin", "regtest")]
    ltc = BitcoinNetworkConfig(
        name="ltc",
        kind="bitcoin",
        chain="litecoin",
        chain_network="regtest",
        rpc_urls=["http://127.0.0.1:9"],
    )
    async with running_gateway(clean_database_url, [ltc]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        vpub = account_key_from_mnemonic(MERCHANT_MNEMONICS[1], litecoin, "p2wpkh")
        assert (await shop.post("/v1/wallets", {"network": "ltc", "xpub": vpub})).status_code == 201
        invoice = await shop.invoice(network="ltc", currency="LTC", amount="0.015")
        page = await gateway.client.get(f"/i/{invoice['id']}")
        qr = await gateway.client.get(f"/i/{invoice['id']}/qr.svg")
    bip21 = f"litecoin:{invoice['address']}?amount=0.015"
    assert page.status_code == 200
    assert f'href="{bip21}"' in page.text
    assert "MetaMask" not in page.text  # no EVM wallet links on a Bitcoin-family network
    expected = io.BytesIO()
    segno.make(bip21, error="m").save(expected, kind="svg", border=2, omitsize=True)
    path = re.compile(rb' d="([^"]+)"')
    assert path.findall(qr.content)[-1] == path.findall(expected.getvalue())[-1]
