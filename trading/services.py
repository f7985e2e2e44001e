"""Orders: placing, firing, filling, cancelling and expiring them.

Cash and shares only ever move through portfolio.services (`reservation_hold`,
`reservation_release`, `trade_settle`); this module decides when and at what price.

Lock order, everywhere: the order row first (when there is one), then portfolios by
ascending id (`portfolios_lock`), then positions (inside portfolio.services). Placing
locks the portfolio before it looks for an existing order with the same idempotency
key, so two racing submits of one ticket serialize and make one order.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

import portfolio.errors as portfolio_errors
from market.models import Stock
from portfolio.models import Portfolio
from portfolio.services import (
    portfolios_lock,
    reservation_hold,
    reservation_release,
    trade_settle,
)
from trading import events, fill_model
from trading.errors import (
    InsufficientFunds,
    InsufficientShares,
    InvalidOrder,
    NoQuote,
    OrderNotOpen,
    StockNotTradable,
    TooManyOpenOrders,
)
from trading.models import (
    MAX_QUANTITY,
    OPEN_STATUSES,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TriggerWhen,
)

logger = logging.getLogger(__name__)

MAX_PRICE = Decimal("9999999999.9999")  # NUMERIC(14, 4)
HUNDRED = Decimal(100)


# --- Announcements -------------------------------------------------------------------

_deferral = threading.local()


def _announce(event: str, object_id: int) -> None:
    """Call trading.events.<event>(object_id) once the current transaction commits, or,
    inside `announcements_deferred()`, hand it to the caller to send in one batch."""
    transaction.on_commit(partial(_announce_now, event, object_id))


# Sent from a Celery task (trading.tasks.announce) instead of inline at the commit: a
# fill's push renders the wallet and reaches Redis (about 6 ms of CPU), which halved the
# market orders a process could fill per second. Queuing one task per fill still cost
# ~0.5 ms of CPU (kombu), so the fills committed within PUSH_BATCH_SECONDS in this
# process share one task: the toast is at most that much later.
QUEUED_EVENTS = frozenset({"fill_made"})
PUSH_BATCH_SECONDS = 0.05

_pushes_lock = threading.Lock()
_pushes_pending: list[tuple[str, int]] = []


def _announce_now(event: str, object_id: int) -> None:
    deferred = getattr(_deferral, "events", None)
    if deferred is not None:
        deferred.append((event, object_id))
        return
    if event in QUEUED_EVENTS:
        with _pushes_lock:
            _pushes_pending.append((event, object_id))
            first = len(_pushes_pending) == 1
        if first:  # the batch's first announcement schedules its flush
            timer = threading.Timer(PUSH_BATCH_SECONDS, _flush_from_timer)
            timer.daemon = True
            timer.start()
        return
    _announce_inline([(event, object_id)])


def _announce_inline(announcements: list[tuple[str, int]]) -> None:
    for event, object_id in announcements:
        try:
            getattr(events, event)(object_id)
        except Exception:
            # Telling the player is best effort; the fill stands either way.
            logger.warning("trading event %s(%s) failed", event, object_id, exc_info=True)


def announcements_flush() -> int:
    """Queue this process's pending fill announcements as one `announce` task now (the
    batch's timer calls it; so does the process's exit). If the broker refuses the task,
    they are sent from here: a late toast beats none. Returns how many were pending."""
    from trading.tasks import announce  # trading.tasks imports this module

    with _pushes_lock:
        batch = _pushes_pending[:]
        _pushes_pending.clear()
    if not batch:
        return 0
    try:
        announce.delay(batch)
    except Exception:
        logger.warning("%d trading events not queued: sent inline", len(batch), exc_info=True)
        _announce_inline(batch)
    return len(batch)


def _flush_from_timer() -> None:
    try:
        announcements_flush()
    finally:
        connection.close()  # this thread's own, if the inline fallback opened one


atexit.register(announcements_flush)


@contextlib.contextmanager
def announcements_deferred() -> Iterator[list[tuple[str, int]]]:
    """Collect (in this thread) the announcements of the transactions that commit inside
    the block instead of sending each at its commit: the tick fills hundreds of orders
    and must not render and push each one inline (see trading.triggers)."""
    previous = getattr(_deferral, "events", None)
    _deferral.events = collected = []
    try:
        yield collected
    finally:
        _deferral.events = previous


# --- Validation ---------------------------------------------------------------------


def _price(value: Decimal | None, *, field: str, label: str) -> Decimal:
    if value is None:
        raise InvalidOrder(f"Enter a {label} for this order type.", field=field)
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidOrder(f"The {label} must be a number.", field=field) from None
    if not amount.is_finite():
        raise InvalidOrder(f"The {label} must be a number.", field=field)
    if amount <= 0:
        raise InvalidOrder(f"The {label} must be above zero.", field=field)
    if amount != amount.quantize(fill_model.PRICE_STEP):
        raise InvalidOrder(f"The {label} has at most 4 decimal places.", field=field)
    if amount > MAX_PRICE:
        raise InvalidOrder(f"The {label} is too large.", field=field)
    return amount.quantize(fill_model.PRICE_STEP)


def _absent(**values: Decimal | None) -> None:
    for field, value in values.items():
        if value is not None:
            label = field.replace("_", " ")
            raise InvalidOrder(f"This order type takes no {label}.", field=field)


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """The validated, quantized values of an order, before it meets the market."""

    side: str
    type: str
    quantity: int
    time_in_force: str
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None


def order_terms_validate(
    *,
    side: str,
    type: str,
    quantity: int,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    trail_amount: Decimal | None = None,
    trail_percent: Decimal | None = None,
    time_in_force: str = TimeInForce.GTC,
) -> OrderTerms:
    """Check what an order can be checked for without a quote; raise InvalidOrder."""
    if side not in Side.values:
        raise InvalidOrder("Choose buy or sell.", field="side")
    if type not in OrderType.values:
        raise InvalidOrder("Choose an order type.", field="type")
    if time_in_force not in TimeInForce.values:
        raise InvalidOrder("Choose DAY or GTC.", field="time_in_force")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidOrder("Enter a whole number of shares.", field="quantity")
    if quantity < 1:
        raise InvalidOrder("Enter at least 1 share.", field="quantity")
    if quantity > MAX_QUANTITY:
        raise InvalidOrder(f"At most {MAX_QUANTITY:,} shares per order.", field="quantity")

    limit = stop = amount = percent = None
    if type == OrderType.MARKET:
        _absent(
            limit_price=limit_price,
            stop_price=stop_price,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
        )
    elif type == OrderType.LIMIT:
        _absent(stop_price=stop_price, trail_amount=trail_amount, trail_percent=trail_percent)
        limit = _price(limit_price, field="limit_price", label="limit price")
    elif type == OrderType.STOP:
        _absent(limit_price=limit_price, trail_amount=trail_amount, trail_percent=trail_percent)
        stop = _price(stop_price, field="stop_price", label="stop price")
    elif type == OrderType.STOP_LIMIT:
        _absent(trail_amount=trail_amount, trail_percent=trail_percent)
        stop = _price(stop_price, field="stop_price", label="stop price")
        limit = _price(limit_price, field="limit_price", label="limit price")
        # A stop-limit whose limit sits on the wrong side of its own stop can never do
        # what it says (a buy that fires on a rise to the stop, then only buys below it):
        # refused as bad input rather than left to rest forever.
        if side == Side.BUY and limit < stop:
            raise InvalidOrder(
                "A buy stop-limit's limit must be at or above its stop price.", field="limit_price"
            )
        if side == Side.SELL and limit > stop:
            raise InvalidOrder(
                "A sell stop-limit's limit must be at or below its stop price.", field="limit_price"
            )
    else:
        _absent(limit_price=limit_price, stop_price=stop_price)
        if (trail_amount is None) == (trail_percent is None):
            raise InvalidOrder("Enter a trail as an amount or as a percent.", field="trail_amount")
        if trail_amount is not None:
            amount = _price(trail_amount, field="trail_amount", label="trail amount")
        else:
            percent = _price(trail_percent, field="trail_percent", label="trail percent")
            if percent >= HUNDRED:
                raise InvalidOrder("The trail percent must be below 100.", field="trail_percent")
    return OrderTerms(
        side=side,
        type=type,
        quantity=quantity,
        time_in_force=time_in_force,
        limit_price=limit,
        stop_price=stop,
        trail_amount=amount,
        trail_percent=percent,
    )


def stock_check_tradable(stock: Stock) -> Decimal:
    """The stock's quote, or StockNotTradable / NoQuote with the reason."""
    if stock.delisted_at is not None:
        raise StockNotTradable(
            f"{stock.symbol} was delisted on {stock.delisted_at:%Y-%m-%d} and can no longer be traded."
        )
    if stock.halted:
        reason = f": {stock.halt_reason}" if stock.halt_reason else "."
        raise StockNotTradable(f"Trading in {stock.symbol} is halted{reason}")
    if stock.last_price <= 0:
        raise NoQuote(f"{stock.symbol} has no price yet; try again after the next tick.")
    return stock.last_price


@contextlib.contextmanager
def portfolio_errors_as_trading() -> Iterator[None]:
    """portfolio.services' refusals, as the trading errors a ticket or offer form shows."""
    try:
        yield
    except portfolio_errors.InsufficientFunds as error:
        raise InsufficientFunds(error.message) from error
    except portfolio_errors.InsufficientShares as error:
        raise InsufficientShares(error.message) from error


# --- Triggers and reservations (pure) ------------------------------------------------


def trailing_trigger(*, side: str, water: Decimal, terms: Order | OrderTerms) -> Decimal:
    """A trailing stop's trigger for its water mark. Mirrors the tick's SQL (same rounding)."""
    if side == Side.SELL:
        if terms.trail_amount is not None:
            trigger = water - terms.trail_amount
        else:
            trigger = water * (1 - terms.trail_percent / HUNDRED)
        return max(fill_model.quantize_price(trigger), fill_model.PRICE_STEP)
    if terms.trail_amount is not None:
        return fill_model.quantize_price(water + terms.trail_amount)
    return fill_model.quantize_price(water * (1 + terms.trail_percent / HUNDRED))


def _arm(order: Order, *, quote: Decimal) -> None:
    """Set what fires a resting order: its trigger price and direction."""
    buy = order.side == Side.BUY
    if order.type == OrderType.LIMIT or order.status == OrderStatus.TRIGGERED:
        # A limit buys at or below its limit, sells at or above.
        order.trigger_price = order.limit_price
        order.trigger_when = TriggerWhen.FALL if buy else TriggerWhen.RISE
    elif order.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        # A stop buys once the price rises to it, sells once it falls to it.
        order.trigger_price = order.stop_price
        order.trigger_when = TriggerWhen.RISE if buy else TriggerWhen.FALL
    else:
        if buy:
            order.low_water = quote
        else:
            order.high_water = quote
        order.trigger_price = trailing_trigger(side=order.side, water=quote, terms=order)
        order.trigger_when = TriggerWhen.RISE if buy else TriggerWhen.FALL


def buy_reservation_for(order: Order | OrderTerms, *, quote: Decimal) -> Decimal:
    """The cash a resting buy holds: the most its fill can cost, fee included.

    - limit and stop-limit: the limit (a limit fill is never above it);
    - stop: the stop or the quote, whichever is higher, plus ORDER_PROTECTION_BAND;
    - trailing: its first trigger (the highest it will ever be: a buy's trigger only
      follows the price down), plus the band.
    """
    if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        ceiling = order.limit_price
    elif order.type == OrderType.STOP:
        ceiling = fill_model.protected_price(max(order.stop_price, quote))
    elif order.type == OrderType.TRAILING_STOP:
        trigger = trailing_trigger(side=Side.BUY, water=quote, terms=order)
        ceiling = fill_model.protected_price(max(trigger, quote))
    else:
        ceiling = fill_model.market_fill_price(quote=quote, side=Side.BUY)
    return fill_model.buy_reservation(price=ceiling, quantity=order.quantity)


def order_fill_price(order: Order | OrderTerms, *, quote: Decimal) -> Decimal:
    """What the order fills at against `quote` (limit orders never worse than the limit)."""
    if order.type == OrderType.LIMIT or order.type == OrderType.STOP_LIMIT:
        return fill_model.limit_fill_price(quote=quote, side=order.side, limit=order.limit_price)
    return fill_model.market_fill_price(quote=quote, side=order.side)


def session_close_after(moment: datetime) -> datetime:
    """The next session close (SESSION_CLOSE_UTC) strictly after `moment`."""
    moment = moment.astimezone(UTC)
    close = moment.replace(
        hour=settings.SESSION_CLOSE_UTC.hour,
        minute=settings.SESSION_CLOSE_UTC.minute,
        second=0,
        microsecond=0,
    )
    return close if close > moment else close + timedelta(days=1)


# --- Placing --------------------------------------------------------------------------


def order_place(
    *,
    portfolio: Portfolio,
    stock: Stock,
    side: str,
    type: str,
    quantity: int,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    trail_amount: Decimal | None = None,
    trail_percent: Decimal | None = None,
    time_in_force: str = TimeInForce.GTC,
    idempotency_key: str,
) -> Order:
    """Place an order. A market order fills at once; the others rest, holding their
    reservation, and fire at once if the market already satisfies them.

    The same idempotency key on the same portfolio returns the order it made the first
    time (whatever the other arguments say) and changes nothing.
    """
    terms = order_terms_validate(
        side=side,
        type=type,
        quantity=quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_amount=trail_amount,
        trail_percent=trail_percent,
        time_in_force=time_in_force,
    )
    key = (idempotency_key or "").strip()
    if not key or len(key) > 64:
        raise InvalidOrder("This ticket has expired; reload the page and try again.")

    with transaction.atomic():
        # The portfolio and its position in the stock, in one round trip.
        locked = portfolios_lock(portfolio_ids=[portfolio.pk], stock=stock)[portfolio.pk]
        # After the lock (a racing submit of this ticket has committed by now): a fresh
        # read of the quote, and in the same round trip, an order this key already made.
        stock, existing_order_id = _stock_and_existing_order(
            stock_id=stock.pk, portfolio_id=locked.pk, key=key
        )
        if existing_order_id is not None:
            return Order.objects.get(pk=existing_order_id)
        quote = stock_check_tradable(stock)
        now = timezone.now()
        order = Order(
            portfolio=locked,
            stock=stock,
            side=terms.side,
            type=terms.type,
            quantity=terms.quantity,
            limit_price=terms.limit_price,
            stop_price=terms.stop_price,
            trail_amount=terms.trail_amount,
            trail_percent=terms.trail_percent,
            time_in_force=terms.time_in_force,
            idempotency_key=key,
        )
        if terms.type == OrderType.MARKET:
            # Inserted already filled by _execute; a refusal rolls the whole thing back.
            with portfolio_errors_as_trading():
                _execute(order, portfolio=locked, quote=quote, quote_at=stock.quoted_at)
            return order

        if (
            terms.type == OrderType.TRAILING_STOP
            and terms.side == Side.SELL
            and terms.trail_amount is not None
            and terms.trail_amount >= quote
        ):
            raise InvalidOrder(
                f"A trail of {terms.trail_amount} is at or above {stock.symbol}'s price "
                f"({quote}): the stop would sit at zero.",
                field="trail_amount",
            )
        open_count = Order.objects.filter(portfolio=locked, status__in=OPEN_STATUSES).count()
        if open_count >= settings.MAX_OPEN_ORDERS:
            raise TooManyOpenOrders(
                f"You have {open_count} open orders, the most allowed. "
                "Cancel one before placing another."
            )
        _arm(order, quote=quote)
        if terms.side == Side.BUY:
            order.reserved_cash = buy_reservation_for(order, quote=quote)
        else:
            order.reserved_quantity = terms.quantity
        with portfolio_errors_as_trading():
            reservation_hold(
                portfolio=locked,
                stock=stock,
                cash=order.reserved_cash,
                quantity=order.reserved_quantity,
            )
        order.status = OrderStatus.OPEN
        if terms.time_in_force == TimeInForce.DAY:
            order.expires_at = session_close_after(now)
        order.save()
        # A stop whose condition already holds fires at once; so does a limit the
        # market already satisfies (it fills at the quote, capped by the limit).
        if order.fires_at(quote):
            with portfolio_errors_as_trading():
                _fire(order, portfolio=locked, quote=quote, quote_at=stock.quoted_at)
        if order.status != OrderStatus.FILLED:  # a fill announces itself
            _announce("order_changed", order.pk)
    return order


# --- Firing and filling ---------------------------------------------------------------

# What changes when an order leaves the book (filled, cancelled, expired, rejected).
_CLOSE_FIELDS = (
    "status",
    "reserved_cash",
    "reserved_quantity",
    "trigger_price",
    "trigger_when",
    "updated_at",
)


def _fire(
    order: Order, *, portfolio: Portfolio, quote: Decimal, quote_at: datetime | None
) -> Fill | None:
    """The trigger of a resting order is satisfied by `quote`: fill it, or (a stop-limit
    whose stop fired) turn it into a resting limit that may fill at once."""
    if order.type == OrderType.STOP_LIMIT and order.status == OrderStatus.OPEN:
        order.status = OrderStatus.TRIGGERED
        order.triggered_at = timezone.now()
        _arm(order, quote=quote)
        order.save(
            update_fields=["status", "triggered_at", "trigger_price", "trigger_when", "updated_at"]
        )
        if not order.fires_at(quote):
            return None
    if order.triggered_at is None:
        order.triggered_at = timezone.now()
    return _execute(order, portfolio=portfolio, quote=quote, quote_at=quote_at)


def _off_book(order: Order, *, status: str) -> None:
    """The in-memory side of leaving the book: nothing reserved, nothing to trigger."""
    order.status = status
    order.reserved_cash = Decimal("0")
    order.reserved_quantity = 0
    order.trigger_price = None
    order.trigger_when = ""


def _execute(
    order: Order, *, portfolio: Portfolio, quote: Decimal, quote_at: datetime | None
) -> Fill:
    """Fill the whole order against `quote` through the fill model, settle it and close it.
    Raises portfolio's InsufficientFunds/InsufficientShares; the caller's transaction
    then rolls back with nothing changed.

    A new (market) order is inserted already filled, and a resting one updated once:
    the fill path is the hot path of every tick, so it saves round trips.
    """
    price = order_fill_price(order, quote=quote)
    amount = fill_model.notional(price=price, quantity=order.quantity)
    fee = fill_model.commission(amount)
    release_cash, release_quantity = order.reserved_cash, order.reserved_quantity
    _off_book(order, status=OrderStatus.FILLED)
    fill = Fill(
        order=order,
        portfolio=portfolio,
        stock=order.stock,
        side=order.side,
        quantity=order.quantity,
        price=price,
        fee=fee,
        quote_price=quote,
        quote_at=quote_at,
    )
    _order_and_fill_write(order, fill)
    trade_settle(
        portfolio=portfolio,
        stock=order.stock,
        side=order.side,
        quantity=order.quantity,
        price=price,
        fee=fee,
        reference=f"fill:{fill.pk}",
        # One fill per order, ever: a second attempt is refused by the ledger.
        idempotency_key=f"order:{order.pk}:fill",
        release_cash=release_cash,
        release_quantity=release_quantity,
    )
    _announce("fill_made", fill.pk)
    return fill


def _stock_and_existing_order(
    *, stock_id: int, portfolio_id: int, key: str
) -> tuple[Stock, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(_STOCK_AND_EXISTING_SQL, [portfolio_id, key, stock_id])
        row = cursor.fetchone()
    if row is None:
        raise Stock.DoesNotExist(f"No stock with id {stock_id}.")
    return Stock.from_db(connection.alias, _STOCK_FIELDS, row[:-1]), row[-1]


_STOCK_FIELDS = [field.attname for field in Stock._meta.concrete_fields]
# Raw SQL on the order path: compiling the ORM's query cost more CPU than running it.
_STOCK_AND_EXISTING_SQL = """
SELECT {columns},
    (SELECT id FROM trading_order WHERE portfolio_id = %s AND idempotency_key = %s LIMIT 1)
FROM market_stock WHERE id = %s
""".format(columns=", ".join(f'"{field.column}"' for field in Stock._meta.concrete_fields))  # noqa: S608 - model columns


def _db_values(obj: Order | Fill, fields: list[Any], *, add: bool) -> list[Any]:
    """The values of `fields` as Django's save() would send them (auto_now included)."""
    return [field.get_db_prep_save(field.pre_save(obj, add), connection) for field in fields]


@functools.cache
def _fill_write_sql(*, new_order: bool) -> tuple[str, list[Any], list[Any]]:
    """The statement of `_order_and_fill_write` and the fields it sends, in order."""

    # Only column names and casts from the models go into the text; values are parameters.
    def cast(field: Any) -> str:
        return f"%s::{field.cast_db_type(connection)}"

    fill_fields = [f for f in Fill._meta.concrete_fields if not f.primary_key and f.name != "order"]
    if new_order:
        order_fields = [f for f in Order._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(f'"{field.column}"' for field in order_fields)
        values = ", ".join(cast(field) for field in order_fields)
        written = f"INSERT INTO trading_order ({columns}) VALUES ({values}) RETURNING id"  # noqa: S608
    else:
        names = {*_CLOSE_FIELDS, "triggered_at"}
        order_fields = [f for f in Order._meta.concrete_fields if f.name in names]
        sets = ", ".join(f'"{field.column}" = {cast(field)}' for field in order_fields)
        written = f"UPDATE trading_order SET {sets} WHERE id = %s RETURNING id"  # noqa: S608
    fill_columns = ", ".join(f'"{field.column}"' for field in fill_fields)
    fill_values = ", ".join(cast(field) for field in fill_fields)
    fill_insert = f'INSERT INTO trading_fill ("order_id", {fill_columns})'
    fill_select = f"SELECT written.id, {fill_values} FROM written RETURNING order_id, id"  # noqa: S608
    sql = f"WITH written AS ({written}) {fill_insert} {fill_select}"
    return sql, order_fields, fill_fields


def _order_and_fill_write(order: Order, fill: Fill) -> None:
    """Insert a new (market) order already filled, or close a resting one, and insert
    its fill: one statement where the ORM took two (on every fill's path)."""
    new_order = order.pk is None
    sql, order_fields, fill_fields = _fill_write_sql(new_order=new_order)
    params = _db_values(order, order_fields, add=new_order)
    if not new_order:
        params.append(order.pk)
    params += _db_values(fill, fill_fields, add=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        order_id, fill_id = cursor.fetchone()
    for obj, pk in ((order, order_id), (fill, fill_id)):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    fill.order_id = order_id


def _gap_shortfall(order: Order, *, portfolio: Portfolio, quote: Decimal) -> str:
    """Why a buy cannot fill at `quote` (the market gapped past what it reserved and the
    free cash does not cover the rest), or "" if it can."""
    if order.side != Side.BUY:
        return ""
    price = order_fill_price(order, quote=quote)
    amount = fill_model.notional(price=price, quantity=order.quantity)
    needed = amount + fill_model.commission(amount)
    available = portfolio.cash - portfolio.reserved_cash + order.reserved_cash
    if needed <= available:
        return ""
    return (
        f"Rejected when it fired: the price gapped to {quote} and the fill needed "
        f"${needed:,.2f}, more than the ${available:,.2f} of buying power "
        "(including what the order reserved)."
    )


def _resting_order_lock(order_id: int) -> Order | None:
    """The resting order with its stock, its row locked, or None if it is not resting or
    another transaction holds it (SKIP LOCKED). Raw SQL: it is on every tick fill's path."""
    with connection.cursor() as cursor:
        cursor.execute(_RESTING_ORDER_LOCK_SQL, [order_id, list(OPEN_STATUSES)])
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(_ORDER_FIELDS)
    order = Order.from_db(connection.alias, _ORDER_FIELDS, row[:width])
    order.stock = Stock.from_db(connection.alias, _STOCK_FIELDS, row[width:])
    return order


_ORDER_FIELDS = [field.attname for field in Order._meta.concrete_fields]
# The CTE locks the order row alone (FOR UPDATE OF the order, as the ORM's of=("self",)).
_RESTING_ORDER_LOCK_SQL = """
WITH resting AS MATERIALIZED (
    SELECT {order_columns} FROM trading_order
    WHERE id = %s AND status = ANY(%s::varchar[])
    FOR UPDATE SKIP LOCKED
)
SELECT resting.*, {stock_columns} FROM resting JOIN market_stock ON market_stock.id = resting.stock_id
""".format(  # noqa: S608 - model columns
    order_columns=", ".join(f'"{field.column}"' for field in Order._meta.concrete_fields),
    stock_columns=", ".join(
        f'market_stock."{field.column}"' for field in Stock._meta.concrete_fields
    ),
)


def order_fill(*, order_id: int, quote: Decimal, quote_at: datetime | None = None) -> Fill | None:
    """Fire one resting order that a tick's price `quote` satisfies, in its own transaction.

    The order row is taken with SKIP LOCKED: if another worker (or a cancel) holds it,
    this one walks away, so no order is ever filled twice. The status and the trigger
    are checked again under the lock. A buy whose fill would cost more than the cash it
    reserved plus the free cash (the market gapped past the protection band) is
    rejected and its reservation released. Returns the fill, or None.
    """
    with transaction.atomic():
        order = _resting_order_lock(order_id)
        if order is None or not order.fires_at(quote) or not order.stock.is_tradable:
            return None
        portfolio = portfolios_lock(portfolio_ids=[order.portfolio_id], stock=order.stock)[
            order.portfolio_id
        ]
        if order.triggered_at is None:
            order.triggered_at = timezone.now()
        shortfall = _gap_shortfall(order, portfolio=portfolio, quote=quote)
        if shortfall:
            _close(order, portfolio=portfolio, status=OrderStatus.REJECTED, reason=shortfall[:280])
            logger.info("order %s rejected at trigger: %s", order.pk, shortfall)
            return None
        fill = _fire(order, portfolio=portfolio, quote=quote, quote_at=quote_at)
        if fill is None:  # a stop-limit that now rests as a limit
            _announce("order_changed", order.pk)
        return fill


# --- Cancelling and expiring -----------------------------------------------------------


def _close(order: Order, *, portfolio: Portfolio, status: str, reason: str) -> None:
    """Take a resting order off the book and give its reservation back."""
    reservation_release(
        portfolio=portfolio,
        stock=order.stock,
        cash=order.reserved_cash,
        quantity=order.reserved_quantity,
    )
    _off_book(order, status=status)
    order.reason = reason
    order.save(update_fields=[*_CLOSE_FIELDS, "reason"])
    _announce("order_changed", order.pk)


def order_cancel(*, order: Order, by: object, reason: str = "") -> Order:
    """Cancel a resting order and release what it reserved. `by` is who asked (the owner
    or a moderator); OrderNotOpen if it already filled, expired or was cancelled."""
    with transaction.atomic():
        # Waits for a fill in progress on this order, then sees its outcome.
        locked_order = (
            Order.objects.select_for_update(of=("self",)).select_related("stock").get(pk=order.pk)
        )
        if not locked_order.is_open:
            raise OrderNotOpen(
                f"This order is already {locked_order.get_status_display().lower()}."
            )
        portfolio = portfolios_lock(portfolio_ids=[locked_order.portfolio_id])[
            locked_order.portfolio_id
        ]
        owner_id = getattr(portfolio, "owner_id", None)
        default = (
            "Cancelled by you." if getattr(by, "pk", None) == owner_id else f"Cancelled by {by}."
        )
        _close(
            locked_order,
            portfolio=portfolio,
            status=OrderStatus.CANCELLED,
            reason=(reason or default)[:280],
        )
    return locked_order


def orders_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Take off the book, releasing their reservations: the DAY orders whose session
    closed by `now` (expired), and the resting orders of delisted stocks (cancelled,
    since they can never fill). Each order in its own transaction, `batch` ids read at
    a time; running it again does nothing more. Returns how many it closed."""
    now = now or timezone.now()
    due = Q(time_in_force=TimeInForce.DAY, expires_at__lte=now) | Q(
        stock__delisted_at__isnull=False
    )
    closed = 0
    after = 0
    while True:
        order_ids = list(
            Order.objects.filter(due, status__in=OPEN_STATUSES, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not order_ids:
            return closed
        after = order_ids[-1]
        for order_id in order_ids:
            closed += _order_expire(order_id)


def _order_expire(order_id: int) -> int:
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("stock")
            .filter(pk=order_id, status__in=OPEN_STATUSES)
            .first()
        )
        if order is None:  # filled, cancelled, or being handled by someone else right now
            return 0
        portfolio = portfolios_lock(portfolio_ids=[order.portfolio_id])[order.portfolio_id]
        if order.stock.delisted_at is not None:
            status = OrderStatus.CANCELLED
            reason = f"Cancelled: {order.stock.symbol} was delisted."
        else:
            status = OrderStatus.EXPIRED
            close_at = order.expires_at.astimezone(UTC)
            reason = f"Day order expired at the session close ({close_at:%H:%M} UTC)."
        _close(order, portfolio=portfolio, status=status, reason=reason)
        return 1


# --- The tick ---------------------------------------------------------------------------


TRAILING_FOLLOW_SQL = """
WITH moved AS (
    -- Per ticked stock, an index probe (order_trailing_open_idx) for the trailing stops
    -- whose water mark this price beats. OFFSET 0 keeps the planner from flattening the
    -- LATERAL into one hash join over every resting trailing stop.
    SELECT hit.id, tick.price
    FROM unnest(%(stock_ids)s::bigint[], %(prices)s::numeric[]) AS tick(stock_id, price)
    CROSS JOIN LATERAL (
        SELECT o.id FROM trading_order o
        WHERE o.stock_id = tick.stock_id AND o.status = 'open' AND o.type = 'trailing_stop'
          AND ((o.side = 'sell' AND tick.price > o.high_water)
            OR (o.side = 'buy' AND tick.price < o.low_water))
        OFFSET 0
    ) AS hit
), locked AS (
    -- Lock in id order, so two overlapping ticks cannot deadlock on these rows.
    SELECT o.id, moved.price
    FROM trading_order o JOIN moved ON moved.id = o.id
    ORDER BY o.id
    FOR UPDATE OF o
)
UPDATE trading_order o SET
    high_water = CASE WHEN o.side = 'sell' THEN GREATEST(o.high_water, locked.price) ELSE o.high_water END,
    low_water = CASE WHEN o.side = 'buy' THEN LEAST(o.low_water, locked.price) ELSE o.low_water END,
    trigger_price = CASE
        WHEN o.side = 'sell' AND o.trail_amount IS NOT NULL
            THEN GREATEST(GREATEST(o.high_water, locked.price) - o.trail_amount, 0.0001)
        WHEN o.side = 'sell'
            THEN GREATEST(round(GREATEST(o.high_water, locked.price) * (1 - o.trail_percent / 100), 4), 0.0001)
        WHEN o.trail_amount IS NOT NULL
            THEN LEAST(o.low_water, locked.price) + o.trail_amount
        ELSE round(LEAST(o.low_water, locked.price) * (1 + o.trail_percent / 100), 4)
    END,
    updated_at = now()
FROM locked
WHERE o.id = locked.id AND o.status = 'open'
"""


def trailing_stops_follow(*, prices: Mapping[int, Decimal]) -> int:
    """Move the water marks (and triggers) of the trailing stops in the ticked stocks:
    one UPDATE for the whole tick, touching only the orders whose mark moved."""
    if not prices:
        return 0
    stock_ids = list(prices)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            TRAILING_FOLLOW_SQL,
            {"stock_ids": stock_ids, "prices": [prices[stock_id] for stock_id in stock_ids]},
        )
        return cursor.rowcount
