"""Benchmark of the market's hot paths.

    .venv/bin/python bench/market.py [--quick]

Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set,
recreates a separate `bench_bullpen_market` database, migrates it, then measures:

- one tick (simulated provider, quotes applied, stream append; tick hooks such as
  order triggers excluded) for 500, 1,000, 2,000 and 5,000 listed stocks;
- flushing 30,000 buffered ticks (5 minutes of 5-second ticks for 500 stocks);
- chart.json for 1D, 1Y and 5Y on a stock with 2 years of 1-minute history;
- GET /market/ with 5,000 listed stocks (each with minute bars today).

Targets: tick 500 < 100 ms and 5,000 < 800 ms (p95); flush < 1 s; chart.json < 30 ms
(p95); /market/ < 80 ms (p95). Prints one table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchkit import django_ready, p95, services_start

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "bench_bullpen_market"
RESULTS: list[tuple[str, str, str, str]] = []


def record(what: str, samples_ms: list[float], target: str) -> None:
    RESULTS.append((what, f"{statistics.median(samples_ms):.1f}", f"{p95(samples_ms):.1f}", target))
    print(
        f"  {what}: p50 {statistics.median(samples_ms):.1f} ms, p95 {p95(samples_ms):.1f} ms",
        flush=True,
    )


def make_stocks(count: int) -> list[int]:
    from market.seeding import companies_make, stocks_seed

    stocks, _ = stocks_seed(companies=companies_make(count=count, seed=42), seed=42)
    return [stock.id for stock in stocks]


def bench_ticks(sizes: list[int], runs: int) -> None:
    from django.conf import settings
    from django.db import connection

    from market import state
    from market.models import Stock
    from market.services import tick_run

    settings.MARKET_TICK_HOOKS = []  # order triggers and the broadcast are measured elsewhere
    ids = list(Stock.objects.order_by("id").values_list("id", flat=True))
    slot = int(datetime(2026, 3, 10, 14, 0, tzinfo=UTC).timestamp()) // settings.MARKET_TICK_SECONDS
    for size in sizes:
        Stock.objects.update(delisted_at=None)
        Stock.objects.exclude(id__in=ids[:size]).update(
            delisted_at=datetime(2020, 1, 1, tzinfo=UTC)
        )
        tick_run(slot=slot)  # warm the provider's state and the plan cache
        slot += 1
        samples = []
        for _ in range(runs if size <= 2000 else max(5, runs // 2)):
            started = time.perf_counter()
            tick_run(slot=slot)
            samples.append((time.perf_counter() - started) * 1000)
            slot += 1
        record(
            f"tick, {size} stocks",
            samples,
            "< 100 ms" if size == 500 else ("< 800 ms" if size == 5000 else ""),
        )
        state.market_redis().delete(state.TICK_STREAM)
        connection.close()
    Stock.objects.update(delisted_at=None)


def bench_flush(stock_ids: list[int], rounds: int) -> None:
    from market import state
    from market.services import history_flush

    state.market_redis().delete(state.TICK_STREAM)
    history_flush()  # move the cursor past anything left
    samples = []
    start = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    for round_index in range(rounds):
        for index in range(60):  # 5 minutes of 5-second ticks
            at = start + timedelta(minutes=5 * round_index, seconds=5 * index)
            state.tick_publish(
                at=at,
                slot=index,
                ticks=[
                    (
                        stock_id,
                        Decimal(100 + (index * 7 + offset) % 13) + Decimal("0.25"),
                        10 + index,
                    )
                    for offset, stock_id in enumerate(stock_ids)
                ],
            )
        started = time.perf_counter()
        result = history_flush()
        samples.append((time.perf_counter() - started) * 1000)
        assert result.ticks == 60 * len(stock_ids), result
    record(f"flush 30,000 ticks ({len(stock_ids)} stocks x 60)", samples, "< 1000 ms")


def minute_history_rows(stock_id: int, days: int, end: datetime, rng) -> tuple[list, list]:
    """A random walk of 390-minute sessions on weekdays, and its daily bars."""
    import numpy as np

    minutes, daily = [], []
    price = 100.0
    day = end - timedelta(days=days)
    while day < end:
        if day.weekday() < 5:
            opens = day.replace(hour=14, minute=30)
            steps = np.exp(np.cumsum(rng.normal(0, 0.0008, 390)))
            closes = price * steps
            day_open = price
            for minute in range(390):
                close = float(closes[minute])
                open_ = price if minute == 0 else float(closes[minute - 1])
                high, low = max(open_, close) * 1.0004, min(open_, close) * 0.9996
                minutes.append(
                    (
                        stock_id,
                        "1m",
                        opens + timedelta(minutes=minute),
                        Decimal(f"{open_:.2f}"),
                        Decimal(f"{high:.2f}"),
                        Decimal(f"{low:.2f}"),
                        Decimal(f"{close:.2f}"),
                        1000,
                    )
                )
            price = float(closes[-1])
            daily.append(
                (
                    stock_id,
                    "1d",
                    day.replace(hour=0, minute=0),
                    Decimal(f"{day_open:.2f}"),
                    Decimal(f"{float(closes.max()) * 1.0004:.2f}"),
                    Decimal(f"{float(closes.min()) * 0.9996:.2f}"),
                    Decimal(f"{price:.2f}"),
                    390_000,
                )
            )
        day += timedelta(days=1)
    return minutes, daily


def bench_chart(stock_id: int, symbol: str, client, requests: int) -> None:
    import numpy as np

    from market.models import PriceBar
    from market.services import bars_write

    end = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes, daily = minute_history_rows(stock_id, 730, end, np.random.default_rng(7))
    started = time.perf_counter()
    bars_write(rows=minutes + daily, replace=False)
    print(
        f"  loaded {len(minutes)} minute and {len(daily)} daily bars in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load; measuring before it would time the load.
        cursor.execute("VACUUM ANALYZE market_pricebar")
        cursor.execute("CHECKPOINT")
    assert PriceBar.objects.filter(stock_id=stock_id, resolution="1m").count() >= 190_000
    # Round-robin over the ranges, so each is measured under the same conditions.
    ranges = ("1d", "1y", "5y")
    samples: dict[str, list[float]] = {name: [] for name in ranges}
    points: dict[str, int] = {}
    for name in ranges:
        client.get(f"/stocks/{symbol}/chart.json?range={name}")
    for _ in range(requests):
        for name in ranges:
            started = time.perf_counter()
            response = client.get(f"/stocks/{symbol}/chart.json?range={name}")
            samples[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
            points[name] = len(response.json()["bars"])
    for name in ranges:
        record(f"chart.json {name.upper()} ({points[name]} points)", samples[name], "< 30 ms")


def bench_market_page(stock_ids: list[int], client, requests: int) -> None:
    from django.utils import timezone

    from market.services import bars_write
    from market.sessions import session_start

    now = timezone.now()
    opened = session_start(now)
    # Every stock has minute bars over the session so far, at most the last 3 hours.
    first = max(opened, now.replace(second=0, microsecond=0) - timedelta(hours=3))
    minutes = int((now - first).total_seconds() // 60)
    rows = (
        (
            stock_id,
            "1m",
            first + timedelta(minutes=minute),
            Decimal("100"),
            Decimal("101"),
            Decimal("99"),
            Decimal(100 + minute % 7),
            100,
        )
        for stock_id in stock_ids
        for minute in range(minutes)
    )
    started = time.perf_counter()
    bars_write(rows=rows, replace=False)
    print(
        f"  loaded minute bars for {len(stock_ids)} stocks in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE market_pricebar")
        cursor.execute("VACUUM ANALYZE market_stock")
    for label, url in (
        ("/market/", "/market/"),
        ("/market/?sort=-change_pct&page=40", "/market/?sort=-change_pct&page=40"),
        ("/market/?q=tech (search)", "/market/?q=tech"),
    ):
        client.get(url)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        record(f"GET {label}, 5,000 stocks", samples, "< 80 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs = 10 if args.quick else 30
    services = services_start(database=BENCH_DB, redis_name="redis-bench-market")
    try:
        print(f"bench database {BENCH_DB}: migrating…", flush=True)
        django_ready()
        from django.conf import settings
        from django.test import Client

        settings.RATELIMIT_ENABLE = False
        from market import state

        state.market_redis().flushdb()
        stock_ids = make_stocks(5000)
        print("ticks…", flush=True)
        bench_ticks([500, 1000, 2000, 5000], runs)
        print("flush…", flush=True)
        bench_flush(stock_ids[:500], 5 if args.quick else 10)
        from tests.factories import UserFactory

        client = Client()
        client.force_login(UserFactory())
        client.get("/market/")
        print("chart.json…", flush=True)
        from market.models import Stock

        chart_stock = Stock.objects.get(id=stock_ids[0])
        bench_chart(chart_stock.id, chart_stock.symbol, client, runs * 2)
        print("/market/…", flush=True)
        bench_market_page(stock_ids, client, runs)
    finally:
        services.stop()

    width = max(len(row[0]) for row in RESULTS)
    print()
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"| {'measure'.ljust(width)} | p50 ms | p95 ms | target |")
    print(f"|{'-' * (width + 2)}|-------:|-------:|--------|")
    for what, median, high, target in RESULTS:
        print(f"| {what.ljust(width)} | {median:>6} | {high:>6} | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
