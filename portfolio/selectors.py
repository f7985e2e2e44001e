"""Reads of portfolios used in more than one place: pages, the header, the live push."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from market.models import Sector
from portfolio.models import (
    CENT,
    ZERO,
    LedgerEntry,
    NetWorthSnapshot,
    Portfolio,
    PortfolioPerformance,
    Position,
    WatchlistItem,
)

MONEY_OUTPUT = DecimalField(max_digits=20, decimal_places=4)


def portfolio_for_user(user: Any, portfolio_id: int | None = None) -> Portfolio:
    """The access helper: the user's portfolio (their first, or `portfolio_id` if they
    own it). Anyone else's portfolio, or none at all, is a 404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No portfolio.")
    portfolios = Portfolio.objects.filter(owner=user)
    if portfolio_id is not None:
        return get_object_or_404(portfolios, pk=portfolio_id)
    portfolio = portfolios.order_by("pk").first()
    if portfolio is None:
        raise Http404("This account has no portfolio.")
    return portfolio


def portfolio_positions(
    portfolio: Portfolio, *, include_closed: bool = False
) -> QuerySet[Position]:
    """Positions with their stock in the same query, by symbol. Closed positions (sold
    out, kept for their realized P&L) only when asked."""
    positions = Position.objects.filter(portfolio=portfolio).select_related("stock")
    if not include_closed:
        positions = positions.filter(quantity__gt=0)
    return positions.order_by("stock__symbol")


@dataclass(frozen=True)
class PortfolioSummary:
    cash: Decimal
    reserved_cash: Decimal
    buying_power: Decimal
    holdings_value: Decimal
    net_worth: Decimal
    day_change: Decimal
    day_change_pct: Decimal | None
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    cost_basis: Decimal
    starting_cash: Decimal
    total_return: Decimal
    total_return_pct: Decimal | None
    positions_count: int


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(CENT) if whole else None


def portfolio_summary(
    portfolio: Portfolio, positions: Sequence[Position] | None = None
) -> PortfolioSummary:
    """The headline numbers. Pass the page's positions (open and closed, stock loaded)
    to reuse them; otherwise one query fetches them."""
    if positions is None:
        positions = list(portfolio_positions(portfolio, include_closed=True))
    holdings = cost = day_change = realized = ZERO
    count = 0
    for position in positions:
        realized += position.realized_pnl
        if position.quantity <= 0:
            continue
        count += 1
        stock = position.stock
        holdings += stock.last_price * position.quantity
        cost += position.cost_basis
        if stock.previous_close:
            day_change += (stock.last_price - stock.previous_close) * position.quantity
    holdings = holdings.quantize(CENT)
    day_change = day_change.quantize(CENT)
    net_worth = portfolio.cash + holdings
    total_return = net_worth - portfolio.starting_cash
    return PortfolioSummary(
        cash=portfolio.cash,
        reserved_cash=portfolio.reserved_cash,
        buying_power=portfolio.cash - portfolio.reserved_cash,
        holdings_value=holdings,
        net_worth=net_worth,
        day_change=day_change,
        day_change_pct=_pct(day_change, net_worth - day_change),
        unrealized_pnl=(holdings - cost).quantize(CENT),
        realized_pnl=realized.quantize(CENT),
        cost_basis=cost.quantize(CENT),
        starting_cash=portfolio.starting_cash,
        total_return=total_return,
        total_return_pct=_pct(total_return, portfolio.starting_cash),
        positions_count=count,
    )


def holdings_value_subquery() -> Coalesce:
    """SUM(quantity * last_price) of the outer portfolio's positions, as an annotation."""
    value = (
        Position.objects.filter(portfolio=OuterRef("pk"), quantity__gt=0)
        .order_by()
        .values("portfolio")
        .annotate(
            value=Sum(
                ExpressionWrapper(F("quantity") * F("stock__last_price"), output_field=MONEY_OUTPUT)
            )
        )
        .values("value")
    )
    return Coalesce(
        Subquery(value, output_field=MONEY_OUTPUT), Value(ZERO), output_field=MONEY_OUTPUT
    )


@dataclass(frozen=True)
class Wallet:
    """What the header shows: cash and net worth, in one query."""

    portfolio_id: int
    cash: Decimal
    buying_power: Decimal
    net_worth: Decimal


def wallet_for_user(user: Any) -> Wallet | None:
    row = (
        Portfolio.objects.filter(owner=user)
        .order_by("pk")
        .annotate(holdings=holdings_value_subquery())
        .values("pk", "cash", "reserved_cash", "holdings")
        .first()
    )
    if row is None:
        return None
    return Wallet(
        portfolio_id=row["pk"],
        cash=row["cash"],
        buying_power=row["cash"] - row["reserved_cash"],
        net_worth=(row["cash"] + row["holdings"]).quantize(CENT),
    )


def ledger_with_running_balance(portfolio: Portfolio) -> QuerySet[LedgerEntry]:
    """The ledger oldest first, each entry annotated in SQL with `cash_balance` (cash after
    it) and `shares_after` (shares of its stock after it). Iterate with .iterator() to
    stream. Don't filter it further: the windows run over what the query selects, so a
    narrower WHERE would restart the running sums."""
    return (
        LedgerEntry.objects.filter(portfolio=portfolio)
        .select_related("stock")
        .annotate(
            cash_balance=Window(Sum("cash_delta"), order_by=F("id").asc()),
            shares_after=Window(
                Sum("quantity_delta"), partition_by=[F("stock_id")], order_by=F("id").asc()
            ),
        )
        .order_by("id")
    )


# --- Charts -------------------------------------------------------------------


@dataclass(frozen=True)
class AllocationSlice:
    key: str
    label: str
    value: Decimal
    pct: Decimal
    color: str = ""
    # Stroke-dasharray geometry of a donut ring of circumference 100: length and offset.
    dash: str = ""
    offset: str = ""


# Colour-blind-safe palette (Okabe-Ito), then greys; cash is always the neutral grey.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
    "#7f7f7f",
    "#b2b2b2",
    "#4d4d4d",
)
CASH_COLOR = "#c8c8c8"


def sector_allocation(
    positions: Sequence[Position], cash: Decimal | None = None
) -> list[AllocationSlice]:
    """Market value by sector (plus cash when given), largest first, with the geometry of a
    server-rendered SVG donut."""
    labels = dict(Sector.choices)
    by_sector: dict[str, Decimal] = {}
    for position in positions:
        if position.quantity > 0:
            sector = position.stock.sector
            by_sector[sector] = (
                by_sector.get(sector, ZERO) + position.stock.last_price * position.quantity
            )
    items = sorted(by_sector.items(), key=lambda item: item[1], reverse=True)
    if cash:
        items.append(("cash", cash))
    total = sum((value for _, value in items), ZERO)
    if total <= 0:
        return []
    slices = []
    start = ZERO
    for key, value in items:
        pct = value / total * 100
        slices.append(
            AllocationSlice(
                key=key,
                label=labels.get(key, "Cash" if key == "cash" else key.title()),
                value=value.quantize(CENT),
                pct=pct.quantize(Decimal("0.1")),
                color=CASH_COLOR if key == "cash" else PALETTE[len(slices) % len(PALETTE)],
                dash=f"{pct:.3f} {100 - pct:.3f}",
                # SVG dash offsets run backwards; 25 starts the ring at 12 o'clock.
                offset=f"{(25 - start) % 100:.3f}",
            )
        )
        start += pct
    return slices


@dataclass
class Sparkline:
    points: str = ""
    area: str = ""
    first: Decimal | None = None
    last: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    count: int = 0
    start_at: datetime | None = None
    end_at: datetime | None = None
    values: list[Decimal] = field(default_factory=list)

    @property
    def change(self) -> Decimal | None:
        if self.first is None or self.last is None:
            return None
        return self.last - self.first

    @property
    def is_up(self) -> bool:
        return bool(self.change and self.change > 0)

    @property
    def is_down(self) -> bool:
        return bool(self.change and self.change < 0)


def sparkline(
    series: Sequence[tuple[datetime, Decimal]], *, width: int = 300, height: int = 60
) -> Sparkline:
    """SVG polyline points for a series (oldest first), scaled into width x height."""
    if len(series) < 2:
        return Sparkline(count=len(series), last=series[-1][1] if series else None)
    values = [value for _, value in series]
    low, high = min(values), max(values)
    spread = (high - low) or Decimal(1)
    step = Decimal(width) / (len(values) - 1)
    pad = Decimal(2)
    usable = Decimal(height) - 2 * pad
    coords = [
        f"{step * i:.1f},{pad + usable - (value - low) / spread * usable:.1f}"
        for i, value in enumerate(values)
    ]
    points = " ".join(coords)
    return Sparkline(
        points=points,
        area=f"0,{height} {points} {width},{height}",
        first=values[0],
        last=values[-1],
        low=low,
        high=high,
        count=len(values),
        start_at=series[0][0],
        end_at=series[-1][0],
        values=values,
    )


def net_worth_series(
    portfolio: Portfolio, *, since: timedelta, daily: bool = False, limit: int = 400
) -> list[tuple[datetime, Decimal]]:
    """Snapshots since `since` ago, oldest first; `daily` keeps the last of each UTC day."""
    start = timezone.now() - since
    snapshots = NetWorthSnapshot.objects.filter(portfolio=portfolio, at__gte=start)
    if daily:
        # DISTINCT ON (day) with the latest snapshot of each day.
        rows = (
            snapshots.order_by("at__date", "-at")
            .distinct("at__date")
            .values_list("at", "net_worth")
        )
        return list(rows)[-limit:]
    rows = snapshots.order_by("-at").values_list("at", "net_worth")[:limit]
    return list(reversed(rows))


# --- Time-weighted growth ---------------------------------------------------------


def growth_step(
    *,
    growth: Decimal,
    previous_net_worth: Decimal,
    previous_deposits: Decimal,
    net_worth: Decimal,
    net_deposits: Decimal,
) -> Decimal:
    """Carry time-weighted growth one step: the step's return is the change in net worth
    less the money paid in (or taken out) meanwhile, over the net worth it started
    from. A flow is assumed to land at the end of the step. The snapshot statement
    (portfolio.services) does the same sum in SQL."""
    if previous_net_worth <= 0:
        return growth
    ratio = (net_worth - (net_deposits - previous_deposits)) / previous_net_worth
    return max(growth * ratio, ZERO)


def growth_now(portfolio: Portfolio, *, net_worth: Decimal) -> Decimal:
    """Time-weighted growth of 1 from the opening to `net_worth` (the live figure):
    the last snapshot's growth carried one step. Before the first snapshot the step
    starts from the opening deposit. One query (none if `portfolio.performance` is
    already loaded)."""
    try:
        state = portfolio.performance
    except PortfolioPerformance.DoesNotExist:
        state = None
    if state is None:
        return growth_step(
            growth=Decimal(1),
            previous_net_worth=portfolio.starting_cash,
            previous_deposits=portfolio.starting_cash,
            net_worth=net_worth,
            net_deposits=portfolio.net_deposits,
        )
    return growth_step(
        growth=state.growth,
        previous_net_worth=state.last_net_worth,
        previous_deposits=state.last_net_deposits,
        net_worth=net_worth,
        net_deposits=portfolio.net_deposits,
    )


# --- Watchlist ------------------------------------------------------------------


def watched_stock_ids(user: Any) -> set[int]:
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(
        WatchlistItem.objects.filter(watchlist__owner=user).values_list("stock_id", flat=True)
    )


def watchlist_items(user: Any) -> QuerySet[WatchlistItem]:
    return (
        WatchlistItem.objects.filter(watchlist__owner=user)
        .select_related("stock")
        .order_by("stock__symbol")
    )
