"""The market pages: the stock list with the Bullpen Composite, sectors, a stock with
its chart, chart data.

Public (GET only): visitors browse prices before signing up. The partials that need a
player (order ticket, watch button, offer link) show a way to log in instead."""

from __future__ import annotations

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from market import selectors
from market.charts import HEAT_ROW_HEIGHT, HEAT_WIDTH
from market.errors import ChartRangeUnknown
from market.forms import MarketFilterForm
from market.models import Stock

PAGE_SIZE = 50

# (sort key, heading, numeric): numeric columns sort high-to-low on the first click.
COLUMNS = (
    ("symbol", "Symbol", False),
    ("name", "Name", False),
    ("sector", "Sector", False),
    ("price", "Price", True),
    ("change", "Change", True),
    ("change_pct", "Change %", True),
    ("volume", "Volume", True),
)
TAB_LABELS = (
    ("all", "All"),
    ("gainers", "Top gainers"),
    ("losers", "Top losers"),
    ("active", "Most active"),
)


def _column_links(current: str) -> list[dict[str, object]]:
    columns = []
    for key, label, numeric in COLUMNS:
        if current == key:
            next_sort, state = f"-{key}", "ascending"
        elif current == f"-{key}":
            next_sort, state = key, "descending"
        else:
            next_sort, state = (f"-{key}" if numeric else key), ""
        columns.append(
            {"key": key, "label": label, "numeric": numeric, "sort": next_sort, "state": state}
        )
    return columns


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    form = MarketFilterForm(request.GET)
    valid = form.is_valid()
    filters = form.filters()
    stocks = selectors.stocks_browse(**filters)
    page = Paginator(stocks, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    lines = selectors.sparklines(stocks=rows, now=timezone.now())
    for row in rows:
        row.spark_points = lines.get(row.id, "")
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "stocks": rows,
        "columns": _column_links(filters["sort"]),
        "tabs": TAB_LABELS,
    }
    status = 200 if valid else 400
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "market/index.html#stock_list", context, status=status)
    context["events"] = selectors.events_recent(limit=8)
    # From the cache, which every tick refreshes: the page has no query to spare. On a
    # miss the panel loads itself (composite below).
    context["composite_known"], context["composite"] = selectors.index_quote_cached()
    context["index_ranges"] = list(selectors.INDEX_RANGES)
    return render(request, "market/index.html", context, status=status)


@require_GET
def composite(request: HttpRequest) -> HttpResponse:
    """The Composite's panel from the database (and back into the cache): what /market/
    loads when the cache had no quote, and a page of its own without JavaScript."""
    context = {
        "composite": selectors.index_quote_refresh(),
        "composite_known": True,
        "index_ranges": list(selectors.INDEX_RANGES),
    }
    if request.htmx:
        return render(request, "market/composite.html#panel", context)
    return render(request, "market/composite.html", context)


@require_GET
def sectors(request: HttpRequest) -> HttpResponse:
    performance = selectors.sector_performance()
    rows = -(-len(performance) // 4)
    return render(
        request,
        "market/sectors.html",
        {
            "sectors": performance,
            "heat_width": HEAT_WIDTH,
            "heat_height": max(rows, 1) * HEAT_ROW_HEIGHT,
        },
    )


def _stock_or_404(symbol: str) -> Stock:
    return get_object_or_404(Stock, symbol=symbol.upper())


@require_GET
def stock(request: HttpRequest, symbol: str) -> HttpResponse:
    found = _stock_or_404(symbol)
    if found.symbol != symbol:
        return redirect("market:stock", symbol=found.symbol)
    now = timezone.now()
    return render(
        request,
        "market/stock.html",
        {
            "stock": found,
            "year": selectors.year_range(stock=found, now=now),
            "events": selectors.events_for_stock(stock=found, limit=10),
            "ranges": list(selectors.CHART_RANGES),
        },
    )


@require_GET
def chart_json(request: HttpRequest, symbol: str) -> JsonResponse:
    found = get_object_or_404(Stock.objects.only("id", "symbol"), symbol=symbol.upper())
    range_name = request.GET.get("range", "1d")
    try:
        series = selectors.chart_series(stock_id=found.id, range_name=range_name)
    except ChartRangeUnknown as error:
        return JsonResponse({"error": str(error), "field": "range"}, status=400)
    # Prices as strings: JSON numbers would pass through binary floating point.
    bars = [
        [t, str(open_), str(high), str(low), str(close), volume]
        for t, open_, high, low, close, volume in series
    ]
    return JsonResponse({"symbol": found.symbol, "range": range_name, "bars": bars})


# Every visitor of /market/ asks for the same few answers; the chart's newest point
# follows the live push in between.
INDEX_CHART_CACHE_SECONDS = 5


@require_GET
def index_chart_json(request: HttpRequest) -> JsonResponse:
    range_name = request.GET.get("range", "1d")
    # Only known ranges reach the cache, so its keys are few.
    known = range_name in selectors.INDEX_RANGES
    cache_key = f"market:index-chart:{range_name}"
    payload = cache.get(cache_key) if known else None
    if payload is None:
        try:
            series = selectors.index_series(range_name)
        except ChartRangeUnknown as error:
            return JsonResponse({"error": str(error), "field": error.field}, status=400)
        payload = {
            "symbol": selectors.INDEX_SYMBOL,
            "name": selectors.INDEX_NAME,
            "range": range_name,
            "bucket": int(series.bucket.total_seconds()),
            # Levels as strings, as chart.json sends prices.
            "points": [
                [t, str(open_), str(high), str(low), str(close)]
                for t, open_, high, low, close in series.points
            ],
        }
        cache.set(cache_key, payload, INDEX_CHART_CACHE_SECONDS)
    return JsonResponse(payload)
