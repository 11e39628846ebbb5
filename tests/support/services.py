"""Where the test suite finds the machine's services, and what it does when one is missing."""

from __future__ import annotations

import os

import pytest


def services_required() -> bool:
    return os.environ.get("CHAINGATE_REQUIRE_SERVICES") == "1"


def require_or_skip(reason: str) -> None:
    """Skip with `reason`, or fail when CHAINGATE_REQUIRE_SERVICES=1 says it must be there."""
    if services_required():
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def postgres_admin_url() -> str:
    return os.environ.get(
        "CHAINGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
