"""Public profiles: /u/<handle>/.

A profile is public by its player's choice, so visitors who are not logged in see it
too. Its owner sees it even while it is private. Everyone else gets one and the same
404 for a handle that is unknown, private, deleted, suspended or malformed: nothing in
the status, the headers or the body tells a private handle from a free one, so the
page cannot be used to find out who plays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.models import User
from accounts.selectors import user_by_handle
from market.models import Sector
from portfolio import leaderboard as board
from portfolio import selectors
from portfolio.models import LedgerEntry, LedgerKind, Portfolio, Position
from portfolio.views import net_worth_sparkline

# The shape of a handle (accounts.models.handle_validator), checked before any query.
HANDLE_SHAPE = re.compile(r"[a-z0-9_]{3,30}")
RECENT_TRADES = 10
# A profile lists its largest holdings; the rest are summed in one line.
PROFILE_HOLDINGS = 20
TRADE_KINDS = (LedgerKind.BUY, LedgerKind.SELL, LedgerKind.OFFER_BUY, LedgerKind.OFFER_SELL)
TENTH = Decimal("0.1")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class HoldingWeight:
    """One holding as a profile shows it: a share of net worth, coloured by sector."""

    symbol: str
    name: str
    sector: str
    color: str
    weight_pct: Decimal
    quantity: int

    @property
    def bar(self) -> str:
        """The bar's length in a 0-100 SVG viewBox (an attribute: the CSP forbids style=)."""
        return f"{min(max(self.weight_pct, Decimal(0)), Decimal(100)):.1f}"


@dataclass(frozen=True)
class HoldingsByWeight:
    holdings: list[HoldingWeight]
    others_count: int
    others_pct: Decimal | None
    cash_pct: Decimal | None
    legend: list[tuple[str, str]]  # (sector label, colour), largest sector first


@dataclass(frozen=True)
class ProfileTrade:
    at: datetime
    side: str  # "buy" or "sell"
    symbol: str
    shares: int
    price: Decimal | None
    with_player: bool  # a trade with another player (never says whom)


@dataclass(frozen=True)
class ProfileFigures:
    return_pct: Decimal  # time-weighted, at live prices
    rank: int | None
    sharpe_rank: int | None
    drawdown_rank: int | None
    sharpe: Decimal | None
    volatility_pct: Decimal | None
    max_drawdown_pct: Decimal | None
    ranked_at: datetime | None
    not_ranked_reason: str


def _profile_owner(request: HttpRequest, handle: str) -> tuple[User, bool]:
    """The profile's player and whether the viewer is that player, or the one 404."""
    # Read the viewer first on every path, so every 404 touches the session alike and
    # carries the same headers (Vary: Cookie) as every other.
    viewer_id = request.user.pk if request.user.is_authenticated else None
    wanted = handle.strip().lstrip("@").lower()
    owner = user_by_handle(handle=wanted) if HANDLE_SHAPE.fullmatch(wanted) else None
    if owner is not None and viewer_id is not None and owner.pk == viewer_id:
        return owner, True
    if owner is None or not owner.public_profile or not owner.can_log_in:
        raise Http404("No public profile with that handle.")
    return owner, False


def _holdings_by_weight(
    positions: list[Position], *, cash: Decimal, net_worth: Decimal
) -> HoldingsByWeight:
    # The sector colours come from the allocation (largest sector first), so the same
    # sector has the same colour as on the player's own portfolio page.
    allocation = selectors.sector_allocation(positions)
    colors = {slice_.key: slice_.color for slice_ in allocation}
    labels = dict(Sector.choices)

    def pct(value: Decimal) -> Decimal | None:
        return (value / net_worth * 100).quantize(TENTH) if net_worth > 0 else None

    held = sorted(
        (position for position in positions if position.quantity > 0),
        key=lambda position: (-position.market_value, position.stock.symbol),
    )
    shown, others = held[:PROFILE_HOLDINGS], held[PROFILE_HOLDINGS:]
    holdings = [
        HoldingWeight(
            symbol=position.stock.symbol,
            name=position.stock.name,
            sector=labels.get(position.stock.sector, position.stock.sector.title()),
            color=colors.get(position.stock.sector, selectors.CASH_COLOR),
            weight_pct=pct(position.market_value) or Decimal(0),
            quantity=position.quantity,
        )
        for position in shown
    ]
    others_value = sum((position.market_value for position in others), Decimal(0))
    return HoldingsByWeight(
        holdings=holdings,
        others_count=len(others),
        others_pct=pct(others_value) if others else None,
        cash_pct=pct(cash),
        legend=[(slice_.label, slice_.color) for slice_ in allocation],
    )


def _recent_trades(portfolio: Portfolio) -> list[ProfileTrade]:
    """The last buys and sells from the ledger, trades with other players included (one
    query: the (portfolio, created_at) index read backwards)."""
    entries = (
        LedgerEntry.objects.filter(portfolio=portfolio, kind__in=TRADE_KINDS)
        .select_related("stock")
        .only("kind", "quantity_delta", "price", "created_at", "stock__symbol")
        .order_by("-created_at", "-id")[:RECENT_TRADES]
    )
    return [
        ProfileTrade(
            at=entry.created_at,
            side="buy" if entry.kind in (LedgerKind.BUY, LedgerKind.OFFER_BUY) else "sell",
            symbol=entry.stock.symbol if entry.stock else "",
            shares=abs(entry.quantity_delta),
            price=entry.price,
            with_player=entry.kind in (LedgerKind.OFFER_BUY, LedgerKind.OFFER_SELL),
        )
        for entry in entries
    ]


def _figures(portfolio: Portfolio, *, owner: User, net_worth: Decimal) -> ProfileFigures:
    """Return and risk: the return live, the rest from the leaderboard's last run (every
    minute), and the drawdown from the running performance when there is no rank."""
    growth = selectors.growth_now(portfolio, net_worth=net_worth)  # no query: loaded
    entry = board.leaderboard_entry_for(owner)
    if entry is not None and entry.portfolio_id != portfolio.pk:
        entry = None  # the rank is the main portfolio's
    performance = getattr(portfolio, "performance", None)
    if not owner.public_profile:
        # A player who just went private is on the board until the next run: not shown.
        entry = None
        reason = "Not ranked: only public profiles are ranked."
    elif owner.is_staff:
        reason = "Not ranked: staff run the game and are not ranked."
    else:
        reason = "Not ranked yet: rankings are worked out every minute."
    if entry is not None:
        drawdown = entry.max_drawdown_pct
    elif performance is not None:
        drawdown = performance.max_drawdown * 100
    else:
        drawdown = None
    return ProfileFigures(
        return_pct=((growth - 1) * 100).quantize(CENT),
        rank=entry.rank if entry else None,
        sharpe_rank=entry.sharpe_rank if entry else None,
        drawdown_rank=entry.drawdown_rank if entry else None,
        sharpe=entry.sharpe if entry else None,
        volatility_pct=entry.volatility_pct if entry else None,
        max_drawdown_pct=drawdown.quantize(CENT) if drawdown is not None else None,
        ranked_at=entry.computed_at if entry else None,
        not_ranked_reason=reason,
    )


@require_GET
def profile(request: HttpRequest, handle: str) -> HttpResponse:
    owner, is_me = _profile_owner(request, handle)
    portfolio = (
        Portfolio.objects.filter(owner=owner).select_related("performance").order_by("pk").first()
    )
    offer_url = f"{reverse('trading:offer_new')}?to={quote(owner.handle)}"
    if not request.user.is_authenticated:
        offer_url = f"{reverse('accounts:login')}?next={quote(offer_url, safe='/')}"
    context: dict[str, Any] = {
        "owner": owner,
        "is_me": is_me,
        "portfolio": portfolio,
        "offer_url": offer_url,
    }
    if portfolio is not None:
        positions = list(selectors.portfolio_positions(portfolio))
        summary = selectors.portfolio_summary(portfolio, positions)
        context |= {
            "summary": summary,
            "figures": _figures(portfolio, owner=owner, net_worth=summary.net_worth),
            "weights": _holdings_by_weight(
                positions, cash=portfolio.cash, net_worth=summary.net_worth
            ),
            "trades": _recent_trades(portfolio) if owner.profile_show_trades else None,
            "history": net_worth_sparkline(
                portfolio,
                summary.net_worth,
                since=timedelta(days=365),
                daily=True,
                width=600,
                height=160,
            ),
        }
    return render(request, "portfolio/profile.html", context)
