"""The order ticket, /orders/, fill receipts and cancelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.decorators import ratelimit

from market.models import Stock
from portfolio.selectors import portfolio_for_user
from trading import selectors
from trading.errors import TradingError
from trading.estimates import order_estimate
from trading.forms import OrderFilterForm, OrderForm
from trading.models import Order, OrderStatus
from trading.services import order_cancel, order_place, stock_check_tradable

TICKET = "trading/partials/order_ticket.html"
ORDERS_PER_PAGE = 25


def _rate(setting_name: str) -> Callable[[str, HttpRequest], str]:
    # Read at request time, so tests and operators can change the rate without a reload.
    return lambda group, request: getattr(settings, setting_name)


def _stock(symbol: str) -> Stock:
    stock = Stock.objects.filter(symbol=(symbol or "").strip().upper()).first()
    if stock is None:
        raise Http404("No such stock.")
    return stock


def _show_error(form: OrderForm, error: TradingError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _ticket(
    request: HttpRequest, stock: Stock, form: OrderForm, *, status: int = 200, **context: Any
) -> HttpResponse:
    """The ticket alone for htmx (it swaps itself), else the order page holding it."""
    context = {"stock": stock, "form": form, **context}
    template = TICKET if request.htmx else "trading/order_new.html"
    return render(request, template, context, status=status)


def _placed_message(order: Order) -> str:
    what = f"{order.get_side_display()} {order.quantity:,} {order.stock.symbol}"
    if order.status == OrderStatus.FILLED:
        fill = order.fills.get()
        return f"{what}: filled at ${fill.price:,.4f}, total ${fill.total:,.2f}."
    if order.status == OrderStatus.TRIGGERED:
        return f"{what}: the stop fired; it now rests as a limit at ${order.limit_price:,.4f}."
    return f"{what}: your {order.get_type_display().lower()} order is open."


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit(group="orders-user", key="user", rate=_rate("RATELIMIT_ORDERS_USER"), method="POST")
def order_new(request: HttpRequest) -> HttpResponse:
    """GET: the ticket page (or, with step=estimate, the live estimate). POST step=review:
    the confirmation; step=confirm: place the order; step=edit: back to the ticket."""
    portfolio = portfolio_for_user(request.user)
    if request.method == "GET":
        if request.GET.get("step") == "estimate":
            return _estimate(request, portfolio)
        stock = _stock(request.GET.get("symbol", ""))
        side = request.GET.get("side") if request.GET.get("side") in ("buy", "sell") else "buy"
        return _ticket(request, stock, OrderForm.for_stock(stock.symbol, side=side))

    stock = _stock(request.POST.get("symbol", ""))
    form = OrderForm(request.POST)
    step = request.POST.get("step", "review")
    if not form.is_valid():
        return _ticket(request, stock, form, status=400)
    if step == "edit":
        return _ticket(request, stock, form)
    if step == "confirm":
        try:
            order = order_place(portfolio=portfolio, stock=stock, **form.place_kwargs())
        except TradingError as error:
            _show_error(form, error)
            return _ticket(request, stock, form, status=error.status)
        message = _placed_message(order)
        if request.htmx:
            fresh = OrderForm.for_stock(stock.symbol, side=form.cleaned_data["side"])
            return _ticket(request, stock, fresh, placed=order, placed_message=message)
        messages.success(request, message)
        if order.status == OrderStatus.FILLED:
            return redirect("trading:order_detail", order_id=order.pk)
        return redirect("trading:orders")

    # Review: check what can be checked without writing, then ask for confirmation.
    try:
        stock_check_tradable(stock)
    except TradingError as error:
        _show_error(form, error)
        return _ticket(request, stock, form, status=error.status)
    estimate = order_estimate(portfolio=portfolio, stock=stock, terms=form.terms)
    if estimate.problem:
        form.add_error("quantity", estimate.problem)
        return _ticket(request, stock, form, status=409)
    return _ticket(request, stock, form, estimate=estimate, confirming=True)


def _estimate(request: HttpRequest, portfolio: Any) -> HttpResponse:
    """The live estimate under the ticket's fields, recomputed as the player types. A
    read: it answers 200 with a hint while the input is incomplete."""
    stock = _stock(request.GET.get("symbol", ""))
    form = OrderForm(request.GET)
    estimate = None
    if form.is_valid():
        estimate = order_estimate(portfolio=portfolio, stock=stock, terms=form.terms)
    return render(
        request, f"{TICKET}#estimate", {"stock": stock, "form": form, "estimate": estimate}
    )


@login_required
@require_GET
def orders(request: HttpRequest) -> HttpResponse:
    """Open orders and history, filtered by status, side and symbol, paginated."""
    filter_form = OrderFilterForm(request.GET or None)
    filters = filter_form.filters() if request.GET else {}
    order_list = selectors.orders_for_user(user=request.user, **filters)
    page = Paginator(order_list, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    fills = selectors.fills_for_orders(list(page.object_list))
    rows = [(order, fills.get(order.pk)) for order in page.object_list]
    context = {
        "filter_form": filter_form if request.GET else OrderFilterForm(),
        "page": page,
        "rows": rows,
        "filtered": any(filters.values()) if filters else False,
        "next_url": request.get_full_path(),
    }
    template = "trading/orders.html#orders_table" if request.htmx else "trading/orders.html"
    return render(request, template, context)


@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    """One order and its fill receipt: the quote used, the fill price, spread, fee, total."""
    order = selectors.order_for_user(user=request.user, order_id=order_id)
    fill = next(iter(order.fills.all()), None)
    return render(request, "trading/order_detail.html", {"order": order, "fill": fill})


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel_view(request: HttpRequest, order_id: int) -> HttpResponse:
    """GET: ask for confirmation (the no-JavaScript path). POST: cancel, release the
    reservation and go back to where the player was."""
    order = selectors.order_for_user(user=request.user, order_id=order_id)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    next_url = next_url or reverse("trading:orders")
    if request.method == "GET":
        return render(request, "trading/order_cancel.html", {"order": order, "next_url": next_url})
    try:
        order_cancel(order=order, by=request.user)
    except TradingError as error:
        messages.error(request, error.message)
        return redirect(next_url)
    messages.success(
        request,
        f"Cancelled: {order.get_side_display().lower()} {order.quantity:,} {order.stock.symbol}. "
        "Its reservation is released.",
    )
    return redirect(next_url)
