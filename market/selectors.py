"""The market's reads, shared by its pages, the dashboard and the live broadcast."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, Max, Min, Q, QuerySet, Sum

from market.charts import heat_tiles, sparkline_points
from market.errors import ChartRangeUnknown
from market.models import (
    EventScope,
    IndexBar,
    MarketEvent,
    Moving,
    PriceBar,
    Resolution,
    Sector,
    Stock,
)
from market.sessions import day_bar_start, session_date

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


# --- the Bullpen Composite -----------------------------------------------------------

INDEX_NAME = "Bullpen Composite"
INDEX_SYMBOL = "BPX"


@dataclass(frozen=True, slots=True)
class IndexQuote(Moving):
    level: Decimal
    previous_close: Decimal | None  # the previous session's close; None on the first day
    change: Decimal
    change_pct: Decimal
    as_of: datetime  # the start of the newest minute bar, or the newest day's date
    intraday: bool  # as_of is a minute (else a trading date)
    constituents: int

    @property
    def trading_date(self) -> date:
        """The trading date of the level (a daily bar starts at midnight UTC of it)."""
        return session_date(self.as_of) if self.intraday else self.as_of.astimezone(UTC).date()


def index_quote_make(
    *,
    level: Decimal,
    previous_close: Decimal | None,
    as_of: datetime,
    intraday: bool,
    constituents: int,
) -> IndexQuote:
    """An IndexQuote with its change against `previous_close` (none on the first day)."""
    change = level - previous_close if previous_close else Decimal("0")
    change_pct = (
        (change * 100 / previous_close).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if previous_close
        else Decimal("0")
    )
    return IndexQuote(
        level=level,
        previous_close=previous_close,
        change=change,
        change_pct=change_pct,
        as_of=as_of,
        intraday=intraday,
        constituents=constituents,
    )


# The newest minute bar and the two newest daily bars, in one query.
_INDEX_QUOTE_SQL = """
(SELECT resolution, start, close, constituents FROM market_indexbar
 WHERE resolution = '1m' ORDER BY start DESC LIMIT 1)
UNION ALL
(SELECT resolution, start, close, constituents FROM market_indexbar
 WHERE resolution = '1d' ORDER BY start DESC LIMIT 2)
"""


def index_quote() -> IndexQuote | None:
    """The Composite's level now, and its change against the previous session's close,
    from the database. None while the index has no bars."""
    with connection.cursor() as cursor:
        cursor.execute(_INDEX_QUOTE_SQL)
        rows = cursor.fetchall()
    minute = next((row for row in rows if row[0] == Resolution.MINUTE), None)
    days = [row for row in rows if row[0] == Resolution.DAY]
    if minute is None and not days:
        return None
    # The minute bar is the level unless daily history is newer (an import of days the
    # ticks have not reached).
    if minute is not None and (not days or day_bar_start(session_date(minute[1])) >= days[0][1]):
        _, as_of, level, constituents = minute
        session_bar = day_bar_start(session_date(as_of))
        intraday = True
    else:
        _, as_of, level, constituents = days[0]
        session_bar = as_of
        intraday = False
    return index_quote_make(
        level=level,
        previous_close=next((row[2] for row in days if row[1] < session_bar), None),
        as_of=as_of,
        intraday=intraday,
        constituents=constituents,
    )


# The quote as the last writer of the index left it: every tick and every rebuild
# store it after their commit, so the pages read it with no query (/market/ has none to
# spare). A miss (Redis flushed or restarted) is answered by index_quote_refresh.
INDEX_QUOTE_CACHE_KEY = "market:index-quote"
INDEX_QUOTE_CACHE_SECONDS = 600


def index_quote_cached() -> tuple[bool, IndexQuote | None]:
    """(found, quote): found is False on a cache miss; the quote is None while the
    index has no bars."""
    found = cache.get(INDEX_QUOTE_CACHE_KEY, _MISSING)
    if found is _MISSING:
        return False, None
    return True, found


def index_quote_remember(quote: IndexQuote | None) -> None:
    cache.set(INDEX_QUOTE_CACHE_KEY, quote, INDEX_QUOTE_CACHE_SECONDS)


def index_quote_refresh() -> IndexQuote | None:
    """The quote from the database, stored for the next readers."""
    quote = index_quote()
    index_quote_remember(quote)
    return quote


_MISSING = object()


# As CHART_RANGES, with "all" in place of 5Y: its bucket grows with the history, so a
# new market shows days and an imported decade shows four-week steps.
INDEX_RANGES = {
    "1d": CHART_RANGES["1d"],
    "1w": CHART_RANGES["1w"],
    "1m": CHART_RANGES["1m"],
    "1y": CHART_RANGES["1y"],
    "all": ChartRange(Resolution.DAY, timedelta(0), timedelta(days=1)),
}
# (history longer than, bucket) for "all", longest first.
_ALL_BUCKETS = (
    (timedelta(days=10 * 366), timedelta(days=28)),
    (timedelta(days=2 * 366), timedelta(days=7)),
)

_INDEX_SERIES_SQL = """
SELECT extract(epoch FROM date_bin(%(bucket)s, start, TIMESTAMPTZ '2000-01-03 00:00+00'))::bigint AS t,
       (array_agg(open ORDER BY start))[1], max(high), min(low),
       (array_agg(close ORDER BY start DESC))[1]
FROM market_indexbar
WHERE resolution = %(resolution)s AND start >= %(since)s
GROUP BY 1
ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class IndexSeries:
    range_name: str
    bucket: timedelta
    points: list[tuple[int, Decimal, Decimal, Decimal, Decimal]]  # epoch, open, high, low, close


def index_series(range_name: str) -> IndexSeries:
    """The Composite's chart for a range, grouped in SQL like `chart_series`, ending at
    its newest bar."""
    chart_range = INDEX_RANGES.get(range_name)
    if chart_range is None:
        raise ChartRangeUnknown(
            f"Unknown range {range_name!r}; use one of {', '.join(INDEX_RANGES)}."
        )
    bounds = IndexBar.objects.filter(resolution=chart_range.resolution).aggregate(
        oldest=Min("start"), newest=Max("start")
    )
    if bounds["newest"] is None:
        return IndexSeries(range_name, chart_range.bucket, [])
    bucket = chart_range.bucket
    if chart_range.window:
        # As chart_series: a range bound that excludes the bar a window ago.
        since = bounds["newest"] - chart_range.window + timedelta(microseconds=1)
    else:
        since = bounds["oldest"]
        span = bounds["newest"] - since
        bucket = next((size for longer, size in _ALL_BUCKETS if span > longer), bucket)
    with connection.cursor() as cursor:
        cursor.execute(
            _INDEX_SERIES_SQL,
            {"resolution": chart_range.resolution, "since": since, "bucket": bucket},
        )
        points = cursor.fetchall()
    return IndexSeries(range_name, bucket, points)
