"""Portfolio pages: holdings and performance, the statement, the watchlist."""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, timedelta
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from market.models import Stock
from portfolio import analytics, selectors, services
from portfolio.errors import DuplicateEntry, PortfolioError
from portfolio.forms import WatchForm
from portfolio.models import Portfolio, Position

logger = logging.getLogger(__name__)

TOP_HOLDINGS = 5
LEADERBOARD_PAGE_SIZE = 25
STATEMENT_BATCH_ROWS = 500
# The performance section: the element htmx swaps (range tabs, the compare form) and
# the partial that fills it on both pages.
PERFORMANCE_TARGET = "performance"
PERFORMANCE_PARTIAL = "portfolio/partials/performance_section.html#section"


def own_portfolio(request: HttpRequest) -> Portfolio | None:
    """The player's portfolio, or None for an account that has none yet (an admin made
    with createsuperuser): the pages then offer to open one."""
    try:
        return selectors.portfolio_for_user(request.user)
    except Http404:
        return None


def top_holdings(positions: list[Position]) -> list[Position]:
    held = [position for position in positions if position.quantity > 0]
    return sorted(held, key=lambda position: position.market_value, reverse=True)[:TOP_HOLDINGS]


def net_worth_sparkline(
    portfolio: Portfolio, current: Any, *, since: timedelta, daily: bool = False, **size: int
) -> selectors.Sparkline:
    series = selectors.net_worth_series(portfolio, since=since, daily=daily)
    # End on the live figure, so the line agrees with the number next to it.
    series.append((timezone.now(), current))
    return selectors.sparkline(series, **size)


# --- Holdings -----------------------------------------------------


def wallet_from(portfolio: Portfolio, summary: selectors.PortfolioSummary) -> selectors.Wallet:
    # The page already knows the header's figures: no second query for them.
    return selectors.Wallet(
        portfolio_id=portfolio.pk,
        cash=summary.cash,
        buying_power=summary.buying_power,
        net_worth=summary.net_worth,
    )


class PerformanceQuery(forms.Form):
    """The performance section's query string: a chart range and a stock to compare."""

    range = forms.ChoiceField(
        choices=[(key, choice.label) for key, choice in analytics.RANGES.items()],
        required=False,
        error_messages={
            "invalid_choice": "Unknown range. Choose one of "
            + ", ".join(choice.label for choice in analytics.RANGES.values())
            + "."
        },
    )
    compare = forms.CharField(
        max_length=12,
        required=False,
        strip=True,
        error_messages={"max_length": "A stock symbol has at most 12 characters."},
    )

    def clean_compare(self) -> Stock | None:
        symbol = self.cleaned_data["compare"].upper()
        if not symbol:
            return None
        stock = Stock.objects.filter(symbol=symbol).first()
        if stock is None:
            raise forms.ValidationError(f"There is no stock with the symbol {symbol}.")
        if not stock.is_listed:
            raise forms.ValidationError(
                f"{symbol} is delisted: choose a listed stock to compare with."
            )
        return stock


def _performance_context(
    request: HttpRequest,
    portfolio: Portfolio,
    positions: list[Position],
    summary: selectors.PortfolioSummary,
    *,
    detail: bool,
) -> tuple[dict[str, Any], int]:
    """The performance section's context and the status to answer with: 400 when the
    range or the compared stock is refused, showing the default range or no comparison
    with the message, so the player sees why."""
    query = PerformanceQuery(request.GET)
    query.is_valid()
    range_key = query.cleaned_data.get("range") or analytics.DEFAULT_RANGE
    compare = query.cleaned_data.get("compare")
    errors = [
        f"{message} Showing {analytics.RANGES[range_key].label}."
        for message in query.errors.get("range", [])
    ]
    errors += [
        f"{message} Showing the chart without it." for message in query.errors.get("compare", [])
    ]
    held = [position for position in positions if position.quantity > 0]
    report = analytics.performance_report(
        portfolio,
        range_key=range_key,
        positions=held,
        net_worth=summary.net_worth,
        compare=compare,
        detail=detail,
    )
    context = {
        "report": report,
        "ranges": analytics.RANGES.values(),
        "performance_errors": errors,
        "performance_url": request.path,
        # What the player typed stays in the box, even when it was refused.
        "compare_symbol": (request.GET.get("compare") or "").strip().upper()[:12],
        "held_symbols": sorted(position.stock.symbol for position in held),
    }
    return context, 400 if errors else 200


def _asks_for_performance(request: HttpRequest) -> bool:
    """A range or a symbol in the address: a tab or the compare form used without
    JavaScript, or a shared link. The page then carries the section itself."""
    return "range" in request.GET or "compare" in request.GET


def _wants_performance_fragment(request: HttpRequest) -> bool:
    # A history restore (back button after the cache was dropped) needs the whole page.
    return bool(
        request.htmx
        and not request.htmx.history_restore_request
        and request.htmx.target == PERFORMANCE_TARGET
    )


def _performance_fragment(
    request: HttpRequest, context: dict[str, Any], status: int
) -> HttpResponse:
    response = render(request, PERFORMANCE_PARTIAL, context, status=status)
    # The address bar shows what is on screen: the canonical range and symbol (as typed,
    # "aapl" would stay), and nothing at all for a refused query.
    report = context["report"]
    query = {"range": report.range.key}
    if report.compare is not None:
        query["compare"] = report.compare.symbol
    if status != 200:
        response["HX-Push-Url"] = "false"
    elif _asks_for_performance(request):
        response["HX-Push-Url"] = f"{request.path}?{urlencode(query)}"
    # Else the page's own lazy load of the section: the address stays as it is.
    return response


def _vary(response: HttpResponse) -> HttpResponse:
    # The same URL answers with a fragment or a page: keep the browser's cache apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_GET
@login_required
def portfolio_detail(request: HttpRequest) -> HttpResponse:
    """Holdings, P&L, allocation and the performance section. The live re-fetch
    (static/js/live.js, on every fill and while the socket is down) and htmx's holdings
    refresh only read the holdings, so they skip the performance queries."""
    portfolio = own_portfolio(request)
    if portfolio is None:
        return render(request, "portfolio/portfolio.html", {"portfolio": None})
    positions = list(selectors.portfolio_positions(portfolio, include_closed=True))
    summary = selectors.portfolio_summary(portfolio, positions)
    pnl = analytics.position_pnl(positions, net_worth=summary.net_worth)
    context: dict[str, Any] = {
        "portfolio": portfolio,
        "summary": summary,
        "wallet": wallet_from(portfolio, summary),
        "positions": [position for position in positions if position.quantity > 0],
        "position_pnl": pnl,
        "closed_pnl": [row for row in pnl if row.position.quantity <= 0],
        "sector_pnl": analytics.sector_pnl(pnl, net_worth=summary.net_worth),
        "allocation": selectors.sector_allocation(positions, cash=portfolio.cash),
    }
    fragment = _wants_performance_fragment(request)
    if request.htmx and not request.htmx.history_restore_request and not fragment:
        # After a websocket reconnect the page re-fetches its live part.
        return _vary(render(request, "portfolio/portfolio.html#holdings", context))
    status = 200
    if request.headers.get("X-Live-Refresh") == "1":
        pass
    elif fragment or _asks_for_performance(request):
        extra, status = _performance_context(request, portfolio, positions, summary, detail=False)
        context.update(extra)
    else:
        # The plain page sends the holdings at once and htmx fetches the section right
        # after (hx-trigger="load"): the holdings are what a busy player waits for, and
        # the section's chart and statistics would add about a third to the page.
        context["performance_lazy"] = True
    if fragment:
        return _vary(_performance_fragment(request, context, status))
    return _vary(render(request, "portfolio/portfolio.html", context, status=status))


@require_GET
@login_required
def performance(request: HttpRequest) -> HttpResponse:
    """The deeper risk page: the same performance section as /portfolio/ plus the
    drawdown chart, the best and worst steps and each holding's share of the risk.
    There is no portfolio id in the URL: it only ever shows the requester's."""
    portfolio = own_portfolio(request)
    if portfolio is None:
        return render(request, "portfolio/performance.html", {"portfolio": None})
    positions = list(selectors.portfolio_positions(portfolio, include_closed=True))
    summary = selectors.portfolio_summary(portfolio, positions)
    context, status = _performance_context(request, portfolio, positions, summary, detail=True)
    context.update(
        {"portfolio": portfolio, "summary": summary, "wallet": wallet_from(portfolio, summary)}
    )
    if _wants_performance_fragment(request):
        return _vary(_performance_fragment(request, context, status))
    return _vary(render(request, "portfolio/performance.html", context, status=status))


@require_POST
@login_required
def portfolio_open_view(request: HttpRequest) -> HttpResponse:
    try:
        services.portfolio_open(owner=request.user)
        messages.success(request, "Your portfolio is open. Happy trading!")
    except DuplicateEntry:
        messages.info(request, "You already have a portfolio.")
    return redirect("portfolio")


# --- Statement ------------------------------------------------------------------


STATEMENT_HEADER = [
    "date_utc",
    "kind",
    "symbol",
    "quantity_change",
    "price",
    "cash_change",
    "cash_balance",
    "shares_after",
    "reference",
    "memo",
]


class _Echo:
    """A file-like object whose write returns the line: csv.writer into a generator."""

    def write(self, value: str) -> str:
        return value


def _statement_lines(portfolio: Portfolio) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(STATEMENT_HEADER)
    for entry in selectors.ledger_with_running_balance(portfolio).iterator(chunk_size=2000):
        yield writer.writerow(
            [
                entry.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                entry.kind,
                entry.stock.symbol if entry.stock else "",
                entry.quantity_delta if entry.stock else "",
                entry.price if entry.price is not None else "",
                entry.cash_delta,
                entry.cash_balance,
                entry.shares_after if entry.stock else "",
                entry.reference,
                # A memo starting with =, +, - or @ would run as a formula in a spreadsheet.
                ("'" + entry.memo) if entry.memo[:1] in ("=", "+", "-", "@") else entry.memo,
            ]
        )


async def _in_batches(lines: Iterator[str]) -> AsyncIterator[str]:
    # Under ASGI a sync iterator would be read whole into memory first; reading it in
    # batches on the request's sync thread keeps one database cursor and streams.
    next_batch = sync_to_async(lambda: "".join(islice(lines, STATEMENT_BATCH_ROWS)))
    while batch := await next_batch():
        yield batch


@require_GET
@login_required
def statement(request: HttpRequest) -> StreamingHttpResponse:
    portfolio = selectors.portfolio_for_user(request.user)
    lines = _statement_lines(portfolio)
    content = _in_batches(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    filename = f"bullpen-statement-{request.user.handle}-{timezone.now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- Watchlist ------------------------------------------------------------------


@require_GET
@login_required
def watchlist(request: HttpRequest) -> HttpResponse:
    items = list(selectors.watchlist_items(request.user))
    return render(
        request,
        "portfolio/watchlist.html",
        {
            "items": items,
            "watched_stock_ids": {item.stock_id for item in items},
            "limit": settings.MAX_WATCHLIST,
            "form": WatchForm(),
        },
    )


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("watchlist")
    return redirect(target)


def _watch_toggle(request: HttpRequest, *, add: bool) -> HttpResponse:
    form = WatchForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            return HttpResponse(form.errors["symbol"][0], status=400)
        if request.POST.get("next"):
            messages.error(request, form.errors["symbol"][0])
            return _back(request)
        items = list(selectors.watchlist_items(request.user))
        return render(
            request,
            "portfolio/watchlist.html",
            {"items": items, "limit": settings.MAX_WATCHLIST, "form": form},
            status=400,
        )
    stock = form.cleaned_data["symbol"]
    error = None
    try:
        if add:
            services.watchlist_add(user=request.user, stock=stock)
        else:
            services.watchlist_remove(user=request.user, stock=stock)
    except PortfolioError as failure:
        error = str(failure)
    if request.htmx:
        # The button swaps itself; `watched_stock_ids` (context processor) is read after
        # the change, so it shows the new state.
        return render(
            request,
            "portfolio/partials/watch_button.html",
            {"stock": stock, "watch_error": error, "next": request.POST.get("next", "")},
        )
    if error:
        messages.error(request, error)
    elif add:
        messages.success(request, f"{stock.symbol} is on your watchlist.")
    else:
        messages.success(request, f"{stock.symbol} is off your watchlist.")
    return _back(request)


@require_POST
@login_required
def watchlist_add(request: HttpRequest) -> HttpResponse:
    return _watch_toggle(request, add=True)


@require_POST
@login_required
def watchlist_remove(request: HttpRequest) -> HttpResponse:
    return _watch_toggle(request, add=False)
