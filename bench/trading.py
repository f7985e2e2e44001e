"""Benchmark of the order path. Prints its figures; see docs/trading.md for a run.

    .venv/bin/python bench/trading.py [--workers 8] [--seconds 10] [--portfolios 400]
                                      [--resting 100000] [--stocks 500] [--trigger-pct 1]
                                      [--skip fills,pgbench,trigger,portfolio]

Starts the embedded PostgreSQL (and an embedded Redis) unless DATABASE_URL / REDIS_URL
are set, and works in its own database `bench_trading`, dropped and re-created on each
run. Four measurements:

1. fills: market orders through trading.services.order_place from `--workers` threads
   against `--portfolios` portfolios, for `--seconds`: fills per second sustained, and
   the latency of one order. Target: >= 300 fills/s.
2. pgbench: PostgreSQL's own TPC-B (pgbench, shipped next to pg_ctl in pgserver) on the
   same server, `--workers` clients for `--seconds`; the fills figure is reported as a
   ratio of its TPS.
3. trigger: `--resting` resting orders (buy limits, buy stops, trailing buys) over
   `--stocks` stocks, then two ticks moving every stock so that `--trigger-pct` % of
   them fire each time: the time of trading.triggers.orders_trigger (the trailing
   UPDATE, the trigger SELECT and the fills or their hand-off). The first tick fills
   everything itself (TRIGGER_FILL_TASK_BATCH=0, `--fill-workers` threads); the second
   runs as deployed (TRIGGER_FILL_TASK_BATCH: the fills go to Celery tasks, drained
   here by `--fill-processes` worker processes). Target: the tick's step < 500 ms.
4. portfolio: GET /portfolio/ for a player with 200 positions, 10,000 ledger entries and
   a year of five-minute net-worth snapshots (the performance section charts them)
   through Django's test client: p50/p95 over 100 requests. Target: p95 < 60 ms. Then
   the performance section the page loads right after it, measured the same way.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

from benchkit import admin_connection, django_ready, services_start

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "bench_trading"
PGBENCH_DB = "bench_pgbench"
D = Decimal


def log(message: str) -> None:
    print(message, flush=True)


# --- setup ------------------------------------------------------------------------


def socket_host() -> str | None:
    url = os.environ["DATABASE_URL"]
    match = re.search(r"host=([^&]+)", url)
    return match.group(1) if match else None


def stocks_make(count: int) -> list:
    from market.models import Stock

    Stock.objects.bulk_create(
        [
            Stock(
                symbol=f"B{n:04d}",
                name=f"Bench {n}",
                sector="technology",
                last_price=D("100.00"),
                previous_close=D("100.00"),
            )
            for n in range(count)
        ],
        ignore_conflicts=True,
    )
    return list(Stock.objects.order_by("pk")[:count])


def portfolios_make(count: int, prefix: str) -> list:
    """Players (bulk: no password hashing) and their portfolios, opened by the service."""
    from django.contrib.auth import get_user_model

    from portfolio.services import portfolio_open

    User = get_user_model()
    users = User.objects.bulk_create(
        [
            User(handle=f"{prefix}{n}", email=f"{prefix}{n}@bench.local", password="!")
            for n in range(count)
        ]
    )
    return [portfolio_open(owner=user) for user in users]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# --- 1. market fills ------------------------------------------------------------------


def _fills_loop(
    seed: int, portfolios: list, stocks: list, stop_at: float, deferred: bool
) -> tuple[int, int, list[float]]:
    """Market orders from one worker until `stop_at`: (fills, refusals, latencies).
    Each worker trades its own players (like real users), buying, or selling what it holds."""
    import contextlib

    from trading.errors import TradingError
    from trading.services import announcements_deferred, order_place

    rng = random.Random(seed)
    held: dict[tuple[int, int], int] = {}
    fills = refused = 0
    latencies: list[float] = []
    # deferred: the fill's announcement (the live push) is collected, not sent: what the
    # order service alone costs. Otherwise it is queued to Celery at each commit (a task
    # per fill, trading.tasks.announce), as deployed; no worker runs it here.
    with announcements_deferred() if deferred else contextlib.nullcontext():
        while time.monotonic() < stop_at:
            portfolio = rng.choice(portfolios)
            stock = rng.choice(stocks)
            have = held.get((portfolio.pk, stock.pk), 0)
            side = "sell" if have and rng.random() < 0.5 else "buy"
            quantity = rng.randint(1, have) if side == "sell" else rng.randint(1, 5)
            began = time.perf_counter()
            try:
                order_place(
                    portfolio=portfolio,
                    stock=stock,
                    side=side,
                    type="market",
                    quantity=quantity,
                    time_in_force="gtc",
                    idempotency_key=uuid.uuid4().hex,
                )
            except TradingError:
                refused += 1
                continue
            latencies.append(time.perf_counter() - began)
            held[(portfolio.pk, stock.pk)] = have + (quantity if side == "buy" else -quantity)
            fills += 1
    return fills, refused, latencies


def _fills_process(args: tuple) -> tuple[int, int, list[float]]:
    from django.db import connection

    try:
        return _fills_loop(*args)
    finally:
        connection.close()


def bench_fills(
    *, workers: int, seconds: float, portfolios: list, stocks: list, mode: str, deferred: bool
) -> float:
    """`workers` threads (one Python process, sharing its GIL) or processes placing
    market orders for `seconds`; returns fills per second."""
    from django.db import connection, connections

    what = f"{workers} {mode}, live push {'deferred' if deferred else 'queued'}"
    log(f"\n[fills] {len(portfolios)} portfolios, {what}, {seconds:.0f} s of market orders")
    stocks = stocks[:50]
    results: list[tuple[int, int, list[float]]] = []
    if mode == "processes":
        import multiprocessing

        connections.close_all()  # never share a connection across fork
        stop_at = time.monotonic() + seconds + 1.0  # the pool starts within that second
        jobs = [(n, portfolios[n::workers], stocks, stop_at, deferred) for n in range(workers)]
        began = time.monotonic()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_fills_process, jobs)
    else:
        lock = threading.Lock()

        def run(n: int) -> None:
            try:
                outcome = _fills_loop(n, portfolios[n::workers], stocks, stop_at, deferred)
                with lock:
                    results.append(outcome)
            finally:
                connection.close()

        stop_at = time.monotonic() + seconds
        began = time.monotonic()
        threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - began
    fills = sum(result[0] for result in results)
    refused = sum(result[1] for result in results)
    latencies = [latency for result in results for latency in result[2]]
    rate = fills / elapsed
    log(f"[fills] {fills} fills in {elapsed:.1f} s = {rate:.0f} fills/s (refused {refused})")
    if latencies:
        log(
            f"[fills] latency per order: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p95 {percentile(latencies, 95) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms"
        )
    return rate


# --- 2. pgbench -----------------------------------------------------------------------------


def bench_pgbench(*, clients: int, seconds: float) -> float | None:
    import pgserver

    pgbench = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if not pgbench.exists():
        log(f"[pgbench] not run: {pgbench} does not exist")
        return None
    host = socket_host()
    with admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PGBENCH_DB}")
    common = ["-h", host or "127.0.0.1", "-U", "postgres"]
    log(f"\n[pgbench] TPC-B, scale 10, {clients} clients, {seconds:.0f} s")
    try:
        subprocess.run(
            [str(pgbench), *common, "-i", "-q", "-s", "10", PGBENCH_DB],
            check=True,
            capture_output=True,
            text=True,
        )
        run = subprocess.run(
            [
                str(pgbench),
                *common,
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(int(seconds)),
                PGBENCH_DB,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        log(f"[pgbench] not run: {error.stderr.strip()[:400]}")
        return None
    match = re.search(r"tps = ([\d.]+)", run.stdout)
    if not match:
        log(f"[pgbench] could not read its output:\n{run.stdout}")
        return None
    tps = float(match.group(1))
    log(f"[pgbench] {tps:.0f} TPS")
    with admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)")
    return tps


# --- 3. the trigger step ----------------------------------------------------------------


def bench_trigger(
    *, resting: int, stocks: list, trigger_pct: float, fill_workers: int, fill_processes: int
) -> tuple[float, float, float, tuple[float, float, float]]:
    from django.db import connection, transaction

    from market.models import Stock
    from portfolio.services import portfolios_lock, reservation_hold
    from trading.models import Order, OrderStatus
    from trading.selectors import TRIGGERED_SQL
    from trading.services import _arm, buy_reservation_for
    from trading.triggers import orders_trigger

    per_portfolio = 100
    portfolio_count = (resting + per_portfolio - 1) // per_portfolio
    firing = int(resting * trigger_pct / 100)
    log(
        f"\n[trigger] {resting:,} resting orders over {len(stocks)} stocks "
        f"({portfolio_count} portfolios), {firing:,} ({trigger_pct}%) fire on the tick"
    )
    began = time.monotonic()
    portfolios = portfolios_make(portfolio_count, "rest")
    rng = random.Random(7)
    quote = D("100.00")
    tick_price = D("99.00")
    second_price = D("98.00")
    # Two disjoint sets fire: one on the first tick (inline fills), one on the second
    # (fan-out to worker processes); the other limits sit below both prices.
    slots = rng.sample(range(resting), 2 * firing)
    fire_slots, second_slots = set(slots[:firing]), set(slots[firing:])
    orders = []
    for n in range(resting):
        portfolio = portfolios[n // per_portfolio]
        stock = stocks[n % len(stocks)]
        order = Order(
            portfolio=portfolio,
            stock=stock,
            side="buy",
            quantity=1,
            time_in_force="gtc",
            idempotency_key=f"rest-{n}",
            status=OrderStatus.OPEN,
        )
        if n in fire_slots:
            order.type, order.limit_price = "limit", tick_price
        elif n in second_slots:
            order.type, order.limit_price = "limit", second_price
        elif n % 10 == 0:
            # Trailing buys: the tick's drop moves their low-water mark (the UPDATE's work).
            order.type, order.trail_percent = "trailing_stop", D("10")
        elif n % 2:
            order.type, order.limit_price = "limit", D(rng.randint(8000, 9799)) / 100
        else:
            order.type, order.stop_price = "stop", D(rng.randint(10100, 12000)) / 100
        _arm(order, quote=quote)
        order.reserved_cash = buy_reservation_for(order, quote=quote)
        orders.append(order)
    # The orders go in by bulk (placing 100,000 through the service would take minutes);
    # their reservations are held through portfolio.services, so the fills settle normally.
    Order.objects.bulk_create(orders, batch_size=5000)
    held: dict[int, Decimal] = {}
    for order in orders:
        held[order.portfolio_id] = held.get(order.portfolio_id, D("0")) + order.reserved_cash
    for portfolio_id, cash in held.items():
        with transaction.atomic():
            locked = portfolios_lock(portfolio_ids=[portfolio_id])[portfolio_id]
            reservation_hold(portfolio=locked, cash=cash)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE trading_order")
    log(f"[trigger] set up in {time.monotonic() - began:.0f} s")

    prices = {stock.pk: tick_price for stock in stocks}
    Stock.objects.filter(pk__in=list(prices)).update(last_price=tick_price)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS OFF) " + TRIGGERED_SQL,
            {"stock_ids": list(prices), "prices": list(prices.values())},
        )
        plan = [row[0] for row in cursor.fetchall()]
    index_lines = sorted(
        {line.strip().lstrip("-> ").split("  ")[0] for line in plan if "Index" in line}
    )
    log("[trigger] trigger query plan: " + "; ".join(index_lines))
    log("[trigger] " + next((line.strip() for line in plan if "Execution Time" in line), ""))

    report = orders_trigger(prices=prices, workers=fill_workers, fan_out=0)
    ms = report.seconds * 1000
    find_ms = report.find_seconds * 1000
    follow_ms = report.follow_seconds * 1000
    log(
        f"[trigger] every fill in the tick (TRIGGER_FILL_TASK_BATCH=0): {ms:.0f} ms\n"
        f"[trigger]   trailing UPDATE {follow_ms:.0f} ms ({report.trailing_moved:,} water marks moved)\n"
        f"[trigger]   trigger SELECT {find_ms - follow_ms:.0f} ms ({report.triggered:,} orders found)\n"
        f"[trigger]   fills {ms - find_ms:.0f} ms ({report.filled:,} filled from {fill_workers} "
        f"thread(s), {(ms - find_ms) / max(report.filled, 1):.2f} ms per fill)"
    )
    fan_out_ms = bench_trigger_fan_out(stocks=stocks, price=second_price, processes=fill_processes)
    return ms, find_ms, follow_ms, fan_out_ms


def _fill_chunk(chunk_and_at: tuple) -> int:
    from django.db import connection

    from trading.tasks import fill_triggered_orders

    try:
        return fill_triggered_orders(*chunk_and_at)
    finally:
        connection.close()


def bench_trigger_fan_out(
    *, stocks: list, price: Decimal, processes: int
) -> tuple[float, float, float]:
    """A second tick as deployed (settings.TRIGGER_FILL_TASK_BATCH): the tick's own step
    (find + queue), then the queued chunks drained by `processes` worker processes (what
    Celery workers would do; run here with multiprocessing, no broker involved)."""
    import multiprocessing

    from django.conf import settings
    from django.db import connections

    from market.models import Stock
    from trading import tasks
    from trading.triggers import orders_trigger

    queued: list[tuple] = []
    original = tasks.fill_triggered_orders.delay
    tasks.fill_triggered_orders.delay = lambda *args: queued.append(args)
    prices = {stock.pk: price for stock in stocks}
    Stock.objects.filter(pk__in=list(prices)).update(last_price=price)
    try:
        report = orders_trigger(prices=prices)
    finally:
        tasks.fill_triggered_orders.delay = original
    tick_ms = report.seconds * 1000
    connections.close_all()
    began = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        filled = sum(pool.map(_fill_chunk, queued))
    drain_ms = (time.perf_counter() - began) * 1000
    log(
        f"[trigger] tick as deployed (TRIGGER_FILL_TASK_BATCH={settings.TRIGGER_FILL_TASK_BATCH}): "
        f"{tick_ms:.0f} ms to find {report.triggered:,} and queue "
        f"{len(queued)} tasks; {processes} worker processes filled {filled:,} in "
        f"{drain_ms:.0f} ms ({filled / (drain_ms / 1000):.0f} fills/s)"
    )
    return tick_ms, drain_ms, filled / (drain_ms / 1000)


# --- 4. /portfolio/ --------------------------------------------------------------------

# A year of five-minute snapshots (a close one each day) for the page's performance
# section, and the Composite's bars to compare with: a month of minutes, a year of days.
_HISTORY_SQL = """
INSERT INTO portfolio_networthsnapshot
    (portfolio_id, at, net_worth, cash, net_deposits, growth, is_close)
SELECT %(portfolio)s, at, 100000 + 5000 * sin(n / 500.0), 20000, 100000,
       1 + 0.05 * sin(n / 500.0), extract(hour FROM at) = 21 AND extract(minute FROM at) = 0
FROM generate_series(0, 365 * 288) AS n,
     LATERAL (SELECT date_trunc('hour', now()) - n * interval '5 minutes' AS at) AS t
ON CONFLICT DO NOTHING;
INSERT INTO market_indexbar (resolution, start, open, high, low, close, constituents)
SELECT '1m', start, level, level, level, level, 500
FROM generate_series(0, 30 * 1440) AS n,
     LATERAL (SELECT date_trunc('minute', now()) - n * interval '1 minute' AS start,
                     1000 + 50 * sin(n / 900.0) AS level) AS t
ON CONFLICT DO NOTHING;
INSERT INTO market_indexbar (resolution, start, open, high, low, close, constituents)
SELECT '1d', start, level, level, level, level, 500
FROM generate_series(0, 365) AS n,
     LATERAL (SELECT date_trunc('day', now()) - n * interval '1 day' AS start,
                     1000 + 50 * sin(n / 30.0) AS level) AS t
ON CONFLICT DO NOTHING;
"""


def history_make(portfolio) -> None:
    from django.db import connection

    began = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, {"portfolio": portfolio.pk})
    log(
        f"[portfolio] a year of 5-minute snapshots and the Composite's bars made in "
        f"{time.monotonic() - began:.0f} s"
    )


def bench_portfolio_page(
    *, stocks: list, positions: int = 200, entries: int = 10_000
) -> float | None:
    from django.test import Client

    from portfolio.models import LedgerEntry
    from trading.services import announcements_deferred, order_place

    log(f"\n[portfolio] /portfolio/ with {positions} positions and {entries:,} ledger entries")
    (portfolio,) = portfolios_make(1, "page")
    began = time.monotonic()
    # Each market order posts 2 entries (the trade and its fee).
    with announcements_deferred():  # the set-up's live pushes are not what is measured
        for n in range(max(positions, (entries - 1) // 2)):
            stock = stocks[n % positions]
            rounds = n // positions  # buy 2 of each, then sell 1 / buy 1 in turns: never empty
            order_place(
                portfolio=portfolio,
                stock=stock,
                side="sell" if rounds % 2 else "buy",
                type="market",
                quantity=2 if rounds == 0 else 1,
                time_in_force="gtc",
                idempotency_key=f"page-{n}",
            )
    count = LedgerEntry.objects.filter(portfolio=portfolio).count()
    log(f"[portfolio] {count:,} ledger entries made in {time.monotonic() - began:.0f} s")
    history_make(portfolio)

    client = Client()
    client.force_login(portfolio.owner)
    first = client.get("/portfolio/")
    if first.status_code != 200:
        log(f"[portfolio] not measured: /portfolio/ answered {first.status_code}")
        return None
    timings = []
    for _ in range(100):
        started = time.perf_counter()
        response = client.get("/portfolio/")
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    p50, p95 = percentile(timings, 50) * 1000, percentile(timings, 95) * 1000
    log(f"[portfolio] p50 {p50:.1f} ms, p95 {p95:.1f} ms over 100 requests")
    # The performance section the page loads right after it (htmx).
    section = []
    for _ in range(100):
        started = time.perf_counter()
        response = client.get(
            "/portfolio/", headers={"HX-Request": "true", "HX-Target": "performance"}
        )
        section.append(time.perf_counter() - started)
        assert response.status_code == 200 and b"perf-line" in response.content
    log(
        f"[portfolio] its performance section: p50 {percentile(section, 50) * 1000:.1f} ms, "
        f"p95 {percentile(section, 95) * 1000:.1f} ms over 100 requests"
    )
    return p95


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--portfolios", type=int, default=400)
    parser.add_argument("--resting", type=int, default=100_000)
    parser.add_argument("--stocks", type=int, default=500)
    parser.add_argument("--trigger-pct", type=float, default=1.0)
    parser.add_argument(
        "--fill-workers", type=int, default=None, help="default: TRIGGER_FILL_WORKERS"
    )
    parser.add_argument("--fill-processes", type=int, default=2, help="fan-out drain processes")
    parser.add_argument(
        "--skip", default="", help="comma-separated: fills,pgbench,trigger,portfolio"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    os.environ.setdefault("RATELIMIT_ENABLE", "false")
    services = services_start(database=BENCH_DB, redis_name="redis-bench-trading")
    try:
        django_ready()
        stocks = stocks_make(args.stocks)
        results: dict[str, str] = {}
        rate = deployed = tps = None
        if "fills" not in skip:
            portfolios = portfolios_make(args.portfolios, "fills")
            variants = [
                ("threads", False, "market fills/s, threads"),
                ("threads", True, "  threads, push not queued"),
                ("processes", False, "market fills/s, processes"),
                ("processes", True, "  processes, push not queued"),
            ]
            for mode, deferred, label in variants:
                measured = bench_fills(
                    workers=args.workers,
                    seconds=args.seconds,
                    portfolios=portfolios,
                    stocks=stocks,
                    mode=mode,
                    deferred=deferred,
                )
                results[label] = f"{measured:.0f}  (target >= 300)"
                rate = max(rate or 0, measured)
                if not deferred:  # as deployed: each fill's push queued
                    deployed = max(deployed or 0, measured)
        if "pgbench" not in skip:
            tps = bench_pgbench(clients=args.workers, seconds=args.seconds)
            results["pgbench TPC-B TPS"] = f"{tps:.0f}" if tps else "not run"
            if rate and tps:
                results["fills/s as deployed ÷ TPS"] = f"{deployed / tps:.2f}"
                results["best fills/s ÷ pgbench TPS"] = f"{rate / tps:.2f}"
        if "trigger" not in skip:
            from django.conf import settings

            fill_workers = args.fill_workers or settings.TRIGGER_FILL_WORKERS
            ms, find_ms, follow_ms, (fan_tick_ms, drain_ms, drain_rate) = bench_trigger(
                resting=args.resting,
                stocks=stocks,
                trigger_pct=args.trigger_pct,
                fill_workers=fill_workers,
                fill_processes=args.fill_processes,
            )
            results["tick, all fills inline"] = f"{ms:.0f} ms"
            results["  trailing UPDATE"] = f"{follow_ms:.0f} ms"
            results["  trigger SELECT"] = f"{find_ms - follow_ms:.0f} ms"
            results["  fills"] = f"{ms - find_ms:.0f} ms"
            results["tick's step as deployed"] = (
                f"{fan_tick_ms:.0f} ms  (find + queue; target < 500 ms)"
            )
            results[f"  drained by {args.fill_processes} processes"] = (
                f"{drain_ms:.0f} ms ({drain_rate:.0f} fills/s)"
            )
        if "portfolio" not in skip:
            p95 = bench_portfolio_page(stocks=stocks)
            results["/portfolio/ p95"] = (
                f"{p95:.1f} ms  (target < 60 ms)" if p95 else "not measured"
            )
        log("\nSummary")
        for name, value in results.items():
            log(f"  {name:<28} {value}")
    finally:
        from django.db import connections

        connections.close_all()
        services.stop()


if __name__ == "__main__":
    main()
