"""Fixtures for the trading tests: listed stocks, funded portfolios, a tick maker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from market.models import Stock
from market.ticks import StockTick, TickResult
from portfolio.models import Portfolio
from portfolio.services import portfolio_open
from tests.factories import StockFactory, UserFactory
from trading.services import order_place


@pytest.fixture
def stock(db) -> Stock:
    return StockFactory(symbol="AAPL", last_price=Decimal("100.0000"))


@pytest.fixture
def portfolio(player) -> Portfolio:
    return portfolio_open(owner=player)


@pytest.fixture
def make_portfolio(db):
    def make() -> Portfolio:
        return portfolio_open(owner=UserFactory())

    return make


def place(
    portfolio: Portfolio,
    stock: Stock,
    side: str = "buy",
    type: str = "market",
    quantity: int = 1,
    **terms,
):
    terms.setdefault("time_in_force", "gtc")
    return order_place(
        portfolio=portfolio,
        stock=stock,
        side=side,
        type=type,
        quantity=quantity,
        idempotency_key=terms.pop("idempotency_key", None) or uuid.uuid4().hex,
        **terms,
    )


def tick(*moves: tuple[Stock, str]) -> TickResult:
    """Move each stock to its new price (as market.services would) and build the TickResult."""
    ticks = []
    for stock, price in moves:
        previous = Stock.objects.get(pk=stock.pk).last_price
        new = Decimal(price)
        Stock.objects.filter(pk=stock.pk).update(last_price=new)
        ticks.append(
            StockTick(
                stock_id=stock.pk,
                symbol=stock.symbol,
                price=new,
                previous_price=previous,
                change=new - previous,
                change_pct=Decimal("0"),
                day_high=new,
                day_low=new,
                volume=0,
            )
        )
    return TickResult(slot=0, at=datetime.now(UTC), ticks=ticks)
