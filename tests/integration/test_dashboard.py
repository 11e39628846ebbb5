"""The merchant dashboard over HTTP (ASGI), on SQLite and PostgreSQL: sign-in, every page with
real data, merchant isolation, changes through the existing services, CSV exports.

The gateway runs with production settings (tests/support/gateway.py: no dev mode, its own
secret key, reached over https), so cookies, CSRF and the webhook URL policy are what a
deployment has. Its one operator setting: webhooks may reach RECEIVER_HOST, a loopback address
the allow-list names (every other loopback or private address stays refused)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.tables import (
    api_keys,
    dashboard_sessions,
    dashboard_users,
    webhook_endpoints,
)
from chaingate.adapters.totp import code_at, step_at
from chaingate.adapters.webhook_sender import WebhookSender
from chaingate.config import TokenConfig
from chaingate.services import dashboard_export
from chaingate.services.dispatch import dispatch_due
from tests.support.clock import SteerableClock
from tests.support.dashboard import PASSWORD, add_user, csrf_of, log_in, settle_with_payment
from tests.support.gateway import (
    MERCHANT_MNEMONICS,
    PRODUCTION_BASE_URL,
    Gateway,
    MerchantHandle,
    running_production_gateway,
)
from tests.support.webhook_receiver import Receiver, always

USDT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
NETWORK = EvmNetworkConfig(
    name="anvil",
    chain_id=31337,
    rpc_urls=["http://127.0.0.1:9"],
    required_confirmations=3,
    tokens=[TokenConfig(symbol="USDT", contract=USDT, decimals=6)],
)
ALICE = "alice@shop.example"
RECEIVER_HOST = "127.10.0.9"
HOOK = f"http://{RECEIVER_HOST}:9/hook"  # allowed, nothing listens: deliveries just fail


@pytest.fixture
def clock() -> SteerableClock:
    return SteerableClock(datetime.now(UTC))


@pytest.fixture
async def gateway(clean_database_url: str, clock: SteerableClock) -> AsyncIterator[Gateway]:
    async with running_production_gateway(
        clean_database_url, [NETWORK], clock=clock, webhook_allowed_networks=f"{RECEIVER_HOST}/32"
    ) as gw:
        yield gw


@pytest.fixture
async def shop(gateway: Gateway) -> MerchantHandle:
    handle = await gateway.merchant("Alice's shop")
    await add_user(gateway.container.db, handle.merchant_id, ALICE, gateway.container.clock.now())
    return handle


@pytest.fixture
async def browser_client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A second client with its own cookie jar, as a person's browser would be."""
    transport = gateway.client._transport
    async with httpx.AsyncClient(transport=transport, base_url=PRODUCTION_BASE_URL) as client:
        yield client


@pytest.fixture
async def signed_in(shop: MerchantHandle, browser_client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await log_in(browser_client, ALICE)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard/"
    return browser_client


async def seeded_invoice(
    gateway: Gateway, shop: MerchantHandle, order_id: str = "ORDER-1001"
) -> tuple[dict[str, object], str, str]:
    """A settled 0.25 ETH invoice with a payment, events, and deliveries to a webhook endpoint."""
    endpoint = await shop.post("/v1/webhooks", {"url": HOOK})
    assert endpoint.status_code == 201, endpoint.text
    invoice = await shop.invoice(amount="0.25", currency="ETH", network="anvil", order_id=order_id)
    paid = await settle_with_payment(
        gateway.container.db, str(invoice["id"]), 25 * 10**16, gateway.container.clock.now()
    )
    return invoice, paid.txid, endpoint.json()["id"]


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, **fields: str | list[str]
) -> httpx.Response:
    """Submit a form of `page` the way a browser does: with the page's CSRF token."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": csrf_of(html), **fields})


# -- signing in ------------------------------------------------------------------------------


async def test_login_sets_a_hardened_cookie_and_stores_only_its_hash(
    gateway: Gateway, shop: MerchantHandle, browser_client: httpx.AsyncClient
) -> None:
    form = await browser_client.get("/dashboard/login")
    assert "; secure" in form.headers["set-cookie"].lower()  # the login form's CSRF cookie too
    answer = await log_in(browser_client, ALICE.upper())  # e-mail case does not matter
    assert answer.status_code == 303
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("cg_session=")]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path"} <= attributes  # Secure: not dev mode
    assert "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    token = browser_client.cookies["cg_session"]
    async with gateway.container.db.engine.connect() as conn:
        stored = (await conn.execute(select(dashboard_sessions.c.token_hash))).scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    home = await browser_client.get("/dashboard/")
    assert home.status_code == 200 and ALICE in home.text


async def test_signed_out_pages_send_to_the_login_page(browser_client: httpx.AsyncClient) -> None:
    for path in ("/dashboard/", "/dashboard/invoices", "/dashboard/keys", "/dashboard/export"):
        answer = await browser_client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
    forged = await browser_client.get("/dashboard/", headers={"Cookie": "cg_session=made-up"})
    assert forged.status_code == 303


async def test_wrong_password_and_unknown_account_answer_alike(
    shop: MerchantHandle, browser_client: httpx.AsyncClient
) -> None:
    wrong = await log_in(browser_client, ALICE, "not the password at all")
    unknown = await log_in(browser_client, "nobody@shop.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "cg_session" not in browser_client.cookies
    message = "Wrong e-mail, password or code, or too many attempts."
    assert message in wrong.text and message in unknown.text


async def test_five_failures_lock_the_account_even_for_the_right_password(
    gateway: Gateway,
    clock: SteerableClock,
    shop: MerchantHandle,
    browser_client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        assert (await log_in(browser_client, ALICE, "guess-guess-guess")).status_code == 401
    assert (await log_in(browser_client, ALICE)).status_code == 401
    clock.advance(16 * 60)  # the lockout is over
    assert (await log_in(browser_client, ALICE)).status_code == 303


async def test_one_address_is_throttled_across_accounts(
    shop: MerchantHandle, browser_client: httpx.AsyncClient
) -> None:
    answers = [
        (await log_in(browser_client, f"user{n}@shop.example", "guess-guess-guess")).status_code
        for n in range(11)
    ]
    assert answers[:10] == [401] * 10
    assert answers[10] == 429
    assert (await log_in(browser_client, ALICE)).status_code == 429  # even with the right one


async def test_login_form_needs_its_own_csrf_cookie(
    shop: MerchantHandle, browser_client: httpx.AsyncClient
) -> None:
    answer = await browser_client.post(
        "/dashboard/login", data={"email": ALICE, "password": PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403
    assert "cg_session" not in browser_client.cookies


async def test_sessions_end_after_idle_time_and_after_twelve_hours(
    clock: SteerableClock, signed_in: httpx.AsyncClient
) -> None:
    clock.advance(31 * 60)
    assert (await signed_in.get("/dashboard/")).status_code == 303  # idle too long
    await log_in(signed_in, ALICE)
    for _ in range(29):  # active every 25 minutes, for 12 h 5 min in all
        assert (await signed_in.get("/dashboard/wallets")).status_code == 200
        clock.advance(25 * 60)
    assert (await signed_in.get("/dashboard/wallets")).status_code == 303


async def test_logout_ends_the_session_server_side(signed_in: httpx.AsyncClient) -> None:
    token = signed_in.cookies["cg_session"]
    answer = await post_form(signed_in, "/dashboard/", "/dashboard/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
    replayed = await signed_in.get("/dashboard/", headers={"Cookie": f"cg_session={token}"})
    assert replayed.status_code == 303


# -- CSRF and headers ---------------------------------------------------------------------------


async def test_posts_without_the_session_csrf_token_change_nothing(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    for token in ("", "0" * 64):
        answer = await signed_in.post(
            "/dashboard/keys",
            data={"name": "evil", "scopes": "invoices:write", "csrf_token": token},
        )
        assert answer.status_code == 403
    async with gateway.container.db.engine.connect() as conn:
        names = (await conn.execute(select(api_keys.c.name))).scalars().all()
    assert names == ["default"]


async def test_pages_carry_the_security_headers(signed_in: httpx.AsyncClient) -> None:
    for path in ("/dashboard/", "/dashboard/login", "/dashboard/nowhere"):
        answer = await signed_in.get(path)
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


async def test_bad_input_gets_an_error_page_not_a_500(
    signed_in: httpx.AsyncClient, gateway: Gateway, shop: MerchantHandle
) -> None:
    cases = {
        "/dashboard/invoices?from=yesterday": 400,
        "/dashboard/invoices?status=paid-ish": 400,
        "/dashboard/invoices?q=" + "x" * 500: 422,
        "/dashboard/invoices/" + "inv_" + "z" * 300: 404,
        "/dashboard/export/invoices.csv": 400,
        "/dashboard/export/invoices.csv?from=2026-02-01&to=2026-01-01": 400,
        "/dashboard/export/invoices.csv?from=2026-02-01&to=9999-12-31": 400,
        "/dashboard/invoices?to=9999-12-31": 400,
        "/dashboard/export/ledger.csv?from=2026-01-01&to=2026-01-02": 404,
        "/dashboard/webhooks/whe_nope": 404,
    }
    for path, status in cases.items():
        answer = await signed_in.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    unknown_scope = await post_form(
        signed_in, "/dashboard/keys", "/dashboard/keys", name="k", scopes="root:everything"
    )
    assert unknown_scope.status_code == 400


# -- pages with data ------------------------------------------------------------------------------


async def test_every_page_renders_the_merchants_data(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    invoice, txid, endpoint_id = await seeded_invoice(gateway, shop)
    await shop.invoice(amount="12.5", currency="USDT", network="anvil", order_id="ORDER-1002")

    overview = (await signed_in.get("/dashboard/")).text
    assert 'data-volume="anvil/ETH">0.25 ETH<' in overview
    assert 'data-stat="settled">1<' in overview and 'data-stat="new">1<' in overview
    assert "<svg" in overview and "<rect" in overview

    listing = (await signed_in.get("/dashboard/invoices")).text
    assert str(invoice["id"]) in listing and "ORDER-1002" in listing and "12.5 USDT" in listing
    for query in ("ORDER-1001", str(invoice["address"]), txid):
        found = (await signed_in.get("/dashboard/invoices", params={"q": query})).text
        assert str(invoice["id"]) in found and "ORDER-1002" not in found, query
    settled = (await signed_in.get("/dashboard/invoices", params={"status": "settled"})).text
    assert "ORDER-1001" in settled and "ORDER-1002" not in settled

    detail = (await signed_in.get(f"/dashboard/invoices/{invoice['id']}")).text
    assert txid[:10] in detail and "0.25 ETH" in detail
    timeline = detail.split('id="timeline"')[1].split("</ol>")[0]
    assert timeline.index("invoice.created") < timeline.index("invoice.payment_received")
    assert timeline.index("invoice.payment_received") < timeline.index("invoice.settled")
    assert detail.count('class="delivery"') == 3  # one per event, to the one endpoint

    assert HOOK in (await signed_in.get("/dashboard/webhooks")).text
    endpoint_page = (await signed_in.get(f"/dashboard/webhooks/{endpoint_id}")).text
    assert endpoint_page.count('class="delivery"') == 4  # and ORDER-1002's invoice.created
    assert 'rel="next"' not in endpoint_page
    wallets = (await signed_in.get("/dashboard/wallets")).text
    assert "Next derivation index</dt><dd>2<" in wallets and "xpub" in wallets
    keys = (await signed_in.get("/dashboard/keys")).text
    assert "default" in keys and "invoices:write" in keys
    assert (await signed_in.get("/dashboard/export")).status_code == 200


async def test_gap_figures_and_warning_per_family(
    clean_database_url: str, clock: SteerableClock
) -> None:
    ltc = BitcoinNetworkConfig(
        name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
    )
    async with running_production_gateway(
        clean_database_url, [NETWORK, ltc], clock=clock
    ) as gateway:
        shop = await gateway.merchant("Alice's shop", with_wallets=False)
        keys = {
            "anvil": account_xpub_from_mnemonic(MERCHANT_MNEMONICS[0]),
            "ltc": account_key_from_mnemonic(
                MERCHANT_MNEMONICS[0], BUILT_IN[("litecoin", "regtest")]
            ),
        }
        for network, key in keys.items():
            body = {"network": network, "xpub": key, "gap_limit": 5}
            assert (await shop.post("/v1/wallets", body)).status_code == 201
        await add_user(gateway.container.db, shop.merchant_id, ALICE, clock.now())
        transport = gateway.client._transport
        async with httpx.AsyncClient(transport=transport, base_url=PRODUCTION_BASE_URL) as web:
            assert (await log_in(web, ALICE)).status_code == 303

            first = await shop.invoice(amount="1", currency="LTC", network="ltc")
            await settle_with_payment(gateway.container.db, str(first["id"]), 10**8, clock.now())
            for _ in range(5):
                await shop.invoice(amount="1", currency="LTC", network="ltc")
            for _ in range(7):  # EVM: more unused addresses than the gap limit, no warning
                await shop.invoice(amount="1", currency="ETH", network="anvil")
            page = (await web.get("/dashboard/wallets")).text
            # Five unused after the paid one: a wallet app with gap limit 5 still sees them all.
            assert 'data-needed-gap="5"' in page and "data-gap-warning" not in page
            assert "data-no-gap-rule" in page  # said on the EVM wallet, which has no figures
            assert page.count("data-needed-gap") == 1
            assert "wpkh(tpub" in page  # the Bitcoin wallet's output descriptor

            await shop.invoice(amount="1", currency="LTC", network="ltc")
            page = (await web.get("/dashboard/wallets")).text
            assert 'data-needed-gap="6"' in page and 'data-gap-warning="ltc"' in page
            assert 'data-gap-warning="anvil"' not in page


async def test_another_merchants_ids_are_not_found(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    other = await gateway.merchant("Bob's shop")
    invoice, txid, endpoint_id = await seeded_invoice(gateway, other, order_id="BOB-1")
    async with gateway.container.db.uow() as uow:
        delivery_id = (
            await uow.reports.deliveries_for_events(
                other.merchant_id,
                [
                    e.id
                    for e in await uow.reports.events_for_invoice(
                        other.merchant_id, str(invoice["id"])
                    )
                ],
            )
        )[0].delivery.id
        bob_key = (await uow.merchants.list_api_keys(other.merchant_id))[0].id

    assert (await signed_in.get(f"/dashboard/invoices/{invoice['id']}")).status_code == 404
    assert (await signed_in.get(f"/dashboard/webhooks/{endpoint_id}")).status_code == 404
    for query in ("BOB-1", txid, str(invoice["address"])):
        found = await signed_in.get("/dashboard/invoices", params={"q": query})
        assert str(invoice["id"]) not in found.text
    for action in (
        f"/dashboard/deliveries/{delivery_id}/redeliver",
        f"/dashboard/webhooks/{endpoint_id}/rotate",
        f"/dashboard/keys/{bob_key}/revoke",
    ):
        assert (await post_form(signed_in, "/dashboard/", action)).status_code == 404, action
    assert (await other.get("/v1/invoices")).status_code == 200  # Bob's key still works
    csv_text = (
        await signed_in.get(
            "/dashboard/export/invoices.csv", params={"from": "2000-01-01", "to": "2100-01-01"}
        )
    ).text
    assert "BOB-1" not in csv_text


# -- changes ------------------------------------------------------------------------------------


async def test_redeliver_queues_the_delivery_and_the_dispatcher_records_a_new_attempt(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    receiver = Receiver(RECEIVER_HOST)
    try:
        url = receiver.route("/hook", always(200))
        endpoint = await shop.post("/v1/webhooks", {"url": url, "events": ["invoice.settled"]})
        assert endpoint.status_code == 201, endpoint.text
        invoice = await shop.invoice(amount="0.1", currency="ETH", network="anvil")
        await settle_with_payment(
            gateway.container.db, str(invoice["id"]), 10**17, gateway.container.clock.now()
        )
        container = gateway.container
        async with httpx.AsyncClient() as http:
            sender = WebhookSender(http, container.url_guard, 5.0)
            assert (
                await dispatch_due(
                    container.db, sender, container.secret_box, container.clock, container.settings
                )
                == 1
            )
            back = f"/invoices/{invoice['id']}"
            page = f"/dashboard{back}"
            before = (await signed_in.get(page)).text
            assert before.count('class="attempt"') == 1 and "badge-succeeded" in before
            delivery_id = before.split('data-delivery="')[1].split('"')[0]

            answer = await post_form(
                signed_in, page, f"/dashboard/deliveries/{delivery_id}/redeliver", return_to=back
            )
            assert answer.status_code == 303
            assert answer.headers["location"] == f"{page}?redelivered={delivery_id}"
            queued = (await signed_in.get(answer.headers["location"])).text
            assert f"Delivery {delivery_id} is queued to be sent again" in queued
            assert "badge-pending" in queued and 'data-autorefresh="deliveries"' in queued

            assert (
                await dispatch_due(
                    container.db, sender, container.secret_box, container.clock, container.settings
                )
                == 1
            )
        after = (await signed_in.get(page)).text
        assert after.count('class="attempt"') == 2 and "badge-succeeded" in after
        assert len(receiver.at("/hook")) == 2
        assert receiver.at("/hook")[0].event_id == receiver.at("/hook")[1].event_id
    finally:
        receiver.close()


async def test_rotating_shows_the_new_secret_once_and_stores_it_encrypted(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    created = await shop.post("/v1/webhooks", {"url": HOOK})
    endpoint_id = created.json()["id"]
    page = f"/dashboard/webhooks/{endpoint_id}"
    answer = await post_form(signed_in, page, f"{page}/rotate")
    assert answer.status_code == 200
    secret = answer.text.split('id="secret">')[1].split("<")[0]
    assert secret.startswith("whsec_") and secret != created.json()["secret"]
    async with gateway.container.db.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(webhook_endpoints.c.secret_ciphertext).where(
                    webhook_endpoints.c.id == endpoint_id
                )
            )
        ).scalar_one()
    assert secret not in stored and gateway.container.secret_box.decrypt(stored) == secret
    assert secret not in (await signed_in.get(page)).text


async def test_a_created_key_works_with_its_scopes_until_revoked(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    answer = await post_form(
        signed_in, "/dashboard/keys", "/dashboard/keys", name="reporting", scopes=["invoices:read"]
    )
    assert answer.status_code == 201
    plaintext = answer.text.split('id="new-key">')[1].split("<")[0]
    key_id = plaintext.split(".")[0]
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert (await gateway.client.get("/v1/invoices", headers=bearer)).status_code == 200
    refused = await gateway.client.post(
        "/v1/invoices", json={"amount": "1", "currency": "ETH", "network": "anvil"}, headers=bearer
    )
    assert refused.status_code == 403  # it carries invoices:read only
    assert plaintext not in (await signed_in.get("/dashboard/keys")).text

    revoked = await post_form(signed_in, "/dashboard/keys", f"/dashboard/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert (await gateway.client.get("/v1/invoices", headers=bearer)).status_code == 401
    assert 'badge-expired">revoked' in (await signed_in.get("/dashboard/keys")).text


# -- exports ------------------------------------------------------------------------------------


async def test_csv_exports_hold_exact_amounts_and_defuse_formulas(
    gateway: Gateway,
    shop: MerchantHandle,
    signed_in: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashboard_export, "EXPORT_PAGE", 1)  # every row is its own page
    hostile = '=HYPERLINK("http://evil.example","click")'
    invoice = await shop.invoice(
        amount="1.000000000000000001",
        currency="ETH",
        network="anvil",
        order_id=hostile,
        metadata={"note": "@SUM(A1)"},
    )
    paid = await settle_with_payment(
        gateway.container.db, str(invoice["id"]), 10**18 + 1, gateway.container.clock.now()
    )
    await shop.invoice(amount="2", currency="USDT", network="anvil", order_id="+1-555")
    await shop.invoice(amount="3", currency="ETH", network="anvil")
    today = gateway.container.clock.now().date().isoformat()
    answer = await signed_in.get(
        "/dashboard/export/invoices.csv", params={"from": today, "to": today}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    by_order = {r["order_id"]: r for r in rows}
    assert set(by_order) == {"'" + hostile, "'+1-555", ""}
    first = by_order["'" + hostile]
    assert first["amount"] == first["amount_paid"] == "1.000000000000000001"
    assert first["status"] == "settled" and first["metadata"] == '{"note":"@SUM(A1)"}'
    assert by_order["'+1-555"]["amount"] == "2"

    payments = await signed_in.get(
        "/dashboard/export/payments.csv", params={"from": today, "to": today}
    )
    (payment,) = list(csv.DictReader(io.StringIO(payments.text)))
    assert payment["txid"] == paid.txid and payment["amount"] == "1.000000000000000001"
    assert payment["order_id"] == "'" + hostile and payment["invoice_id"] == invoice["id"]
    empty = await signed_in.get(
        "/dashboard/export/payments.csv", params={"from": "2001-01-01", "to": "2001-01-31"}
    )
    assert empty.text.count("\r\n") == 1  # the header only


async def test_invoice_list_pages_and_filters_by_date_and_network(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    ids = [
        str(
            (await shop.invoice(amount="1", currency="ETH", network="anvil", order_id=f"P-{n}"))[
                "id"
            ]
        )
        for n in range(27)
    ]
    first = (await signed_in.get("/dashboard/invoices")).text
    assert first.count("/dashboard/invoices/inv_") == 25
    assert ids[-1] in first and ids[1] not in first  # newest first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = (await signed_in.get(older)).text
    assert second.count("/dashboard/invoices/inv_") == 2
    assert ids[0] in second and ids[1] in second and 'rel="next"' not in second

    today = gateway.container.clock.now().date()
    same_day = {"from": today.isoformat(), "to": today.isoformat(), "network": "anvil"}
    assert ids[-1] in (await signed_in.get("/dashboard/invoices", params=same_day)).text
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = (await signed_in.get("/dashboard/invoices", params={"from": tomorrow})).text
    assert "No invoices match." in later
    elsewhere = (await signed_in.get("/dashboard/invoices", params={"network": "polygon"})).text
    assert "No invoices match." in elsewhere


async def test_two_factor_sign_in_needs_a_fresh_code_once_turned_on(
    gateway: Gateway, clock: SteerableClock, signed_in: httpx.AsyncClient
) -> None:
    setup = (await signed_in.get("/dashboard/security")).text
    assert 'data-totp="off"' in setup and "<svg" in setup
    secret = setup.split('id="totp-secret">')[1].split("<")[0]
    altered = await post_form(
        signed_in,
        "/dashboard/security",
        "/dashboard/security/totp",
        secret="٣" * 32,
        code=code_at(secret, step_at(clock.now())),
    )
    assert altered.status_code == 400
    wrong = await post_form(
        signed_in, "/dashboard/security", "/dashboard/security/totp", secret=secret, code="000000"
    )
    assert wrong.status_code == 400
    code = code_at(secret, step_at(clock.now()))
    on = await post_form(
        signed_in, "/dashboard/security", "/dashboard/security/totp", secret=secret, code=code
    )
    assert on.status_code == 303
    assert 'data-totp="on"' in (await signed_in.get("/dashboard/security")).text
    async with gateway.container.db.engine.connect() as conn:
        stored = (await conn.execute(select(dashboard_users.c.totp_secret))).scalar_one()
    assert secret not in stored and gateway.container.secret_box.decrypt(stored) == secret

    await post_form(signed_in, "/dashboard/", "/dashboard/logout")
    assert (await log_in(signed_in, ALICE)).status_code == 401  # no code
    assert (await log_in(signed_in, ALICE, code=code)).status_code == 401  # already used
    clock.advance(60)
    fresh = code_at(secret, step_at(clock.now()))
    assert (await log_in(signed_in, ALICE, code=fresh)).status_code == 303

    clock.advance(60)
    off = await post_form(
        signed_in,
        "/dashboard/security",
        "/dashboard/security/totp/disable",
        code=code_at(secret, step_at(clock.now())),
    )
    assert off.status_code == 303
    await post_form(signed_in, "/dashboard/", "/dashboard/logout")
    assert (await log_in(signed_in, ALICE)).status_code == 303


async def test_endpoint_deliveries_are_paged(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    created = await shop.post("/v1/webhooks", {"url": HOOK})
    for _ in range(27):
        await shop.invoice(amount="1", currency="ETH", network="anvil")  # invoice.created each
    page = f"/dashboard/webhooks/{created.json()['id']}"
    first = (await signed_in.get(page)).text
    assert first.count('class="delivery"') == 25
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert older.startswith(page + "?cursor=whd_")
    assert (await signed_in.get(older)).text.count('class="delivery"') == 2


async def test_endpoints_are_added_and_disabled_from_the_dashboard(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    added = await post_form(
        signed_in,
        "/dashboard/webhooks",
        "/dashboard/webhooks",
        url=f"http://{RECEIVER_HOST}:9/orders",
        events=["invoice.settled", "invoice.expired"],
        description="order system",
    )
    assert added.status_code == 201
    secret = added.text.split('id="secret">')[1].split("<")[0]
    listed = (await shop.get("/v1/webhooks")).json()
    assert [e["url"] for e in listed] == [f"http://{RECEIVER_HOST}:9/orders"]
    assert sorted(listed[0]["events"]) == ["invoice.expired", "invoice.settled"]
    endpoint_id = listed[0]["id"]
    async with gateway.container.db.uow() as uow:
        stored = await uow.webhooks.endpoint(shop.merchant_id, endpoint_id)
    assert (
        stored is not None
        and gateway.container.secret_box.decrypt(stored.secret_ciphertext) == secret
    )

    page = f"/dashboard/webhooks/{endpoint_id}"
    off = await post_form(signed_in, page, f"{page}/enabled", enabled="false")
    assert off.status_code == 303
    assert (await shop.get(f"/v1/webhooks/{endpoint_id}")).json()["enabled"] is False
    assert ">Enable</button>" in (await signed_in.get(page)).text

    refused = await post_form(
        signed_in, "/dashboard/webhooks", "/dashboard/webhooks", url="http://10.0.0.8/hook"
    )
    assert refused.status_code == 422  # private addresses stay refused, as through the API
    unknown = await post_form(
        signed_in,
        "/dashboard/webhooks",
        "/dashboard/webhooks",
        url="https://a.example/h",
        events="x.y",
    )
    assert unknown.status_code == 422


NASTY = ["", "\x00", "%00", "'; DROP TABLE invoices; --", "../../etc/passwd", "٣", "9" * 300,
         "<script>alert(1)</script>", "-1", "inv_" + "0" * 26, "whd_\x00"]  # fmt: skip


async def test_hostile_values_in_every_field_never_cause_a_500(
    gateway: Gateway, shop: MerchantHandle, signed_in: httpx.AsyncClient
) -> None:
    invoice, _, endpoint_id = await seeded_invoice(gateway, shop)
    csrf = csrf_of((await signed_in.get("/dashboard/")).text)
    for value in NASTY:
        segment = quote(value, safe="")  # in a path, as a browser would send it
        for path, params in (
            ("/dashboard/invoices", {"q": value}),
            ("/dashboard/invoices", {"status": value, "network": value, "cursor": value}),
            ("/dashboard/invoices", {"from": value, "to": value}),
            (f"/dashboard/invoices/{segment}", {}),
            (f"/dashboard/webhooks/{endpoint_id}", {"cursor": value}),
            (f"/dashboard/webhooks/{segment}", {}),
            ("/dashboard/export/invoices.csv", {"from": value, "to": "2026-01-01"}),
        ):
            answer = await signed_in.get(path, params=params)
            assert answer.status_code < 500, (path, params, answer.status_code)
        for action, form in (
            ("/dashboard/keys", {"name": value, "scopes": value}),
            (f"/dashboard/keys/{segment}/revoke", {}),
            (f"/dashboard/deliveries/{segment}/redeliver", {"return_to": value}),
            ("/dashboard/webhooks", {"url": value, "events": value, "description": value}),
            (f"/dashboard/webhooks/{endpoint_id}/enabled", {"enabled": value}),
            ("/dashboard/security/totp", {"secret": value, "code": value}),
            ("/dashboard/security/totp/disable", {"code": value}),
        ):
            answer = await signed_in.post(action, data={"csrf_token": csrf, **form})
            assert answer.status_code < 500, (action, form, answer.status_code)
        login = await signed_in.post(
            "/dashboard/login", data={"email": value, "password": value, "csrf_token": value}
        )
        assert login.status_code < 500
    assert (await signed_in.get(f"/dashboard/invoices/{invoice['id']}")).status_code == 200
