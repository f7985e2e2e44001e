"""factory-boy factories for every app. Each app's work adds its own here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    handle = factory.Sequence(lambda n: f"player{n}")
    email = factory.LazyAttribute(lambda user: f"{user.handle}@example.com")
    display_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


# --- market ------------------------------------------------------------------------


class StockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "market.Stock"
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.LazyAttribute(lambda stock: f"{stock.symbol.title()} Holdings")
    sector = "technology"
    industry = "Software"
    last_price = Decimal("100.0000")
    previous_close = factory.LazyAttribute(lambda stock: stock.last_price)
    day_open = factory.LazyAttribute(lambda stock: stock.last_price)
    day_high = factory.LazyAttribute(lambda stock: stock.last_price)
    day_low = factory.LazyAttribute(lambda stock: stock.last_price)


class PriceBarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "market.PriceBar"

    stock = factory.SubFactory(StockFactory)
    resolution = "1d"
    start = factory.Sequence(lambda n: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n))
    open = Decimal("100")
    high = Decimal("101")
    low = Decimal("99")
    close = Decimal("100.5")
    volume = 1000


class MarketEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "market.MarketEvent"

    headline = factory.Sequence(lambda n: f"Market news {n}")
    body = "Details."
    scope = "market"
    source = "simulator"
    published_at = factory.LazyFunction(timezone.now)


# --- portfolio ---------------------------------------------------------------------


class PerformanceFactory(factory.django.DjangoModelFactory):
    """A portfolio's running figures as the snapshots would have left them (the snapshot
    statement itself is tested in tests/portfolio/test_snapshots_and_logins.py). By
    default: last seen five minutes ago at its current cash and deposits, growth 1."""

    class Meta:
        model = "portfolio.PortfolioPerformance"

    last_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    last_net_worth = factory.LazyAttribute(lambda row: row.portfolio.cash)
    last_net_deposits = factory.LazyAttribute(lambda row: row.portfolio.net_deposits)
    growth = Decimal(1)
    peak_growth = factory.LazyAttribute(lambda row: max(Decimal(1), row.growth))
    max_drawdown = Decimal(0)
