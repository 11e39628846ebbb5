"""A real headless Chromium (Debian's package) driven by Playwright, for the UI tests.

No `playwright install`: the test command installs Debian's `chromium`, and Playwright is
pointed at it. A machine without it skips with the reason, unless CHAINGATE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.services import require_or_skip

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def find_chromium() -> str | None:
    explicit = os.environ.get("CHAINGATE_TEST_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh Chromium for one test, closed afterwards."""
    executable = find_chromium()
    if executable is None:
        require_or_skip("chromium is not installed (make test installs Debian's package)")
    assert executable is not None
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
