"""Firing resting orders on each market tick (a hook in settings.MARKET_TICK_HOOKS).

Per tick: one UPDATE moves the trailing stops' water marks, one indexed SELECT finds
the orders the new prices satisfy, then each of those (and only those) fills in its
own short transaction. Nothing here loops over all open orders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from trading.selectors import orders_triggered
from trading.services import order_fill, trailing_stops_follow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TriggerReport:
    trailing_moved: int
    triggered: int
    filled: int
    seconds: float


def orders_trigger(*, prices: Mapping[int, Decimal], at: datetime | None = None) -> TriggerReport:
    """Fire the resting orders that `prices` (stock id -> new price) satisfy."""
    started = time.perf_counter()
    moved = trailing_stops_follow(prices=prices)
    triggered = orders_triggered(prices=prices)
    filled = 0
    for order_id, price in triggered:
        try:
            if order_fill(order_id=order_id, quote=price, quote_at=at) is not None:
                filled += 1
        except Exception:
            # One broken order must not stop the others in this tick; it stays open
            # and is tried again on the next tick that satisfies it.
            logger.exception("order %s could not be filled", order_id)
    report = TriggerReport(
        trailing_moved=moved,
        triggered=len(triggered),
        filled=filled,
        seconds=time.perf_counter() - started,
    )
    if triggered:
        logger.info(
            "tick fired %d orders (%d filled, %d trailing moved) in %.0f ms",
            report.triggered,
            report.filled,
            report.trailing_moved,
            report.seconds * 1000,
        )
    return report


def on_tick(tick_result: Any) -> TriggerReport:
    """The MARKET_TICK_HOOKS entry: `tick_result` is market.ticks.TickResult."""
    prices = {tick.stock_id: tick.price for tick in tick_result.ticks}
    return orders_trigger(prices=prices, at=tick_result.at)
