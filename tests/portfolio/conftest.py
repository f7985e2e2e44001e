"""Fixtures for the portfolio tests: stocks and funded portfolios, made the real way."""

from __future__ import annotations

from decimal import Decimal

import pytest

from market.models import Stock
from portfolio.services import portfolio_open
from tests.factories import UserFactory


@pytest.fixture
def make_stock(db):
    made = iter(range(10_000))

    def make(symbol: str | None = None, price: str = "100.0000", **fields) -> Stock:
        symbol = symbol or f"T{next(made)}"
        fields.setdefault("previous_close", Decimal(price))
        fields.setdefault("sector", "technology")
        return Stock.objects.create(
            symbol=symbol, name=f"{symbol} Corp", last_price=Decimal(price), **fields
        )

    return make


@pytest.fixture
def stock(make_stock) -> Stock:
    return make_stock("AAPL", "150.0000")


@pytest.fixture
def portfolio(player):
    return portfolio_open(owner=player)


@pytest.fixture
def make_portfolio(db):
    def make(**user_fields):
        return portfolio_open(owner=UserFactory(**user_fields))

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 costs ~0.25 s per user on this machine; these tests make many users and
    # never check a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
