"""The order ticket in a real browser: htmx, ticket.js and the CSP together."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import User
from portfolio.services import portfolio_open
from tests.factories import StockFactory
from trading.models import Order

PASSWORD = "plum-harbor-compass-88"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_player_estimates_reviews_and_places_a_limit_order_from_the_stock_page(browser_page):
    user = User.objects.create_user("ticket_tess", "tess@example.com", PASSWORD)
    portfolio_open(owner=user)
    StockFactory(symbol="AAPL", last_price=Decimal("100.0000"))
    page = browser_page
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    page.goto("/accounts/login/")
    page.get_by_label("Email or handle").fill("ticket_tess")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")

    page.goto("/stocks/AAPL/")
    ticket = page.locator("#order-ticket")
    assert ticket.get_by_label("Limit price").is_hidden()  # a market order has none

    # Bad input comes back as a 400 that the ticket swaps in, message next to the field.
    ticket.get_by_label("Shares").fill("0")
    ticket.get_by_role("button", name="Review order").click()
    ticket.locator("#id_quantity_errors").get_by_text("Enter at least 1 share.").wait_for()

    ticket = page.locator("#order-ticket")
    ticket.get_by_label("Shares").fill("10")
    ticket.locator("#ticket-estimate").get_by_text("$1,001.70").wait_for()  # live estimate

    ticket.get_by_label("Order type").select_option("limit")
    assert ticket.get_by_label("Limit price").is_visible()
    ticket.get_by_label("Limit price").fill("95")
    ticket.locator("#ticket-estimate").get_by_text("$951.48").first.wait_for()

    ticket.get_by_role("button", name="Review order").click()
    confirm = page.get_by_role("button", name="Confirm buy 10 AAPL ~$951.48")
    confirm.wait_for()
    assert Order.objects.count() == 0  # nothing placed before the confirmation

    confirm.click()
    page.locator("#order-ticket").get_by_text("your limit order is open").wait_for()
    order = Order.objects.get()
    assert (order.status, order.quantity, order.limit_price) == ("open", 10, Decimal("95"))
    # /orders/ lists it; cancelling asks first (data-confirm), then releases it.
    page.goto("/orders/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").click()
    page.locator("#toasts").get_by_text("Its reservation is released.").wait_for()
    order.refresh_from_db()
    assert order.status == "cancelled"

    # No script blocked by the CSP (the chart library's inline <style> is the market
    # page's, and the test server has no websocket route: both are not the ticket's).
    blocked = [
        error for error in errors if "Content Security Policy" in error and "script" in error
    ]
    assert not blocked, blocked
