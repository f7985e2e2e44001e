"""A bank test in the spirit of Jepsen's: many threads race orders, cancels and ticks on
real PostgreSQL, then the books must balance to the cent and the share.

16 worker threads, 24 portfolios, 4 stocks, ~6 seconds. Each thread picks at random:
a market buy or sell, a limit buy or sell near the price, a stop, a stop-limit, a trailing stop, a cancel of a random
open order, a resubmit of a key another thread already used, or a tick that moves
prices at random and fires whatever they satisfy (so ticks race each other, fills
race cancels, and two submits of one key race each other). Refusals (not enough cash
or shares, an order already filled) are expected; any other exception fails the test.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum

from market.models import Stock
from market.ticks import StockTick, TickResult
from portfolio.models import LedgerEntry, Portfolio, Position
from portfolio.reconcile import reconcile_check
from portfolio.services import portfolio_open
from tests.factories import StockFactory, UserFactory
from trading.errors import TradingError
from trading.models import OPEN_STATUSES, Fill, Order
from trading.services import order_cancel, order_place
from trading.triggers import on_tick, orders_trigger

THREADS = 16
PORTFOLIOS = 24
SECONDS = 6.0
D = Decimal


def _tick(stock_ids: list[int], rng: random.Random) -> None:
    """Move a few prices by up to ±3% (as market.services would) and run the trigger hook."""
    ticks = []
    for stock_id in rng.sample(stock_ids, k=rng.randint(1, len(stock_ids))):
        with transaction.atomic():
            stock = Stock.objects.select_for_update().get(pk=stock_id)
            move = D(rng.randint(-300, 300)) / D(10_000)
            price = max(D("5"), (stock.last_price * (1 + move)).quantize(D("0.01")))
            previous, stock.last_price = stock.last_price, price
            stock.save(update_fields=["last_price"])
        ticks.append(
            StockTick(
                stock_id=stock_id,
                symbol=stock.symbol,
                price=price,
                previous_price=previous,
                change=price - previous,
                change_pct=D("0"),
                day_high=price,
                day_low=price,
                volume=0,
            )
        )
    on_tick(TickResult(slot=0, at=datetime.now(UTC), ticks=ticks))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_orders_cancels_and_ticks_keep_the_books_exact():
    stocks = [StockFactory(symbol=f"J{n}", last_price=D("100.00")) for n in range(4)]
    stock_ids = [stock.pk for stock in stocks]
    portfolios = [portfolio_open(owner=UserFactory()) for _ in range(PORTFOLIOS)]
    # Everyone starts with some shares, so sells and sell limits have something to sell.
    for portfolio in portfolios:
        for stock in stocks:
            order_place(
                portfolio=portfolio,
                stock=stock,
                side="buy",
                type="market",
                quantity=50,
                time_in_force="gtc",
                idempotency_key=f"seed-{portfolio.pk}-{stock.pk}",
            )

    deadline = time.monotonic() + SECONDS
    used_keys: list[tuple[int, str]] = []
    key_results: dict[tuple[int, str], set[int]] = defaultdict(set)
    failures: list[BaseException] = []
    actions: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            while time.monotonic() < deadline:
                action = rng.choices(
                    [
                        "market",
                        "limit",
                        "stop",
                        "stop_limit",
                        "trailing_stop",
                        "cancel",
                        "resubmit",
                        "tick",
                    ],
                    weights=[30, 25, 8, 5, 6, 15, 7, 15],
                )[0]
                portfolio = rng.choice(portfolios)
                stock = rng.choice(stocks)
                try:
                    if action == "tick":
                        _tick(stock_ids, rng)
                    elif action == "cancel":
                        order = (
                            Order.objects.filter(portfolio=portfolio, status__in=OPEN_STATUSES)
                            .order_by("?")
                            .first()
                        )
                        if order is not None:
                            order_cancel(order=order, by=portfolio.owner)
                    else:
                        if action == "resubmit" and used_keys:
                            with lock:
                                portfolio_id, key = rng.choice(used_keys)
                            portfolio = next(p for p in portfolios if p.pk == portfolio_id)
                        else:
                            key = uuid.uuid4().hex
                            with lock:
                                used_keys.append((portfolio.pk, key))
                        price = Stock.objects.get(pk=stock.pk).last_price
                        side = rng.choice(["buy", "sell"])
                        terms: dict = {}
                        order_type = "market" if action == "resubmit" else action
                        if order_type == "limit":
                            offset = D(rng.randint(-200, 200)) / D(10_000)
                            terms["limit_price"] = (price * (1 + offset)).quantize(D("0.01"))
                        elif order_type in ("stop", "stop_limit"):
                            offset = D(rng.randint(50, 300)) / D(10_000)
                            direction = 1 if side == "buy" else -1
                            stop = (price * (1 + direction * offset)).quantize(D("0.01"))
                            terms["stop_price"] = stop
                            if order_type == "stop_limit":
                                # The limit a little past the stop, on its right side.
                                slack = D(rng.randint(0, 200)) / D(10_000)
                                limit = stop * (1 + direction * slack)
                                terms["limit_price"] = limit.quantize(D("0.01"))
                        elif order_type == "trailing_stop":
                            terms["trail_percent"] = D(rng.randint(5, 40)) / D(10)
                        order = order_place(
                            portfolio=portfolio,
                            stock=stock,
                            side=side,
                            type=order_type,
                            quantity=rng.randint(1, 30),
                            time_in_force="gtc",
                            idempotency_key=key,
                            **terms,
                        )
                        with lock:
                            key_results[(portfolio.pk, key)].add(order.pk)
                    with lock:
                        actions[action] += 1
                except TradingError:
                    with lock:
                        actions[f"{action} refused"] += 1
        except BaseException as error:  # noqa: BLE001 - reported below
            with lock:
                failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (deadlock?)"
    print(f"\nactions: {dict(sorted(actions.items()))}")
    assert not failures, failures
    # The race really happened: many orders, fills from ticks, cancels, resubmits.
    assert actions["market"] > 50 and actions["tick"] > 10 and actions["cancel"] > 10
    assert Fill.objects.exclude(order__type="market").exists()

    # 1. Reconcile: every balance equals its ledger sum, every reservation its orders.
    report = reconcile_check()
    assert report.ok, [str(m) for m in report.mismatches] + report.source_errors

    # 2. Nothing negative.
    assert not Portfolio.objects.filter(cash__lt=0).exists()
    assert not Portfolio.objects.filter(reserved_cash__lt=0).exists()
    assert not Position.objects.filter(quantity__lt=0).exists()
    assert not Position.objects.filter(reserved_quantity__lt=0).exists()
    assert not Order.objects.filter(reserved_cash__lt=0).exists()
    assert not Order.objects.exclude(status__in=OPEN_STATUSES).exclude(reserved_cash=0).exists()

    # 3. Each idempotency key took effect once: one order per key, one fill per order,
    # one ledger movement per fill.
    assert all(len(order_ids) == 1 for order_ids in key_results.values())
    distinct_orders = {next(iter(order_ids)) for order_ids in key_results.values()}
    assert Order.objects.count() == len(distinct_orders) + len(portfolios) * len(stocks)
    fills_per_order = Counter(Fill.objects.values_list("order_id", flat=True))
    assert set(fills_per_order.values()) == {1}
    assert Order.objects.filter(status="filled").count() == len(fills_per_order)
    trade_entries = LedgerEntry.objects.filter(kind__in=["buy", "sell"])
    assert trade_entries.count() == Fill.objects.count()

    # 4. The shares of every symbol held by all portfolios equal what the fills moved,
    # and the cash equals the starting cash minus what the fills cost.
    for stock in stocks:
        held = Position.objects.filter(stock=stock).aggregate(total=Sum("quantity"))["total"]
        bought = Fill.objects.filter(stock=stock, side="buy").aggregate(q=Sum("quantity"))["q"] or 0
        sold = Fill.objects.filter(stock=stock, side="sell").aggregate(q=Sum("quantity"))["q"] or 0
        assert held == bought - sold
    starting = sum(portfolio.starting_cash for portfolio in portfolios)
    spent = sum((-fill.total if fill.side == "buy" else fill.total) for fill in Fill.objects.all())
    assert Portfolio.objects.aggregate(total=Sum("cash"))["total"] == starting + spent


@pytest.mark.django_db(transaction=True)
def test_two_workers_firing_one_tick_fill_each_order_once():
    stock = StockFactory(symbol="DUP", last_price=D("100.00"))
    portfolios = [portfolio_open(owner=UserFactory()) for _ in range(8)]
    for portfolio in portfolios:
        for n in range(4):
            order_place(
                portfolio=portfolio,
                stock=stock,
                side="buy",
                type="limit",
                quantity=2,
                limit_price=D("95"),
                time_in_force="gtc",
                idempotency_key=f"dup-{n}",
            )
    Stock.objects.filter(pk=stock.pk).update(last_price=D("94"))
    reports = []

    def worker() -> None:
        try:
            reports.append(orders_trigger(prices={stock.pk: D("94")}, workers=3))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.filled for report in reports) == 32
    assert Fill.objects.count() == 32
    assert set(Counter(Fill.objects.values_list("order_id", flat=True)).values()) == {1}
    assert not Order.objects.filter(status__in=OPEN_STATUSES).exists()
    assert reconcile_check().ok
