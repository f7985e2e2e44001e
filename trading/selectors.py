"""Reads of orders and fills used in more than one place."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from trading.models import OPEN_STATUSES, Fill, Order

# The orders the tick's new prices satisfy, in one statement. For each ticked stock, two
# index range scans: order_trigger_rise_idx / order_trigger_fall_idx are partial indexes
# on (stock_id, trigger_price) holding only resting orders, and the predicates repeat
# their WHERE clauses word for word so the planner can use them. OFFSET 0 keeps the
# LATERAL from being flattened into a hash join that reads every resting order (what
# the planner picks when most orders rest and it cannot tell how few will fire).
TRIGGERED_SQL = """
SELECT hit.id, tick.price
FROM unnest(%(stock_ids)s::bigint[], %(prices)s::numeric[]) AS tick(stock_id, price)
CROSS JOIN LATERAL (
    SELECT o.id FROM trading_order o
    WHERE o.stock_id = tick.stock_id AND o.status IN ('open', 'triggered')
      AND o.trigger_when = 'rise' AND o.trigger_price <= tick.price
    UNION ALL
    SELECT o.id FROM trading_order o
    WHERE o.stock_id = tick.stock_id AND o.status IN ('open', 'triggered')
      AND o.trigger_when = 'fall' AND o.trigger_price >= tick.price
    OFFSET 0
) AS hit
ORDER BY hit.id
"""


def orders_triggered(*, prices: Mapping[int, Decimal]) -> list[tuple[int, Decimal]]:
    """(order id, price) of every resting order that `prices` (stock id -> price) fire,
    oldest order first (time priority)."""
    if not prices:
        return []
    stock_ids = list(prices)
    with connection.cursor() as cursor:
        cursor.execute(
            TRIGGERED_SQL,
            {"stock_ids": stock_ids, "prices": [prices[stock_id] for stock_id in stock_ids]},
        )
        return [(order_id, price) for order_id, price in cursor.fetchall()]


def order_for_user(*, user: Any, order_id: int) -> Order:
    """The access helper: the order if one of `user`'s portfolios placed it, else 404."""
    try:
        return (
            Order.objects.select_related("stock", "portfolio")
            .prefetch_related("fills")
            .get(pk=order_id, portfolio__owner=user)
        )
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


STATUS_FILTERS = {
    "open": OPEN_STATUSES,
    "filled": ("filled",),
    "cancelled": ("cancelled",),
    "expired": ("expired",),
    "rejected": ("rejected",),
}


def orders_for_user(
    *, user: Any, status: str = "", side: str = "", symbol: str = ""
) -> QuerySet[Order]:
    """A player's orders, newest first, narrowed by the /orders/ filters."""
    orders = Order.objects.filter(portfolio__owner=user).select_related("stock")
    if status in STATUS_FILTERS:
        orders = orders.filter(status__in=STATUS_FILTERS[status])
    if side:
        orders = orders.filter(side=side)
    if symbol:
        orders = orders.filter(stock__symbol=symbol.upper())
    return orders.order_by("-created_at", "-id")


def fills_for_orders(orders: list[Order]) -> dict[int, Fill]:
    """The fill of each filled order on a page, in one query."""
    fills = Fill.objects.filter(order__in=[order.pk for order in orders])
    return {fill.order_id: fill for fill in fills}


def open_orders_count(*, portfolio_id: int) -> int:
    return Order.objects.filter(portfolio_id=portfolio_id, status__in=OPEN_STATUSES).count()
