"""Webhook URLs that reach the gateway's own networks are refused through the API (the
production gateway of tests/support/gateway.py: no dev mode, no `allow_private_webhook_urls`,
no allow-list), and a refusal writes nothing. Names are resolved by a DNS the test controls
(the guard's resolver, replaced), so a name's answer is the test's choice, not the machine's.

At send time the same guard runs again before every attempt, and redirects are never followed
(a 302 to 169.254.169.254 is not fetched): tests/unit/test_webhook_sender.py
(`test_redirects_are_not_followed`, `test_a_refused_address_is_never_contacted`).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from chaingate.adapters import ssrf
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.db.tables import idempotency_keys, webhook_endpoints
from tests.support.gateway import (
    Gateway,
    MerchantHandle,
    running_gateway,
    running_production_gateway,
)

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
PUBLIC = "https://93.184.215.14/hooks/chaingate"  # a public address literal: no DNS needed

FORBIDDEN = [
    # loopback
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/admin",
    "http://127.255.255.254/",
    "http://user:pass@127.0.0.1/",
    "http://93.184.215.14@127.0.0.1/",  # the host is what follows the '@'
    # private ranges (RFC 1918, carrier-grade NAT)
    "http://10.0.0.5/hook",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    # cloud metadata and link-local
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.0.1/",
    # "this host"
    "http://0.0.0.0:5432/",
    # IPv6 loopback, unspecified, link-local, unique-local
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]:8080/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    # IPv4 hidden in IPv6: mapped, compatible, NAT64, 6to4
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    # integer, hex, octal and short spellings of 127.0.0.1 / 169.254.169.254
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://2852039166/",
    # names that are loopback by definition (RFC 6761), whatever DNS says
    "http://localhost/hook",
    "http://localhost./",
    "http://LOCALHOST:9000/",
    "http://api.localhost/",
    # not HTTP at all
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://93.184.215.14/",
]


# The test's DNS: names inside the gateway's networks, and one with a public and a private answer.
DNS = {
    "intranet.shop.test": ["10.1.2.3"],
    "db.shop.test": ["127.0.0.1"],
    "metadata.shop.test": ["169.254.169.254"],
    "mapped.shop.test": ["::ffff:192.168.0.10"],
    "split.shop.test": ["93.184.215.14", "172.16.5.5"],  # every answer must be public
    "public.shop.test": ["93.184.215.14"],
}


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return DNS[host]

    monkeypatch.setattr(ssrf, "system_resolver", resolve)  # read when the guard is built
    return DNS


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_production_gateway(clean_database_url, [NETWORK]) as gw:
        yield gw


async def count(gateway: Gateway, table: Any) -> int:
    async with gateway.container.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def assert_refused(shop: MerchantHandle, url: str, key: str) -> None:
    answer = await shop.post("/v1/webhooks", {"url": url}, **{"Idempotency-Key": key})
    assert answer.status_code == 422, f"{url}: {answer.status_code} {answer.text}"
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["code"], body["field"]) == ("webhook_url_forbidden", "url"), url


async def test_urls_reaching_internal_networks_are_refused(gateway: Gateway) -> None:
    settings = gateway.container.settings
    assert not settings.dev_mode and not settings.allow_private_webhook_urls
    assert not settings.webhook_allowed_networks
    shop = await gateway.merchant(with_wallets=False)
    for number, url in enumerate(FORBIDDEN):
        await assert_refused(shop, url, f"hook-{number}")
    assert await count(gateway, webhook_endpoints) == 0
    assert await count(gateway, idempotency_keys) == 0  # a refusal releases its key
    # Control: the same request with a public address is accepted, so the refusals above are
    # about where the URLs lead.
    accepted = await shop.post("/v1/webhooks", {"url": PUBLIC})
    assert accepted.status_code == 201, accepted.text


async def test_a_name_resolving_to_an_internal_address_is_refused(gateway: Gateway) -> None:
    # The guard follows what the name resolves to, not only what the URL spells.
    shop = await gateway.merchant(with_wallets=False)
    names = [n for n in DNS if n != "public.shop.test"] + ["unknown.shop.test"]
    for number, name in enumerate(names):
        answer = await shop.post(
            "/v1/webhooks",
            {"url": f"https://{name}:8443/hook"},
            **{"Idempotency-Key": f"name-{number}"},
        )
        assert answer.status_code == 422, f"{name}: {answer.text}"
        body = answer.json()
        assert body["code"] == "webhook_url_forbidden"
        if name == "unknown.shop.test":
            assert "could not be resolved" in body["detail"]
        else:
            assert "resolves to an address that is" in body["detail"], name  # refused by address
            assert DNS[name][-1] not in body["detail"]  # internal addresses are not echoed
    assert await count(gateway, webhook_endpoints) == 0
    # Control: a name with only public answers is accepted through the same resolver.
    accepted = await shop.post("/v1/webhooks", {"url": "https://public.shop.test/hook"})
    assert accepted.status_code == 201, accepted.text


async def test_an_endpoint_cannot_be_moved_to_a_forbidden_url(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    created = await shop.post("/v1/webhooks", {"url": PUBLIC})
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    headers = {"Authorization": f"Bearer {shop.api_key}"}
    for url in ["http://169.254.169.254/", "http://[::ffff:127.0.0.1]/", "http://2130706433/"]:
        answer = await shop.client.patch(
            f"/v1/webhooks/{endpoint_id}", json={"url": url, "description": "x"}, headers=headers
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "webhook_url_forbidden"
    after = (await shop.get(f"/v1/webhooks/{endpoint_id}")).json()
    assert (after["url"], after["description"]) == (PUBLIC, None)  # nothing half-applied


async def test_dev_mode_admits_loopback_but_still_not_metadata_or_private(
    clean_database_url: str,
) -> None:
    async with running_gateway(clean_database_url, [NETWORK]) as gw:  # dev_mode=True
        shop = await gw.merchant(with_wallets=False)
        local = await shop.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"})
        assert local.status_code == 201, local.text
        for number, url in enumerate(["http://169.254.169.254/", "http://10.0.0.5/"]):
            await assert_refused(shop, url, f"dev-{number}")
