"""What changes when the gateway runs outside dev mode, checked as production runs it.

The production gateway (tests/support/gateway.py `running_production_gateway`: dev mode off, a
secret key of its own, https in front) carries the other security suites too: the webhook URL
policy (test_webhook_url_policy.py), webhooks over TLS (test_webhook_tls.py), the dashboard's
cookies, CSRF and lockout (test_dashboard.py, test_dashboard_lockout.py) and redirect_url
refusals (test_checkout_page.py). Here: the secret key is required (by the container and by
the `chaingate run` command), webhook secrets are sealed with that key, and redirect_url is
https only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.secrets import SecretBox, SecretDecryptionError
from chaingate.bootstrap import ConfigurationError, build_container
from chaingate.config import Settings
from tests.support.gateway import running_production_gateway
from tests.support.net import free_port

NETWORK = EvmNetworkConfig(name="anvil", chain_id=31337, rpc_urls=["http://127.0.0.1:9"])
REPO = Path(__file__).resolve().parents[2]


def test_the_container_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    with pytest.raises(ConfigurationError, match="CHAINGATE_SECRET_KEY must be set"):
        build_container(Settings(database_url=url, dev_mode=False, secret_key=None))


def test_chaingate_run_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINGATE_")}
    env |= {
        "CHAINGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "CHAINGATE_API_PORT": str(free_port()),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "chaingate.entrypoints.cli", "run"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 2, finished.stderr
    assert "configuration error: CHAINGATE_SECRET_KEY must be set" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "gateway.db").exists()  # stopped before touching the database


async def test_webhook_secrets_are_sealed_with_the_configured_key(clean_database_url: str) -> None:
    async with running_production_gateway(clean_database_url, [NETWORK]) as gateway:
        settings = gateway.container.settings
        assert settings.secret_key is not None
        shop = await gateway.merchant()
        created = await shop.post("/v1/webhooks", {"url": "https://93.184.215.14/hook"})
        assert created.status_code == 201, created.text
        async with gateway.container.db.uow() as uow:
            stored = await uow.webhooks.endpoint(shop.merchant_id, created.json()["id"])
        assert stored is not None
        assert created.json()["secret"] not in stored.secret_ciphertext
        sealed_with = SecretBox(settings.secret_key)
        assert sealed_with.decrypt(stored.secret_ciphertext) == created.json()["secret"]
        # Not with the key dev mode would derive from the database URL.
        dev_key = hashlib.sha256(b"chaingate-dev:" + settings.database_url.encode()).hexdigest()
        with pytest.raises(SecretDecryptionError):
            SecretBox(dev_key).decrypt(stored.secret_ciphertext)


async def test_redirect_url_is_https_only(clean_database_url: str) -> None:
    async with running_production_gateway(clean_database_url, [NETWORK]) as gateway:
        shop = await gateway.merchant()
        fields = {"amount": "1", "currency": "ETH", "network": "anvil"}
        refused = await shop.post(
            "/v1/invoices", {**fields, "redirect_url": "http://127.0.0.1:3000/thanks"}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_redirect_url"
        accepted = await shop.invoice(**fields, redirect_url="https://shop.example/thanks")
        assert accepted["redirect_url"] == "https://shop.example/thanks"
