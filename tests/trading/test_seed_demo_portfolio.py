"""The demo player's holdings are bought the way a player buys: market orders."""

from __future__ import annotations

from decimal import Decimal

from django.core.management import call_command

from portfolio.models import LedgerEntry, WatchlistItem
from portfolio.reconcile import reconcile_check
from portfolio.services import portfolio_open
from tests.factories import StockFactory
from trading.models import Fill, Order, OrderStatus


def test_seed_demo_portfolio_buys_with_market_orders_once_and_watches(player):
    portfolio = portfolio_open(owner=player)
    for n in range(3):
        StockFactory(symbol=f"D{n}", last_price=Decimal("50.0000"), volume=100 - n)

    call_command("seed_demo_portfolio", handle=player.handle, holdings=2, watch=3)
    call_command("seed_demo_portfolio", handle=player.handle, holdings=2, watch=3)

    orders = Order.objects.filter(portfolio=portfolio)
    assert orders.count() == 2
    assert all(order.status == OrderStatus.FILLED for order in orders)
    assert Fill.objects.filter(order__in=orders).count() == 2
    assert LedgerEntry.objects.filter(portfolio=portfolio, kind="buy").count() == 2
    assert LedgerEntry.objects.filter(portfolio=portfolio, kind="fee").count() == 2
    assert WatchlistItem.objects.filter(watchlist__owner=player).count() == 3
    assert reconcile_check().ok
