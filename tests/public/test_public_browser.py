"""A visitor in a real browser: browse the market, open a stock, log in from its
ticket card and land back on the stock with the ticket ready."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from portfolio.services import portfolio_open
from tests.factories import StockFactory

PASSWORD = "plum-harbor-compass-88"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_visitor_browses_a_stock_then_logs_in_from_its_ticket_and_comes_back(browser_page):
    StockFactory(symbol="AAPL", name="Apple Inc.", last_price=Decimal("190.0000"))
    portfolio_open(owner=User.objects.create_user("vera_visit", "vera@example.com", PASSWORD))
    page = browser_page

    page.goto("/market/")
    assert page.locator("#px-AAPL").inner_text() == "190.00"
    page.locator("#stock-table").get_by_role("link", name="AAPL").click()
    page.wait_for_url("**/stocks/AAPL/")
    ticket = page.locator("#order-ticket")
    assert "Log in or sign up to trade AAPL." in ticket.inner_text()
    assert ticket.locator("form").count() == 0

    ticket.get_by_role("link", name="Log in").click()
    page.wait_for_url("**/accounts/login/?next=/stocks/AAPL/")
    page.get_by_label("Email or handle").fill("vera_visit")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.wait_for_url("**/stocks/AAPL/")
    assert page.locator("#order-ticket").get_by_role("button", name="Review order").is_visible()
    assert page.locator(".profile-chip__handle").inner_text() == "@vera_visit"
