"""The order ticket (estimate, confirmation, placing), /orders/, receipts and cancel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from portfolio.models import LedgerEntry, Portfolio
from tests.factories import UserFactory
from tests.trading.conftest import place
from trading.models import Fill, Order

pytestmark = pytest.mark.django_db
D = Decimal
HTMX = {"HTTP_HX_REQUEST": "true"}


def ticket(**fields) -> dict[str, str]:
    data = {
        "symbol": "AAPL",
        "idempotency_key": "key-1",
        "side": "buy",
        "type": "market",
        "quantity": "10",
        "time_in_force": "gtc",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def trader(player_client, portfolio, stock):
    return player_client


def counts() -> tuple[int, int, int]:
    return Order.objects.count(), Fill.objects.count(), LedgerEntry.objects.count()


# --- the ticket -------------------------------------------------------------------


def test_the_ticket_renders_for_a_stock_with_a_fresh_idempotency_key(rf, player, portfolio, stock):
    request = rf.get("/stocks/AAPL/")
    request.user = player
    first = render_to_string(
        "trading/partials/order_ticket.html", {"stock": stock}, request=request
    )
    second = render_to_string(
        "trading/partials/order_ticket.html", {"stock": stock}, request=request
    )
    assert 'name="idempotency_key"' in first
    key = first.split('name="idempotency_key" value="')[1].split('"')[0]
    assert len(key) == 32 and key not in second
    assert 'hx-get="/orders/new/?step=estimate"' in first


def test_the_ticket_page_works_without_javascript(trader):
    response = trader.get("/orders/new/?symbol=aapl")
    assert response.status_code == 200
    assert b"Review order" in response.content


def test_the_live_estimate_shows_cost_fee_and_buying_power_after(trader):
    response = trader.get("/orders/new/", {"step": "estimate", **ticket()}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "$1,000.20" in body  # 10 × 100.02
    assert "$1.50" in body  # fee
    assert "$1,001.70" in body  # cost
    assert "$98,998.30" in body  # buying power after
    assert counts()[0] == 0


def test_the_live_estimate_explains_incomplete_input(trader):
    response = trader.get("/orders/new/", {"step": "estimate", **ticket(quantity="0")}, **HTMX)
    assert response.status_code == 200
    assert "Enter at least 1 share." in response.content.decode()


def test_the_live_estimate_prompts_before_any_quantity_is_typed(trader):
    response = trader.get("/orders/new/", {"step": "estimate", **ticket(quantity="")}, **HTMX)
    assert "Enter the number of shares to see an estimate." in response.content.decode()


def test_review_asks_for_confirmation_and_writes_nothing(trader):
    before = counts()
    response = trader.post("/orders/new/", ticket(step="review"), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Confirm buy 10 AAPL ~$1,001.70" in body
    assert "Buy 10 AAPL at market" in body
    assert 'value="key-1"' in body  # the same key travels to the confirm step
    assert counts() == before


def test_confirm_places_the_order_and_renders_a_fresh_ticket(trader, portfolio):
    response = trader.post("/orders/new/", ticket(step="confirm"), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "filled at $100.0200" in body
    assert 'value="key-1"' not in body
    order = Order.objects.get()
    assert (order.status, order.quantity) == ("filled", 10)
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("98998.30")


def test_a_double_submit_of_one_ticket_makes_one_order(trader):
    trader.post("/orders/new/", ticket(step="confirm"), **HTMX)
    trader.post("/orders/new/", ticket(step="confirm"), **HTMX)
    assert Order.objects.count() == 1
    assert Fill.objects.count() == 1


def test_without_javascript_confirm_redirects_to_the_receipt(trader):
    review = trader.post("/orders/new/", ticket(step="review"))
    assert review.status_code == 200
    assert b"<html" in review.content and b"Confirm buy 10 AAPL" in review.content
    response = trader.post("/orders/new/", ticket(step="confirm"))
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.pk}/"


def test_a_resting_order_goes_to_the_orders_page(trader):
    response = trader.post("/orders/new/", ticket(step="confirm", type="limit", limit_price="90"))
    assert response.status_code == 302
    assert response["Location"] == "/orders/"
    assert Order.objects.get().status == "open"


def test_review_of_a_stop_limit_describes_it_and_what_it_reserves(trader):
    fields = ticket(step="review", type="stop_limit", stop_price="110", limit_price="110.5")
    body = trader.post("/orders/new/", fields, **HTMX).content.decode()
    assert "Buy 10 AAPL, stop $110.00, limit $110.50" in body
    assert "Reserved until it fills" in body and "$1,106.55" in body  # 10 × 110.50 + fee 1.55
    assert Order.objects.count() == 0


def test_edit_goes_back_to_the_filled_in_ticket(trader):
    response = trader.post("/orders/new/", ticket(step="edit", quantity="7"), **HTMX)
    assert response.status_code == 200
    assert 'value="7"' in response.content.decode()


# --- bad input: a message next to the field, a 4xx, nothing written ----------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"quantity": "0"}, "quantity", "Enter at least 1 share."),
        ({"quantity": "-3"}, "quantity", "Enter at least 1 share."),
        ({"quantity": "1.5"}, "quantity", "Enter a whole number of shares."),
        ({"quantity": "1000000001"}, "quantity", "At most 1,000,000,000 shares per order."),
        ({"quantity": "ten"}, "quantity", "Enter a whole number of shares."),
        ({"quantity": ""}, "quantity", "Enter how many shares."),
        ({"type": "limit", "limit_price": "95.12345"}, "limit_price", "at most 4 decimal places"),
        ({"type": "limit", "limit_price": "0"}, "limit_price", "must be above zero"),
        ({"type": "limit", "limit_price": "-5"}, "limit_price", "must be above zero"),
        ({"type": "limit", "limit_price": "abc"}, "limit_price", "Enter a number."),
        ({"type": "limit"}, "limit_price", "Enter a limit price"),
        ({"type": "stop", "stop_price": "0"}, "stop_price", "must be above zero"),
        (
            {"type": "stop_limit", "stop_price": "110", "limit_price": "105"},
            "limit_price",
            "at or above its stop price",
        ),
        ({"type": "trailing_stop"}, "trail_amount", "as an amount or as a percent"),
        ({"type": "trailing_stop", "trail_percent": "100"}, "trail_percent", "below 100"),
        ({"side": "short"}, "side", "Select a valid choice"),
    ],
)
@pytest.mark.parametrize("step", ["review", "confirm"])
def test_bad_input_gets_a_message_next_to_the_field_and_a_400(trader, fields, field, message, step):
    before = counts()
    response = trader.post("/orders/new/", ticket(step=step, **fields), **HTMX)
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert f'id="id_{field}_errors"' in response.content.decode() or field == "side"
    assert counts() == before


@pytest.mark.parametrize("step", ["review", "confirm"])
def test_not_enough_cash_is_a_409_with_the_message_on_quantity(trader, step):
    before = counts()
    response = trader.post("/orders/new/", ticket(step=step, quantity="5000"), **HTMX)
    assert response.status_code == 409
    assert "Not enough buying power" in response.context["form"].errors["quantity"][0]
    assert counts() == before


@pytest.mark.parametrize("step", ["review", "confirm"])
def test_not_enough_shares_is_a_409(trader, step):
    before = counts()
    response = trader.post("/orders/new/", ticket(step=step, side="sell", quantity="1"), **HTMX)
    assert response.status_code == 409
    assert "AAPL" in response.context["form"].errors["quantity"][0]
    assert counts() == before


def test_a_trail_beyond_the_price_is_a_400_on_confirm(trader, portfolio, stock):
    place(portfolio, stock, "buy", "market", 1)
    before = counts()
    response = trader.post(
        "/orders/new/",
        ticket(step="confirm", side="sell", quantity="1", type="trailing_stop", trail_amount="150"),
    )
    assert response.status_code == 400
    assert "would sit at zero" in response.context["form"].errors["trail_amount"][0]
    assert counts() == before


def test_a_halted_stock_is_refused_with_the_reason(trader, stock):
    stock.halted, stock.halt_reason = True, "pending news"
    stock.save()
    response = trader.post("/orders/new/", ticket(step="review"))
    assert response.status_code == 409
    assert "halted: pending news" in response.content.decode()
    assert Order.objects.count() == 0


def test_an_unknown_symbol_is_a_404(trader):
    assert trader.post("/orders/new/", ticket(step="review", symbol="NOPE")).status_code == 404


def test_the_ticket_needs_a_login(client, stock):
    response = client.post("/orders/new/", ticket(step="confirm"))
    assert response.status_code == 302
    assert Order.objects.count() == 0


# --- /orders/ -------------------------------------------------------------------------


def test_the_orders_page_lists_open_orders_and_history_with_filters(trader, portfolio, stock):
    place(portfolio, stock, "buy", "market", 2)
    place(portfolio, stock, "buy", "limit", 1, limit_price=D("90.5"))
    place(portfolio, stock, "sell", "limit", 1, limit_price=D("130"))

    everything = trader.get("/orders/")
    assert everything.status_code == 200
    assert len(everything.context["rows"]) == 3

    open_buys = trader.get("/orders/", {"status": "open", "side": "buy", "symbol": "aapl"})
    rows = open_buys.context["rows"]
    assert [(order.type, order.side) for order, _ in rows] == [("limit", "buy")]
    assert "L 90.5" in open_buys.content.decode()

    filled = trader.get("/orders/", {"status": "filled"}, **HTMX)
    assert b"<html" not in filled.content
    assert b"$100.0200" in filled.content


def test_the_orders_page_is_paginated_and_its_queries_are_capped(
    trader, portfolio, stock, django_assert_max_num_queries
):
    for _ in range(30):
        place(portfolio, stock, "buy", "market", 1)
    # 3 are the page's own (count, orders with stocks, fills); the rest are the session,
    # the user, the header wallet and session tracking. An N+1 over 25 rows would blow it.
    with django_assert_max_num_queries(16):
        response = trader.get("/orders/")
    assert len(response.context["rows"]) == 25
    assert "Page 1 of 2" in response.content.decode()
    assert len(trader.get("/orders/", {"page": 2}).context["rows"]) == 5


def test_the_orders_page_has_an_empty_state(trader):
    assert b"You have not placed any orders yet" in trader.get("/orders/").content
    assert b"No orders match" in trader.get("/orders/", {"status": "expired"}).content


def test_the_receipt_shows_quote_price_spread_fee_and_total(trader, portfolio, stock):
    order = place(portfolio, stock, "buy", "market", 10)
    body = trader.get(f"/orders/{order.pk}/").content.decode()
    for figure in ("$100.0000", "$100.0200", "$0.20", "$1.50", "$1,001.70"):
        assert figure in body


def test_cancel_asks_then_releases_the_reservation(trader, portfolio, stock):
    order = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"))
    confirm = trader.get(f"/orders/{order.pk}/cancel/")
    assert confirm.status_code == 200 and b"Cancel this order?" in confirm.content

    response = trader.post(f"/orders/{order.pk}/cancel/", {"next": "/orders/?status=open"})
    assert response.status_code == 302 and response["Location"] == "/orders/?status=open"
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert Portfolio.objects.get(pk=portfolio.pk).reserved_cash == D("0")


def test_cancelling_a_filled_order_says_so_and_changes_nothing(trader, portfolio, stock):
    order = place(portfolio, stock, "buy", "market", 1)
    response = trader.post(f"/orders/{order.pk}/cancel/", follow=True)
    assert "already filled" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == "filled"


def test_another_players_order_is_a_404(trader, stock):
    from portfolio.services import portfolio_open

    other = portfolio_open(owner=UserFactory())
    order = place(other, stock, "buy", "limit", 1, limit_price=D("90"))
    assert trader.get(f"/orders/{order.pk}/").status_code == 404
    assert trader.get(f"/orders/{order.pk}/cancel/").status_code == 404
    assert trader.post(f"/orders/{order.pk}/cancel/").status_code == 404
    assert Order.objects.get(pk=order.pk).status == "open"


def test_the_stock_page_carries_the_ticket(trader):
    response = trader.get("/stocks/AAPL/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="order-ticket"' in body and "Review order" in body
