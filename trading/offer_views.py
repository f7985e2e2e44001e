"""The offer pages: /offers/ (incoming, outgoing, the board), /offers/new/, an offer's
page and its actions (accept, decline, cancel, counter).

Every action has a confirmation step and works with and without JavaScript: htmx swaps
the offer's card (`detail.html#offer_card`) or the form in place; a plain POST
redirects (post/redirect/get) with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from market.models import Stock
from portfolio.selectors import portfolio_for_user
from trading import fill_model
from trading.errors import TradingError
from trading.models import Side, TradeOffer
from trading.offer_forms import AcceptForm, CounterForm, OfferForm
from trading.offer_selectors import (
    incoming_live_count,
    offer_for_user,
    offers_board,
    offers_incoming,
    offers_outgoing,
)
from trading.offer_services import (
    offer_accept,
    offer_cancel,
    offer_counter,
    offer_decline,
    offer_make,
    offer_price_band,
    offer_price_check,
    offer_reservation,
)

OFFERS_PER_PAGE = 20
TABS = ("incoming", "outgoing", "board")
CARD = "trading/offers/detail.html#offer_card"
FORM = "trading/offers/new.html#offer_form"


def _rate(group: str, request: HttpRequest) -> str:
    # Read at request time, so tests and operators can change the rate without a reload.
    return settings.RATELIMIT_OFFERS_USER


def _show_error(form: Any, error: TradingError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


# --- the lists -----------------------------------------------------------------------


@login_required
@require_GET
def offers(request: HttpRequest) -> HttpResponse:
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "incoming"
    symbol = "".join(
        ch for ch in request.GET.get("symbol", "").upper() if ch.isalnum() or ch in ".-"
    )
    symbol = symbol[:12]
    if tab == "incoming":
        offer_list = offers_incoming(user=request.user)
    elif tab == "outgoing":
        offer_list = offers_outgoing(user=request.user)
    else:
        offer_list = offers_board(symbol=symbol)
    page = Paginator(offer_list, OFFERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "tab": tab,
        "symbol": symbol if tab == "board" else "",
        "page": page,
        "incoming_count": incoming_live_count(user=request.user),
    }
    template = "trading/offers/index.html"
    if request.htmx and not request.htmx.boosted:
        template += "#offer_list"
    return render(request, template, context)


# --- making and countering ---------------------------------------------------------------


def _terms_review(form: Any, *, stock: Stock, side: str) -> dict[str, Any]:
    """What the confirmation shows: the escrow and the fee if it fills."""
    terms = form.terms()
    notional, fee = fill_model.buy_cost(price=terms["price"], quantity=terms["quantity"])
    cash, shares = offer_reservation(side=side, price=terms["price"], quantity=terms["quantity"])
    return {"notional": notional, "fee": fee, "reserve_cash": cash, "reserve_shares": shares}


def _form_page(
    request: HttpRequest, form: Any, *, status: int = 200, **context: Any
) -> HttpResponse:
    stock = context.get("stock") or getattr(form, "stock", None)
    if stock is not None and stock.last_price > 0:
        context["quote"] = stock.last_price
        context["band"] = offer_price_band(stock.last_price)
    context.update(form=form, stock=stock, band_pct=settings.OFFER_PRICE_BAND * 100)
    template = FORM if request.htmx else "trading/offers/new.html"
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit(group="offers-user", key="user", rate=_rate, method="POST")
def offer_new(request: HttpRequest) -> HttpResponse:
    """GET: the form (?symbol=, ?to=, ?side= prefill it). POST step=review: check and
    ask for confirmation; step=confirm: make the offer; step=edit: back to the form."""
    portfolio = portfolio_for_user(request.user)
    if request.method == "GET":
        form = OfferForm.initial_for(
            user=request.user,
            symbol=request.GET.get("symbol", ""),
            to=request.GET.get("to", ""),
            side=request.GET.get("side", ""),
        )
        return _form_page(request, form)

    form = OfferForm(request.POST, user=request.user)
    step = request.POST.get("step", "review")
    if not form.is_valid():
        return _form_page(request, form, status=400)
    side = form.cleaned_data["side"]
    if step == "edit":
        return _form_page(request, form)
    if step == "confirm":
        try:
            offer = offer_make(maker=portfolio, **form.make_kwargs())
        except TradingError as error:
            _show_error(form, error)
            return _form_page(request, form, status=error.status)
        messages.success(request, f"Your offer #{offer.pk} is open.")
        return _to_offer(request, offer)
    try:
        offer_price_check(stock=form.stock, price=form.cleaned_data["price"])
    except TradingError as error:
        _show_error(form, error)
        return _form_page(request, form, status=error.status)
    review = _terms_review(form, stock=form.stock, side=side)
    return _form_page(request, form, confirming=True, review=review, side=side)


def _to_offer(request: HttpRequest, offer: TradeOffer) -> HttpResponse:
    url = reverse("trading:offer_detail", kwargs={"offer_id": offer.pk})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
@ratelimit(group="offers-user", key="user", rate=_rate, method="POST")
def offer_counter_view(request: HttpRequest, offer_id: int) -> HttpResponse:
    """Answer an offer with a new one to its maker (same steps as making one)."""
    offer = offer_for_user(user=request.user, offer_id=offer_id)
    portfolio = portfolio_for_user(request.user)
    context = {"counter_of": offer, "stock": offer.stock, "side": offer.taker_side}
    if request.method == "GET":
        return _form_page(request, CounterForm.initial_for(offer), **context)
    form = CounterForm(request.POST)
    step = request.POST.get("step", "review")
    if not form.is_valid():
        return _form_page(request, form, status=400, **context)
    if step == "edit":
        return _form_page(request, form, **context)
    if step == "confirm":
        try:
            counter = offer_counter(offer=offer, counterer=portfolio, **form.terms())
        except TradingError as error:
            _show_error(form, error)
            return _form_page(request, form, status=error.status, **context)
        messages.success(request, f"Your counter-offer #{counter.pk} went to @{offer.maker.owner}.")
        return _to_offer(request, counter)
    try:
        offer_price_check(stock=offer.stock, price=form.cleaned_data["price"])
    except TradingError as error:
        _show_error(form, error)
        return _form_page(request, form, status=error.status, **context)
    review = _terms_review(form, stock=offer.stock, side=offer.taker_side)
    return _form_page(request, form, confirming=True, review=review, **context)


# --- one offer --------------------------------------------------------------------------


def _card_context(request: HttpRequest, offer: TradeOffer, **extra: Any) -> dict[str, Any]:
    user = request.user
    is_maker = offer.maker.owner_id == user.pk
    may_take = not is_maker and offer.addressee_id in (None, user.pk)
    live = offer.is_live and not _past_expiry(offer)
    context = {
        "offer": offer,
        "is_maker": is_maker,
        "can_accept": live and may_take,
        "can_counter": live and may_take,
        "can_decline": live and offer.addressee_id == user.pk,
        "can_cancel": offer.is_live and is_maker,
        "takes": offer.takes.select_related("taker__owner").order_by("number"),
        "quote": offer.stock.last_price,
        "band": offer_price_band(offer.stock.last_price) if offer.stock.last_price > 0 else None,
        "band_pct": settings.OFFER_PRICE_BAND * 100,
    }
    if context["can_accept"] and "accept_form" not in extra:
        context["accept_form"] = AcceptForm.initial_for(offer)
    context.update(extra)
    return context


def _past_expiry(offer: TradeOffer) -> bool:
    return offer.expires_at <= timezone.now()


def _card(
    request: HttpRequest, offer: TradeOffer, *, status: int = 200, **extra: Any
) -> HttpResponse:
    template = CARD if request.htmx else "trading/offers/detail.html"
    return render(request, template, _card_context(request, offer, **extra), status=status)


@login_required
@require_GET
def offer_detail(request: HttpRequest, offer_id: int) -> HttpResponse:
    return _card(request, offer_for_user(user=request.user, offer_id=offer_id))


@login_required
@require_POST
def offer_accept_view(request: HttpRequest, offer_id: int) -> HttpResponse:
    """step=review: the confirmation with what the take costs or pays; step=confirm:
    settle it."""
    offer = offer_for_user(user=request.user, offer_id=offer_id)
    form = AcceptForm(request.POST)
    if not form.is_valid():
        return _card(request, offer, status=400, accept_form=form)
    quantity = form.cleaned_data["quantity"]
    if request.POST.get("step") == "confirm":
        portfolio = portfolio_for_user(request.user)
        try:
            take = offer_accept(
                offer=offer,
                taker=portfolio,
                quantity=quantity,
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except TradingError as error:
            _show_error(form, error)
            # Read the offer again: it may have ended, so the form may not show.
            offer = offer_for_user(user=request.user, offer_id=offer_id)
            context = _card_context(request, offer, accept_form=form)
            if not context["can_accept"]:
                context["action_error"] = error.message
            template = CARD if request.htmx else "trading/offers/detail.html"
            return render(request, template, context, status=error.status)
        verb = "Bought" if offer.side == Side.SELL else "Sold"
        text = (
            f"{verb} {take.quantity:,} {offer.stock.symbol} at ${take.price:,.4f} "
            f"(fee ${take.taker_fee:,.2f})."
        )
        return _done(request, offer, text)
    if quantity > offer.remaining_quantity:
        form.add_error(
            "quantity", f"Only {offer.remaining_quantity:,} shares remain on this offer."
        )
        return _card(request, offer, status=409, accept_form=form)
    notional, fee = fill_model.buy_cost(price=offer.price, quantity=quantity)
    total = notional + fee if offer.side == Side.SELL else notional - fee
    review = {"quantity": quantity, "notional": notional, "fee": fee, "total": total}
    return _card(request, offer, accept_form=form, confirming=True, review=review)


def _done(request: HttpRequest, offer: TradeOffer, text: str) -> HttpResponse:
    """After an action: the refreshed card with a toast (htmx), or a redirect."""
    if request.htmx:
        fresh = offer_for_user(user=request.user, offer_id=offer.pk)
        return _card(request, fresh, toast=text)
    messages.success(request, text)
    return redirect("trading:offer_detail", offer_id=offer.pk)


def _simple_action(
    request: HttpRequest,
    offer_id: int,
    *,
    action: Callable[..., TradeOffer],
    verb: str,
    done: str,
) -> HttpResponse:
    offer = offer_for_user(user=request.user, offer_id=offer_id)
    if request.method == "GET":
        # The confirmation without JavaScript; with it, data-confirm asks instead.
        return render(request, "trading/offers/confirm.html", {"offer": offer, "verb": verb})
    try:
        action(offer=offer, by=request.user)
    except TradingError as error:
        fresh = offer_for_user(user=request.user, offer_id=offer_id)
        return _card(request, fresh, status=error.status, action_error=error.message)
    return _done(request, offer, done)


@login_required
@require_http_methods(["GET", "POST"])
def offer_decline_view(request: HttpRequest, offer_id: int) -> HttpResponse:
    return _simple_action(
        request, offer_id, action=offer_decline, verb="decline", done="Offer declined."
    )


@login_required
@require_http_methods(["GET", "POST"])
def offer_cancel_view(request: HttpRequest, offer_id: int) -> HttpResponse:
    return _simple_action(
        request,
        offer_id,
        action=offer_cancel,
        verb="cancel",
        done="Offer cancelled; what it held is released.",
    )
