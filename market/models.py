from __future__ import annotations

from decimal import Decimal

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


class Stock(models.Model):
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
        constraints = [
            models.CheckConstraint(condition=Q(last_price__gte=0), name="stock_price_not_negative"),
            models.CheckConstraint(
                condition=Q(symbol__regex=r"^[A-Z0-9.\-]{1,12}$"), name="stock_symbol_format"
            ),
        ]
        indexes = [
            models.Index(fields=["change_pct"], name="stock_change_pct_idx"),
            models.Index(fields=["volume"], name="stock_volume_idx"),
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

    @property
    def is_up(self) -> bool:
        return self.change > 0

    @property
    def is_down(self) -> bool:
        return self.change < 0
