"""The leaderboard page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portfolio import selectors
from portfolio.views import _own_portfolio

LEADERBOARD_PAGE_SIZE = 25


@require_GET
@login_required
def leaderboard(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.leaderboard(), LEADERBOARD_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "rank": page.start_index() + index,
            "portfolio": portfolio,
            "is_me": portfolio.owner_id == request.user.pk,
            "is_public": portfolio.owner.public_profile,
        }
        for index, portfolio in enumerate(page.object_list)
    ]
    mine = _own_portfolio(request)
    return render(
        request,
        "portfolio/leaderboard.html",
        {
            "page": page,
            "rows": rows,
            "my_rank": selectors.leaderboard_rank(mine) if mine else None,
        },
    )
