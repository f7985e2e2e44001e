"""What open orders hold, for `manage.py reconcile` (RECONCILE_RESERVATION_SOURCES)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from trading.models import OPEN_STATUSES, Order


def order_reservations() -> dict[int, tuple[Decimal, dict[int, int]]]:
    """{portfolio id: (cash reserved, {stock id: shares reserved})} over open orders."""
    cash: dict[int, Decimal] = defaultdict(lambda: Decimal("0"))
    shares: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        Order.objects.filter(status__in=OPEN_STATUSES)
        .values("portfolio_id", "stock_id")
        .annotate(cash=Sum("reserved_cash"), quantity=Sum("reserved_quantity"))
        .order_by()
    )
    for row in rows:
        cash[row["portfolio_id"]] += row["cash"] or Decimal("0")
        if row["quantity"]:
            shares[row["portfolio_id"]][row["stock_id"]] = row["quantity"]
    return {pid: (cash[pid], shares.get(pid, {})) for pid in cash}
