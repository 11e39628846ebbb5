"""The HTTP API's contract: auth, validation, idempotency, isolation — on SQLite and PostgreSQL.

No chain is needed to create invoices (derivation is local), so these run without a node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.db.tables import events, invoices
from chaingate.config import TokenConfig
from tests.support.gateway import Gateway, running_gateway

USDT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
NETWORK = EvmNetworkConfig(
    name="anvil",
    chain_id=31337,
    rpc_urls=["http://127.0.0.1:9"],
    required_confirmations=3,
    tokens=[TokenConfig(symbol="USDT", contract=USDT, decimals=6)],
)


@pytest.fixture
async def gateway(clean_database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [NETWORK]) as gw:
        yield gw


async def count(gateway: Gateway, table: object) -> int:
    async with gateway.container.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_create_and_read_an_eth_invoice(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    created = await shop.invoice(
        amount="0.25", currency="ETH", network="anvil", order_id="A-1", metadata={"sku": 7}
    )
    assert created["status"] == "new"
    assert created["additional_status"] == "none"
    assert created["amount"] == created["amount_due"] == "0.25"
    assert created["amount_paid"] == "0"
    assert created["address"].startswith("0x") and len(created["address"]) == 42
    assert created["payment_uri"] == f"ethereum:{created['address']}@31337?value={25 * 10**16}"
    assert created["required_confirmations"] == 3
    assert created["payments"] == []
    assert await shop.fetch(created["id"]) == created
    kinds = [e["type"] for e in await shop.events(created["id"])]
    assert kinds == ["invoice.created"]


async def test_token_invoice_uses_the_eip681_transfer_form(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    created = await shop.invoice(amount="12.5", currency="USDT", network="anvil")
    assert created["payment_uri"] == (
        f"ethereum:{USDT}@31337/transfer?address={created['address']}&uint256=12500000"
    )


async def test_each_invoice_gets_a_fresh_address_even_concurrently(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    answers = await asyncio.gather(
        *(
            shop.post("/v1/invoices", {"amount": "1", "currency": "ETH", "network": "anvil"})
            for _ in range(12)
        )
    )
    assert [a.status_code for a in answers] == [201] * 12
    addresses = {a.json()["address"] for a in answers}
    assert len(addresses) == 12
    wallets = (await shop.get("/v1/wallets")).json()
    assert wallets[0]["next_index"] == 12  # no index skipped, none reused


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "abc", "currency": "ETH", "network": "anvil"}, 422, "invalid_amount"),
        ({"amount": 1.5, "currency": "ETH", "network": "anvil"}, 422, "validation_error"),
        ({"amount": "1.0000001", "currency": "USDT", "network": "anvil"}, 422, "too_many_decimals"),
        ({"amount": "9" * 90, "currency": "ETH", "network": "anvil"}, 422, "amount_out_of_range"),
        ({"amount": "-1", "currency": "ETH", "network": "anvil"}, 422, "invalid_amount"),
        ({"amount": "0", "currency": "ETH", "network": "anvil"}, 422, "invalid_amount"),
        ({"amount": "1", "currency": "DOGE", "network": "anvil"}, 422, "unknown_currency"),
        ({"amount": "1", "currency": "ETH", "network": "mars"}, 422, "unknown_network"),
        (
            {"amount": "1", "currency": "ETH", "network": "anvil", "expires_in": 5},
            422,
            "invalid_expires_in",
        ),
        (
            {"amount": "1", "currency": "ETH", "network": "anvil", "surprise": 1},
            422,
            "validation_error",
        ),
        (
            {"amount": "1", "currency": "ETH", "network": "anvil", "payment_tolerance": "80"},
            422,
            "invalid_payment_tolerance",
        ),
    ],
)
async def test_bad_input_is_a_problem_and_writes_nothing(
    gateway: Gateway, body: dict[str, object], status: int, code: str
) -> None:
    shop = await gateway.merchant()
    answer = await shop.post("/v1/invoices", body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code
    assert await count(gateway, invoices) == 0
    assert await count(gateway, events) == 0
    assert (await shop.get("/v1/wallets")).json()[0]["next_index"] == 0


async def test_malformed_deep_and_oversized_bodies(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    auth = {"Authorization": f"Bearer {shop.api_key}", "Content-Type": "application/json"}
    bad_json = await gateway.client.post("/v1/invoices", content=b"{not json", headers=auth)
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "malformed_json")
    deep = b'{"amount":"1","currency":"ETH","network":"anvil","metadata":' + b'{"a":' * 5000
    too_deep = await gateway.client.post("/v1/invoices", content=deep, headers=auth)
    assert (too_deep.status_code, too_deep.json()["code"]) == (422, "json_too_deep")
    huge = json.dumps(
        {"amount": "1", "currency": "ETH", "network": "anvil", "metadata": {"x": "y" * 100_000}}
    ).encode()
    too_big = await gateway.client.post("/v1/invoices", content=huge, headers=auth)
    assert (too_big.status_code, too_big.json()["code"]) == (413, "payload_too_large")
    assert await count(gateway, invoices) == 0


async def test_authentication_and_scopes(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    missing = await gateway.client.get("/v1/invoices")
    assert (missing.status_code, missing.json()["code"]) == (401, "unauthorized")
    forged = shop.api_key[:-2] + ("AA" if not shop.api_key.endswith("AA") else "BB")
    wrong = await gateway.client.get("/v1/invoices", headers={"Authorization": f"Bearer {forged}"})
    assert wrong.status_code == 401
    from chaingate.services.merchants import issue_api_key

    async with gateway.container.db.uow() as uow:
        _, read_only = await issue_api_key(
            uow, shop.merchant_id, "ro", ["invoices:read"], gateway.container.clock.now()
        )
    headers = {"Authorization": f"Bearer {read_only}"}
    assert (await gateway.client.get("/v1/invoices", headers=headers)).status_code == 200
    refused = await gateway.client.post(
        "/v1/invoices",
        json={"amount": "1", "currency": "ETH", "network": "anvil"},
        headers=headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")


async def test_idempotency_key_rules(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    other = await gateway.merchant("Other shop")
    body = {"amount": "1", "currency": "ETH", "network": "anvil", "order_id": "X"}
    first = await shop.post("/v1/invoices", body, **{"Idempotency-Key": "k-1"})
    again = await shop.post("/v1/invoices", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    changed = await shop.post("/v1/invoices", {**body, "amount": "2"}, **{"Idempotency-Key": "k-1"})
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    # Keys are per merchant: the same key means nothing to another merchant.
    theirs = await other.post("/v1/invoices", body, **{"Idempotency-Key": "k-1"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert await count(gateway, invoices) == 2


async def test_idempotency_key_in_flight_is_a_conflict(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    from chaingate.services.idempotency import claim, fingerprint

    body = {"amount": "1", "currency": "ETH", "network": "anvil"}
    raw = json.dumps(body).encode()
    from datetime import timedelta

    # A first request that has claimed the key and is still running:
    await claim(
        gateway.container.db,
        shop.merchant_id,
        "busy",
        fingerprint("POST", "/v1/invoices", raw),
        gateway.container.clock.now(),
        timedelta(hours=1),
    )
    answer = await gateway.client.post(
        "/v1/invoices",
        content=raw,
        headers={
            "Authorization": f"Bearer {shop.api_key}",
            "Idempotency-Key": "busy",
            "Content-Type": "application/json",
        },
    )
    assert (answer.status_code, answer.json()["code"]) == (409, "idempotency_in_progress")
    assert await count(gateway, invoices) == 0


async def test_failed_request_releases_its_idempotency_key(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    bad = await shop.post(
        "/v1/invoices",
        {"amount": "1", "currency": "ETH", "network": "mars"},
        **{"Idempotency-Key": "retry-me"},
    )
    assert bad.status_code == 422
    # The client fixes nothing but the server-side cause could have been transient: a retry
    # with the same key and a corrected body is a new request, not a reuse.
    good = await shop.post(
        "/v1/invoices",
        {"amount": "1", "currency": "ETH", "network": "anvil"},
        **{"Idempotency-Key": "retry-me"},
    )
    assert good.status_code == 201


async def test_merchants_cannot_see_each_other(gateway: Gateway) -> None:
    alice = await gateway.merchant("Alice")
    bob = await gateway.merchant("Bob")
    invoice = await alice.invoice(amount="1", currency="ETH", network="anvil")
    assert (await bob.get(f"/v1/invoices/{invoice['id']}")).status_code == 404
    assert (await bob.get("/v1/invoices")).json()["data"] == []
    assert await bob.events() == []
    assert len(await alice.events()) == 1


async def test_list_filters_and_cursor_pagination(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    made = [
        await shop.invoice(
            amount=str(i + 1), currency="ETH", network="anvil", order_id=f"o-{i % 2}"
        )
        for i in range(5)
    ]
    first = (await shop.get("/v1/invoices", limit=2)).json()
    assert [i["id"] for i in first["data"]] == [made[4]["id"], made[3]["id"]]
    assert first["has_more"] is True
    second = (await shop.get("/v1/invoices", limit=2, starting_after=first["next_cursor"])).json()
    assert [i["id"] for i in second["data"]] == [made[2]["id"], made[1]["id"]]
    last = (await shop.get("/v1/invoices", limit=2, starting_after=second["next_cursor"])).json()
    assert [i["id"] for i in last["data"]] == [made[0]["id"]] and last["has_more"] is False
    odd = (await shop.get("/v1/invoices", order_id="o-1")).json()["data"]
    assert {i["id"] for i in odd} == {made[1]["id"], made[3]["id"]}
    assert (await shop.get("/v1/invoices", status="settled")).json()["data"] == []
    bad = await shop.get("/v1/invoices", status="bogus")
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")


async def test_wallet_rules(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    used_key = (await shop.get("/v1/wallets")).json()[0]["xpub"]
    second = await shop.post("/v1/wallets", {"network": "anvil", "xpub": used_key})
    assert (second.status_code, second.json()["code"]) == (409, "wallet_exists")

    newcomer = await gateway.merchant("Newcomer", with_wallets=False)
    no_wallet = await newcomer.post(
        "/v1/invoices", {"amount": "1", "currency": "ETH", "network": "anvil"}
    )
    assert (no_wallet.status_code, no_wallet.json()["code"]) == (409, "wallet_not_configured")
    taken = await newcomer.post("/v1/wallets", {"network": "anvil", "xpub": used_key})
    assert (taken.status_code, taken.json()["code"]) == (409, "wallet_key_in_use")
    private = await newcomer.post("/v1/wallets", {"network": "anvil", "xpub": XPRV})
    assert (private.status_code, private.json()["code"]) == (422, "private_key_not_accepted")
    junk = await newcomer.post("/v1/wallets", {"network": "anvil", "xpub": "xpub-junk"})
    assert (junk.status_code, junk.json()["code"]) == (422, "invalid_wallet")
    assert (await newcomer.get("/v1/wallets")).json() == []


# BIP-32 test vector 1 master private key: must never be accepted as a wallet.
XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3"
    "TGtRBeJgk33yuGBxrMPHi"
)


async def test_openapi_is_served(gateway: Gateway) -> None:
    spec = (await gateway.client.get("/openapi.json")).json()
    assert "/v1/invoices" in spec["paths"]
    assert (await gateway.client.get("/docs")).status_code == 200


async def test_webhook_creation_replays_its_secret_but_never_stores_it_in_clear(
    gateway: Gateway,
) -> None:
    from chaingate.adapters.db.tables import idempotency_keys, webhook_endpoints

    shop = await gateway.merchant()
    body = {"url": "http://127.0.0.1:9/hook", "events": ["invoice.settled"]}
    first = await shop.post("/v1/webhooks", body, **{"Idempotency-Key": "hook-1"})
    again = await shop.post("/v1/webhooks", body, **{"Idempotency-Key": "hook-1"})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and first.json()["secret"].startswith("whsec_")
    assert await count(gateway, webhook_endpoints) == 1
    secret = first.json()["secret"]
    async with gateway.container.db.engine.connect() as conn:
        stored = (await conn.execute(select(idempotency_keys.c.response_body))).scalars().all()
        sealed = (await conn.execute(select(webhook_endpoints.c.secret_ciphertext))).scalar_one()
    assert stored and all(secret not in text for text in stored)
    assert secret not in sealed
    listed = (await shop.get("/v1/webhooks")).json()
    assert "secret" not in listed[0] or listed[0]["secret"] is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (
            b'{"amount":"1","currency":"ETH","network":"anvil","metadata":{"x":NaN}}',
            "invalid_metadata",
        ),
        (
            b'{"amount":"1","currency":"ETH","network":"anvil","metadata":{"x":1e400}}',
            "invalid_metadata",
        ),
        (
            b'{"amount":"1","currency":"ETH","network":"anvil","order_id":"a\\u0000b"}',
            "invalid_character",
        ),
        (b'{"amount":"1","currency":"ETH","network":"anvil","expires_in":0}', "invalid_expires_in"),
        (
            b'{"amount":"1","currency":"ETH","network":"anvil","required_confirmations":0}',
            "invalid_required_confirmations",
        ),
    ],
)
async def test_hostile_values_are_refused_before_anything_is_written(
    gateway: Gateway, raw: bytes, code: str
) -> None:
    shop = await gateway.merchant()
    answer = await gateway.client.post(
        "/v1/invoices",
        content=raw,
        headers={
            "Authorization": f"Bearer {shop.api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": "hostile",
        },
    )
    assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text
    assert await count(gateway, invoices) == 0
    assert await count(gateway, events) == 0


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/events?after=1.%C2%B2", "invalid_cursor"),
        ("/v1/events?after=99999999999999999999", "invalid_cursor"),
        ("/v1/invoices?starting_after=inv%00x", "invalid_character"),
        ("/v1/invoices/inv%00x", "invalid_character"),
        ("/v1/invoices?created_gte=9999-12-31T23:59:59-23:00", "invalid_date"),
    ],
)
async def test_hostile_queries_are_4xx_not_500(gateway: Gateway, path: str, code: str) -> None:
    shop = await gateway.merchant()
    answer = await gateway.client.get(path, headers={"Authorization": f"Bearer {shop.api_key}"})
    assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text


async def test_secret_rotation_is_idempotent(gateway: Gateway) -> None:
    shop = await gateway.merchant()
    hook = (await shop.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h"})).json()
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"
    first = await shop.post(path, {}, **{"Idempotency-Key": "rot-1"})
    again = await shop.post(path, {}, **{"Idempotency-Key": "rot-1"})
    other = await shop.post(path, {}, **{"Idempotency-Key": "rot-2"})
    assert first.status_code == again.status_code == other.status_code == 200, first.text
    assert again.json()["secret"] == first.json()["secret"] != hook["secret"]
    assert other.json()["secret"] != first.json()["secret"]


async def test_a_request_that_lost_its_claim_cannot_complete(gateway: Gateway) -> None:
    from datetime import timedelta

    from chaingate.services.idempotency import Claim, claim

    shop = await gateway.merchant()
    db, now = gateway.container.db, gateway.container.clock.now()
    slow = await claim(
        db, shop.merchant_id, "k", "h", now - timedelta(minutes=5), timedelta(hours=1)
    )
    retry = await claim(db, shop.merchant_id, "k", "h", now, timedelta(hours=1))
    assert isinstance(slow, Claim) and isinstance(retry, Claim)  # the retry took over
    from chaingate.domain.errors import Conflict

    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await slow.complete(uow, 201, "{}")
    async with db.uow() as uow:
        await retry.complete(uow, 201, "{}")
        await uow.commit()
