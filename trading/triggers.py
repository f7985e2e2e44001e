"""Firing resting orders on each market tick (a hook in settings.MARKET_TICK_HOOKS).

Per tick: one UPDATE moves the trailing stops' water marks, one indexed SELECT finds
the orders the new prices satisfy, then each of those (and only those) fills in its
own short transaction. Nothing here loops over all open orders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection

from trading.selectors import orders_triggered
from trading.services import announcements_deferred, order_fill, trailing_stops_follow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TriggerReport:
    trailing_moved: int
    triggered: int
    filled: int
    queued: int  # handed to fill_triggered_orders tasks (fan-out), not filled here
    seconds: float  # the whole step: find and fill
    find_seconds: float  # the trailing UPDATE and the trigger SELECT
    follow_seconds: float  # of which the trailing UPDATE


def _fill_each(
    pending: Iterator[tuple[int, Decimal]], at: datetime | None, announcements: list
) -> int:
    filled = 0
    with announcements_deferred() as deferred:
        for order_id, price in pending:
            try:
                if order_fill(order_id=order_id, quote=price, quote_at=at) is not None:
                    filled += 1
            except Exception:
                # One broken order must not stop the others in this tick; it stays open
                # and is tried again on the next tick that satisfies it.
                logger.exception("order %s could not be filled", order_id)
    announcements.extend(deferred)
    return filled


def _announce(announcements: list[tuple[str, int]]) -> None:
    """Tell the players about this tick's fills from a Celery task, off the tick's path
    (each push renders a fragment and reaches Redis). If the broker is unreachable,
    nobody is told; the pages' own polling still shows the fills."""
    if not announcements:
        return
    from trading.tasks import announce

    try:
        announce.delay(announcements)
    except Exception:
        logger.warning("tick announcements not queued (%d)", len(announcements), exc_info=True)


def _fill_parallel(
    triggered: list[tuple[int, Decimal]], at: datetime | None, workers: int, announcements: list
) -> int:
    """Fill from `workers` threads, each with its own connection, taking orders oldest
    first from one shared queue. Each fill is still its own transaction; two threads
    never take one order (SKIP LOCKED), and fills of one portfolio serialize on its lock."""
    shared = iter(triggered)
    lock = threading.Lock()
    counts: list[int] = []

    def next_order() -> Iterator[tuple[int, Decimal]]:
        while True:
            with lock:
                item = next(shared, None)
            if item is None:
                return
            yield item

    def run() -> None:
        try:
            filled = _fill_each(next_order(), at, announcements)
            with lock:
                counts.append(filled)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"fill-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def triggered_fill(
    triggered: list[tuple[int, Decimal]], *, at: datetime | None, workers: int = 1
) -> int:
    """Fill (order id, price) pairs, each in its own transaction; announce them in one
    batch afterwards. Returns how many filled."""
    announcements: list[tuple[str, int]] = []
    if workers > 1 and len(triggered) >= 4 * workers:
        filled = _fill_parallel(triggered, at, workers, announcements)
    else:
        filled = _fill_each(iter(triggered), at, announcements)
    _announce(announcements)
    return filled


def _queue_fills(triggered: list[tuple[int, Decimal]], at: datetime | None, batch: int) -> int:
    """Hand the fills to Celery in chunks of `batch`, so several worker processes fill
    one tick's orders in parallel. A chunk that runs twice is harmless: each fill takes
    its order row with SKIP LOCKED and re-checks its status and trigger. Returns how many
    were queued; a chunk the broker refuses is not queued (the caller fills it)."""
    from trading.tasks import fill_triggered_orders

    when = at.isoformat() if at else None
    for start in range(0, len(triggered), batch):
        chunk = [(order_id, str(price)) for order_id, price in triggered[start : start + batch]]
        try:
            fill_triggered_orders.delay(chunk, when)
        except Exception:
            logger.warning(
                "tick fills not queued (%d of %d): filling them here",
                len(triggered) - start,
                len(triggered),
                exc_info=True,
            )
            return start
    return len(triggered)


def orders_trigger(
    *,
    prices: Mapping[int, Decimal],
    at: datetime | None = None,
    workers: int | None = None,
    fan_out: int | None = None,
) -> TriggerReport:
    """Fire the resting orders that `prices` (stock id -> new price) satisfy.

    A tick that fires at most `fan_out` orders (default settings.TRIGGER_FILL_TASK_BATCH)
    fills them here, from `workers` threads (default settings.TRIGGER_FILL_WORKERS, used
    when there are enough orders to be worth it). One that fires more hands them to
    Celery tasks of `fan_out` orders each and returns: a fill costs a few milliseconds,
    so a tick that filled a thousand orders itself would take seconds, and the worker
    processes fill them in parallel. `fan_out` 0: always fill here.
    """
    started = time.perf_counter()
    workers = workers or settings.TRIGGER_FILL_WORKERS
    moved = trailing_stops_follow(prices=prices)
    followed = time.perf_counter()
    triggered = orders_triggered(prices=prices)
    found = time.perf_counter()
    batch = settings.TRIGGER_FILL_TASK_BATCH if fan_out is None else fan_out
    queued = 0
    filled = 0
    if batch and len(triggered) > batch:
        queued = _queue_fills(triggered, at, batch)
    if queued < len(triggered):
        filled = triggered_fill(triggered[queued:], at=at, workers=workers)
    report = TriggerReport(
        trailing_moved=moved,
        triggered=len(triggered),
        filled=filled,
        queued=queued,
        seconds=time.perf_counter() - started,
        find_seconds=found - started,
        follow_seconds=followed - started,
    )
    if triggered:
        logger.info(
            "tick fired %d orders (%d filled, %d queued, %d trailing moved) in %.0f ms (find %.0f ms)",
            report.triggered,
            report.filled,
            report.queued,
            report.trailing_moved,
            report.seconds * 1000,
            report.find_seconds * 1000,
        )
    return report


def on_tick(tick_result: Any) -> TriggerReport:
    """The MARKET_TICK_HOOKS entry: `tick_result` is market.ticks.TickResult."""
    # Every quoted price, not only the moved ones: see TickResult.quoted.
    prices = dict(tick_result.quoted) or {tick.stock_id: tick.price for tick in tick_result.ticks}
    return orders_trigger(prices=prices, at=tick_result.at)
