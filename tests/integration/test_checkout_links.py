"""`checkout_url` in invoice answers and events, built from CHAINGATE_PUBLIC_URL: absolute
links the payer can open; the API's own address in dev mode without it; null in production
without it (the gateway does not guess its host). Through the app, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.bootstrap import load_settings
from chaingate.domain.errors import ConfigurationError
from tests.support.gateway import running_gateway

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
INVOICE = {"amount": "1", "currency": "ETH", "network": "anvil"}


async def created_and_announced(database_url: str, **settings: Any) -> tuple[Any, Any, Any]:
    """The created invoice, its GET, and its invoice.created event data; the page answers."""
    async with running_gateway(database_url, [NETWORK], **settings) as gateway:
        shop = await gateway.merchant()
        created = await shop.invoice(**INVOICE)
        fetched = await shop.fetch(created["id"])
        [event] = await shop.events(created["id"])
        listed = (await shop.get("/v1/invoices")).json()["data"]
        assert [i["checkout_url"] for i in listed] == [created["checkout_url"]]
        page = await gateway.client.get(f"/i/{created['id']}")
        assert page.status_code == 200 and created["address"] in page.text
        return created, fetched, event["data"]


async def test_checkout_url_is_absolute_under_public_url(clean_database_url: str) -> None:
    created, fetched, announced = await created_and_announced(
        clean_database_url, public_url="https://pay.shop.example/gateway/"
    )
    expected = f"https://pay.shop.example/gateway/i/{created['id']}"
    assert created["checkout_url"] == fetched["checkout_url"] == announced["checkout_url"]
    assert created["checkout_url"] == expected


async def test_dev_mode_without_public_url_links_to_the_api_itself(
    clean_database_url: str,
) -> None:
    created, _, announced = await created_and_announced(
        clean_database_url, api_host="0.0.0.0", api_port=18_765
    )
    link = urlsplit(created["checkout_url"])
    assert (link.scheme, link.netloc, link.path) == (
        "http",
        "127.0.0.1:18765",
        f"/i/{created['id']}",
    )
    assert announced["checkout_url"] == created["checkout_url"]


async def test_production_without_public_url_answers_null(clean_database_url: str) -> None:
    created, fetched, announced = await created_and_announced(clean_database_url, dev_mode=False)
    assert created["checkout_url"] is fetched["checkout_url"] is announced["checkout_url"] is None


@pytest.mark.parametrize(
    "url",
    ["ftp://pay.shop.example", "pay.shop.example", "https://user:pw@pay.shop.example",
     "https://pay.shop.example/?a=1", "https://pay.shop.example/#top", "https://"],
)  # fmt: skip
def test_a_public_url_that_is_no_base_stops_start_up(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAINGATE_PUBLIC_URL", url)
    with pytest.raises(ConfigurationError, match="public_url"):
        load_settings()
