from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

PRICE = {"max_digits": 14, "decimal_places": 4}


class Sector(models.TextChoices):
    TECHNOLOGY = "technology", "Technology"
    HEALTH_CARE = "health_care", "Health Care"
    FINANCIALS = "financials", "Financials"
    CONSUMER_DISCRETIONARY = "consumer_discretionary", "Consumer Discretionary"
    CONSUMER_STAPLES = "consumer_staples", "Consumer Staples"
    COMMUNICATION = "communication", "Communication Services"
    INDUSTRIALS = "industrials", "Industrials"
    ENERGY = "energy", "Energy"
    UTILITIES = "utilities", "Utilities"
    REAL_ESTATE = "real_estate", "Real Estate"
    MATERIALS = "materials", "Materials"


class Moving:
    """`is_up` / `is_down` from the `change` a quote carries (a Stock, a pushed quote, the
    Composite's quote), as the templates' gain and loss classes read it."""

    __slots__ = ()
    change: Decimal

    @property
    def is_up(self) -> bool:
        return self.change > 0

    @property
    def is_down(self) -> bool:
        return self.change < 0


class Stock(Moving, models.Model):
    """A listed stock and its latest quote. Quote columns are written by market.services."""

    symbol = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=120)
    sector = models.CharField(max_length=32, choices=Sector.choices, db_index=True)
    industry = models.CharField(max_length=80, blank=True)

    last_price = models.DecimalField(**PRICE, default=Decimal("0"))
    previous_close = models.DecimalField(**PRICE, default=Decimal("0"))
    # Computed when the row is written (market.services), so lists can sort on them.
    change = models.DecimalField(**PRICE, default=Decimal("0"))
    change_pct = models.DecimalField(max_digits=9, decimal_places=4, default=Decimal("0"))
    day_open = models.DecimalField(**PRICE, default=Decimal("0"))
    day_high = models.DecimalField(**PRICE, default=Decimal("0"))
    day_low = models.DecimalField(**PRICE, default=Decimal("0"))
    volume = models.BigIntegerField(default=0)
    quoted_at = models.DateTimeField(null=True, blank=True)

    halted = models.BooleanField(default=False)
    halt_reason = models.CharField(max_length=280, blank=True)
    # A soft delete: a delisted stock leaves browsing but keeps its history and page.
    delisted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["symbol"]
        permissions = [
            ("halt_stock", "Can halt and resume trading in a stock"),
            ("delist_stock", "Can list and delist stocks (admins)"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(last_price__gte=0), name="stock_price_not_negative"),
            models.CheckConstraint(
                condition=Q(symbol__regex=r"^[A-Z0-9.\-]{1,12}$"), name="stock_symbol_format"
            ),
        ]
        # No index on the quote columns (change_pct, volume...): the tick rewrites them on
        # every row every few seconds, and an indexed column turns each of those
        # updates into a new entry in every index. Without one, and with free room on
        # each page (fillfactor, migration 0004), they are HOT updates that touch no
        # index. Sorting a few thousand rows for the movers costs about a millisecond.
        indexes = [
            models.Index(
                fields=["symbol"], name="stock_listed_idx", condition=Q(delisted_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_listed(self) -> bool:
        return self.delisted_at is None

    @property
    def is_tradable(self) -> bool:
        return self.is_listed and not self.halted


class Resolution(models.TextChoices):
    MINUTE = "1m", "1 minute"
    DAY = "1d", "1 day"


class PriceBar(models.Model):
    """OHLCV of one stock over one minute or one trading day.

    The unique index on (stock, resolution, start) is also the read path: every chart
    reads one stock's bars of one resolution over a time range, which is a single
    index range scan. Long ranges (1Y, 5Y) read the daily bars, never the ~200k
    minute bars two years make, so their cost does not grow with minute history.
    """

    # No index of its own: the unique index below starts with the stock, and a second
    # one on millions of rows would slow every write and tempt the planner.
    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="bars", db_index=False)
    resolution = models.CharField(max_length=2, choices=Resolution.choices)
    start = models.DateTimeField()  # UTC; a minute start, or midnight of the trading date
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stock", "resolution", "start"], name="pricebar_stock_resolution_start"
            ),
            models.CheckConstraint(
                condition=Q(low__gt=0) & Q(low__lte=models.F("high")), name="pricebar_low_le_high"
            ),
            models.CheckConstraint(condition=Q(volume__gte=0), name="pricebar_volume_not_negative"),
            models.CheckConstraint(
                condition=Q(resolution__in=["1m", "1d"]), name="pricebar_resolution_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stock_id} {self.resolution} {self.start:%Y-%m-%d %H:%M}"


INDEX_LEVEL = {"max_digits": 16, "decimal_places": 4}


class IndexBar(models.Model):
    """The Bullpen Composite, an equal-weight index of every listed stock, as minute
    and daily bars (market.index). Each tick moves it by the average return of the
    listed stocks, so a listing or a delisting never makes it jump."""

    resolution = models.CharField(max_length=2, choices=Resolution.choices)
    start = models.DateTimeField()  # as PriceBar.start
    open = models.DecimalField(**INDEX_LEVEL)
    high = models.DecimalField(**INDEX_LEVEL)
    low = models.DecimalField(**INDEX_LEVEL)
    close = models.DecimalField(**INDEX_LEVEL)
    constituents = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resolution", "start"], name="indexbar_resolution_start"
            ),
            models.CheckConstraint(
                condition=Q(low__gt=0) & Q(low__lte=models.F("high")), name="indexbar_low_le_high"
            ),
            models.CheckConstraint(
                condition=Q(resolution__in=["1m", "1d"]), name="indexbar_resolution_known"
            ),
        ]

    def __str__(self) -> str:
        return f"index {self.resolution} {self.start:%Y-%m-%d %H:%M} {self.close}"


class EventScope(models.TextChoices):
    MARKET = "market", "Whole market"
    SECTOR = "sector", "Sector"
    STOCK = "stock", "Stock"


class EventSource(models.TextChoices):
    SIMULATOR = "simulator", "Simulator"
    MODERATOR = "moderator", "Moderator"


class MarketEvent(models.Model):
    """News. A moderator's event may carry a price shock (impact_pct) that the simulated
    market applies at the next tick; the tick marks it applied in the same transaction
    as the prices it moved, so a shock is applied exactly once."""

    headline = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    scope = models.CharField(max_length=8, choices=EventScope.choices, default=EventScope.MARKET)
    stock = models.ForeignKey(
        Stock, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    sector = models.CharField(max_length=32, choices=Sector.choices, blank=True)
    impact_pct = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal("0"))
    source = models.CharField(
        max_length=10, choices=EventSource.choices, default=EventSource.MODERATOR
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="market_events",
    )
    published_at = models.DateTimeField(db_index=True)
    shock_applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        permissions = [("publish_event", "Can publish a market event")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="market", stock__isnull=True, sector="")
                    | Q(scope="sector", stock__isnull=True) & ~Q(sector="")
                    | Q(scope="stock", stock__isnull=False)
                ),
                name="marketevent_scope_matches_target",
            ),
            models.CheckConstraint(
                condition=Q(impact_pct__gt=-100) & Q(impact_pct__lte=100),
                name="marketevent_impact_bounded",
            ),
        ]
        indexes = [
            # The tick's question: which shocks are still waiting to be applied?
            models.Index(
                fields=["published_at"],
                name="marketevent_pending_shock_idx",
                condition=Q(shock_applied_at__isnull=True),
            ),
            models.Index(fields=["sector", "-published_at"], name="marketevent_sector_idx"),
        ]

    def __str__(self) -> str:
        return self.headline

    @property
    def has_pending_shock(self) -> bool:
        return self.impact_pct != 0 and self.shock_applied_at is None


class HistoryCursor(models.Model):
    """How far the tick stream has been folded into bars. Advanced in the same
    transaction as the bars it covers, so a flush that dies is rerun from here and
    counts no tick twice."""

    name = models.CharField(max_length=40, unique=True)
    last_stream_id = models.CharField(max_length=40, default="0-0")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_stream_id}"
