"""The only code that moves cash or shares.

Locking: every function that changes a balance runs inside the caller's
`transaction.atomic()` on portfolios locked with `portfolios_lock` (SELECT ... FOR NO KEY UPDATE
in ascending id order). Positions are locked after their portfolio, and never without it.
That one order - portfolios by id, then positions - is what keeps two trades from
deadlocking. `cash_adjust`, `portfolio_open` and the watchlist functions open and lock on
their own.

Idempotency: each ledger entry has a unique key. A trade posts `<key>` for the trade and
`<key>:fee` for its fee. Replaying a key raises `DuplicateEntry` and posts nothing; the
caller's transaction then rolls back with it (see docs/portfolio.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Sum
from django.utils import timezone

from market.models import Stock
from market.sessions import session_start
from portfolio.errors import (
    DuplicateEntry,
    InsufficientFunds,
    InsufficientShares,
    InvalidAmount,
    PortfolioError,
    PortfolioNotFound,
    PortfolioNotLocked,
    ReservationMismatch,
    WatchlistFull,
)
from portfolio.models import (
    CENT,
    ZERO,
    LedgerEntry,
    LedgerKind,
    NetWorthSnapshot,
    Portfolio,
    Position,
    Watchlist,
    WatchlistItem,
)

PRICE_STEP = Decimal("0.0001")
BASIS_STEP = Decimal("0.0001")
Side = Literal["buy", "sell"]
# Set on the instances portfolios_lock returns; balance changes refuse any other instance.
_LOCK_MARK = "_locked_for_update"
# Set on those instances: the positions locked with them (see _positions_cache).
_POSITIONS_MARK = "_locked_positions"


def money_fmt(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def _exact(value: Any, step: Decimal, what: str) -> Decimal:
    """`value` as a Decimal already on `step`. Amounts are quantized where they enter the
    system (forms, the fill model); one arriving here with more places is a bug, and
    rounding it silently would make reservations disagree with what reconcile expects."""
    if isinstance(value, (float, bool)):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}.")
    amount = Decimal(value)
    if not amount.is_finite() or amount != amount.quantize(step):
        raise InvalidAmount(
            f"{what} must be a number with at most {-step.as_tuple().exponent} decimals."
        )
    return amount.quantize(step)


def _shares(value: Any, what: str = "Quantity") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a whole number of shares.")
    if value < 0:
        raise InvalidAmount(f"{what} cannot be negative.", field="quantity")
    return value


def trade_notional(*, price: Decimal, quantity: int) -> Decimal:
    """The cash value of `quantity` shares at `price`, rounded half-up to the cent. Use it
    wherever a trade's cash is computed (estimates, reservations) so they match the ledger."""
    return (price * quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def _require_locked(portfolio: Portfolio) -> None:
    if not connection.in_atomic_block or not getattr(portfolio, _LOCK_MARK, False):
        raise PortfolioNotLocked(
            f"Portfolio #{portfolio.pk} must be locked with portfolios_lock() inside "
            "transaction.atomic() before its balances change."
        )


def _position_locked(*, portfolio: Portfolio, stock: Stock, create: bool) -> Position | None:
    """The position row, locked. Creating it is race-free because the portfolio is locked
    and every position writer locks the portfolio first. A position `portfolios_lock`
    already locked (its `stock=` argument) is not read again."""
    cache = _positions_cache(portfolio)
    if stock.pk in cache:
        position = cache[stock.pk]
    else:
        with connection.cursor() as cursor:
            cursor.execute(_POSITION_LOCK_SQL, [portfolio.pk, stock.pk])
            row = cursor.fetchone()
        position = Position.from_db(connection.alias, _POSITION_FIELDS, row) if row else None
    if position is None and create:
        position = Position.objects.create(portfolio=portfolio, stock=stock)
    if position is not None:
        position.stock = stock
    cache[stock.pk] = position
    return position


def _positions_cache(portfolio: Portfolio) -> dict[int, Position | None]:
    """The positions of a locked portfolio already locked in this transaction, by stock
    id (None: locked while absent; the portfolio lock keeps anyone from creating it)."""
    cache = getattr(portfolio, _POSITIONS_MARK, None)
    if cache is None:
        cache = {}
        setattr(portfolio, _POSITIONS_MARK, cache)
    return cache


def _entries_post(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    keys = [entry.idempotency_key for entry in entries]
    existing = set(
        LedgerEntry.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )
    if existing:
        key = sorted(existing)[0]
        raise DuplicateEntry(
            f"The ledger already holds an entry with idempotency key {key!r}; nothing was posted.",
            idempotency_key=key,
        )
    try:
        # No savepoint (two round trips per trade): the check above sees every committed
        # key, and a same-key race is serialized by the portfolio lock. Only a race between
        # two portfolios reusing one key gets here, and its transaction is aborted anyway.
        return LedgerEntry.objects.bulk_create(entries)
    except IntegrityError as error:
        if "idempotency_key" not in str(error):
            raise
        raise DuplicateEntry(
            "The ledger already holds one of these idempotency keys; nothing was posted.",
            idempotency_key=keys[0],
        ) from error


# --- Portfolios ---------------------------------------------------------------


def portfolio_open(*, owner: Any, name: str = "Main") -> Portfolio:
    """A new portfolio holding settings.STARTING_CASH, with the deposit that explains it.
    Raises DuplicateEntry if `owner` already opened their first portfolio."""
    starting_cash = _exact(settings.STARTING_CASH, CENT, "STARTING_CASH")
    key = f"open:{owner.pk}" if name == "Main" else f"open:{owner.pk}:{name}"
    with transaction.atomic():
        if Portfolio.objects.filter(owner=owner, name=name).exists():
            raise DuplicateEntry(
                f"@{owner} already has a portfolio named {name!r}.", idempotency_key=key
            )
        portfolio = Portfolio.objects.create(
            owner=owner,
            name=name,
            cash=starting_cash,
            starting_cash=starting_cash,
            net_deposits=starting_cash,
        )
        _entries_post(
            [
                LedgerEntry(
                    portfolio=portfolio,
                    kind=LedgerKind.DEPOSIT,
                    cash_delta=starting_cash,
                    reference=f"open:{portfolio.pk}",
                    idempotency_key=key,
                    memo="Starting cash",
                )
            ]
        )
    return portfolio


def portfolios_lock(
    *, portfolio_ids: Iterable[int], stock: Stock | None = None
) -> dict[int, Portfolio]:
    """Lock the portfolios (SELECT ... FOR NO KEY UPDATE) in ascending id order and return fresh
    copies by id. Pass these instances to the other services.

    With `stock`, each portfolio's position in it (if any) is locked in the same round
    trip, right after its portfolio (the lock order holds: a position is only ever locked
    under its portfolio's lock), and trade_settle / the reservations use it unread.
    Positions locked in a transaction stay on the portfolio instance: use it in that
    transaction only (as for its balances)."""
    if not connection.in_atomic_block:
        raise PortfolioNotLocked("portfolios_lock() must be called inside transaction.atomic().")
    wanted = sorted(set(portfolio_ids))
    with connection.cursor() as cursor:
        if stock is None:
            cursor.execute(_LOCK_SQL, [wanted])
        else:
            cursor.execute(_LOCK_WITH_POSITION_SQL, [wanted, stock.pk])
        rows = cursor.fetchall()
    width = len(_PORTFOLIO_FIELDS)
    locked: dict[int, Portfolio] = {}
    for row in rows:
        portfolio = Portfolio.from_db(connection.alias, _PORTFOLIO_FIELDS, row[:width])
        setattr(portfolio, _LOCK_MARK, True)
        if stock is not None and row[width] is not None:
            # Only a position found is kept. One that seems absent may have been created
            # by the transaction this lock waited for: committed after the statement's
            # snapshot, so the join cannot see it (a row it can see, it locks in its
            # latest version). _position_locked reads again, after the lock.
            position = Position.from_db(connection.alias, _POSITION_FIELDS, row[width:])
            position.stock = stock
            setattr(portfolio, _POSITIONS_MARK, {stock.pk: position})
        locked[portfolio.pk] = portfolio
    missing = [pk for pk in wanted if pk not in locked]
    if missing:
        raise PortfolioNotFound(f"No portfolio with id {', '.join(map(str, missing))}.")
    return locked


_PORTFOLIO_FIELDS = [field.attname for field in Portfolio._meta.concrete_fields]
_POSITION_FIELDS = [field.attname for field in Position._meta.concrete_fields]
_PORTFOLIO_COLUMNS = ", ".join(f'"{field.column}"' for field in Portfolio._meta.concrete_fields)
_POSITION_COLUMNS = ", ".join(f'"{field.column}"' for field in Position._meta.concrete_fields)
# Raw SQL: the lock is on every trade's path, and compiling the ORM query each time cost
# more CPU than the round trip. PostgreSQL locks rows as the sorted result is produced:
# ORDER BY id is the lock order. FOR NO KEY UPDATE, the lock an UPDATE of cash takes
# anyway: it excludes every other trade just the same, but not the KEY SHARE locks that
# rows referencing a portfolio take (the snapshots of every portfolio, inserted in bulk
# every five minutes), so a trade never waits for a snapshot run.
_LOCK_SQL = f"""
SELECT {_PORTFOLIO_COLUMNS} FROM portfolio_portfolio
WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608 - column names from the models, no input
_POSITION_LOCK_SQL = f"""
SELECT {_POSITION_COLUMNS} FROM portfolio_position
WHERE portfolio_id = %s AND stock_id = %s FOR UPDATE
"""  # noqa: S608 - the same
# The CTE locks each portfolio before the LATERAL reads (and locks) its position: the
# portfolio row is locked as the CTE produces it, ahead of the join that needs its id.
_LOCK_WITH_POSITION_SQL = f"""
WITH locked AS MATERIALIZED (
    SELECT {_PORTFOLIO_COLUMNS} FROM portfolio_portfolio
    WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE
)
SELECT locked.*, position.* FROM locked
LEFT JOIN LATERAL (
    SELECT {_POSITION_COLUMNS} FROM portfolio_position
    WHERE portfolio_id = locked.id AND stock_id = %s FOR UPDATE
) AS position ON true
ORDER BY locked.id
"""  # noqa: S608 - the same


# --- Reservations ---------------------------------------------------------------


def reservation_hold(
    *,
    portfolio: Portfolio,
    stock: Stock | None = None,
    cash: Decimal = ZERO,
    quantity: int = 0,
) -> None:
    """Set aside cash (for a buy) and/or shares of `stock` (for a sell) so they cannot be
    spent twice. Not a ledger movement: reconcile checks reservations against open orders
    and offers instead."""
    _require_locked(portfolio)
    cash = _exact(cash, CENT, "Cash to reserve")
    quantity = _shares(quantity)
    if cash < 0:
        raise InvalidAmount("Cash to reserve cannot be negative.")
    if cash:
        available = portfolio.cash - portfolio.reserved_cash
        if cash > available:
            raise InsufficientFunds(
                f"Not enough buying power: this needs {money_fmt(cash)} "
                f"and {money_fmt(available)} is available."
            )
    position = None
    if quantity:
        if stock is None:
            raise InvalidAmount("Reserving shares needs a stock.", field="stock")
        position = _position_locked(portfolio=portfolio, stock=stock, create=False)
        available_shares = position.available_quantity if position else 0
        if quantity > available_shares:
            raise InsufficientShares(_shares_message(stock, position, quantity))
    if cash:
        portfolio.reserved_cash += cash
        portfolio.save(update_fields=["reserved_cash"])
    if position is not None:
        position.reserved_quantity += quantity
        position.save(update_fields=["reserved_quantity"])


def reservation_release(
    *,
    portfolio: Portfolio,
    stock: Stock | None = None,
    cash: Decimal = ZERO,
    quantity: int = 0,
) -> None:
    """Give back what reservation_hold set aside (an order cancelled, expired or filled)."""
    _require_locked(portfolio)
    cash = _exact(cash, CENT, "Cash to release")
    quantity = _shares(quantity)
    reserved_cash = _cash_after_release(portfolio=portfolio, cash=cash)
    position = _position_after_release(portfolio=portfolio, stock=stock, quantity=quantity)
    if cash:
        portfolio.reserved_cash = reserved_cash
        portfolio.save(update_fields=["reserved_cash"])
    if position is not None:
        position.reserved_quantity -= quantity
        position.save(update_fields=["reserved_quantity"])


def _cash_after_release(*, portfolio: Portfolio, cash: Decimal) -> Decimal:
    if cash < 0:
        raise InvalidAmount("Cash to release cannot be negative.")
    if cash > portfolio.reserved_cash:
        raise ReservationMismatch(
            f"Cannot release {money_fmt(cash)}: portfolio #{portfolio.pk} has "
            f"{money_fmt(portfolio.reserved_cash)} reserved."
        )
    return portfolio.reserved_cash - cash


def _position_after_release(
    *, portfolio: Portfolio, stock: Stock | None, quantity: int
) -> Position | None:
    """The locked position if shares are to be released and that many are reserved."""
    if not quantity:
        return None
    if stock is None:
        raise InvalidAmount("Releasing shares needs a stock.", field="stock")
    position = _position_locked(portfolio=portfolio, stock=stock, create=False)
    held = position.reserved_quantity if position else 0
    if quantity > held:
        raise ReservationMismatch(
            f"Cannot release {quantity} {stock.symbol}: portfolio #{portfolio.pk} has "
            f"{held} reserved."
        )
    return position


def _shares_message(stock: Stock, position: Position | None, wanted: int, released: int = 0) -> str:
    held = position.quantity if position else 0
    if not held:
        return f"You hold no {stock.symbol} shares; this needs {wanted:,}."
    reserved = position.reserved_quantity - released
    return (
        f"Not enough {stock.symbol} shares: this needs {wanted:,} and {held - reserved:,} "
        f"are available ({held:,} held, {reserved:,} reserved by open orders or offers)."
    )


# --- Trades -------------------------------------------------------------------


def trade_settle(
    *,
    portfolio: Portfolio,
    stock: Stock,
    side: Side,
    quantity: int,
    price: Decimal,
    fee: Decimal,
    reference: str,
    idempotency_key: str,
    kind_prefix: str = "",
    release_cash: Decimal = ZERO,
    release_quantity: int = 0,
) -> list[LedgerEntry]:
    """Settle one side of a trade on a locked portfolio: release the reservation that
    backed it, check funds or shares, post the ledger entries (the trade, then the fee as
    its own entry) and update cash and the position in the same transaction.

    Average-cost accounting: a buy adds its cost and fee to the cost basis; a sell removes
    the sold fraction of the cost basis and books proceeds - fee - that cost as realized
    P&L. A trade between two players calls this once per side under one shared
    `reference` (with different keys); a fill against the market calls it once.

    Nothing changes, in memory or in the database, when it raises.
    """
    _require_locked(portfolio)
    if side not in ("buy", "sell"):
        raise InvalidAmount(f"Side must be 'buy' or 'sell', not {side!r}.", field="side")
    if kind_prefix not in ("", "offer_"):
        raise InvalidAmount(f"Unknown kind prefix {kind_prefix!r}.")
    quantity = _shares(quantity)
    if quantity == 0:
        raise InvalidAmount("A trade moves at least one share.", field="quantity")
    price = _exact(price, PRICE_STEP, "Price")
    if price <= 0:
        raise InvalidAmount("Price must be above zero.", field="price")
    fee = _exact(fee, CENT, "Fee")
    if fee < 0:
        raise InvalidAmount("A fee cannot be negative.", field="fee")
    if not reference or not idempotency_key:
        raise InvalidAmount("A trade needs a reference and an idempotency key.")
    release_cash = _exact(release_cash, CENT, "Cash to release")
    release_quantity = _shares(release_quantity)

    # Compute the new balances first and assign them only once every check passed.
    reserved_cash = _cash_after_release(portfolio=portfolio, cash=release_cash)
    position = _position_after_release(portfolio=portfolio, stock=stock, quantity=release_quantity)
    available = portfolio.cash - reserved_cash
    notional = trade_notional(price=price, quantity=quantity)
    if side == "buy":
        cash_delta = -notional
        if notional + fee > available:
            raise InsufficientFunds(
                f"Not enough buying power: {quantity:,} {stock.symbol} at {price} plus a "
                f"{money_fmt(fee)} fee needs {money_fmt(notional + fee)} and "
                f"{money_fmt(available)} is available."
            )
        # A first buy inserts the position in the same statement as the entries.
        position = (
            position
            or _position_locked(portfolio=portfolio, stock=stock, create=False)
            or Position(portfolio=portfolio, stock=stock)
        )
        new_quantity = position.quantity + quantity
        new_cost_basis = position.cost_basis + notional + fee
        new_realized = position.realized_pnl
    else:
        cash_delta = notional
        position = position or _position_locked(portfolio=portfolio, stock=stock, create=False)
        shares_free = (
            position.quantity - position.reserved_quantity + release_quantity if position else 0
        )
        if quantity > shares_free:
            raise InsufficientShares(_shares_message(stock, position, quantity, release_quantity))
        if fee > available + notional:
            raise InsufficientFunds(
                f"The {money_fmt(fee)} fee exceeds the sale's proceeds plus the "
                f"{money_fmt(available)} available."
            )
        if quantity == position.quantity:
            sold_cost = position.cost_basis
        else:
            sold_cost = (position.cost_basis * quantity / position.quantity).quantize(
                BASIS_STEP, rounding=ROUND_HALF_UP
            )
        new_quantity = position.quantity - quantity
        new_cost_basis = position.cost_basis - sold_cost
        new_realized = position.realized_pnl + notional - fee - sold_cost

    now = timezone.now()
    entries = [
        LedgerEntry(
            portfolio=portfolio,
            kind=f"{kind_prefix}{side}",
            cash_delta=cash_delta,
            stock=stock,
            quantity_delta=quantity if side == "buy" else -quantity,
            price=price,
            reference=reference,
            idempotency_key=idempotency_key,
            created_at=now,
        )
    ]
    if fee:
        entries.append(
            LedgerEntry(
                portfolio=portfolio,
                kind=LedgerKind.FEE,
                cash_delta=-fee,
                stock=stock,
                reference=reference,
                idempotency_key=f"{idempotency_key}:fee",
                memo=f"Commission on {side} of {quantity:,} {stock.symbol}",
                created_at=now,
            )
        )
    # One statement posts the entries and writes both balances, or, if a key is already
    # in the ledger, writes nothing. Then the instances follow.
    posted = _trade_write(
        entries=entries,
        portfolio=portfolio,
        cash=portfolio.cash + cash_delta - fee,
        reserved_cash=reserved_cash,
        position=position,
        position_values=(
            new_quantity,
            position.reserved_quantity - release_quantity,
            new_cost_basis,
            new_realized,
        ),
    )
    portfolio.cash += cash_delta - fee
    portfolio.reserved_cash = reserved_cash
    position.quantity = new_quantity
    position.reserved_quantity -= release_quantity
    position.cost_basis = new_cost_basis
    position.realized_pnl = new_realized
    _positions_cache(portfolio)[stock.pk] = position
    return posted


def _trade_write(
    *,
    entries: list[LedgerEntry],
    portfolio: Portfolio,
    cash: Decimal,
    reserved_cash: Decimal,
    position: Position,
    position_values: tuple[int, int, Decimal, Decimal],
) -> list[LedgerEntry]:
    """A trade's writes in one round trip (it was five: the key check, the entries, the
    portfolio, the position's insert or update): the ledger entries, inserted only if
    none of their keys exists, then - only if they were - the portfolio's cash and the
    position. Raises DuplicateEntry, having written nothing, if a key exists."""
    new_position = position.pk is None
    entry_fields = _entry_fields()
    entry_row = "(" + ", ".join(f"%s::{cast}" for _, cast in entry_fields) + ")"
    params: list[Any] = [[entry.idempotency_key for entry in entries]]
    for entry in entries:
        params.extend(
            field.get_db_prep_save(field.pre_save(entry, True), connection)
            for field, _ in entry_fields
        )
    params += [cash, reserved_cash, portfolio.pk]
    if new_position:
        params += [portfolio.pk, position.stock_id, *position_values]
    else:
        params += [*position_values, position.pk]
    sql = _TRADE_WRITE_SQL.format(
        entry_columns=", ".join(f'"{field.column}"' for field, _ in entry_fields),
        entry_rows=", ".join([entry_row] * len(entries)),
        holding=_POSITION_INSERT_SQL if new_position else _POSITION_UPDATE_SQL,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    except IntegrityError as error:
        # Only a race between two portfolios reusing one key gets here (a same-key race
        # on one portfolio is serialized by its lock); the transaction is aborted anyway.
        if "idempotency_key" not in str(error):
            raise
        raise DuplicateEntry(
            "The ledger already holds one of these idempotency keys; nothing was posted.",
            idempotency_key=entries[0].idempotency_key,
        ) from error
    entry_ids = sorted(row_id for row_id, is_position in rows if not is_position)
    if not entry_ids:
        key = (
            LedgerEntry.objects.filter(idempotency_key__in=params[0])
            .order_by("idempotency_key")
            .values_list("idempotency_key", flat=True)
            .first()
        )
        raise DuplicateEntry(
            f"The ledger already holds an entry with idempotency key {key!r}; nothing was posted.",
            idempotency_key=key or entries[0].idempotency_key,
        )
    # Sequence values follow the VALUES order within one INSERT.
    for entry, entry_id in zip(entries, entry_ids, strict=True):
        entry.pk = entry_id
        entry._state.adding = False
        entry._state.db = connection.alias
    if new_position:
        position.pk = next(row_id for row_id, is_position in rows if is_position)
        position._state.adding = False
        position._state.db = connection.alias
    return entries


_ENTRY_FIELDS: list[tuple[Any, str]] = []


def _entry_fields() -> list[tuple[Any, str]]:
    """LedgerEntry's columns (but the id) and their SQL types, for the VALUES casts."""
    if not _ENTRY_FIELDS:
        _ENTRY_FIELDS.extend(
            (field, field.cast_db_type(connection))
            for field in LedgerEntry._meta.concrete_fields
            if not field.primary_key
        )
    return _ENTRY_FIELDS


_TRADE_WRITE_SQL = """
WITH duplicate AS (
    SELECT 1 FROM portfolio_ledgerentry WHERE idempotency_key = ANY(%s::varchar[]) LIMIT 1
), posted AS (
    INSERT INTO portfolio_ledgerentry ({entry_columns})
    SELECT * FROM (VALUES {entry_rows}) AS entry
    WHERE NOT EXISTS (SELECT 1 FROM duplicate)
    RETURNING id
), balance AS (
    UPDATE portfolio_portfolio SET cash = %s::numeric, reserved_cash = %s::numeric
    WHERE id = %s AND EXISTS (SELECT 1 FROM posted)
), holding AS ({holding})
SELECT id, false FROM posted UNION ALL SELECT id, true FROM holding
"""
_POSITION_UPDATE_SQL = """
    UPDATE portfolio_position
    SET quantity = %s, reserved_quantity = %s, cost_basis = %s::numeric, realized_pnl = %s::numeric
    WHERE id = %s AND EXISTS (SELECT 1 FROM posted)
    RETURNING id
"""
_POSITION_INSERT_SQL = """
    INSERT INTO portfolio_position
        (portfolio_id, stock_id, quantity, reserved_quantity, cost_basis, realized_pnl)
    SELECT %s, %s, %s, %s, %s::numeric, %s::numeric WHERE EXISTS (SELECT 1 FROM posted)
    RETURNING id
"""


# --- Adjustments ----------------------------------------------------------------


def cash_adjust(
    *, portfolio: Portfolio, amount: Decimal, reason: str, by: Any, idempotency_key: str
) -> LedgerEntry:
    """Grant (amount > 0) or remove (amount < 0) cash by hand: a moderator's correction.
    Never takes cash below what open orders and offers have reserved."""
    amount = _exact(amount, CENT, "Amount")
    reason = (reason or "").strip()
    if not amount:
        raise InvalidAmount("The adjustment amount cannot be zero.")
    if not reason:
        raise PortfolioError("Give a reason for the adjustment.", field="reason")
    if not idempotency_key:
        raise InvalidAmount("An adjustment needs an idempotency key.")
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        available = locked.cash - locked.reserved_cash
        if amount < 0 and -amount > available:
            raise InsufficientFunds(
                f"Cannot remove {money_fmt(-amount)}: only {money_fmt(available)} is not "
                "reserved by open orders or offers.",
                field="amount",
            )
        (entry,) = _entries_post(
            [
                LedgerEntry(
                    portfolio=locked,
                    kind=LedgerKind.ADJUSTMENT,
                    cash_delta=amount,
                    reference=f"adjustment:{idempotency_key}"[:80],
                    idempotency_key=idempotency_key,
                    memo=reason[:280],
                    created_by=by,
                )
            ]
        )
        locked.cash += amount
        # Money from outside the game: a time-weighted return leaves it out.
        locked.net_deposits += amount
        locked.save(update_fields=["cash", "net_deposits"])
    portfolio.cash, portfolio.reserved_cash = locked.cash, locked.reserved_cash
    return entry


# --- Logins ---------------------------------------------------------------------


def portfolio_login_record(*, owner: Any, at: datetime | None = None) -> None:
    """Remember each portfolio's net worth at this login, keeping the previous login's,
    so the dashboard can show the change since the player was last here."""
    at = at or timezone.now()
    with transaction.atomic():
        portfolios = list(
            Portfolio.objects.select_for_update(no_key=True).filter(owner=owner).order_by("pk")
        )
        if not portfolios:
            return
        holdings = dict(
            Position.objects.filter(portfolio__in=portfolios, quantity__gt=0)
            .values("portfolio")
            .annotate(value=Sum(F("quantity") * F("stock__last_price")))
            .values_list("portfolio", "value")
        )
        for portfolio in portfolios:
            net_worth = (portfolio.cash + (holdings.get(portfolio.pk) or ZERO)).quantize(CENT)
            portfolio.previous_login_net_worth = portfolio.last_login_net_worth
            portfolio.previous_login_at = portfolio.last_login_at
            portfolio.last_login_net_worth = net_worth
            portfolio.last_login_at = at
        Portfolio.objects.bulk_update(
            portfolios,
            [
                "previous_login_net_worth",
                "previous_login_at",
                "last_login_net_worth",
                "last_login_at",
            ],
        )


# --- Watchlist ------------------------------------------------------------------


def _watchlist_locked(user: Any) -> Watchlist:
    watchlist, _ = Watchlist.objects.get_or_create(owner=user)
    # Lock it so two concurrent adds cannot both pass the size check.
    return Watchlist.objects.select_for_update().get(pk=watchlist.pk)


def watchlist_add(*, user: Any, stock: Stock) -> WatchlistItem:
    """Watch `stock`. Adding one already watched is a no-op that returns the item."""
    limit = settings.MAX_WATCHLIST
    with transaction.atomic():
        watchlist = _watchlist_locked(user)
        item = WatchlistItem.objects.filter(watchlist=watchlist, stock=stock).first()
        if item is not None:
            return item
        if WatchlistItem.objects.filter(watchlist=watchlist).count() >= limit:
            raise WatchlistFull(
                f"Your watchlist is full: it holds at most {limit} stocks. "
                f"Remove one to add {stock.symbol}."
            )
        return WatchlistItem.objects.create(watchlist=watchlist, stock=stock)


def watchlist_remove(*, user: Any, stock: Stock) -> bool:
    """Stop watching `stock`; returns whether it was watched."""
    deleted, _ = WatchlistItem.objects.filter(watchlist__owner=user, stock=stock).delete()
    return bool(deleted)


# --- Snapshots ------------------------------------------------------------------

SNAPSHOT_SLOT_SECONDS = 300
# pg_advisory_xact_lock key: one snapshot run at a time (a late beat run overlapping the
# next one). Each statement carries growth on from PortfolioPerformance, so two runs
# computing from the same old row would write the chain twice. No portfolio row is
# locked: trading never waits for a snapshot.
_SNAPSHOT_LOCK_KEY = 7_340_101

# One statement per snapshot: value every portfolio at last prices, carry its growth one
# step from its performance row (the sum growth_step does; a portfolio without one steps
# from net worth = deposits = starting cash, growth 1), insert the snapshots, and move
# the performance rows on from the snapshots actually inserted. A portfolio whose
# performance is already at or past `at` is left out, so the chain only moves forward
# and a rerun of the same slot writes nothing. A close snapshot also adds the day's
# return (close growth to close growth) to the running sums the Sharpe ratio reads.
# Every portfolio's holdings at last prices, one hash aggregate: the first CTE of the
# snapshot statement and of the leaderboard's recompute (portfolio.leaderboard).
HOLDINGS_CTE = """
holdings AS (
    SELECT pos.portfolio_id, sum(pos.quantity * s.last_price) AS value
    FROM portfolio_position pos
    JOIN market_stock s ON s.id = pos.stock_id
    WHERE pos.quantity > 0
    GROUP BY pos.portfolio_id
)"""

_SNAPSHOT_SQL = f"""
WITH {HOLDINGS_CTE}, valued AS (
    SELECT p.id AS portfolio_id, p.cash, p.net_deposits,
           round(p.cash + coalesce(h.value, 0), 2) AS net_worth,
           perf.portfolio_id IS NOT NULL AS known,
           coalesce(perf.last_net_worth, p.starting_cash) AS previous_net_worth,
           coalesce(perf.last_net_deposits, p.starting_cash) AS previous_deposits,
           coalesce(perf.growth, 1) AS previous_growth,
           coalesce(perf.peak_growth, 1) AS previous_peak,
           coalesce(perf.max_drawdown, 0) AS previous_drawdown,
           perf.close_at, perf.close_growth,
           coalesce(perf.daily_returns, 0) AS daily_returns,
           coalesce(perf.daily_return_sum, 0) AS daily_return_sum,
           coalesce(perf.daily_return_sum_sq, 0) AS daily_return_sum_sq
    FROM portfolio_portfolio p
    LEFT JOIN holdings h ON h.portfolio_id = p.id
    LEFT JOIN portfolio_portfolioperformance perf ON perf.portfolio_id = p.id
    WHERE p.created_at <= %(at)s AND (perf.last_at IS NULL OR perf.last_at < %(at)s)
), stepped AS MATERIALIZED (
    -- Materialized so that each row's growth is divided out once, not once per use.
    SELECT valued.*,
           CASE WHEN previous_net_worth <= 0 THEN previous_growth
                ELSE round(greatest(previous_growth
                     * (net_worth - (net_deposits - previous_deposits))
                     / previous_net_worth, 0), 12)
           END AS growth
    FROM valued
), figures AS MATERIALIZED (
    SELECT stepped.*,
           greatest(previous_peak, growth) AS peak_growth,
           least(previous_drawdown,
                 round(growth / greatest(previous_peak, growth) - 1, 12)) AS max_drawdown,
           -- The day's return, at a close that has a previous close to compare with.
           CASE WHEN %(is_close)s AND close_growth > 0
                THEN round(growth / close_growth - 1, 12) END AS daily_return
    FROM stepped
), inserted AS (
    INSERT INTO portfolio_networthsnapshot
        (portfolio_id, at, net_worth, cash, net_deposits, growth, is_close)
    SELECT portfolio_id, %(at)s, net_worth, cash, net_deposits, growth, %(is_close)s
    FROM figures
    -- Inserted, hence foreign-key checked at commit, in id order: the order trades lock
    -- portfolios in, so the checks' KEY SHARE locks cannot deadlock with a trade.
    ORDER BY portfolio_id
    ON CONFLICT (portfolio_id, at) DO NOTHING
    RETURNING portfolio_id
), moved AS (
    SELECT f.*,
           CASE WHEN %(is_close)s THEN %(at)s ELSE f.close_at END AS new_close_at,
           CASE WHEN %(is_close)s THEN f.growth ELSE f.close_growth END AS new_close_growth,
           f.daily_returns + (f.daily_return IS NOT NULL)::int AS new_daily_returns,
           f.daily_return_sum + coalesce(f.daily_return, 0) AS new_sum,
           f.daily_return_sum_sq + round(coalesce(f.daily_return * f.daily_return, 0), 12)
               AS new_sum_sq
    FROM figures f
    JOIN inserted USING (portfolio_id)
), updated AS (
    -- A plain UPDATE, not an upsert: no per-row probe and tuple lock. Only snapshots
    -- write these rows, one run at a time (the advisory lock).
    UPDATE portfolio_portfolioperformance perf SET
        last_at = %(at)s,
        last_net_worth = m.net_worth,
        last_net_deposits = m.net_deposits,
        growth = m.growth,
        peak_growth = m.peak_growth,
        max_drawdown = m.max_drawdown,
        close_at = m.new_close_at,
        close_growth = m.new_close_growth,
        daily_returns = m.new_daily_returns,
        daily_return_sum = m.new_sum,
        daily_return_sum_sq = m.new_sum_sq
    FROM moved m
    WHERE m.known AND perf.portfolio_id = m.portfolio_id
    RETURNING 1
), created AS (
    INSERT INTO portfolio_portfolioperformance (
        portfolio_id, last_at, last_net_worth, last_net_deposits, growth, peak_growth,
        max_drawdown, close_at, close_growth, daily_returns, daily_return_sum,
        daily_return_sum_sq
    )
    SELECT portfolio_id, %(at)s, net_worth, net_deposits, growth, peak_growth, max_drawdown,
           new_close_at, new_close_growth, new_daily_returns, new_sum, new_sum_sq
    FROM moved
    WHERE NOT known
    ORDER BY portfolio_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted),
       (SELECT count(*) FROM updated) + (SELECT count(*) FROM created)
"""  # noqa: S608 - a constant CTE, no input


@dataclass(frozen=True)
class SnapshotRun:
    """What one run of the snapshot task wrote."""

    slot: datetime
    # The session close this run made sure of, and how many close snapshots it wrote
    # (0 when that close was already taken).
    close_at: datetime
    close_written: int
    # Snapshots written for the five-minute slot; None when none were due: no price
    # moved since the newest snapshot, or the close row stands for this slot.
    slot_written: int | None

    @property
    def written(self) -> int:
        return self.close_written + (self.slot_written or 0)

    @property
    def prices_moved(self) -> bool:
        return self.slot_written is not None or self.slot == self.close_at


def snapshot_slot(at: datetime) -> datetime:
    """`at` rounded down to its snapshot slot, so a rerun inside the slot writes nothing."""
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % SNAPSHOT_SLOT_SECONDS, tz=UTC)


def _snapshot_lock(cursor: Any) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SNAPSHOT_LOCK_KEY])
    bulk_statement_prepare(cursor)


def bulk_statement_prepare(cursor: Any) -> None:
    """For one set-based statement over every portfolio (this transaction only). The
    planner overestimates the CTEs' rows: with JIT on, compiling the statement took
    longer than running it. And the sorts and hashes of 100,000 rows fit in memory."""
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '64MB'")


def _snapshots_write(cursor: Any, *, at: datetime, is_close: bool) -> int:
    cursor.execute(_SNAPSHOT_SQL, {"at": at, "is_close": is_close})
    inserted, performed = cursor.fetchone()
    if inserted != performed:  # pragma: no cover - the statement's own invariant
        raise PortfolioError(f"Snapshot at {at}: {inserted} rows but {performed} performances.")
    return inserted


def net_worth_snapshot_take(*, at: datetime | None = None) -> SnapshotRun:
    """Snapshot every portfolio, set-based (one statement per kind, never a query per
    portfolio):

    - the latest session close, once: when no close snapshot exists at that close, it is
      written now at current prices (a worker that was down when the session closed
      still records it on its next run);
    - the five-minute slot of `at`, only if some stock was quoted since the newest
      snapshot; when the slot is the close itself, the close row stands for it.

    Idempotent: rerunning in the same slot writes nothing."""
    at = at or timezone.now()
    slot = snapshot_slot(at)
    close = session_start(at)
    # Each kind commits on its own: the deferred foreign-key checks of the inserted rows
    # run at commit and take KEY SHARE on each portfolio until it ends. Trades lock
    # portfolios FOR NO KEY UPDATE, which does not wait for those; a moderator's
    # FOR UPDATE would. Two commits keep each hold short.
    close_written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        _snapshot_lock(cursor)
        if not NetWorthSnapshot.objects.filter(at=close, is_close=True).exists():
            close_written = _snapshots_write(cursor, at=close, is_close=True)
    if slot == close:
        return SnapshotRun(
            slot=slot, close_at=close, close_written=close_written, slot_written=None
        )
    with transaction.atomic(), connection.cursor() as cursor:
        _snapshot_lock(cursor)
        newest = NetWorthSnapshot.objects.aggregate(newest=Max("at"))["newest"]
        if newest is not None and newest >= slot:
            slot_written: int | None = 0  # this slot is taken: a rerun
        # `>=`: a quote stamped at the newest snapshot's own time may have committed
        # after that snapshot read the prices. At worst one snapshot repeats the last.
        elif newest is None or Stock.objects.filter(quoted_at__gte=newest).exists():
            slot_written = _snapshots_write(cursor, at=slot, is_close=False)
        else:
            slot_written = None
    return SnapshotRun(
        slot=slot, close_at=close, close_written=close_written, slot_written=slot_written
    )
