"""Performance and risk figures for /portfolio/ and /portfolio/performance/.

Returns, volatility, the Sharpe ratio, drawdowns and beta are statistics for display,
so they are computed in float/numpy. They are never money: nothing here is written
back to a money column, and the money shown (net worth, P&L) stays the Decimal it was
read as.

Returns are time-weighted: they chain `NetWorthSnapshot.growth` (growth of 1 since the
opening with deposits and staff grants taken out), so a grant moves net worth but is
never a gain, and a withdrawal is never a drawdown. docs/performance.md gives every
figure's formula and window.

The module has two halves:
- pure functions over plain sequences (returns, volatility, Sharpe, drawdown, beta,
  Herfindahl, chart geometry), tested against series worked out by hand;
- the reads that feed them (`snapshot_history`, `market_history`) and the one selector
  the pages call, `performance_report`, which costs two queries of its own (three on
  the risk page, one more with a stock to compare) whatever the number of snapshots,
  bars or positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from market.models import PriceBar, Resolution, Sector, Stock
from portfolio.models import CENT, ZERO, Portfolio, Position
from portfolio.selectors import growth_step

# A calendar year. Annualising by "how many such intervals fit in a calendar year" is
# right for the simulated market (it never closes) and for real sources too: the flat
# nights and weekends count as intervals with a zero return, so the yearly variance
# still adds up.
YEAR = timedelta(days=365.25)
MAX_POINTS = 300
MIN_BETA_RETURNS = 10
# Fewer returns than this make a volatility and a Sharpe ratio that mean nothing (two
# five-minute steps annualise to a Sharpe ratio in the hundreds): the page says "not
# enough history yet" instead.
MIN_RISK_RETURNS = 10
BETA_WINDOW = timedelta(days=90)
POSITION_VOLATILITY_WINDOW = timedelta(days=30)
# Chart points sit on a grid aligned to the clock (a Monday, midnight UTC), so the same
# hour is the same point on every visit.
GRID_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)

# Chart steps, smallest first; a range uses the smallest one that keeps it within
# MAX_POINTS. Round steps give plain names to "best and worst period".
STEPS: tuple[tuple[timedelta, str], ...] = (
    (timedelta(minutes=5), "5 minutes"),
    (timedelta(minutes=15), "15 minutes"),
    (timedelta(minutes=30), "30 minutes"),
    (timedelta(hours=1), "hour"),
    (timedelta(hours=2), "2 hours"),
    (timedelta(hours=4), "4 hours"),
    (timedelta(hours=12), "12 hours"),
    (timedelta(days=1), "day"),
    (timedelta(days=2), "2 days"),
    (timedelta(days=7), "week"),
    (timedelta(days=14), "2 weeks"),
    (timedelta(days=28), "4 weeks"),
)


@dataclass(frozen=True)
class PerformanceRange:
    key: str
    label: str
    window: timedelta | None  # None: since the portfolio opened
    description: str


RANGES: dict[str, PerformanceRange] = {
    "1d": PerformanceRange("1d", "1D", timedelta(days=1), "the last 24 hours"),
    "1w": PerformanceRange("1w", "1W", timedelta(days=7), "the last 7 days"),
    "1m": PerformanceRange("1m", "1M", timedelta(days=30), "the last 30 days"),
    "1y": PerformanceRange("1y", "1Y", timedelta(days=365), "the last 365 days"),
    "all": PerformanceRange("all", "All", None, "since you started"),
}
DEFAULT_RANGE = "1m"
# The row of returns shown whatever the chart's range: (range key, label).
RETURN_PERIODS: tuple[tuple[str, str], ...] = (
    ("1d", "Day"),
    ("1w", "Week"),
    ("1m", "Month"),
    ("all", "All time"),
)
INDEX_NAME = "Bullpen Composite"


# --- Pure functions -------------------------------------------------------------


def chart_step(span: timedelta) -> tuple[timedelta, str]:
    """The smallest round step that shows `span` in at most MAX_POINTS points."""
    for step, name in STEPS:
        if span / step <= MAX_POINTS:
            return step, name
    weeks = math.ceil(span / (timedelta(days=7) * MAX_POINTS))
    return timedelta(days=7 * weeks), f"{weeks} weeks"


def chart_times(since: datetime, now: datetime, step: timedelta) -> list[datetime]:
    """The moments a chart samples, oldest first: `since`, every grid time after it,
    and `now` (which the live figures stand for)."""
    times = [since]
    moment = GRID_ORIGIN + math.ceil((since - GRID_ORIGIN) / step) * step
    if moment == since:
        moment += step
    while moment < now:
        times.append(moment)
        moment += step
    if now > since:
        times.append(now)
    return times


def simple_returns(values: Sequence[float]) -> np.ndarray:
    """Return of each step: v[i] / v[i-1] - 1. A step from a value ≤ 0 has no return
    (NaN), so it is left out of the statistics without shifting the others."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return np.empty(0)
    previous = array[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous > 0, array[1:] / previous - 1, np.nan)
    return returns


def periods_per_year(*, periods: int, span: timedelta) -> float | None:
    """How many intervals like these fit in a calendar year."""
    if periods < 1 or span <= timedelta(0):
        return None
    return periods * (YEAR / span)


def rate_per_period(yearly: float, *, per_year: float) -> float:
    """A yearly rate as the rate of one period that compounds to it over a year:
    (1 + yearly)^(1 / periods per year) − 1."""
    return (1 + yearly) ** (1 / per_year) - 1


def _finite(returns: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(returns) if not isinstance(returns, np.ndarray) else returns, float)
    return array[np.isfinite(array)]


def annualised_volatility(returns: Sequence[float], *, per_year: float) -> float | None:
    """Sample standard deviation of the returns, scaled to a year by √(periods per year).
    A fraction (0.2 is 20%); None with fewer than two returns."""
    finite = _finite(returns)
    if finite.size < 2:
        return None
    return float(np.std(finite, ddof=1) * math.sqrt(per_year))


def sharpe_ratio(
    returns: Sequence[float], *, per_year: float, risk_free: float = 0.0
) -> float | None:
    """Mean excess return over its standard deviation, annualised by √(periods per year).
    `risk_free` is a yearly rate (0.04 is 4%), taken off each return at its per-period
    equivalent. None with fewer than two returns or when the returns never vary."""
    finite = _finite(returns)
    if finite.size < 2:
        return None
    deviation = float(np.std(finite, ddof=1))
    if deviation == 0:
        return None
    excess = finite - rate_per_period(risk_free, per_year=per_year)
    return float(np.mean(excess)) / deviation * math.sqrt(per_year)


def compound(returns: Iterable[float]) -> float:
    """The total return of a run of period returns: ∏(1 + r) − 1."""
    finite = _finite(returns)
    return float(np.prod(1 + finite) - 1) if finite.size else 0.0


def change(start: float | Decimal | None, end: float | Decimal | None) -> float | None:
    """end / start − 1, or None when there is no positive start to divide by."""
    if start is None or end is None or start <= 0:
        return None
    return float(end) / float(start) - 1


def drawdowns(values: Sequence[float]) -> np.ndarray:
    """How far below its highest value so far each point is: v / running max − 1 (≤ 0)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return array
    peaks = np.maximum.accumulate(array)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peaks > 0, array / peaks - 1, 0.0)


@dataclass(frozen=True)
class Drawdown:
    depth: float  # a fraction ≤ 0: -0.25 is a fall of 25% from the peak
    peak_index: int
    trough_index: int
    recovery_index: int | None  # first point back at the peak, if any


def max_drawdown(values: Sequence[float]) -> Drawdown | None:
    """The largest fall from a high to a later low. None with fewer than two values; a
    series that never falls has depth 0."""
    if len(values) < 2:
        return None
    falls = drawdowns(values)
    trough = int(np.argmin(falls))
    depth = float(falls[trough])
    if depth >= 0:
        return Drawdown(depth=0.0, peak_index=0, trough_index=0, recovery_index=None)
    array = np.asarray(values, dtype=float)
    peak = int(np.argmax(array[: trough + 1]))
    recovered = np.nonzero(array[trough:] >= array[peak])[0]
    return Drawdown(
        depth=depth,
        peak_index=peak,
        trough_index=trough,
        recovery_index=int(trough + recovered[0]) if recovered.size else None,
    )


def beta(
    portfolio_returns: Sequence[float],
    market_returns: Sequence[float],
    *,
    min_overlap: int = MIN_BETA_RETURNS,
) -> float | None:
    """cov(portfolio, market) / var(market) over the periods where both have a return.
    None below `min_overlap` overlapping returns or when the market did not move."""
    portfolio_array = np.asarray(portfolio_returns, dtype=float)
    market_array = np.asarray(market_returns, dtype=float)
    both = np.isfinite(portfolio_array) & np.isfinite(market_array)
    if int(both.sum()) < max(min_overlap, 2):
        return None
    portfolio_array, market_array = portfolio_array[both], market_array[both]
    variance = float(np.var(market_array, ddof=1))
    if variance == 0:
        return None
    return float(np.cov(portfolio_array, market_array, ddof=1)[0, 1]) / variance


def paired_returns(
    portfolio_levels: Mapping[date, float], market_levels: Mapping[date, float]
) -> tuple[list[float], list[float]]:
    """Daily returns of both series over the same intervals: between consecutive dates
    that both have a level. A day one of them misses is skipped by both, so a return
    never spans two days on one side and one on the other."""
    days = sorted(set(portfolio_levels) & set(market_levels))
    ours: list[float] = []
    theirs: list[float] = []
    for before, after in zip(days, days[1:], strict=False):
        ours_change = change(portfolio_levels[before], portfolio_levels[after])
        theirs_change = change(market_levels[before], market_levels[after])
        if ours_change is not None and theirs_change is not None:
            ours.append(ours_change)
            theirs.append(theirs_change)
    return ours, theirs


def close_date(at: datetime) -> date:
    """The trading date of the session close nearest to `at`. A close snapshot taken a
    little before or after the close (SESSION_CLOSE_UTC) belongs to that day's session,
    which is also the date of that day's bar."""
    close = settings.SESSION_CLOSE_UTC
    offset = timedelta(hours=close.hour, minutes=close.minute, seconds=close.second)
    return (at.astimezone(UTC) - offset + timedelta(hours=12)).date()


def herfindahl(weights: Sequence[float]) -> float | None:
    """Herfindahl–Hirschman index of the weights (normalised to sum to 1): Σ w². 1 is one
    holding; n equal holdings give 1/n. None when there is nothing to weigh."""
    array = np.asarray(weights, dtype=float)
    array = array[array > 0]
    total = float(array.sum())
    if total <= 0:
        return None
    return float(np.sum((array / total) ** 2))


def pairwise_covariance(returns: np.ndarray) -> np.ndarray:
    """Sample covariance of the columns of `returns` (periods × assets), each pair over
    the periods where both have a return (NaN is missing). A stock listed last week
    still pairs with the others over the days it has. NaN where a pair shares < 2."""
    present = np.isfinite(returns).astype(float)
    filled = np.where(present > 0, returns, 0.0)
    pairs = present.T @ present
    sum_xy = filled.T @ filled
    sum_x = filled.T @ present  # [i, j]: sum of asset i over the periods j also has
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = (sum_xy - sum_x * sum_x.T / pairs) / (pairs - 1)
    covariance[pairs < 2] = np.nan
    return covariance


def risk_shares(weights: Sequence[float], covariance: np.ndarray) -> list[float | None]:
    """Each holding's share of the portfolio's variance, w_i·(Σw)_i / w'Σw (they add up to
    1; a holding that moves against the rest can be negative). Holdings without a
    usable covariance are left out (None) and the others share the total."""
    weight = np.asarray(weights, dtype=float)
    if weight.size == 0:
        return []
    usable = np.isfinite(np.diag(covariance)) if covariance.size else np.zeros(0, bool)
    shares: list[float | None] = [None] * weight.size
    index = np.nonzero(usable)[0]
    if index.size == 0:
        return shares
    sub = np.nan_to_num(covariance[np.ix_(index, index)])
    w = weight[index]
    marginal = sub @ w
    total = float(w @ marginal)
    if total <= 0:
        return shares
    for position, value in zip(index, w * marginal / total, strict=True):
        shares[int(position)] = float(value)
    return shares


# --- Chart geometry (server-rendered SVG) -----------------------------------------


def nice_ticks(low: float, high: float, *, count: int = 4) -> list[float]:
    """About `count` round values (1, 2, 2.5, 5 × 10^k apart) covering low..high."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


@dataclass(frozen=True)
class Tick:
    position: float  # SVG coordinate along the axis
    value: float | datetime
    label: str = ""


@dataclass(frozen=True)
class Chart:
    """A time-series chart in a width × height viewBox, with its plot area inset for the
    axis labels. `points`/`area` are SVG polyline/polygon coordinates of the first
    series; `lines` holds every series' polyline, the first one included ("" for a
    series too short to draw)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: str
    area: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    x_format: str
    reference: Tick | None = None
    low: float = 0.0
    high: float = 0.0
    lines: tuple[str, ...] = ()


def dollars(value: float) -> str:
    """An axis label: thousands when they are round ($12.5k), whole dollars otherwise
    ($99,960), so a chart that moves by a few dollars still has distinct labels."""
    if abs(value) >= 10_000 and round(value) % 100 == 0:
        return f"${value / 1000:,.1f}k".replace(".0k", "k")
    return f"${value:,.0f}"


def percent(value: float) -> str:
    return f"{value:.3g}%" if value else "0%"


def signed_percent(value: float) -> str:
    """An axis label of a change: +2.5%, 0%, -1%."""
    return f"+{value:.3g}%" if value > 0 else percent(value)


def _x_format(span: timedelta) -> str:
    if span <= timedelta(days=2):
        return "D H:i"
    if span <= timedelta(days=120):
        return "M j"
    return "M Y"


Series = Sequence[tuple[datetime, float]]


def time_chart(
    series: Series,
    *,
    others: Sequence[Series] = (),
    width: int = 720,
    height: int = 240,
    reference: float | None = None,
    ceiling: float | None = None,
    baseline: float | None = None,
    margins: tuple[int, int, int, int] = (12, 12, 28, 72),  # top, right, bottom, left
    y_label: Callable[[float], str] = str,
) -> Chart | None:
    """Scale a series (oldest first), and any `others` drawn over it, into a chart with x
    by time and y by value, on one shared scale. The y range covers every series and
    `reference`; `ceiling` caps the top (a drawdown's 0) and the first series' area is
    filled down to `baseline` (the bottom when None). None when the first series has
    under two points; another series that short is left out ("" in `lines`)."""
    if len(series) < 2:
        return None
    drawn = [series, *(other for other in others if len(other) >= 2)]
    top_margin, right_margin, bottom_margin, left_margin = margins
    left, right = left_margin, width - right_margin
    top, bottom = top_margin, height - bottom_margin
    values = [value for line in drawn for _, value in line]
    low, high = min(values), max(values)
    if reference is not None:
        low, high = min(low, reference), max(high, reference)
    if ceiling is not None:
        high = ceiling
    if high == low:  # a flat line sits in the middle
        pad = abs(high) * 0.01 or 1.0
        low, high = low - pad, high + pad
    else:
        pad = (high - low) * 0.05
        low = low - pad
        high = high if ceiling is not None else high + pad
    start = min(line[0][0] for line in drawn).timestamp()
    end = max(line[-1][0] for line in drawn).timestamp()
    duration = (end - start) or 1.0

    def x_of(moment: float) -> float:
        return left + (moment - start) / duration * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    def polyline(line: Series) -> str:
        if len(line) < 2:
            return ""
        return " ".join(f"{x_of(at.timestamp()):.1f},{y_of(value):.1f}" for at, value in line)

    coords = polyline(series)
    floor = bottom if baseline is None else y_of(baseline)
    first_x, last_x = x_of(series[0][0].timestamp()), x_of(series[-1][0].timestamp())
    area = f"{first_x:.1f},{floor:.1f} {coords} {last_x:.1f},{floor:.1f}"
    y_ticks = [
        Tick(y_of(value), value, y_label(value))
        for value in nice_ticks(low, high)
        if low <= value <= high
    ]
    x_ticks = [
        Tick(
            x_of(start + duration * fraction),
            datetime.fromtimestamp(start + duration * fraction, tz=UTC),
        )
        for fraction in (0, 0.25, 0.5, 0.75, 1)
    ]
    return Chart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=coords,
        area=area,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        x_format=_x_format(timedelta(seconds=end - start)),
        reference=Tick(y_of(reference), reference, y_label(reference))
        if reference is not None
        else None,
        low=low,
        high=high,
        lines=(coords, *(polyline(other) for other in others)),
    )


# --- Reads ----------------------------------------------------------------------


class SnapshotPoint(NamedTuple):
    at: datetime
    net_worth: Decimal
    net_deposits: Decimal
    growth: Decimal


@dataclass
class SnapshotHistory:
    at: list[SnapshotPoint | None]  # the snapshot at or just before each asked moment
    first: SnapshotPoint | None  # the portfolio's earliest snapshot
    closes: list[SnapshotPoint]  # session-close snapshots, oldest first


# Three reads of one portfolio's snapshots in one round trip: for each moment, the
# snapshot at or just before it (a LATERAL probe of the (portfolio, at) unique index, so
# a year of five-minute snapshots costs 300 index lookups, not a scan); the earliest
# snapshot; and the session-close snapshots since a date (the partial close index).
_SNAPSHOT_SQL = """
SELECT 'at', moment.n, snapshot.at, snapshot.net_worth, snapshot.net_deposits, snapshot.growth
FROM unnest(%(moments)s::timestamptz[]) WITH ORDINALITY AS moment(at, n)
CROSS JOIN LATERAL (
    SELECT at, net_worth, net_deposits, growth FROM portfolio_networthsnapshot
    WHERE portfolio_id = %(portfolio)s AND at <= moment.at
    ORDER BY at DESC LIMIT 1
) AS snapshot
UNION ALL
(SELECT 'first', NULL, at, net_worth, net_deposits, growth FROM portfolio_networthsnapshot
 WHERE portfolio_id = %(portfolio)s ORDER BY at LIMIT 1)
UNION ALL
(SELECT 'close', NULL, at, net_worth, net_deposits, growth FROM portfolio_networthsnapshot
 WHERE portfolio_id = %(portfolio)s AND is_close AND at >= %(closes_since)s)
"""


def snapshot_history(
    portfolio: Portfolio, *, moments: Sequence[datetime], closes_since: datetime
) -> SnapshotHistory:
    """One query, whatever the number of snapshots."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SNAPSHOT_SQL,
            {"moments": list(moments), "portfolio": portfolio.pk, "closes_since": closes_since},
        )
        rows = cursor.fetchall()
    history = SnapshotHistory(at=[None] * len(moments), first=None, closes=[])
    for kind, number, *values in rows:
        point = SnapshotPoint(*values)
        if kind == "at":
            history.at[number - 1] = point
        elif kind == "first":
            history.first = point
        else:
            history.closes.append(point)
    history.closes.sort()
    return history


class Level(NamedTuple):
    at: datetime  # when the bar it comes from closed
    close: float


@dataclass
class MarketHistory:
    index: list[Level | None]  # the Composite's level at or just before each moment
    stock: list[Level | None]  # the compared stock's price likewise (empty without one)
    index_closes: dict[date, float]  # the Composite's daily closes, by trading date

    @property
    def has_index(self) -> bool:
        return bool(self.index_closes) or any(self.index)


# The level at or just before each moment from a table of bars: the latest minute bar
# that has closed by then, or the latest daily bar that has (a daily bar of date D closes
# at D + SESSION_CLOSE_UTC), whichever closed later. Minute bars give the recent past its
# detail; daily bars carry the time that has no minute bars. Each half is one probe of
# the (…, resolution, start) unique index, so the cost is the number of chart points,
# never the number of bars.
_INDEX_SQL = """
SELECT 'index', moment.n, bar.closed_at, bar.close
FROM unnest(%(moments)s::timestamptz[]) WITH ORDINALITY AS moment(at, n)
CROSS JOIN LATERAL (
    SELECT closed_at, close FROM (
        (SELECT start + interval '1 minute' AS closed_at, close FROM market_indexbar
         WHERE resolution = '1m' AND start <= moment.at - interval '1 minute'
         ORDER BY start DESC LIMIT 1)
        UNION ALL
        (SELECT start + %(close_offset)s, close FROM market_indexbar
         WHERE resolution = '1d' AND start <= moment.at - %(close_offset)s
         ORDER BY start DESC LIMIT 1)
    ) AS candidate
    ORDER BY closed_at DESC LIMIT 1
) AS bar
UNION ALL
(SELECT 'close', NULL, start, close FROM market_indexbar
 WHERE resolution = '1d' AND start >= %(closes_since)s)
"""
# The same probe of one stock's bars, appended when a stock is compared.
_STOCK_SQL = """
UNION ALL
SELECT 'stock', moment.n, bar.closed_at, bar.close
FROM unnest(%(moments)s::timestamptz[]) WITH ORDINALITY AS moment(at, n)
CROSS JOIN LATERAL (
    SELECT closed_at, close FROM (
        (SELECT start + interval '1 minute' AS closed_at, close FROM market_pricebar
         WHERE stock_id = %(stock)s AND resolution = '1m'
           AND start <= moment.at - interval '1 minute'
         ORDER BY start DESC LIMIT 1)
        UNION ALL
        (SELECT start + %(close_offset)s, close FROM market_pricebar
         WHERE stock_id = %(stock)s AND resolution = '1d'
           AND start <= moment.at - %(close_offset)s
         ORDER BY start DESC LIMIT 1)
    ) AS candidate
    ORDER BY closed_at DESC LIMIT 1
) AS bar
"""


def market_history(
    *, moments: Sequence[datetime], closes_since: date, stock: Stock | None = None
) -> MarketHistory:
    """The Bullpen Composite (market.models.IndexBar) at each moment and its daily closes
    from `closes_since` on, plus a stock's price at each moment when one is compared.
    One query."""
    close = settings.SESSION_CLOSE_UTC
    params: dict[str, object] = {
        "moments": list(moments),
        "close_offset": timedelta(hours=close.hour, minutes=close.minute, seconds=close.second),
        "closes_since": datetime.combine(closes_since, datetime.min.time(), tzinfo=UTC),
    }
    sql = _INDEX_SQL
    if stock is not None:
        sql = _INDEX_SQL + _STOCK_SQL
        params["stock"] = stock.pk
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    history = MarketHistory(
        index=[None] * len(moments),
        stock=[None] * len(moments) if stock is not None else [],
        index_closes={},
    )
    for kind, number, at, close_level in rows:
        if kind == "close":
            # A daily bar starts at midnight UTC of its trading date.
            history.index_closes[at.astimezone(UTC).date()] = float(close_level)
        else:
            target = history.index if kind == "index" else history.stock
            target[number - 1] = Level(at, float(close_level))
    return history


# --- P&L (money: Decimal) -------------------------------------------------------


@dataclass(frozen=True)
class PositionPnl:
    position: Position
    unrealized: Decimal
    realized: Decimal
    total: Decimal
    cost_pct: Decimal | None  # total P&L over the cost of the shares held
    weight_pct: Decimal | None  # market value over net worth


@dataclass(frozen=True)
class SectorPnl:
    key: str
    label: str
    positions: int
    market_value: Decimal
    cost_basis: Decimal
    unrealized: Decimal
    realized: Decimal
    total: Decimal
    cost_pct: Decimal | None
    weight_pct: Decimal | None


def _pct_of(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(CENT) if whole > 0 else None


def position_pnl(positions: Sequence[Position], *, net_worth: Decimal) -> list[PositionPnl]:
    """Every position with a P&L, open or sold out, from the best total to the worst.
    Unrealized is on the shares held at the last price; realized is what sales booked;
    % of cost is the total over the cost basis of the shares still held (none for a
    position sold out: its cost left with its shares)."""
    rows = []
    for position in positions:
        if position.quantity <= 0 and not position.realized_pnl:
            continue
        unrealized = position.unrealized_pnl if position.quantity > 0 else ZERO
        realized = position.realized_pnl.quantize(CENT)
        total = unrealized + realized
        rows.append(
            PositionPnl(
                position=position,
                unrealized=unrealized,
                realized=realized,
                total=total,
                cost_pct=_pct_of(total, position.cost_basis) if position.quantity > 0 else None,
                weight_pct=_pct_of(position.market_value, net_worth)
                if position.quantity > 0
                else None,
            )
        )
    rows.sort(key=lambda row: (-row.total, row.position.stock.symbol))
    return rows


def sector_pnl(rows: Sequence[PositionPnl], *, net_worth: Decimal) -> list[SectorPnl]:
    """`position_pnl` summed by sector, the largest market value first, with each
    sector's weight of net worth."""
    labels = dict(Sector.choices)
    sums: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        position = row.position
        sector = position.stock.sector
        held = position.quantity > 0
        totals = sums.setdefault(
            sector, {"value": ZERO, "cost": ZERO, "unrealized": ZERO, "realized": ZERO}
        )
        totals["value"] += position.market_value if held else ZERO
        totals["cost"] += position.cost_basis if held else ZERO
        totals["unrealized"] += row.unrealized
        totals["realized"] += row.realized
        counts[sector] = counts.get(sector, 0) + 1
    sectors = [
        SectorPnl(
            key=key,
            label=labels.get(key, key.replace("_", " ").title()),
            positions=counts[key],
            market_value=totals["value"],
            cost_basis=totals["cost"].quantize(CENT),
            unrealized=totals["unrealized"],
            realized=totals["realized"],
            total=totals["unrealized"] + totals["realized"],
            cost_pct=_pct_of(totals["unrealized"] + totals["realized"], totals["cost"]),
            weight_pct=_pct_of(totals["value"], net_worth),
        )
        for key, totals in sums.items()
    ]
    sectors.sort(key=lambda sector: (-sector.market_value, -abs(sector.total), sector.label))
    return sectors


# --- The pages' selector ----------------------------------------------------------


@dataclass(frozen=True)
class HoldingRisk:
    position: Position
    weight_pct: float  # of net worth
    volatility_pct: float | None  # annualised, from the last 30 days of daily closes
    risk_share_pct: float | None  # of the portfolio's variance


@dataclass(frozen=True)
class Period:
    change_pct: float
    at: datetime


@dataclass(frozen=True)
class PeriodReturn:
    """A time-weighted return from a period's start to now."""

    key: str
    label: str
    description: str
    return_pct: float | None
    start_at: datetime  # the moment the starting growth was recorded
    from_opening: bool  # the portfolio opened after the period began


@dataclass(frozen=True)
class ComparisonLine:
    key: str  # portfolio, index or stock: the line's style
    label: str
    change_pct: float | None  # over the range, to now
    starts_at: datetime | None  # its first level in the range (later when it began later)
    points: str = ""


@dataclass
class PerformanceReport:
    range: PerformanceRange
    since: datetime
    now: datetime
    net_worth: Decimal
    net_deposits: Decimal
    starting_cash: Decimal
    step: timedelta
    step_name: str
    detail: bool = False
    growth: float = 1.0  # live, time-weighted, since the opening
    periods: list[PeriodReturn] = field(default_factory=list)
    snapshot_points: int = 0
    chart: Chart | None = None
    comparison_chart: Chart | None = None
    comparison_lines: list[ComparisonLine] = field(default_factory=list)
    drawdown_chart: Chart | None = None
    compare: Stock | None = None
    has_index: bool = False
    # Figures in percent (12.5 is 12.5%) for the templates' signed_pct.
    range_return_pct: float | None = None
    range_start_at: datetime | None = None
    index_return_pct: float | None = None
    stock_return_pct: float | None = None
    # Risk over the range, from time-weighted growth
    returns_count: int = 0
    per_year: float | None = None
    volatility_pct: float | None = None
    sharpe: float | None = None
    risk_free_rate_pct: float = 0.0
    drawdown_pct: float | None = None
    drawdown_peak_at: datetime | None = None
    drawdown_trough_at: datetime | None = None
    drawdown_recovered_at: datetime | None = None
    best: Period | None = None
    worst: Period | None = None
    # Beta: daily, last 90 days, against the Composite
    beta: float | None = None
    beta_returns: int = 0
    # Concentration (current positions; the risk page only)
    holdings: list[HoldingRisk] = field(default_factory=list)
    largest: HoldingRisk | None = None
    largest_of_holdings_pct: float | None = None
    herfindahl: float | None = None

    @property
    def starts_at_opening(self) -> bool:
        """The range reaches back past the day the portfolio opened, so it starts there."""
        return self.range.window is None or self.since > self.now - self.range.window

    @property
    def effective_holdings(self) -> float | None:
        return 1 / self.herfindahl if self.herfindahl else None

    @property
    def versus_index_pct(self) -> float | None:
        """Percentage points ahead of (or behind) the Composite over the range."""
        if self.range_return_pct is None or self.index_return_pct is None:
            return None
        return self.range_return_pct - self.index_return_pct


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None or not math.isfinite(fraction) else fraction * 100


def _opening(portfolio: Portfolio) -> SnapshotPoint:
    """The portfolio at its opening: the first deposit, growth 1."""
    return SnapshotPoint(
        portfolio.created_at, portfolio.starting_cash, portfolio.starting_cash, Decimal(1)
    )


def _start_point(
    portfolio: Portfolio,
    start: datetime,
    at_start: SnapshotPoint | None,
    first: SnapshotPoint | None,
) -> tuple[SnapshotPoint, bool]:
    """What a period beginning at `start` is measured from, and whether that is the
    opening: the opening when the portfolio is younger than the period; else the
    snapshot at or just before `start`; else (history recorded only after `start`) the
    earliest snapshot; else, with no snapshot at all, the opening."""
    if start <= portfolio.created_at:
        return _opening(portfolio), True
    if at_start is not None:
        return at_start, False
    if first is not None:
        return first, False
    return _opening(portfolio), True


def live_growth(
    portfolio: Portfolio, latest: SnapshotPoint | None, *, net_worth: Decimal
) -> Decimal:
    """portfolio.selectors.growth_now, carried from the latest snapshot the page has
    already read instead of PortfolioPerformance (which the snapshot statement writes
    from that same snapshot): one query fewer on every view."""
    start = latest or _opening(portfolio)
    return growth_step(
        growth=start.growth,
        previous_net_worth=start.net_worth,
        previous_deposits=start.net_deposits,
        net_worth=net_worth,
        net_deposits=portfolio.net_deposits,
    )


def performance_report(
    portfolio: Portfolio,
    *,
    range_key: str,
    positions: Sequence[Position],
    net_worth: Decimal,
    now: datetime | None = None,
    compare: Stock | None = None,
    detail: bool = False,
) -> PerformanceReport:
    """Everything the performance section shows for one range. `positions` are the open
    positions with their stock (the page already has them), `net_worth` the live figure
    that ends the charts, `compare` a listed stock to draw against, and `detail` adds
    what only /portfolio/performance/ shows (the drawdown chart, best and worst steps,
    the holdings' risk). Two queries of its own (three with `detail`), whatever the
    number of snapshots, bars or positions."""
    now = now or timezone.now()
    chosen = RANGES[range_key]
    opened = portfolio.created_at
    since = opened if chosen.window is None else max(now - chosen.window, opened)
    step, step_name = chart_step(max(now - since, timedelta(minutes=5)))
    times = chart_times(since, now, step)
    period_starts = [
        now - RANGES[key].window for key, _ in RETURN_PERIODS if RANGES[key].window is not None
    ]
    closes_since = now - BETA_WINDOW - timedelta(days=1)  # the first return needs a close
    history = snapshot_history(
        portfolio, moments=[*times, *period_starts], closes_since=closes_since
    )
    market = market_history(moments=times, closes_since=closes_since.date(), stock=compare)
    at_time, at_period = history.at[: len(times)], history.at[len(times) :]

    report = PerformanceReport(
        range=chosen,
        since=since,
        now=now,
        net_worth=net_worth,
        net_deposits=portfolio.net_deposits,
        starting_cash=portfolio.starting_cash,
        step=step,
        step_name=step_name,
        detail=detail,
        compare=compare,
        has_index=market.has_index,
        risk_free_rate_pct=float(settings.RISK_FREE_RATE) * 100,
    )
    growth_now = live_growth(portfolio, at_time[-1], net_worth=net_worth)
    report.growth = float(growth_now)
    _period_returns(report, portfolio, at_period, history.first, growth_now)

    series = _portfolio_series(
        portfolio, times, at_time, history.first, net_worth=net_worth, growth=growth_now
    )
    report.snapshot_points = len({point.at for point in at_time if point is not None})
    _charts(report, series, market, times)
    _risk(report, series)
    _beta(report, history.closes, market.index_closes, now=now)
    if detail:
        _concentration(report, positions, net_worth, now=now)
    return report


def _period_returns(
    report: PerformanceReport,
    portfolio: Portfolio,
    at_period: Sequence[SnapshotPoint | None],
    first: SnapshotPoint | None,
    growth_now: Decimal,
) -> None:
    found = iter(at_period)
    for key, label in RETURN_PERIODS:
        period = RANGES[key]
        if period.window is None:
            start, from_opening = _opening(portfolio), True
        else:
            start, from_opening = _start_point(
                portfolio, report.now - period.window, next(found), first
            )
        report.periods.append(
            PeriodReturn(
                key=key,
                label=label,
                description=period.description,
                return_pct=_pct(change(start.growth, growth_now)),
                start_at=start.at,
                from_opening=from_opening,
            )
        )


class _Point(NamedTuple):
    at: datetime
    net_worth: float
    growth: float


def _portfolio_series(
    portfolio: Portfolio,
    times: Sequence[datetime],
    at_time: Sequence[SnapshotPoint | None],
    first: SnapshotPoint | None,
    *,
    net_worth: Decimal,
    growth: Decimal,
) -> list[_Point]:
    """The portfolio at each chart time, from the range's start to the live figures. A
    time before any snapshot is left out; the start is the period start (see
    `_start_point`), drawn where it was recorded when that is later."""
    start, _ = _start_point(portfolio, times[0], at_time[0], first)
    start_at = max(times[0], start.at)
    series = [_Point(start_at, float(start.net_worth), float(start.growth))]
    for moment, point in zip(times[1:-1], at_time[1:-1], strict=True):
        if point is not None and moment > start_at:
            series.append(_Point(moment, float(point.net_worth), float(point.growth)))
    if times[-1] > start_at:
        series.append(_Point(times[-1], float(net_worth), float(growth)))
    return series


class _Change(NamedTuple):
    at: datetime
    change_pct: float


def _level_line(times: Sequence[datetime], levels: Sequence[Level | None]) -> list[_Change]:
    """A price or index level at each chart time, as % change from its first one (the
    level at the range's start, or its first level when it began later)."""
    known = [(moment, level.close) for moment, level in zip(times, levels, strict=True) if level]
    if not known or known[0][1] <= 0:
        return []
    base = known[0][1]
    return [_Change(moment, (value / base - 1) * 100) for moment, value in known]


def _charts(
    report: PerformanceReport,
    series: list[_Point],
    market: MarketHistory,
    times: Sequence[datetime],
) -> None:
    if len(series) < 2 or report.snapshot_points < 1:
        return
    report.range_start_at = series[0].at
    base_growth = series[0].growth
    report.range_return_pct = _pct(change(base_growth, series[-1].growth))
    paid_in = float(report.net_deposits) if report.net_deposits else None
    report.chart = time_chart(
        [(point.at, point.net_worth) for point in series], reference=paid_in, y_label=dollars
    )
    portfolio_line = [
        (point.at, (point.growth / base_growth - 1) * 100 if base_growth > 0 else 0.0)
        for point in series
    ]
    index_line = _level_line(times, market.index)
    lines = [
        ComparisonLine("portfolio", "Your portfolio", report.range_return_pct, series[0].at),
        ComparisonLine(
            "index",
            INDEX_NAME,
            index_line[-1].change_pct if index_line else None,
            index_line[0].at if index_line else None,
        ),
    ]
    report.index_return_pct = lines[1].change_pct
    others = [[(point.at, point.change_pct) for point in index_line]]
    if report.compare is not None:
        stock_line = _level_line(times, market.stock)
        report.stock_return_pct = stock_line[-1].change_pct if stock_line else None
        lines.append(
            ComparisonLine(
                "stock",
                report.compare.symbol,
                report.stock_return_pct,
                stock_line[0].at if stock_line else None,
            )
        )
        others.append([(point.at, point.change_pct) for point in stock_line])
    report.comparison_chart = time_chart(
        portfolio_line, others=others, reference=0.0, y_label=signed_percent
    )
    drawn = report.comparison_chart.lines if report.comparison_chart else ("",) * len(lines)
    report.comparison_lines = [
        ComparisonLine(line.key, line.label, line.change_pct, line.starts_at, points)
        for line, points in zip(lines, drawn, strict=True)
    ]
    if report.detail:
        falls = drawdowns([point.growth for point in series])
        report.drawdown_chart = time_chart(
            [(point.at, fall * 100) for point, fall in zip(series, falls, strict=True)],
            height=140,
            ceiling=0.0,
            baseline=0.0,
            y_label=percent,
        )


def _risk(report: PerformanceReport, series: list[_Point]) -> None:
    """Volatility, Sharpe, drawdown and the best and worst step over the range, from the
    time-weighted growth at each chart time."""
    if len(series) < 2 or report.snapshot_points < 1:
        return
    growth = [point.growth for point in series]
    worst_fall = max_drawdown(growth)
    if worst_fall is not None:
        report.drawdown_pct = _pct(worst_fall.depth)
        if worst_fall.depth < 0:
            report.drawdown_peak_at = series[worst_fall.peak_index].at
            report.drawdown_trough_at = series[worst_fall.trough_index].at
            if worst_fall.recovery_index is not None:
                report.drawdown_recovered_at = series[worst_fall.recovery_index].at

    returns = simple_returns(growth)
    finite = np.isfinite(returns)
    report.returns_count = int(finite.sum())
    report.per_year = periods_per_year(periods=len(returns), span=series[-1].at - series[0].at)
    if report.per_year and report.returns_count >= MIN_RISK_RETURNS:
        report.volatility_pct = _pct(annualised_volatility(returns, per_year=report.per_year))
        report.sharpe = sharpe_ratio(
            returns, per_year=report.per_year, risk_free=float(settings.RISK_FREE_RATE)
        )
    if report.returns_count:
        masked_best = np.where(finite, returns, -np.inf)
        masked_worst = np.where(finite, returns, np.inf)
        best, worst = int(np.argmax(masked_best)), int(np.argmin(masked_worst))
        # A step's return belongs to the point it ends at.
        report.best = Period(float(returns[best]) * 100, series[best + 1].at)
        report.worst = Period(float(returns[worst]) * 100, series[worst + 1].at)


def _beta(
    report: PerformanceReport,
    closes: Sequence[SnapshotPoint],
    index_closes: Mapping[date, float],
    *,
    now: datetime,
) -> None:
    """Beta from daily returns over the last 90 days, whatever the chart's range: a
    shorter range would never hold ten daily returns. The portfolio's day is its
    session-close snapshot's growth, the Composite's its daily bar's close."""
    window_start = close_date(now - BETA_WINDOW)
    growth_by_day = {
        close_date(point.at): float(point.growth)
        for point in closes
        if close_date(point.at) >= window_start
    }
    index_by_day = {day: level for day, level in index_closes.items() if day >= window_start}
    ours, theirs = paired_returns(growth_by_day, index_by_day)
    report.beta_returns = len(ours)
    report.beta = beta(ours, theirs)


def _concentration(
    report: PerformanceReport, positions: Sequence[Position], net_worth: Decimal, *, now: datetime
) -> None:
    held = [position for position in positions if position.quantity > 0]
    if not held:
        return
    held.sort(key=lambda position: position.market_value, reverse=True)
    values = [float(position.market_value) for position in held]
    total_holdings = sum(values)
    worth = float(net_worth) or 1.0
    weights = [value / worth for value in values]
    report.herfindahl = herfindahl(values)
    if total_holdings > 0:
        report.largest_of_holdings_pct = _pct(values[0] / total_holdings)

    volatilities, covariance = _holding_covariance(held, now=now)
    shares = risk_shares(weights, covariance)
    report.holdings = [
        HoldingRisk(
            position=position,
            weight_pct=weight * 100,
            volatility_pct=_pct(volatility),
            risk_share_pct=_pct(share),
        )
        for position, weight, volatility, share in zip(
            held, weights, volatilities, shares, strict=True
        )
    ]
    report.largest = report.holdings[0]


def _holding_covariance(
    held: Sequence[Position], *, now: datetime
) -> tuple[list[float | None], np.ndarray]:
    """Annualised 30-day volatility of each holding and the covariance of their daily
    returns, from one read of the held stocks' daily closes."""
    index = {position.stock_id: column for column, position in enumerate(held)}
    closes = (
        PriceBar.objects.filter(
            stock_id__in=list(index),
            resolution=Resolution.DAY,
            start__gte=now - POSITION_VOLATILITY_WINDOW - timedelta(days=1),
        )
        .order_by("stock_id", "start")
        .values_list("stock_id", "start", "close")
    )
    by_stock: dict[int, list[tuple[datetime, float]]] = {}
    for stock_id, start, close in closes:
        by_stock.setdefault(stock_id, []).append((start, float(close)))
    dates = sorted({start for bars in by_stock.values() for start, _ in bars})
    row = {start: number for number, start in enumerate(dates)}
    returns = np.full((max(len(dates) - 1, 0), len(held)), np.nan)
    for stock_id, bars in by_stock.items():
        for (_, before), (start, after) in zip(bars, bars[1:], strict=False):
            if before > 0:
                returns[row[start] - 1, index[stock_id]] = after / before - 1
    if len(dates) < 3:
        return [None] * len(held), np.full((len(held), len(held)), np.nan)
    covariance = pairwise_covariance(returns)
    per_year = periods_per_year(periods=len(dates) - 1, span=dates[-1] - dates[0]) or 0.0
    volatilities = [
        float(math.sqrt(variance * per_year)) if np.isfinite(variance) and variance >= 0 else None
        for variance in np.diag(covariance)
    ]
    return volatilities, covariance
