"""With websockets blocked, a page still shows current values: it polls every 30 s.

The live server here is pytest-django's WSGI server, which has no websocket at all, so
/ws/live/ fails the way a proxy that blocks websockets makes it fail.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from market.models import Stock
from tests.factories import PASSWORD, StockFactory, UserFactory
from tests.live.conftest import buy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_without_websockets_the_portfolio_polls_and_shows_the_new_price(browser_page):
    page = browser_page
    player = UserFactory(handle="poller")
    stock = StockFactory(symbol="POLL", last_price=Decimal("100.0000"))
    buy(player, stock, 10)

    page.goto("/accounts/login/")
    page.get_by_label("Email or handle").fill("poller")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    page.goto("/portfolio/")
    price = page.locator("#pos-px-POLL")
    assert price.inner_text() == "100.00"

    Stock.objects.filter(pk=stock.pk).update(last_price=Decimal("123.4500"))

    # No reload: the page's 30-second poll brings the new price, and the header says
    # the page is not connected.
    expect(price).to_have_text("123.45", timeout=45_000)
    assert "stale" in page.locator("#live-status").get_attribute("class")
