"""Orders and their fills. Rows are written by trading.services only."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from trading import fill_model

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
    # No single-column indexes on these two: the composite and partial indexes below lead
    # with them, and every index is one more write on each fill and trailing-stop move.
    portfolio = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    stock = models.ForeignKey(
        "market.Stock", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
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
        # Staff: cancel a player's open orders and offers (with a reason, audited).
        permissions = [("cancel_for_player", "Can cancel a player's orders and offers")]
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
            models.Index(
                fields=["expires_at"],
                name="order_expiring_idx",
                condition=_resting & Q(expires_at__isnull=False),
            ),
            # The admin's order list: filtered by status, newest first.
            models.Index(fields=["status", "-created_at"], name="order_admin_status_idx"),
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
        return fill_model.notional(price=self.price, quantity=self.quantity)

    @property
    def spread_cost(self) -> Decimal:
        """What half the spread cost the player on this fill (0 or more)."""
        per_share = (
            self.price - self.quote_price
            if self.side == Side.BUY
            else self.quote_price - self.price
        )
        return fill_model.quantize_cash(per_share * self.quantity)

    @property
    def total(self) -> Decimal:
        """Cash out for a buy (notional + fee), cash in for a sell (notional − fee)."""
        return self.notional + self.fee if self.side == Side.BUY else self.notional - self.fee


# --- Offers between players (trading.offer_services) ----------------------------------


class OfferStatus(models.TextChoices):
    OPEN = "open", "Open"
    PARTLY_FILLED = "partly_filled", "Partly filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"


OFFER_LIVE_STATUSES = (OfferStatus.OPEN, OfferStatus.PARTLY_FILLED)
_offer_live = Q(status__in=OFFER_LIVE_STATUSES)


class TradeOffer(models.Model):
    """A player's offer to sell (or buy) shares to another player at a fixed price, held
    in escrow: while it is live its `reserved_*` sit reserved on the maker's portfolio.

    `side` is the maker's side: "sell" offers the maker's shares, "buy" offers the
    maker's cash. `addressee` empty means anyone but the maker may take it.
    """

    maker = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.PROTECT, related_name="offers_made"
    )
    addressee = models.ForeignKey(
        "accounts.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="offers_received",
    )
    side = models.CharField(max_length=4, choices=Side.choices)
    stock = models.ForeignKey("market.Stock", on_delete=models.PROTECT, related_name="offers")
    quantity = models.BigIntegerField()
    remaining_quantity = models.BigIntegerField()
    price = models.DecimalField(**PRICE)
    # Shown escaped everywhere (autoescape); never marked safe.
    message = models.CharField(max_length=280, blank=True)
    status = models.CharField(max_length=16, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    countered_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="counters"
    )
    # What the offer holds on the maker's portfolio right now: the shares still offered
    # (sell), or the cost of the remaining shares plus their commission (buy).
    reserved_cash = models.DecimalField(**CASH, default=Decimal("0"))
    reserved_quantity = models.BigIntegerField(default=0)
    # Takes so far: the next take's number, part of its ledger reference.
    takes_count = models.IntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["maker", "idempotency_key"], name="offer_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0, quantity__lte=MAX_QUANTITY), name="offer_quantity_range"
            ),
            models.CheckConstraint(
                condition=Q(remaining_quantity__gte=0, remaining_quantity__lte=F("quantity")),
                name="offer_remaining_within_quantity",
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="offer_price_positive"),
            models.CheckConstraint(
                condition=Q(reserved_cash__gte=0, reserved_quantity__gte=0),
                name="offer_reservations_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(reserved_quantity__lte=F("remaining_quantity")),
                name="offer_reserved_within_remaining",
            ),
        ]
        indexes = [
            # The board: live offers, optionally of one stock.
            models.Index(fields=["status", "stock"], name="offer_board_idx"),
            models.Index(fields=["addressee", "status"], name="offer_incoming_idx"),
            models.Index(fields=["maker", "status"], name="offer_outgoing_idx"),
            # The expiry sweep: only live offers, by deadline.
            models.Index(fields=["expires_at"], name="offer_expiry_idx", condition=_offer_live),
        ]

    def __str__(self) -> str:
        return f"Offer #{self.pk}: {self.side} {self.quantity} {self.stock_id} @ {self.price}"

    @property
    def is_live(self) -> bool:
        return self.status in OFFER_LIVE_STATUSES

    @property
    def filled_quantity(self) -> int:
        return self.quantity - self.remaining_quantity

    @property
    def taker_side(self) -> str:
        return Side.BUY if self.side == Side.SELL else Side.SELL

    @property
    def notional(self) -> Decimal:
        return (self.price * self.remaining_quantity).quantize(Decimal("0.01"))


class OfferTake(models.Model):
    """One acceptance of (part of) an offer: the receipt of a player-to-player trade.
    Its ledger entries share the reference `offer:<offer id>/take:<number>`."""

    offer = models.ForeignKey(TradeOffer, on_delete=models.PROTECT, related_name="takes")
    number = models.IntegerField()
    taker = models.ForeignKey(
        "portfolio.Portfolio", on_delete=models.PROTECT, related_name="offer_takes"
    )
    # Who sold and who bought, by user, so collusion checks need no join through offers.
    seller = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    buyer = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    stock = models.ForeignKey("market.Stock", on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()
    price = models.DecimalField(**PRICE)
    # The market's quote when it settled: how far from the market the trade was.
    quote_price = models.DecimalField(**PRICE)
    maker_fee = models.DecimalField(**CASH)
    taker_fee = models.DecimalField(**CASH)
    idempotency_key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "number"], name="offer_take_number_unique"),
            models.UniqueConstraint(
                fields=["offer", "taker", "idempotency_key"], name="offer_take_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="offer_take_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(price__gt=0, quote_price__gt=0), name="offer_take_prices_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="offer_take_time_idx"),
            models.Index(fields=["seller", "buyer", "created_at"], name="offer_take_pair_idx"),
        ]

    def __str__(self) -> str:
        return f"Take {self.number} of offer #{self.offer_id}: {self.quantity} @ {self.price}"

    @property
    def reference(self) -> str:
        return f"offer:{self.offer_id}/take:{self.number}"

    @property
    def notional(self) -> Decimal:
        return (self.price * self.quantity).quantize(Decimal("0.01"))

    @property
    def value_moved(self) -> Decimal:
        """Value handed from the buyer to the seller by trading away from the quote
        (negative: from the seller to the buyer)."""
        return ((self.price - self.quote_price) * self.quantity).quantize(Decimal("0.01"))


class CollusionKind(models.TextChoices):
    ROUND_TRIP = "round_trip", "Repeated round trips"
    ONE_WAY = "one_way", "One-way transfer of value"


class CollusionStatus(models.TextChoices):
    OPEN = "open", "To review"
    REVIEWED = "reviewed", "Reviewed: a concern"
    DISMISSED = "dismissed", "Dismissed"


class CollusionFlag(models.Model):
    """A pair of players whose trades with each other look arranged (trading.collusion).
    It informs moderators; nothing is done to the players automatically."""

    # The pair in id order, so (a, b) and (b, a) are one flag.
    player_a = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    player_b = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=CollusionKind.choices)
    # One-way transfers: who received the value.
    beneficiary = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurrences = models.IntegerField(default=0)
    value_moved = models.DecimalField(**CASH, default=Decimal("0"))
    # {"takes": [{"offer": id, "take": n, "seller": handle, ...}], "window_days": ...}
    evidence = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=CollusionStatus.choices, default=CollusionStatus.OPEN
    )
    note = models.TextField(blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        permissions = [
            ("review_collusion", "Can review trades between players for collusion"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["player_a", "player_b", "kind"], name="collusion_flag_unique"
            ),
            models.CheckConstraint(
                condition=Q(player_a__lt=F("player_b")), name="collusion_pair_ordered"
            ),
        ]
        indexes = [models.Index(fields=["status", "-last_seen_at"], name="collusion_review_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: #{self.player_a_id} / #{self.player_b_id}"
