"""Browser tests: Playwright (sync API) driving Debian's Chromium.

Use the `browser_page` fixture in a test marked

    @pytest.mark.browser
    @pytest.mark.django_db(transaction=True)
    def test_something(browser_page, live_server): ...

`browser_page` is a Playwright `Page` in a fresh browser context whose `base_url` is
pytest-django's live server, so `browser_page.goto("/accounts/login/")` works. Each
test gets its own Chromium and context (no shared cookies). When /usr/bin/chromium or
Playwright is missing the test is skipped, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("BROWSER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Playwright's timeouts, in ms: generous for a shared 2-core machine, short enough
# that a broken page fails the test instead of hanging it.
DEFAULT_TIMEOUT_MS = 15_000


@pytest.fixture
def browser_page(live_server: Any) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser test skipped: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.skip(f"browser test skipped: Playwright is not installed ({error})")

    # Playwright's sync API keeps an asyncio loop on this thread while it runs, which
    # makes Django refuse ORM calls from the test body. Allowed only for the life of
    # this fixture: the Playwright loop is not serving Django code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()
    finally:
        # While Playwright runs, the test body's ORM calls get their own database
        # connection (Django keys connections by context, and Playwright switches it).
        # Close it here, in that context, or it outlives the test and blocks the
        # test database's teardown.
        connections.close_all()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
