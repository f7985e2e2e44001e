"""The market's reads, shared by its pages, the dashboard and the live broadcast."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Avg, Count, Max, Min, Q, QuerySet, Sum

from market.charts import heat_tiles, sparkline_points
from market.errors import ChartRangeUnknown
from market.models import EventScope, MarketEvent, PriceBar, Resolution, Sector, Stock

# Column name in the URL -> model field. Every column of the market table sorts.
SORT_FIELDS = {
    "symbol": "symbol",
    "name": "name",
    "sector": "sector",
    "price": "last_price",
    "change": "change",
    "change_pct": "change_pct",
    "volume": "volume",
}
TABS = ("all", "gainers", "losers", "active")
# What the market table shows of a stock; keeping the rows narrow keeps the page fast.
_ROW_FIELDS = (
    "id", "symbol", "name", "sector", "last_price", "previous_close", "change", "change_pct",
    "volume", "halted",
)  # fmt: skip


def stocks_listed() -> QuerySet[Stock]:
    """Stocks open to browsing: a delisted one keeps its page but leaves the lists."""
    return Stock.objects.filter(delisted_at__isnull=True)


def stocks_browse(
    *, query: str = "", sector: str = "", tab: str = "all", sort: str = ""
) -> QuerySet[Stock]:
    stocks = stocks_listed().only(*_ROW_FIELDS)
    if query:
        stocks = stocks.filter(Q(symbol__istartswith=query) | Q(name__icontains=query))
    if sector:
        stocks = stocks.filter(sector=sector)
    if tab == "gainers":
        stocks = stocks.filter(change_pct__gt=0).order_by("-change_pct", "symbol")
    elif tab == "losers":
        stocks = stocks.filter(change_pct__lt=0).order_by("change_pct", "symbol")
    elif tab == "active":
        stocks = stocks.order_by("-volume", "symbol")
    else:
        stocks = stocks.order_by("symbol")
    if sort:
        descending = sort.startswith("-")
        field = SORT_FIELDS[sort.lstrip("-")]
        stocks = stocks.order_by(f"-{field}" if descending else field, "symbol")
    return stocks


SPARK_STEP = timedelta(minutes=15)
SPARK_WINDOW = timedelta(hours=24)


def sparklines(*, stocks: Sequence[Stock], now: datetime) -> dict[int, str]:
    """The last 24 hours of each stock's price, as SVG polyline points, in one query.

    A line samples the 1-minute close every 15 minutes and ends at the last price.
    Asking for those exact minutes turns into index lookups on (stock, resolution,
    start) instead of reading every minute of every stock. A rolling day rather than
    the session: the round-the-clock market has no quiet hours, and a line that
    starts empty at each session open tells a player nothing."""
    if not stocks:
        return {}
    newest = now.replace(second=0, microsecond=0)
    newest -= timedelta(minutes=newest.minute % 15)
    instants = []
    moment = newest - SPARK_WINDOW
    while moment <= newest:
        instants.append(moment)
        moment += SPARK_STEP
    closes: dict[int, list[Decimal]] = defaultdict(list)
    rows = (
        PriceBar.objects.filter(
            stock_id__in=[stock.id for stock in stocks],
            resolution=Resolution.MINUTE,
            start__in=instants,
        )
        .order_by("stock_id", "start")
        .values_list("stock_id", "close")
    )
    for stock_id, close in rows:
        closes[stock_id].append(close)
    lines = {}
    for stock in stocks:
        values = closes.get(stock.id, [])
        if values:
            values.append(stock.last_price)
        lines[stock.id] = sparkline_points(values)
    return lines


@dataclass(frozen=True, slots=True)
class Movers:
    gainers: list[Stock]
    losers: list[Stock]
    active: list[Stock]


def market_movers(limit: int = 5) -> Movers:
    """The day's top gainers, top losers and most traded listed stocks."""
    listed = stocks_listed().only(*_ROW_FIELDS)
    return Movers(
        gainers=list(listed.filter(change_pct__gt=0).order_by("-change_pct", "symbol")[:limit]),
        losers=list(listed.filter(change_pct__lt=0).order_by("change_pct", "symbol")[:limit]),
        active=list(listed.filter(volume__gt=0).order_by("-volume", "symbol")[:limit]),
    )


def events_recent(*, limit: int = 8) -> list[MarketEvent]:
    return list(
        MarketEvent.objects.select_related("stock").order_by("-published_at", "-id")[:limit]
    )


def events_for_stock(*, stock: Stock, limit: int = 10) -> list[MarketEvent]:
    """News about the stock, its sector, or the whole market."""
    return list(
        MarketEvent.objects.filter(
            Q(stock=stock)
            | Q(scope=EventScope.SECTOR, sector=stock.sector)
            | Q(scope=EventScope.MARKET)
        )
        .select_related("stock")
        .order_by("-published_at", "-id")[:limit]
    )


@dataclass(frozen=True, slots=True)
class SectorPerformance:
    sector: str
    label: str
    stocks: int
    change_pct: Decimal  # equal-weighted mean of its stocks' change %
    volume: int
    gainers: int
    losers: int
    tile: object = None


def sector_performance() -> list[SectorPerformance]:
    """Every sector with listed stocks, best day first, each with its heat-map tile."""
    labels = dict(Sector.choices)
    rows = (
        stocks_listed()
        .values("sector")
        .annotate(
            count=Count("id"),
            mean_change=Avg("change_pct"),
            traded=Sum("volume"),
            up=Count("id", filter=Q(change__gt=0)),
            down=Count("id", filter=Q(change__lt=0)),
        )
        .order_by("-mean_change", "sector")
    )
    rows = list(rows)
    tiles = heat_tiles(
        [float(row["traded"] or 0) for row in rows],
        [row["mean_change"] or Decimal("0") for row in rows],
    )
    return [
        SectorPerformance(
            sector=row["sector"],
            label=labels.get(row["sector"], row["sector"]),
            stocks=row["count"],
            change_pct=(row["mean_change"] or Decimal("0")).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            ),
            volume=row["traded"] or 0,
            gainers=row["up"],
            losers=row["down"],
            tile=tile,
        )
        for row, tile in zip(rows, tiles, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class ChartRange:
    resolution: str
    window: timedelta
    bucket: timedelta


# Each range reads one resolution and groups it into buckets so that no answer holds
# more than about 500 points. The long ranges read daily bars only.
CHART_RANGES = {
    "1d": ChartRange(Resolution.MINUTE, timedelta(days=1), timedelta(minutes=3)),
    "1w": ChartRange(Resolution.MINUTE, timedelta(days=7), timedelta(minutes=30)),
    "1m": ChartRange(Resolution.MINUTE, timedelta(days=31), timedelta(hours=2)),
    "1y": ChartRange(Resolution.DAY, timedelta(days=366), timedelta(days=1)),
    "5y": ChartRange(Resolution.DAY, timedelta(days=5 * 366), timedelta(days=7)),
}

# Buckets end at the stock's newest bar, not at "now", so a chart of imported or
# stale history is not empty. Weekly buckets start on a Monday (2000-01-03).
_CHART_SQL = """
SELECT extract(epoch FROM date_bin(%(bucket)s, start, TIMESTAMPTZ '2000-01-03 00:00+00'))::bigint AS t,
       (array_agg(open ORDER BY start))[1], max(high), min(low),
       (array_agg(close ORDER BY start DESC))[1], sum(volume)::bigint
FROM market_pricebar
WHERE stock_id = %(stock_id)s AND resolution = %(resolution)s AND start > %(since)s
GROUP BY 1
ORDER BY 1
"""


def chart_series(
    *, stock_id: int, range_name: str
) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, int]]:
    """OHLCV points of a range, grouped in SQL: (epoch seconds, open, high, low, close, volume)."""
    chart_range = CHART_RANGES.get(range_name)
    if chart_range is None:
        raise ChartRangeUnknown(
            f"Unknown range {range_name!r}; use one of {', '.join(CHART_RANGES)}."
        )
    # The newest bar first, as its own query: with the bound as a literal the planner
    # sees how few rows the range holds (as a subquery it guessed a third of the table
    # and chose a sequential scan).
    newest = (
        PriceBar.objects.filter(stock_id=stock_id, resolution=chart_range.resolution)
        .order_by("-start")
        .values_list("start", flat=True)
        .first()
    )
    if newest is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _CHART_SQL,
            {
                "stock_id": stock_id,
                "resolution": chart_range.resolution,
                "since": newest - chart_range.window,
                "bucket": chart_range.bucket,
            },
        )
        return cursor.fetchall()


@dataclass(frozen=True, slots=True)
class YearRange:
    low: Decimal | None
    high: Decimal | None


def year_range(*, stock: Stock, now: datetime) -> YearRange:
    """The 52-week low and high from the daily bars, today's range included."""
    found = PriceBar.objects.filter(
        stock=stock, resolution=Resolution.DAY, start__gte=now - timedelta(days=365)
    ).aggregate(low=Min("low"), high=Max("high"))
    lows = [value for value in (found["low"], stock.day_low) if value]
    highs = [value for value in (found["high"], stock.day_high) if value]
    return YearRange(low=min(lows) if lows else None, high=max(highs) if highs else None)
