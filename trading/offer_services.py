"""Offers between players: making, accepting (in part or whole), declining, cancelling,
countering and expiring them.

Escrow: a live offer holds what it promises on the maker's portfolio through
`portfolio.services.reservation_hold`: the shares still offered (a sell), or the cost of
the remaining shares plus their commission (a buy). Cash and shares only ever move
through portfolio.services (`reservation_hold`, `reservation_release`, `trade_settle`);
this module decides who may do what, at what price.

Settlement of a take runs in one transaction and posts, under one shared reference
`offer:<id>/take:<n>`, one `trade_settle` per side: the seller's offer_sell and the
buyer's offer_buy, each with its own fee per `fill_model.commission` (no spread: the
price is the one agreed). Total cash then changes by exactly the two fees, total shares
not at all.

Lock order, everywhere: the offer row first (SELECT ... FOR UPDATE OF the offer only),
then the portfolios in ascending id (`portfolios_lock`), then their positions in
ascending id. An order fill locks its order row then one portfolio, so offers and
orders never wait on each other in opposite orders.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import portfolio.errors as portfolio_errors
from market.models import Stock
from portfolio.models import Portfolio, Position
from portfolio.services import (
    money_fmt,
    portfolios_lock,
    reservation_hold,
    reservation_release,
    trade_settle,
)
from trading import fill_model, offer_events
from trading.errors import InsufficientFunds, InsufficientShares
from trading.models import (
    MAX_QUANTITY,
    OFFER_LIVE_STATUSES,
    OfferStatus,
    OfferTake,
    Side,
    TradeOffer,
)
from trading.offer_errors import (
    InvalidOffer,
    NotAllowed,
    OfferNotLive,
    PriceOutsideBand,
    QuantityAboveRemaining,
    SelfTrade,
    TooManyOpenOffers,
    UnknownAddressee,
)
from trading.services import MAX_PRICE, portfolio_errors_as_trading, stock_check_tradable

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(hours=24)
MAX_LIFETIME = timedelta(days=7)
MIN_LIFETIME = timedelta(minutes=5)
MAX_MESSAGE_CHARS = 280
ZERO = Decimal("0")


# --- Validation -----------------------------------------------------------------------


def offer_price_band(quote: Decimal) -> tuple[Decimal, Decimal]:
    """The lowest and highest price an offer may carry against `quote`: ±OFFER_PRICE_BAND,
    rounded inwards to 0.0001 so a price shown as allowed always is."""
    band = settings.OFFER_PRICE_BAND
    low = (quote * (1 - band)).quantize(fill_model.PRICE_STEP, rounding=ROUND_CEILING)
    high = (quote * (1 + band)).quantize(fill_model.PRICE_STEP, rounding=ROUND_FLOOR)
    return max(low, fill_model.PRICE_STEP), high


def _band_pct() -> str:
    return f"{settings.OFFER_PRICE_BAND * 100:.4g}%"


def offer_price_check(*, stock: Stock, price: Decimal, accepting: bool = False) -> Decimal:
    """The stock's quote, if it is tradable and `price` lies in the band around it; else
    StockNotTradable, NoQuote or PriceOutsideBand. Reads only: forms call it to review."""
    quote = stock_check_tradable(stock)
    low, high = offer_price_band(quote)
    if low <= price <= high:
        return quote
    allowed = f"${low:,.4f} to ${high:,.4f} (±{_band_pct()} of the ${quote:,.4f} quote)"
    if accepting:
        raise PriceOutsideBand(
            f"The market has moved: this offer's ${price:,.4f} is outside {allowed}, so it "
            "cannot be accepted now. Counter it at a price in the band instead.",
            field="quantity",
        )
    raise PriceOutsideBand(f"The price must be within {allowed} for {stock.symbol}.")


def _quantity(value: Any, *, field: str = "quantity") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOffer("Enter a whole number of shares.", field=field)
    if value < 1:
        raise InvalidOffer("Enter at least 1 share.", field=field)
    if value > MAX_QUANTITY:
        raise InvalidOffer(f"At most {MAX_QUANTITY:,} shares per offer.", field=field)
    return value


def _price(value: Any) -> Decimal:
    if isinstance(value, (float, bool)) or value is None:
        raise InvalidOffer("Enter the price per share.", field="price")
    try:
        price = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidOffer("The price must be a number.", field="price") from None
    if not price.is_finite() or price <= 0:
        raise InvalidOffer("The price must be above zero.", field="price")
    if price != price.quantize(fill_model.PRICE_STEP):
        raise InvalidOffer("The price has at most 4 decimal places.", field="price")
    if price > MAX_PRICE:
        raise InvalidOffer("The price is too large.", field="price")
    return price.quantize(fill_model.PRICE_STEP)


def _lifetime(expires_in: timedelta) -> timedelta:
    if not MIN_LIFETIME <= expires_in <= MAX_LIFETIME:
        raise InvalidOffer("An offer lasts between 5 minutes and 7 days.", field="expires_in")
    return expires_in


def _key(idempotency_key: str) -> str:
    key = (idempotency_key or "").strip()
    if not key or len(key) > 64:
        raise InvalidOffer("This form has expired; reload the page and try again.")
    return key


def offer_reservation(*, side: str, price: Decimal, quantity: int) -> tuple[Decimal, int]:
    """(cash, shares) a live offer holds for `quantity` remaining shares: a buy holds
    their cost plus its commission, a sell the shares themselves."""
    if not quantity:
        return ZERO, 0
    if side == Side.BUY:
        return fill_model.buy_reservation(price=price, quantity=quantity), 0
    return ZERO, quantity


# --- Making ---------------------------------------------------------------------------


def _offer_create(
    *,
    maker: Portfolio,
    stock: Stock,
    side: str,
    quantity: int,
    price: Decimal,
    addressee: Any,
    message: str,
    expires_in: timedelta,
    key: str,
    countered_from: TradeOffer | None = None,
) -> TradeOffer:
    """Create and escrow an offer on `maker`, already locked by the caller."""
    existing = TradeOffer.objects.filter(maker=maker, idempotency_key=key).first()
    if existing is not None:
        return existing
    if addressee is not None:
        if addressee.pk == maker.owner_id:
            raise SelfTrade("You can't make an offer to yourself.")
        if not addressee.can_log_in:
            raise UnknownAddressee(f"@{addressee.handle} can't trade right now.")
    stock = Stock.objects.get(pk=stock.pk)  # a fresh quote
    offer_price_check(stock=stock, price=price)
    live = TradeOffer.objects.filter(maker=maker, status__in=OFFER_LIVE_STATUSES).count()
    if live >= settings.MAX_OPEN_OFFERS:
        raise TooManyOpenOffers(
            f"You have {live} open offers, the most allowed. Cancel one before making another."
        )
    cash, shares = offer_reservation(side=side, price=price, quantity=quantity)
    with portfolio_errors_as_trading():
        reservation_hold(portfolio=maker, stock=stock, cash=cash, quantity=shares)
    offer = TradeOffer.objects.create(
        maker=maker,
        addressee=addressee,
        side=side,
        stock=stock,
        quantity=quantity,
        remaining_quantity=quantity,
        price=price,
        message=message,
        status=OfferStatus.OPEN,
        countered_from=countered_from,
        reserved_cash=cash,
        reserved_quantity=shares,
        idempotency_key=key,
        expires_at=timezone.now() + expires_in,
    )
    transaction.on_commit(partial(offer_events.offer_made, offer.pk))
    return offer


def offer_make(
    *,
    maker: Portfolio,
    stock: Stock,
    side: str,
    quantity: int,
    price: Decimal,
    idempotency_key: str,
    addressee: Any = None,
    message: str = "",
    expires_in: timedelta = DEFAULT_LIFETIME,
) -> TradeOffer:
    """Offer to sell (side "sell") or buy `quantity` shares of `stock` at `price`, to
    `addressee` or (None) to every player, and escrow what it promises.

    The same idempotency key on the same portfolio returns the first offer unchanged.
    """
    if side not in Side.values:
        raise InvalidOffer("Choose whether you sell or buy.", field="side")
    quantity = _quantity(quantity)
    price = _price(price)
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidOffer(
            f"A message has at most {MAX_MESSAGE_CHARS} characters.", field="message"
        )
    lifetime = _lifetime(expires_in)
    key = _key(idempotency_key)
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[maker.pk])[maker.pk]
        return _offer_create(
            maker=locked,
            stock=stock,
            side=side,
            quantity=quantity,
            price=price,
            addressee=addressee,
            message=message,
            expires_in=lifetime,
            key=key,
        )


# --- Acting on an offer -----------------------------------------------------------------


def _offer_locked(offer: TradeOffer | int) -> TradeOffer:
    """The offer row, locked (only it: not its maker's portfolio, which comes later and
    in id order). Waits for a take or a cancel in progress, then sees its outcome."""
    offer_id = offer if isinstance(offer, int) else offer.pk
    return (
        TradeOffer.objects.select_for_update(of=("self",))
        .select_related("stock", "maker", "addressee")
        .get(pk=offer_id)
    )


def _require_live(offer: TradeOffer, *, now: datetime) -> None:
    if not offer.is_live:
        raise OfferNotLive(f"This offer is already {offer.get_status_display().lower()}.")
    if offer.expires_at <= now:
        raise OfferNotLive(f"This offer expired at {offer.expires_at:%Y-%m-%d %H:%M} UTC.")


def _may_take(offer: TradeOffer, user_id: int) -> None:
    """Who may accept or counter: the addressee, or anyone but the maker when the
    offer is open to every player."""
    if user_id == offer.maker.owner_id:
        raise SelfTrade("This is your own offer: you can cancel it, not accept or counter it.")
    if offer.addressee_id is not None and offer.addressee_id != user_id:
        raise NotAllowed("This offer is addressed to another player.")


def _close(offer: TradeOffer, *, maker: Portfolio, status: str, now: datetime) -> None:
    """End a live offer and give its escrow back to the (locked) maker."""
    reservation_release(
        portfolio=maker,
        stock=offer.stock,
        cash=offer.reserved_cash,
        quantity=offer.reserved_quantity,
    )
    offer.status = status
    offer.reserved_cash = ZERO
    offer.reserved_quantity = 0
    offer.closed_at = now
    offer.save(
        update_fields=["status", "reserved_cash", "reserved_quantity", "closed_at", "updated_at"]
    )
    transaction.on_commit(partial(offer_events.offer_closed, offer.pk))


def offer_accept(
    *, offer: TradeOffer, taker: Portfolio, quantity: int, idempotency_key: str
) -> OfferTake:
    """Take `quantity` shares (up to what remains) of a live offer, settling both sides
    in one transaction. The same key from the same taker returns the first take."""
    quantity = _quantity(quantity)
    key = _key(idempotency_key)
    with transaction.atomic():
        locked_offer = _offer_locked(offer)
        existing = OfferTake.objects.filter(
            offer=locked_offer, taker_id=taker.pk, idempotency_key=key
        ).first()
        if existing is not None:
            return existing
        _may_take(locked_offer, taker.owner_id)
        now = timezone.now()
        _require_live(locked_offer, now=now)
        remaining = locked_offer.remaining_quantity
        if quantity > remaining:
            raise QuantityAboveRemaining(
                f"Only {remaining:,} shares remain on this offer; enter {remaining:,} or fewer."
            )
        stock = Stock.objects.get(pk=locked_offer.stock_id)
        quote = offer_price_check(stock=stock, price=locked_offer.price, accepting=True)
        locked = portfolios_lock(portfolio_ids=[locked_offer.maker_id, taker.pk])
        take = _settle(
            locked_offer,
            stock=stock,
            maker=locked[locked_offer.maker_id],
            taker=locked[taker.pk],
            quantity=quantity,
            quote=quote,
            key=key,
            now=now,
        )
    return take


def _settle(
    offer: TradeOffer,
    *,
    stock: Stock,
    maker: Portfolio,
    taker: Portfolio,
    quantity: int,
    quote: Decimal,
    key: str,
    now: datetime,
) -> OfferTake:
    number = offer.takes_count + 1
    reference = f"offer:{offer.pk}/take:{number}"
    price = offer.price
    fee = fill_model.commission(fill_model.notional(price=price, quantity=quantity))
    remaining = offer.remaining_quantity - quantity
    # Release pro rata: what stays reserved is exactly the reservation of the shares
    # that remain, so the last take releases everything.
    keep_cash, keep_shares = offer_reservation(side=offer.side, price=price, quantity=remaining)
    release_cash = offer.reserved_cash - keep_cash
    release_shares = offer.reserved_quantity - keep_shares

    # Lock both positions in ascending id before either side settles (the third step
    # of the lock order); trade_settle then finds them already held.
    list(
        Position.objects.select_for_update()
        .filter(portfolio_id__in=[maker.pk, taker.pk], stock=stock)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    sides = {
        maker.pk: (maker, offer.side, release_cash, release_shares, "maker"),
        taker.pk: (taker, offer.taker_side, ZERO, 0, "taker"),
    }
    for portfolio_id in sorted(sides):
        portfolio, side, cash, shares, role = sides[portfolio_id]
        try:
            trade_settle(
                portfolio=portfolio,
                stock=stock,
                side=side,
                quantity=quantity,
                price=price,
                fee=fee,
                reference=reference,
                idempotency_key=f"{reference}/{role}",
                kind_prefix="offer_",
                release_cash=cash,
                release_quantity=shares,
            )
        except portfolio_errors.InsufficientFunds as error:
            if role == "taker":
                raise InsufficientFunds(error.message) from error
            # A buy offer's escrow covers one commission on what remains; taking it in
            # parts costs the maker a commission per part, paid from free cash.
            raise InsufficientFunds(
                f"The maker can't pay the {money_fmt(fee)} commission on a part of this "
                f"offer right now. Accepting all {offer.remaining_quantity:,} remaining "
                "shares always settles."
            ) from error
        except portfolio_errors.InsufficientShares as error:
            raise InsufficientShares(error.message) from error

    maker_owner, taker_owner = maker.owner_id, taker.owner_id
    seller, buyer = (
        (maker_owner, taker_owner) if offer.side == Side.SELL else (taker_owner, maker_owner)
    )
    take = OfferTake.objects.create(
        offer=offer,
        number=number,
        taker=taker,
        seller_id=seller,
        buyer_id=buyer,
        stock=stock,
        quantity=quantity,
        price=price,
        quote_price=quote,
        maker_fee=fee,
        taker_fee=fee,
        idempotency_key=key,
    )
    offer.takes_count = number
    offer.remaining_quantity = remaining
    offer.reserved_cash = keep_cash
    offer.reserved_quantity = keep_shares
    offer.status = OfferStatus.FILLED if remaining == 0 else OfferStatus.PARTLY_FILLED
    offer.closed_at = now if remaining == 0 else None
    offer.save(
        update_fields=[
            "takes_count",
            "remaining_quantity",
            "reserved_cash",
            "reserved_quantity",
            "status",
            "closed_at",
            "updated_at",
        ]
    )
    transaction.on_commit(partial(offer_events.offer_taken, take.pk))
    return take


def offer_decline(*, offer: TradeOffer, by: Any) -> TradeOffer:
    """The addressee turns the offer down; the maker's escrow is released."""
    with transaction.atomic():
        locked_offer = _offer_locked(offer)
        if locked_offer.addressee_id is None or locked_offer.addressee_id != by.pk:
            raise NotAllowed("Only the player an offer is addressed to can decline it.")
        now = timezone.now()
        _require_live(locked_offer, now=now)
        maker = portfolios_lock(portfolio_ids=[locked_offer.maker_id])[locked_offer.maker_id]
        _close(locked_offer, maker=maker, status=OfferStatus.DECLINED, now=now)
    return locked_offer


def offer_cancel(*, offer: TradeOffer, by: Any) -> TradeOffer:
    """The maker (or a moderator allowed to cancel for players) withdraws the offer;
    its escrow is released. An offer past its expiry can still be cancelled."""
    with transaction.atomic():
        locked_offer = _offer_locked(offer)
        if by.pk != locked_offer.maker.owner_id and not by.has_perm("trading.cancel_for_player"):
            raise NotAllowed("Only the player who made an offer can cancel it.")
        if not locked_offer.is_live:
            raise OfferNotLive(
                f"This offer is already {locked_offer.get_status_display().lower()}."
            )
        maker = portfolios_lock(portfolio_ids=[locked_offer.maker_id])[locked_offer.maker_id]
        _close(locked_offer, maker=maker, status=OfferStatus.CANCELLED, now=timezone.now())
    return locked_offer


def offer_counter(
    *,
    offer: TradeOffer,
    counterer: Portfolio,
    quantity: int,
    price: Decimal,
    idempotency_key: str,
    message: str = "",
    expires_in: timedelta = DEFAULT_LIFETIME,
) -> TradeOffer:
    """Answer an offer with a new one to its maker, the other way round, linked by
    `countered_from`. Countering an offer addressed to you declines it: the two cannot
    both stand. An offer open to every player stays open."""
    quantity = _quantity(quantity)
    price = _price(price)
    message = (message or "").strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidOffer(
            f"A message has at most {MAX_MESSAGE_CHARS} characters.", field="message"
        )
    lifetime = _lifetime(expires_in)
    key = _key(idempotency_key)
    with transaction.atomic():
        locked_offer = _offer_locked(offer)
        _may_take(locked_offer, counterer.owner_id)
        existing = TradeOffer.objects.filter(maker_id=counterer.pk, idempotency_key=key).first()
        if existing is not None:
            return existing
        now = timezone.now()
        _require_live(locked_offer, now=now)
        locked = portfolios_lock(portfolio_ids=[locked_offer.maker_id, counterer.pk])
        maker = locked[locked_offer.maker_id]
        if locked_offer.addressee_id == counterer.owner_id:
            _close(locked_offer, maker=maker, status=OfferStatus.DECLINED, now=now)
        return _offer_create(
            maker=locked[counterer.pk],
            stock=locked_offer.stock,
            side=locked_offer.taker_side,
            quantity=quantity,
            price=price,
            addressee=maker.owner,
            message=message,
            expires_in=lifetime,
            key=key,
            countered_from=locked_offer,
        )


def offers_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Expire the live offers past their deadline and release their escrow, each in its
    own transaction (SKIP LOCKED: one being taken right now is left for the next run).
    Running it again does nothing more. Returns how many expired."""
    now = now or timezone.now()
    due = list(
        TradeOffer.objects.filter(status__in=OFFER_LIVE_STATUSES, expires_at__lte=now)
        .order_by("expires_at", "id")
        .values_list("id", flat=True)[:batch]
    )
    expired = 0
    for offer_id in due:
        with transaction.atomic():
            offer = (
                TradeOffer.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("stock")
                .filter(pk=offer_id, status__in=OFFER_LIVE_STATUSES, expires_at__lte=now)
                .first()
            )
            if offer is None:
                continue
            maker = portfolios_lock(portfolio_ids=[offer.maker_id])[offer.maker_id]
            _close(offer, maker=maker, status=OfferStatus.EXPIRED, now=now)
            expired += 1
    if expired:
        logger.info("offers expired: %s", expired)
    return expired
