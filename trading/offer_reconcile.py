"""What live offers hold, for `manage.py reconcile` (RECONCILE_RESERVATION_SOURCES)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from trading.models import OFFER_LIVE_STATUSES, TradeOffer


def offer_reservations() -> dict[int, tuple[Decimal, dict[int, int]]]:
    """{portfolio id: (cash reserved, {stock id: shares reserved})} over live offers
    (open or partly filled, including those past expiry that the sweep has not reached:
    their escrow is still held until it does)."""
    cash: dict[int, Decimal] = defaultdict(lambda: Decimal("0"))
    shares: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        TradeOffer.objects.filter(status__in=OFFER_LIVE_STATUSES)
        .values("maker_id", "stock_id")
        .annotate(cash=Sum("reserved_cash"), quantity=Sum("reserved_quantity"))
        .order_by()
    )
    for row in rows:
        cash[row["maker_id"]] += row["cash"] or Decimal("0")
        if row["quantity"]:
            shares[row["maker_id"]][row["stock_id"]] = row["quantity"]
    return {pid: (cash[pid], shares.get(pid, {})) for pid in cash}
