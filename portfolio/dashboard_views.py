"""The dashboard: the first page a player sees after logging in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.views.decorators.http import require_GET

from portfolio import selectors
from portfolio.models import CENT, Position
from portfolio.views import net_worth_sparkline, own_portfolio, top_holdings, wallet_from

logger = logging.getLogger(__name__)

# How many of the player's own holdings to show as today's gainers and as its losers.
HOLDING_MOVERS = 3
NEWS_ITEMS = 5


@dataclass(frozen=True)
class HoldingMove:
    """One of the player's holdings and how it moved today."""

    position: Position
    change_pct: Decimal  # the stock's move since the previous close

    @property
    def value_change(self) -> Decimal:
        return self.position.day_change  # what the move did to this holding, in money


@dataclass(frozen=True)
class HoldingMovers:
    gainers: list[HoldingMove]
    losers: list[HoldingMove]


def _holding_movers(positions: list[Position], *, limit: int = HOLDING_MOVERS) -> HoldingMovers:
    """The player's biggest movers today by % change, from the prices already loaded.
    The % is worked out from the same two prices as the day change next to it, so the
    two always agree in sign."""
    moves = [
        HoldingMove(
            position=position,
            change_pct=(
                (position.stock.last_price - position.stock.previous_close)
                / position.stock.previous_close
                * 100
            ).quantize(CENT),
        )
        for position in positions
        if position.quantity > 0 and position.stock.previous_close > 0
    ]
    by_change = sorted(moves, key=lambda move: (move.change_pct, move.position.stock.symbol))
    return HoldingMovers(
        gainers=[move for move in reversed(by_change) if move.change_pct > 0][:limit],
        losers=[move for move in by_change if move.change_pct < 0][:limit],
    )


def _market_movers() -> Any:
    """The market's movers and whether their partial exists yet (the market work ships
    both); the dashboard shows a plain fallback until then, never an error."""
    try:
        from market.selectors import market_movers

        get_template("market/partials/movers.html")
    except (ImportError, TemplateDoesNotExist):
        return None
    try:
        return market_movers()
    except Exception:
        logger.exception("market movers failed; the dashboard shows the fallback")
        return None


def _news() -> list[Any] | None:
    """The latest market events, or None (the card says so) if they cannot be read."""
    try:
        from market.selectors import events_recent

        return events_recent(limit=NEWS_ITEMS)
    except Exception:
        logger.exception("market news failed; the dashboard shows the fallback")
        return None


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    portfolio = own_portfolio(request)
    movers = _market_movers()
    context: dict[str, Any] = {
        "portfolio": portfolio,
        "movers": movers,
        "movers_ready": movers is not None,
        "news": _news(),
    }
    if portfolio is not None:
        positions = list(selectors.portfolio_positions(portfolio, include_closed=True))
        summary = selectors.portfolio_summary(portfolio, positions)
        baseline = portfolio.previous_login_net_worth
        baseline_at = portfolio.previous_login_at
        if baseline is None:  # First visit: measure from the start.
            baseline, baseline_at = portfolio.starting_cash, portfolio.created_at
        growth = selectors.growth_now(portfolio, net_worth=summary.net_worth)
        context |= {
            "summary": summary,
            "wallet": wallet_from(portfolio, summary),
            "top_holdings": top_holdings(positions),
            "holding_movers": _holding_movers(positions),
            "since_login": summary.net_worth - baseline,
            "since_login_pct": ((summary.net_worth - baseline) / baseline * 100).quantize(CENT)
            if baseline
            else None,
            "since_login_at": baseline_at,
            "first_visit": portfolio.previous_login_net_worth is None,
            # Time-weighted, like the leaderboard and the profile: cash granted by the
            # game is not a gain.
            "total_return_pct": ((growth - 1) * 100).quantize(CENT),
            "spark": net_worth_sparkline(
                portfolio, summary.net_worth, since=timedelta(days=1), width=600, height=80
            ),
        }
    return render(request, "portfolio/dashboard.html", context)
