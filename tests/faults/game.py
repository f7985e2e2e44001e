"""A small game in the fault database: stocks, a player, resting buy stops, and a
moderator's shock that makes some of them trigger at a chosen tick."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from accounts.models import User
from market.models import MarketEvent, Stock
from market.services import event_publish
from market.sessions import slot_time
from portfolio.models import Portfolio
from portfolio.reconcile import reconcile_check, reservation_sources_load
from portfolio.services import portfolio_open
from trading.models import Fill, Order
from trading.services import order_place

D = Decimal


@dataclass
class Game:
    portfolio: Portfolio
    shocked: Stock
    calm: Stock
    triggered: list[Order]
    resting: list[Order]
    shock: MarketEvent


def game_set_up(*, shock_slot: int) -> Game:
    """Four buy stops at 108 on a stock that a +20% shock at `shock_slot` sends past
    them, and four at 108 on a stock nothing moves that far."""
    shocked = Stock.objects.create(
        symbol="SHOK", name="Shocked", sector="technology", last_price=D("100"),
        previous_close=D("100"),
    )  # fmt: skip
    calm = Stock.objects.create(
        symbol="CALM", name="Calm", sector="utilities", last_price=D("100"),
        previous_close=D("100"),
    )  # fmt: skip
    owner = User.objects.create_user(f"fault_{uuid.uuid4().hex[:8]}", "fault@example.com", None)
    portfolio = portfolio_open(owner=owner)

    def buy_stop(stock: Stock) -> Order:
        return order_place(
            portfolio=portfolio,
            stock=stock,
            side="buy",
            type="stop",
            quantity=5,
            stop_price=D("108"),
            idempotency_key=uuid.uuid4().hex,
        )

    triggered = [buy_stop(shocked) for _ in range(4)]
    resting = [buy_stop(calm) for _ in range(4)]
    shock = event_publish(
        headline="SHOK doubles its guidance",
        body="",
        scope="stock",
        impact_pct=D("20"),
        created_by_id=None,
        at=slot_time(shock_slot),
        stock_id=shocked.pk,
    )
    return Game(portfolio, shocked, calm, triggered, resting, shock)


def quoted_at_slot(stock: Stock, slot: int) -> bool:
    stock.refresh_from_db()
    return stock.quoted_at == slot_time(slot)


def fills_per_order(orders: list[Order]) -> list[int]:
    return [Fill.objects.filter(order=order).count() for order in orders]


def reconcile_mismatches() -> list[str]:
    sources, errors = reservation_sources_load(settings.RECONCILE_RESERVATION_SOURCES)
    assert not errors
    return [str(mismatch) for mismatch in reconcile_check(sources=sources).mismatches]
