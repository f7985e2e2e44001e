"""Performance and risk figures for /portfolio/performance/.

These are statistics for display, so they are computed in float/numpy. They are never
money: nothing here is written back to a money column, and the money shown (net worth,
starting cash) stays the Decimal it was read as.

The module has two halves:
- pure functions over plain sequences (returns, volatility, drawdown, beta, Herfindahl,
  chart geometry), tested against hand-computed values;
- the reads that feed them (`net_worth_buckets`, `market_daily_returns`) and the one
  selector the page calls, `performance_report`, which costs a fixed handful of queries
  whatever the number of snapshots or positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import DateTimeField, F, Func, Value
from django.utils import timezone

from market.models import PriceBar, Resolution
from market.sessions import session_date
from portfolio.models import NetWorthSnapshot, Portfolio, Position

# A calendar year. Annualising by "how many such intervals fit in a calendar year" is
# right for the simulated market (it never closes) and for real sources too: the flat
# nights and weekends count as intervals with a zero return, so the yearly variance
# still adds up.
YEAR = timedelta(days=365.25)
MAX_POINTS = 300
MIN_BETA_RETURNS = 10
BETA_WINDOW = timedelta(days=90)
POSITION_VOLATILITY_WINDOW = timedelta(days=30)
# Buckets are aligned to the clock (a Monday, midnight UTC), so the same hour is the
# same bucket on every visit.
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
MARKET_RETURNS_CACHE_SECONDS = 300

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
    "all": PerformanceRange("all", "ALL", None, "since you started"),
}
DEFAULT_RANGE = "1m"


# --- Pure functions -------------------------------------------------------------


def chart_step(span: timedelta) -> tuple[timedelta, str]:
    """The smallest round step that shows `span` in at most MAX_POINTS points."""
    for step, name in STEPS:
        if span / step <= MAX_POINTS:
            return step, name
    weeks = math.ceil(span / (timedelta(days=7) * MAX_POINTS))
    return timedelta(days=7 * weeks), f"{weeks} weeks"


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


def sharpe_ratio(returns: Sequence[float], *, per_year: float) -> float | None:
    """Mean return over its standard deviation, annualised, with a 0% risk-free rate."""
    finite = _finite(returns)
    if finite.size < 2:
        return None
    deviation = float(np.std(finite, ddof=1))
    if deviation == 0:
        return None
    return float(np.mean(finite)) / deviation * math.sqrt(per_year)


def compound(returns: Iterable[float]) -> float:
    """The total return of a run of period returns: ∏(1 + r) − 1."""
    finite = _finite(returns)
    return float(np.prod(1 + finite) - 1) if finite.size else 0.0


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
    axis labels. `points`/`area` are SVG polyline/polygon coordinates."""

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


def dollars(value: float) -> str:
    """An axis label: thousands when they are round ($12.5k), whole dollars otherwise
    ($99,960), so a chart that moves by a few dollars still has distinct labels."""
    if abs(value) >= 10_000 and round(value) % 100 == 0:
        return f"${value / 1000:,.1f}k".replace(".0k", "k")
    return f"${value:,.0f}"


def percent(value: float) -> str:
    return f"{value:.3g}%" if value else "0%"


def _x_format(span: timedelta) -> str:
    if span <= timedelta(days=2):
        return "D H:i"
    if span <= timedelta(days=120):
        return "M j"
    return "M Y"


def time_chart(
    series: Sequence[tuple[datetime, float]],
    *,
    width: int = 720,
    height: int = 240,
    reference: float | None = None,
    ceiling: float | None = None,
    baseline: float | None = None,
    margins: tuple[int, int, int, int] = (12, 12, 28, 72),  # top, right, bottom, left
    y_label: Callable[[float], str] = str,
) -> Chart | None:
    """Scale a series (oldest first) into a chart with x by time, y by value. The y range
    covers the series and `reference`; `ceiling` caps the top (a drawdown's 0) and the
    area is filled down to `baseline` (the bottom when None). None under two points."""
    if len(series) < 2:
        return None
    top_margin, right_margin, bottom_margin, left_margin = margins
    left, right = left_margin, width - right_margin
    top, bottom = top_margin, height - bottom_margin
    times = [at.timestamp() for at, _ in series]
    values = [value for _, value in series]
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
    start, end = times[0], times[-1]
    duration = (end - start) or 1.0

    def x_of(moment: float) -> float:
        return left + (moment - start) / duration * (right - left)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    coords = " ".join(
        f"{x_of(moment):.1f},{y_of(value):.1f}" for moment, value in zip(times, values, strict=True)
    )
    floor = bottom if baseline is None else y_of(baseline)
    area = f"{left:.1f},{floor:.1f} {coords} {right:.1f},{floor:.1f}"
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
    )


# --- Reads ----------------------------------------------------------------------


def net_worth_buckets(
    portfolio: Portfolio,
    *,
    since: datetime,
    step: timedelta,
    origin: datetime = BUCKET_ORIGIN,
) -> list[tuple[datetime, datetime, Decimal]]:
    """The last snapshot of each `step`-wide bucket since `since`, oldest first, as
    (bucket start, snapshot time, net worth). Downsampled in SQL (date_bin + DISTINCT
    ON), so a year of five-minute snapshots is still one small answer."""
    bucket = Func(
        Value(step), F("at"), Value(origin), function="date_bin", output_field=DateTimeField()
    )
    rows = (
        NetWorthSnapshot.objects.filter(portfolio=portfolio, at__gte=since)
        .annotate(bucket=bucket)
        .order_by("bucket", "-at")
        .distinct("bucket")
        .values_list("bucket", "at", "net_worth")
    )
    return list(rows)


# Each listed stock's daily return (close over its previous close), averaged per day:
# an equal-weight market rebalanced daily. The LATERAL join reads each stock's daily
# bars through the (stock, resolution, start) index; a plain join would scan the whole
# bar table, minute bars included.
_MARKET_RETURNS_SQL = """
SELECT day, avg(day_return)::float8
FROM (
    SELECT bar.start AS day,
           bar.close / NULLIF(lag(bar.close) OVER (PARTITION BY stock.id ORDER BY bar.start), 0)
               - 1 AS day_return
    FROM market_stock AS stock
    CROSS JOIN LATERAL (
        SELECT start, close FROM market_pricebar
        WHERE stock_id = stock.id AND resolution = %(resolution)s AND start >= %(lookback)s
    ) AS bar
    WHERE stock.delisted_at IS NULL
) AS returns
WHERE day_return IS NOT NULL AND day >= %(since)s
GROUP BY day
ORDER BY day
"""


def market_daily_returns(*, since: date) -> list[tuple[date, float]]:
    """The equal-weight market's return on each trading date from `since` on. The same
    for every player, so it is cached for a few minutes (daily bars change only when
    the history flush runs)."""
    key = f"portfolio:market-daily-returns:{since.isoformat()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            _MARKET_RETURNS_SQL,
            {
                "resolution": Resolution.DAY.value,
                "since": start,
                # The first day's return needs the close before it (weekends included).
                "lookback": start - timedelta(days=7),
            },
        )
        returns = [(day.date(), float(value)) for day, value in cursor.fetchall()]
    cache.set(key, returns, MARKET_RETURNS_CACHE_SECONDS)
    return returns


# --- The page's selector ----------------------------------------------------------


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


@dataclass
class PerformanceReport:
    range: PerformanceRange
    since: datetime
    now: datetime
    net_worth: Decimal
    starting_cash: Decimal
    step: timedelta
    step_name: str
    snapshot_points: int
    chart: Chart | None = None
    drawdown_chart: Chart | None = None
    # Figures in percent (12.5 is 12.5%) for the templates' signed_pct.
    total_return_pct: float | None = None
    range_return_pct: float | None = None
    range_start_value: Decimal | None = None
    range_start_at: datetime | None = None
    market_total_return_pct: float | None = None
    market_range_return_pct: float | None = None
    market_days: int = 0
    # Risk
    returns_count: int = 0
    per_year: float | None = None
    volatility_pct: float | None = None
    sharpe: float | None = None
    drawdown_pct: float | None = None
    drawdown_peak: tuple[datetime, Decimal] | None = None
    drawdown_trough: tuple[datetime, Decimal] | None = None
    drawdown_recovered_at: datetime | None = None
    best: Period | None = None
    worst: Period | None = None
    beta: float | None = None
    beta_returns: int = 0
    # Concentration (current positions)
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
    def versus_market_pct(self) -> float | None:
        """Percentage points ahead of (or behind) the market over the range."""
        if self.range_return_pct is None or self.market_range_return_pct is None:
            return None
        return self.range_return_pct - self.market_range_return_pct


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None or not math.isfinite(fraction) else fraction * 100


def performance_report(
    portfolio: Portfolio,
    *,
    range_key: str,
    positions: Sequence[Position],
    net_worth: Decimal,
    now: datetime | None = None,
) -> PerformanceReport:
    """Everything /portfolio/performance/ shows for one range. `positions` are the open
    positions with their stock (the page already has them) and `net_worth` the live
    figure, which ends the chart. Three queries of its own (the market's returns are
    cached), whatever the number of snapshots or positions."""
    now = now or timezone.now()
    chosen = RANGES[range_key]
    opened = portfolio.created_at
    since = opened if chosen.window is None else max(now - chosen.window, opened)
    step, step_name = chart_step(max(now - since, timedelta(minutes=5)))
    buckets = net_worth_buckets(portfolio, since=since, step=step)
    report = PerformanceReport(
        range=chosen,
        since=since,
        now=now,
        net_worth=net_worth,
        starting_cash=portfolio.starting_cash,
        step=step,
        step_name=step_name,
        snapshot_points=len(buckets),
    )
    if portfolio.starting_cash:
        report.total_return_pct = _pct(float(net_worth / portfolio.starting_cash - 1))

    series = [(at, value) for _, at, value in buckets]
    # End on the live figure so the chart agrees with the net worth on the page; it
    # stands for the bucket that is still open.
    if buckets and buckets[-1][0] + step > now:
        series[-1] = (now, net_worth)
    elif buckets:
        series.append((now, net_worth))

    market = market_daily_returns(since=min(since, now - BETA_WINDOW).date())
    _returns_and_risk(report, series, now=now)
    _benchmark(report, market, opened=opened)
    _beta(report, portfolio, market, now=now)
    _concentration(report, positions, net_worth, now=now)
    return report


def _returns_and_risk(
    report: PerformanceReport, series: list[tuple[datetime, Decimal]], *, now: datetime
) -> None:
    if len(series) < 2 or report.snapshot_points < 2:
        return
    values = [float(value) for _, value in series]
    report.range_start_at, report.range_start_value = series[0]
    if values[0] > 0:
        report.range_return_pct = _pct(values[-1] / values[0] - 1)
    report.chart = time_chart(
        [(at, value) for (at, _), value in zip(series, values, strict=True)],
        reference=float(report.starting_cash) if report.starting_cash else None,
        y_label=dollars,
    )
    falls = drawdowns(values)
    report.drawdown_chart = time_chart(
        [(at, fall * 100) for (at, _), fall in zip(series, falls, strict=True)],
        height=140,
        ceiling=0.0,
        baseline=0.0,
        y_label=percent,
    )
    worst_fall = max_drawdown(values)
    if worst_fall is not None:
        report.drawdown_pct = _pct(worst_fall.depth)
        if worst_fall.depth < 0:
            report.drawdown_peak = series[worst_fall.peak_index]
            report.drawdown_trough = series[worst_fall.trough_index]
            if worst_fall.recovery_index is not None:
                report.drawdown_recovered_at = series[worst_fall.recovery_index][0]

    returns = simple_returns(values)
    finite = np.isfinite(returns)
    report.returns_count = int(finite.sum())
    report.per_year = periods_per_year(periods=len(returns), span=series[-1][0] - series[0][0])
    if report.per_year:
        report.volatility_pct = _pct(annualised_volatility(returns, per_year=report.per_year))
        report.sharpe = sharpe_ratio(returns, per_year=report.per_year)
    if report.returns_count:
        masked_best = np.where(finite, returns, -np.inf)
        masked_worst = np.where(finite, returns, np.inf)
        best, worst = int(np.argmax(masked_best)), int(np.argmin(masked_worst))
        # A step's return belongs to the point it ends at.
        report.best = Period(float(returns[best]) * 100, series[best + 1][0])
        report.worst = Period(float(returns[worst]) * 100, series[worst + 1][0])


def _benchmark(
    report: PerformanceReport, market: list[tuple[date, float]], *, opened: datetime
) -> None:
    # A trading date counts when its daily bar starts inside the range (bars start at
    # midnight UTC of their date).
    in_range = [value for day, value in market if day >= _bar_date_from(report.since)]
    since_open = [value for day, value in market if day >= _bar_date_from(opened)]
    report.market_days = len(in_range)
    if in_range:
        report.market_range_return_pct = _pct(compound(in_range))
    if since_open:
        report.market_total_return_pct = _pct(compound(since_open))


def _bar_date_from(moment: datetime) -> date:
    """The first trading date whose daily bar starts at or after `moment`."""
    moment = moment.astimezone(UTC)
    day = moment.date()
    return day if moment.time() == datetime.min.time() else day + timedelta(days=1)


def _beta(
    report: PerformanceReport,
    portfolio: Portfolio,
    market: list[tuple[date, float]],
    *,
    now: datetime,
) -> None:
    """Beta from daily returns over the last 90 days, whatever the chart's range: a
    shorter range would never hold ten daily returns. A day runs to the market's close
    (market.sessions), so each portfolio day lines up with the day's bar."""
    if len(market) < MIN_BETA_RETURNS:
        return
    close = session_close_origin()
    closes = net_worth_buckets(
        portfolio, since=now - BETA_WINDOW, step=timedelta(days=1), origin=close
    )
    days = [session_date(at) for _, at, _ in closes]
    returns = simple_returns([float(value) for _, _, value in closes])
    market_by_day = dict(market)
    paired = [
        (portfolio_return, market_by_day[day])
        for day, portfolio_return in zip(days[1:], returns, strict=True)
        if day in market_by_day and math.isfinite(portfolio_return)
    ]
    report.beta_returns = len(paired)
    if paired:
        report.beta = beta([p for p, _ in paired], [m for _, m in paired])


def session_close_origin() -> datetime:
    """A past market close, for daily buckets that end at the close."""
    close = settings.SESSION_CLOSE_UTC
    return BUCKET_ORIGIN.replace(hour=close.hour, minute=close.minute, second=close.second)


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
