"""A tick that died after committing its prices but before its triggers ran."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from market.models import Stock
from market.ticks import TickResult
from tests.trading.conftest import place
from trading.models import Fill, OrderStatus
from trading.triggers import on_tick

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_next_tick_fires_orders_its_unmoved_price_already_satisfies(portfolio, stock):
    order = place(portfolio, stock, side="buy", type="stop", quantity=2, stop_price=Decimal("108"))
    assert order.status == OrderStatus.OPEN
    # The dead tick: its price (past the stop) committed, its triggers never ran.
    Stock.objects.filter(pk=stock.pk).update(last_price=Decimal("120.0000"))

    # The next tick quotes the same price: nothing moved, but everything was quoted.
    on_tick(
        TickResult(slot=1, at=datetime.now(UTC), ticks=[], quoted={stock.pk: Decimal("120.0000")})
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Fill.objects.filter(order=order).count() == 1
