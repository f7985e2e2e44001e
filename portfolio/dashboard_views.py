"""The dashboard: the first page a player sees after logging in."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.views.decorators.http import require_GET

from portfolio import selectors
from portfolio.views import _net_worth_sparkline, _own_portfolio, _top_holdings, _wallet_from

logger = logging.getLogger(__name__)


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


@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    portfolio = _own_portfolio(request)
    movers = _market_movers()
    context: dict[str, Any] = {
        "portfolio": portfolio,
        "movers": movers,
        "movers_ready": movers is not None,
    }
    if portfolio is not None:
        positions = list(selectors.portfolio_positions(portfolio, include_closed=True))
        summary = selectors.portfolio_summary(portfolio, positions)
        baseline = portfolio.previous_login_net_worth
        baseline_at = portfolio.previous_login_at
        if baseline is None:  # First visit: measure from the start.
            baseline, baseline_at = portfolio.starting_cash, portfolio.created_at
        context |= {
            "summary": summary,
            "wallet": _wallet_from(portfolio, summary),
            "top_holdings": _top_holdings(positions),
            "since_login": summary.net_worth - baseline,
            "since_login_pct": (summary.net_worth - baseline) / baseline * 100
            if baseline
            else None,
            "since_login_at": baseline_at,
            "first_visit": portfolio.previous_login_net_worth is None,
            "spark": _net_worth_sparkline(
                portfolio, summary.net_worth, since=timedelta(days=1), width=600, height=80
            ),
        }
    return render(request, "portfolio/dashboard.html", context)
