"""A visitor in a real browser: browse the market, open a stock, log in from its
ticket card and land back on the stock with the ticket ready; and a public profile,
turned on in settings, seen by a visitor who is not logged in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from portfolio.services import portfolio_open
from tests.factories import StockFactory
from tests.portfolio.trades import settle

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


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_player_makes_their_profile_public_with_share_counts_and_a_visitor_sees_it(
    browser_page, live_server
):
    user = User.objects.create_user("pia_public", "pia@example.com", PASSWORD, display_name="Pia P")
    portfolio = portfolio_open(owner=user)
    settle(portfolio, StockFactory(symbol="MSFT"), "buy", 120, "100.0000", fee="0")
    page = browser_page
    visitor = page.context.browser.new_context(base_url=live_server.url)
    try:
        stranger = visitor.new_page()
        # Private for now: a visitor gets the same "not found" as for any unknown handle.
        assert stranger.goto("/u/pia_public/").status == 404

        page.goto("/accounts/login/?next=/accounts/settings/")
        page.get_by_label("Email or handle").fill("pia_public")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/accounts/settings/")
        page.get_by_label("Make my profile public").check()
        page.get_by_label("Show share counts").check()
        page.get_by_role("button", name="Save").click()
        # Saved over htmx: the card is swapped in place, with the choices kept.
        page.get_by_role("status").filter(has_text="Saved.").wait_for()
        assert page.get_by_label("Show share counts").is_checked()

        response = stranger.goto("/u/pia_public/")
        assert response.status == 200
        assert stranger.locator("h1").inner_text() == "Pia P"
        assert stranger.locator("#profile-handle").inner_text() == "@pia_public"
        assert stranger.locator("#profile-shares-MSFT").inner_text() == "120"
        assert stranger.locator("#profile-weight-MSFT").inner_text() == "12.0%"
        assert stranger.locator("#profile-trades").count() == 0
    finally:
        visitor.close()
