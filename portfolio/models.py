"""Portfolios, positions, the ledger, watchlists and net-worth snapshots.

Only portfolio.services writes these tables. `Portfolio.cash`/`reserved_cash` and
`Position.quantity`/`reserved_quantity` are caches of the ledger, updated in the same
transaction as the entries that justify them (see `manage.py reconcile`).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.functional import cached_property

CASH = {"max_digits": 14, "decimal_places": 2}
PRICE = {"max_digits": 14, "decimal_places": 4}
# Cost basis and realized P&L keep 4 places: average-cost accounting divides them when
# part of a position is sold, and rounding each partial sale to cents would drift.
BASIS = {"max_digits": 18, "decimal_places": 4}
# Net worth of a whole portfolio (cash plus holdings), wider than one cash balance.
WORTH = {"max_digits": 16, "decimal_places": 2}
# Time-weighted growth of 1 since a portfolio opened, and statistics of its returns:
# ratios, not money, kept exact enough that a year of five-minute steps does not drift.
GROWTH = {"max_digits": 24, "decimal_places": 12}
CENT = Decimal("0.01")
ZERO = Decimal("0")


class Portfolio(models.Model):
    """A pot of cash and shares. Every trade acts on a portfolio, never on a user."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="portfolios"
    )
    name = models.CharField(max_length=60, default="Main")
    cash = models.DecimalField(**CASH, default=ZERO)
    # Held by open buy orders and outstanding offers: part of `cash`, not spendable.
    reserved_cash = models.DecimalField(**CASH, default=ZERO)
    starting_cash = models.DecimalField(**CASH, default=ZERO)
    # Cash paid in from outside the game: the starting deposit and staff adjustments.
    # Time-weighted returns take these flows out, so a grant never counts as a gain.
    net_deposits = models.DecimalField(**CASH, default=ZERO)
    created_at = models.DateTimeField(default=timezone.now)
    # Net worth at the most recent login and at the one before it: the dashboard shows
    # the change since the previous login, which the latest one would hide.
    last_login_net_worth = models.DecimalField(**CASH, null=True, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    previous_login_net_worth = models.DecimalField(**CASH, null=True, blank=True)
    previous_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Staff: cash changes only through a ledger adjustment (portfolio.services.cash_adjust).
        permissions = [("adjust_cash", "Can adjust a player's cash")]
        constraints = [
            models.CheckConstraint(
                condition=Q(reserved_cash__gte=0), name="portfolio_reserved_cash_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(cash__gte=F("reserved_cash")), name="portfolio_cash_covers_reserved"
            ),
            models.UniqueConstraint(fields=["owner", "name"], name="portfolio_owner_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def buying_power(self) -> Decimal:
        return self.cash - self.reserved_cash


class Position(models.Model):
    """Shares of one stock held by one portfolio. The row stays when it is sold out, so
    the realized P&L of closed positions is kept."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="positions")
    stock = models.ForeignKey("market.Stock", on_delete=models.PROTECT, related_name="positions")
    quantity = models.BigIntegerField(default=0)
    # Held by open sell orders and outstanding offers: part of `quantity`.
    reserved_quantity = models.BigIntegerField(default=0)
    # Total cost of the shares held, fees included (average-cost accounting).
    cost_basis = models.DecimalField(**BASIS, default=ZERO)
    realized_pnl = models.DecimalField(**BASIS, default=ZERO)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "stock"], name="position_unique"),
            models.CheckConstraint(
                condition=Q(reserved_quantity__gte=0), name="position_reserved_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=F("reserved_quantity")),
                name="position_quantity_covers_reserved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.stock_id} in #{self.portfolio_id}"

    # The figures below are cached per instance: a page reads each several times. Load a
    # fresh row to see a new price.

    @property
    def available_quantity(self) -> int:
        return self.quantity - self.reserved_quantity

    @property
    def average_cost(self) -> Decimal:
        if not self.quantity:
            return ZERO
        return (self.cost_basis / self.quantity).quantize(Decimal("0.0001"))

    @cached_property
    def market_value(self) -> Decimal:
        return (self.stock.last_price * self.quantity).quantize(CENT)

    @cached_property
    def unrealized_pnl(self) -> Decimal:
        return (self.stock.last_price * self.quantity - self.cost_basis).quantize(CENT)

    @cached_property
    def unrealized_pnl_pct(self) -> Decimal | None:
        if not self.cost_basis:
            return None
        return (self.unrealized_pnl / self.cost_basis * 100).quantize(CENT)

    @cached_property
    def day_change(self) -> Decimal:
        stock = self.stock
        if not stock.previous_close:
            return ZERO
        return ((stock.last_price - stock.previous_close) * self.quantity).quantize(CENT)


class LedgerKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    FEE = "fee", "Fee"
    OFFER_BUY = "offer_buy", "Offer buy"
    OFFER_SELL = "offer_sell", "Offer sell"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerEntry(models.Model):
    """One immutable movement of cash and/or shares. A database trigger (migration 0002)
    refuses UPDATE and DELETE, so a bug cannot rewrite history either."""

    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=24, choices=LedgerKind.choices)
    cash_delta = models.DecimalField(**CASH, default=ZERO)
    stock = models.ForeignKey(
        "market.Stock", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    quantity_delta = models.BigIntegerField(default=0)
    price = models.DecimalField(**PRICE, null=True, blank=True)
    # What caused it: "fill:123", "offer:45/settle:3", "adjustment:<key>". The entries of
    # one event (a trade and its fee, both sides of a player-to-player trade) share it.
    reference = models.CharField(max_length=80, db_index=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    memo = models.CharField(max_length=280, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who made a manual adjustment; empty for trades.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["portfolio", "created_at"], name="ledger_portfolio_time_idx"),
            # The running balance orders by id within a portfolio.
            models.Index(fields=["portfolio", "id"], name="ledger_portfolio_id_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_delta=0) | Q(stock__isnull=False),
                name="ledger_shares_name_a_stock",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.cash_delta} ({self.reference})"


class Watchlist(models.Model):
    """A player's watched stocks. It belongs to the person, not to a portfolio: what
    someone follows doesn't change with the game they play."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watchlist"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Watchlist of {self.owner_id}"


class WatchlistItem(models.Model):
    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="items")
    stock = models.ForeignKey("market.Stock", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["watchlist", "stock"], name="watchlist_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.stock_id} on {self.watchlist_id}"


class NetWorthSnapshot(models.Model):
    """Net worth at a moment, written for every portfolio by one set-based statement
    every five minutes while prices move, plus one at each session close."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="snapshots")
    at = models.DateTimeField()
    net_worth = models.DecimalField(**WORTH)
    cash = models.DecimalField(**CASH)
    # Portfolio.net_deposits at that moment: the flows between two snapshots are the
    # difference, which the time-weighted return takes out.
    net_deposits = models.DecimalField(**CASH, db_default=ZERO)
    # Time-weighted growth of 1 since the portfolio opened (1.05 is +5%): the chain of
    # each step's return with deposits and grants taken out.
    growth = models.DecimalField(**GROWTH, db_default=Decimal(1))
    # The snapshot at a session close: the daily series that risk figures use.
    is_close = models.BooleanField(db_default=False)

    class Meta:
        constraints = [
            # The snapshot time is rounded to its slot, so a rerun of the task is a no-op.
            models.UniqueConstraint(fields=["portfolio", "at"], name="snapshot_unique_slot"),
            models.CheckConstraint(condition=Q(growth__gte=0), name="snapshot_growth_not_negative"),
        ]
        indexes = [
            models.Index(fields=["at"], name="snapshot_at_idx"),
            models.Index(
                fields=["portfolio", "at"], name="snapshot_close_idx", condition=Q(is_close=True)
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.portfolio_id} {self.net_worth} at {self.at:%Y-%m-%d %H:%M}"


class PortfolioPerformance(models.Model):
    """Running figures of one portfolio, carried forward by each snapshot in the same
    statement that writes it: the next snapshot, the leaderboard and the profile read
    one row instead of the history."""

    portfolio = models.OneToOneField(
        Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="performance"
    )
    # The latest snapshot: the next step's return starts here.
    last_at = models.DateTimeField()
    last_net_worth = models.DecimalField(**WORTH)
    last_net_deposits = models.DecimalField(**CASH)
    growth = models.DecimalField(**GROWTH, default=Decimal(1))
    peak_growth = models.DecimalField(**GROWTH, default=Decimal(1))
    # Deepest fall of growth from its peak so far, as a fraction (-0.25 is -25%).
    max_drawdown = models.DecimalField(max_digits=13, decimal_places=12, default=ZERO)
    # The latest session-close snapshot and the daily returns between closes, summed
    # so that mean and variance (hence the Sharpe ratio) need no history.
    close_at = models.DateTimeField(null=True, blank=True)
    close_growth = models.DecimalField(**GROWTH, null=True, blank=True)
    daily_returns = models.PositiveIntegerField(default=0)
    daily_return_sum = models.DecimalField(**GROWTH, default=ZERO)
    daily_return_sum_sq = models.DecimalField(**GROWTH, default=ZERO)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(growth__gte=0) & Q(peak_growth__gte=F("growth")),
                name="performance_growth_under_peak",
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown__lte=0) & Q(max_drawdown__gte=-1),
                name="performance_drawdown_range",
            ),
            models.CheckConstraint(
                condition=Q(daily_return_sum_sq__gte=0), name="performance_sum_sq_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.portfolio_id} growth {self.growth}"
