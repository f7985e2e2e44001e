"""Public profiles: /u/<handle>/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.selectors import user_by_handle
from portfolio import selectors
from portfolio.models import Portfolio
from portfolio.views import _net_worth_sparkline, _top_holdings


@require_http_methods(["GET"])
@login_required
def profile(request: HttpRequest, handle: str) -> HttpResponse:
    owner = user_by_handle(handle=handle)
    is_me = owner is not None and owner.pk == request.user.pk
    # Private, deleted or unknown players look the same from outside: not found.
    if owner is None or owner.is_deleted or not (owner.public_profile or is_me):
        raise Http404("No public profile with that handle.")
    portfolio = Portfolio.objects.filter(owner=owner).order_by("pk").first()
    context: dict[str, Any] = {"owner": owner, "is_me": is_me, "portfolio": portfolio}
    if portfolio is not None:
        positions = list(selectors.portfolio_positions(portfolio, include_closed=True))
        summary = selectors.portfolio_summary(portfolio, positions)
        context |= {
            "summary": summary,
            "top_holdings": _top_holdings(positions),
            "history": _net_worth_sparkline(
                portfolio,
                summary.net_worth,
                since=timedelta(days=365),
                daily=True,
                width=600,
                height=160,
            ),
        }
    return render(request, "portfolio/profile.html", context)
