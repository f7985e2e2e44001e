"""Orders and their fills. Rows are written by trading.services only."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

PRICE = {"max_digits": 14, "decimal_places": 4}
CASH = {"max_digits": 18, "decimal_places": 2}
MAX_QUANTITY = 10**9


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP = "stop", "Stop"
    STOP_LIMIT = "stop_limit", "Stop limit"
    TRAILING_STOP = "trailing_stop", "Trailing stop"


class TimeInForce(models.TextChoices):
    DAY = "day", "Day"
    GTC = "gtc", "Good till cancelled"


class OrderStatus(models.TextChoices):
    # Only inside the placing transaction; never seen after a commit.
    PENDING = "pending", "Pending"
    OPEN = "open", "Open"
    # A stop-limit whose stop fired: it now rests as a limit order.
    TRIGGERED = "triggered", "Triggered"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"


class TriggerWhen(models.TextChoices):
    """Which way the price must cross `trigger_price` for a resting order to fire.

    Storing it (instead of deriving it from side, type and status in the query) lets
    two partial indexes serve every resting order: the tick's trigger query is a range
    scan on (stock, trigger_price) in one of them.
    """

    RISE = "rise", "Price at or above"
    FALL = "fall", "Price at or below"


OPEN_STATUSES = (OrderStatus.OPEN, OrderStatus.TRIGGERED)
_resting = Q(status__in=OPEN_STATUSES)


class Order(models.Model):
    portfolio = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.PROTECT, related_name="orders"
    )
    stock = models.ForeignKey("market.Stock", on_delete=models.PROTECT, related_name="orders")
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=16, choices=OrderType.choices)
    quantity = models.BigIntegerField()
    limit_price = models.DecimalField(**PRICE, null=True, blank=True)
    stop_price = models.DecimalField(**PRICE, null=True, blank=True)
    trail_amount = models.DecimalField(**PRICE, null=True, blank=True)
    trail_percent = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # Trailing stops: the best price seen since placing (high for a sell, low for a buy).
    high_water = models.DecimalField(**PRICE, null=True, blank=True)
    low_water = models.DecimalField(**PRICE, null=True, blank=True)
    # While the order rests: the price that fires it and which way (see TriggerWhen).
    trigger_price = models.DecimalField(**PRICE, null=True, blank=True)
    trigger_when = models.CharField(max_length=4, choices=TriggerWhen.choices, blank=True)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    status = models.CharField(
        max_length=10, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    reserved_cash = models.DecimalField(**CASH, default=Decimal("0"))
    reserved_quantity = models.BigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    reason = models.CharField(max_length=280, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "idempotency_key"], name="order_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0, quantity__lte=MAX_QUANTITY), name="order_quantity_range"
            ),
            models.CheckConstraint(
                condition=Q(limit_price__isnull=True) | Q(limit_price__gt=0),
                name="order_limit_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(stop_price__isnull=True) | Q(stop_price__gt=0),
                name="order_stop_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(trail_amount__isnull=True) | Q(trail_amount__gt=0),
                name="order_trail_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(trail_percent__isnull=True)
                | Q(trail_percent__gt=0, trail_percent__lt=100),
                name="order_trail_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(trigger_price__isnull=True) | Q(trigger_price__gt=0),
                name="order_trigger_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(reserved_cash__gte=0, reserved_quantity__gte=0),
                name="order_reservations_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(reserved_quantity__lte=F("quantity")),
                name="order_reserved_quantity_within_order",
            ),
        ]
        indexes = [
            # The tick's trigger query: per stock, a range on trigger_price, one index
            # per direction, holding only resting orders (a small fraction of all rows).
            models.Index(
                fields=["stock", "trigger_price"],
                name="order_trigger_rise_idx",
                condition=_resting & Q(trigger_when=TriggerWhen.RISE),
            ),
            models.Index(
                fields=["stock", "trigger_price"],
                name="order_trigger_fall_idx",
                condition=_resting & Q(trigger_when=TriggerWhen.FALL),
            ),
            # The tick's water-mark update of trailing stops.
            models.Index(
                fields=["stock", "side"],
                name="order_trailing_open_idx",
                condition=Q(status=OrderStatus.OPEN, type=OrderType.TRAILING_STOP),
            ),
            # Open orders of a portfolio (the limit, /orders/, reconcile).
            models.Index(fields=["portfolio", "status"], name="order_portfolio_status_idx"),
            models.Index(fields=["portfolio", "-created_at"], name="order_portfolio_recent_idx"),
            # DAY orders due to expire.
            models.Index(fields=["expires_at"], name="order_expiring_idx", condition=_resting),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_side_display()} {self.quantity} {self.stock_id} {self.get_type_display()}"
        )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY

    def fires_at(self, price: Decimal) -> bool:
        """Whether `price` satisfies this resting order's trigger (mirrors the tick's SQL)."""
        if not self.is_open or self.trigger_price is None:
            return False
        if self.trigger_when == TriggerWhen.RISE:
            return price >= self.trigger_price
        return price <= self.trigger_price


class Fill(models.Model):
    """One execution of an order against the market, with the quote it used (the receipt)."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    portfolio = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.PROTECT, related_name="fills"
    )
    stock = models.ForeignKey("market.Stock", on_delete=models.PROTECT, related_name="fills")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.BigIntegerField()
    price = models.DecimalField(**PRICE)
    fee = models.DecimalField(**CASH)
    quote_price = models.DecimalField(**PRICE)
    quote_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
            models.CheckConstraint(
                condition=Q(price__gt=0, quote_price__gt=0), name="fill_prices_positive"
            ),
            models.CheckConstraint(condition=Q(fee__gte=0), name="fill_fee_not_negative"),
        ]
        indexes = [
            models.Index(fields=["portfolio", "-created_at"], name="fill_portfolio_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_side_display()} {self.quantity} @ {self.price}"

    @property
    def notional(self) -> Decimal:
        return (self.price * self.quantity).quantize(Decimal("0.01"))

    @property
    def spread_cost(self) -> Decimal:
        """What half the spread cost the player on this fill (0 or more)."""
        per_share = (
            self.price - self.quote_price
            if self.side == Side.BUY
            else self.quote_price - self.price
        )
        return (per_share * self.quantity).quantize(Decimal("0.01"))

    @property
    def total(self) -> Decimal:
        """Cash out for a buy (notional + fee), cash in for a sell (notional − fee)."""
        return self.notional + self.fee if self.side == Side.BUY else self.notional - self.fee
