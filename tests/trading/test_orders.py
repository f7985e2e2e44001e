"""Placing, firing, cancelling and expiring orders through trading.services."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from market.models import Stock
from portfolio.models import LedgerEntry, Portfolio, Position
from tests.trading.conftest import place, tick
from trading.errors import (
    InsufficientFunds,
    InsufficientShares,
    InvalidOrder,
    OrderNotOpen,
    StockNotTradable,
    TooManyOpenOrders,
)
from trading.models import Fill, Order
from trading.reconcile import order_reservations
from trading.services import order_cancel, orders_expire
from trading.triggers import on_tick

pytestmark = pytest.mark.django_db
D = Decimal


def fresh(portfolio: Portfolio) -> Portfolio:
    return Portfolio.objects.get(pk=portfolio.pk)


def shares(portfolio: Portfolio, stock: Stock) -> int:
    position = Position.objects.filter(portfolio=portfolio, stock=stock).first()
    return position.quantity if position else 0


def status(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


# --- market orders -------------------------------------------------------------------


def test_a_market_buy_fills_at_once_at_the_quote_plus_half_the_spread(portfolio, stock):
    order = place(portfolio, stock, "buy", "market", 10)

    fill = Fill.objects.get(order=order)
    assert order.status == "filled"
    assert (fill.quote_price, fill.price, fill.fee) == (D("100.0000"), D("100.0200"), D("1.50"))
    assert fill.total == D("1001.70")
    assert fresh(portfolio).cash == D("100000.00") - D("1001.70")
    assert shares(portfolio, stock) == 10
    assert LedgerEntry.objects.filter(reference=f"fill:{fill.pk}").count() == 2


def test_a_market_sell_receives_the_quote_less_half_the_spread(portfolio, stock):
    place(portfolio, stock, "buy", "market", 10)
    cash_before = fresh(portfolio).cash

    order = place(portfolio, stock, "sell", "market", 5)

    fill = order.fills.get()
    assert (fill.price, fill.fee) == (D("99.9800"), D("1.25"))
    assert fresh(portfolio).cash == cash_before + D("499.90") - D("1.25")
    assert shares(portfolio, stock) == 5


def test_a_buy_larger_than_the_cash_is_refused_and_writes_nothing(portfolio, stock):
    entries = LedgerEntry.objects.count()
    with pytest.raises(InsufficientFunds, match="buying power"):
        place(portfolio, stock, "buy", "market", 1_000_000)
    assert Order.objects.count() == 0
    assert Fill.objects.count() == 0
    assert LedgerEntry.objects.count() == entries
    assert fresh(portfolio).cash == D("100000.00")


def test_a_sell_without_the_shares_is_refused(portfolio, stock):
    with pytest.raises(InsufficientShares):
        place(portfolio, stock, "sell", "market", 1)
    with pytest.raises(InsufficientShares):
        place(portfolio, stock, "sell", "limit", 1, limit_price=D("120"))
    assert Order.objects.count() == 0


def test_the_same_idempotency_key_makes_one_order(portfolio, stock):
    first = place(portfolio, stock, "buy", "market", 3, idempotency_key="ticket-1")
    second = place(portfolio, stock, "buy", "market", 3, idempotency_key="ticket-1")

    assert first.pk == second.pk
    assert Order.objects.count() == 1
    assert Fill.objects.count() == 1
    assert shares(portfolio, stock) == 3


@pytest.mark.parametrize(
    ("halted", "delisted", "message"),
    [(True, False, "halted: circuit breaker"), (False, True, "delisted")],
)
def test_orders_in_a_halted_or_delisted_stock_are_refused_with_the_reason(
    portfolio, stock, halted, delisted, message
):
    Stock.objects.filter(pk=stock.pk).update(
        halted=halted,
        halt_reason="circuit breaker",
        delisted_at=timezone.now() if delisted else None,
    )
    with pytest.raises(StockNotTradable, match=message):
        place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"))
    assert Order.objects.count() == 0


# --- resting orders --------------------------------------------------------------------


def test_a_buy_limit_reserves_the_worst_case_and_fills_when_the_price_reaches_it(portfolio, stock):
    order = place(portfolio, stock, "buy", "limit", 10, limit_price=D("95"))
    assert (order.status, order.reserved_cash) == ("open", D("951.48"))
    assert fresh(portfolio).reserved_cash == D("951.48")

    on_tick(tick((stock, "96")))
    assert status(order) == "open"

    on_tick(tick((stock, "95")))
    fill = Fill.objects.get(order=order)
    assert status(order) == "filled"
    assert fill.price == D("95.0000")  # capped by the limit, not 95.019
    assert fresh(portfolio).reserved_cash == D("0")
    assert fresh(portfolio).cash == D("100000.00") - D("950.00") - D("1.48")
    assert shares(portfolio, stock) == 10


def test_a_sell_limit_reserves_shares_and_fills_at_or_above_its_limit(portfolio, stock):
    place(portfolio, stock, "buy", "market", 10)
    order = place(portfolio, stock, "sell", "limit", 4, limit_price=D("105"))
    assert Position.objects.get(portfolio=portfolio, stock=stock).reserved_quantity == 4
    with pytest.raises(InsufficientShares):
        place(portfolio, stock, "sell", "market", 7)

    on_tick(tick((stock, "104.99")))
    assert status(order) == "open"
    on_tick(tick((stock, "110")))
    assert status(order) == "filled"
    assert order.fills.get().price == D("109.9780")
    assert shares(portfolio, stock) == 6


def test_a_marketable_limit_fills_at_once(portfolio, stock):
    order = place(portfolio, stock, "buy", "limit", 1, limit_price=D("120"))
    assert order.status == "filled"
    assert order.fills.get().price == D("100.0200")


def test_a_stop_becomes_a_market_order_on_the_tick_that_reaches_it(portfolio, stock):
    order = place(portfolio, stock, "buy", "stop", 2, stop_price=D("110"))
    # Reserved for the stop plus the 5% band and the spread: 115.5231 × 2 + fee.
    assert order.reserved_cash == D("231.05") + D("1.12")

    on_tick(tick((stock, "109.99")))
    assert status(order) == "open"
    on_tick(tick((stock, "110.50")))
    fill = Fill.objects.get(order=order)
    assert (fill.quote_price, fill.price) == (D("110.5000"), D("110.5221"))
    assert fresh(portfolio).reserved_cash == D("0")


def test_a_sell_stop_fires_when_the_price_falls_to_it(portfolio, stock):
    place(portfolio, stock, "buy", "market", 5)
    order = place(portfolio, stock, "sell", "stop", 5, stop_price=D("90"))
    on_tick(tick((stock, "91")))
    assert status(order) == "open"
    on_tick(tick((stock, "89")))
    assert Fill.objects.get(order=order).price == D("88.9822")
    assert shares(portfolio, stock) == 0


def test_a_stop_whose_condition_already_holds_fires_at_once(portfolio, stock):
    order = place(portfolio, stock, "buy", "stop", 1, stop_price=D("95"))
    assert order.status == "filled"
    assert order.fills.get().price == D("100.0200")


def test_a_stop_limit_becomes_a_limit_when_its_stop_fires(portfolio, stock):
    order = place(
        portfolio, stock, "buy", "stop_limit", 3, stop_price=D("110"), limit_price=D("110.50")
    )

    on_tick(tick((stock, "115")))  # the stop fires, but 115 is above the limit
    order.refresh_from_db()
    assert (order.status, order.trigger_price, order.trigger_when) == (
        "triggered",
        D("110.5"),
        "fall",
    )
    assert order.triggered_at is not None

    on_tick(tick((stock, "110.40")))
    assert status(order) == "filled"
    assert order.fills.get().price == D("110.4221")


def test_a_stop_limit_whose_limit_is_on_the_wrong_side_of_its_stop_is_refused(portfolio, stock):
    with pytest.raises(InvalidOrder) as error:
        place(portfolio, stock, "buy", "stop_limit", 1, stop_price=D("110"), limit_price=D("105"))
    assert error.value.field == "limit_price"
    with pytest.raises(InvalidOrder):
        place(portfolio, stock, "sell", "stop_limit", 1, stop_price=D("90"), limit_price=D("95"))
    assert Order.objects.count() == 0


def test_a_trailing_sell_by_amount_follows_the_high_water_mark_tick_by_tick(portfolio, stock):
    place(portfolio, stock, "buy", "market", 5)
    order = place(portfolio, stock, "sell", "trailing_stop", 5, trail_amount=D("5"))
    assert (order.high_water, order.trigger_price) == (D("100"), D("95"))

    steps = [("104", "104", "99"), ("102", "104", "99"), ("99.50", "104", "99")]
    for price, high, trigger in steps:
        on_tick(tick((stock, price)))
        order.refresh_from_db()
        assert (order.status, order.high_water, order.trigger_price) == (
            "open",
            D(high),
            D(trigger),
        )

    on_tick(tick((stock, "99")))
    assert status(order) == "filled"
    assert order.fills.get().quote_price == D("99")


def test_a_trailing_sell_by_percent_follows_the_high_water_mark(portfolio, stock):
    place(portfolio, stock, "buy", "market", 5)
    order = place(portfolio, stock, "sell", "trailing_stop", 5, trail_percent=D("10"))
    assert order.trigger_price == D("90")
    on_tick(tick((stock, "120")))
    order.refresh_from_db()
    assert (order.high_water, order.trigger_price) == (D("120"), D("108"))
    on_tick(tick((stock, "108.01")))
    assert status(order) == "open"
    on_tick(tick((stock, "108")))
    assert status(order) == "filled"


def test_a_trailing_buy_follows_the_low_water_mark_by_amount_and_by_percent(portfolio, stock):
    by_amount = place(portfolio, stock, "buy", "trailing_stop", 1, trail_amount=D("5"))
    by_percent = place(portfolio, stock, "buy", "trailing_stop", 1, trail_percent=D("10"))
    assert (by_amount.trigger_price, by_percent.trigger_price) == (D("105"), D("110"))

    on_tick(tick((stock, "80")))
    by_amount.refresh_from_db()
    by_percent.refresh_from_db()
    assert (by_amount.low_water, by_amount.trigger_price) == (D("80"), D("85"))
    assert (by_percent.low_water, by_percent.trigger_price) == (D("80"), D("88"))

    on_tick(tick((stock, "86")))
    assert (status(by_amount), status(by_percent)) == ("filled", "open")
    on_tick(tick((stock, "88")))
    assert status(by_percent) == "filled"


def test_a_trail_larger_than_the_price_is_refused(portfolio, stock):
    place(portfolio, stock, "buy", "market", 1)
    with pytest.raises(InvalidOrder) as error:
        place(portfolio, stock, "sell", "trailing_stop", 1, trail_amount=D("100"))
    assert error.value.field == "trail_amount"


def test_a_fill_that_gaps_past_the_reserved_cash_is_rejected_and_released(portfolio, stock):
    order = place(portfolio, stock, "buy", "stop", 800, stop_price=D("110"))
    assert fresh(portfolio).reserved_cash == order.reserved_cash

    on_tick(tick((stock, "150")))

    order.refresh_from_db()
    assert order.status == "rejected"
    assert "buying power" in order.reason
    assert Fill.objects.count() == 0
    assert fresh(portfolio).reserved_cash == D("0")
    assert fresh(portfolio).cash == D("100000.00")


def test_orders_fire_only_for_the_stocks_that_ticked(portfolio, stock):
    other = Stock.objects.create(
        symbol="MSFT", name="Microsoft", sector="technology", last_price=D("100")
    )
    order = place(portfolio, other, "buy", "limit", 1, limit_price=D("95"))
    on_tick(tick((stock, "90")))
    assert status(order) == "open"


# --- cancel, expiry, limits ------------------------------------------------------------


def test_cancelling_releases_the_reservation(portfolio, stock, player):
    place(portfolio, stock, "buy", "market", 5)
    buy = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"))
    sell = place(portfolio, stock, "sell", "limit", 5, limit_price=D("120"))

    order_cancel(order=buy, by=player)
    order_cancel(order=sell, by=player)

    assert fresh(portfolio).reserved_cash == D("0")
    assert Position.objects.get(portfolio=portfolio, stock=stock).reserved_quantity == 0
    buy.refresh_from_db()
    assert (buy.status, buy.reason, buy.reserved_cash) == ("cancelled", "Cancelled by you.", D("0"))
    assert order_reservations() == {}


def test_a_filled_order_cannot_be_cancelled(portfolio, stock, player):
    order = place(portfolio, stock, "buy", "market", 1)
    with pytest.raises(OrderNotOpen, match="filled"):
        order_cancel(order=order, by=player)


def test_day_orders_expire_at_the_session_close_once(portfolio, stock, settings):
    day = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"), time_in_force="day")
    gtc = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"))
    assert day.expires_at > timezone.now()
    assert day.expires_at.hour == settings.SESSION_CLOSE_UTC.hour
    assert gtc.expires_at is None

    assert orders_expire(now=day.expires_at - timedelta(seconds=1)) == 0
    assert orders_expire(now=day.expires_at + timedelta(seconds=1)) == 1
    assert orders_expire(now=day.expires_at + timedelta(seconds=2)) == 0

    day.refresh_from_db()
    assert day.status == "expired"
    assert "session close" in day.reason
    assert fresh(portfolio).reserved_cash == gtc.reserved_cash


def test_the_number_of_open_orders_is_capped(portfolio, stock, settings):
    settings.MAX_OPEN_ORDERS = 2
    place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"))
    place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"))
    with pytest.raises(TooManyOpenOrders):
        place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"))
    # Market orders never rest, so they are not capped.
    place(portfolio, stock, "buy", "market", 1)
    assert Order.objects.filter(status="open").count() == 2


def test_reconcile_sees_what_open_orders_reserve(portfolio, stock):
    place(portfolio, stock, "buy", "market", 5)
    buy = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"))
    place(portfolio, stock, "sell", "limit", 3, limit_price=D("120"))
    assert order_reservations() == {portfolio.pk: (buy.reserved_cash, {stock.pk: 3})}


def test_resting_orders_of_a_delisted_stock_are_cancelled_and_released(portfolio, stock):
    order = place(portfolio, stock, "buy", "limit", 10, limit_price=D("90"))
    Stock.objects.filter(pk=stock.pk).update(delisted_at=timezone.now())

    assert orders_expire() == 1
    order.refresh_from_db()
    assert (order.status, order.reason) == ("cancelled", "Cancelled: AAPL was delisted.")
    assert fresh(portfolio).reserved_cash == D("0")
    assert orders_expire() == 0


def test_the_beat_task_expires_what_is_due(portfolio, stock):
    from trading.tasks import expire_day_orders

    order = place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"), time_in_force="day")
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_day_orders() == 1
    assert status(order) == "expired"
