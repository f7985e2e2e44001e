"""Fixtures for the offer tests: a listed stock, funded portfolios, shares bought the
real way (through portfolio.services), and a snapshot of the books."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from market.models import Stock
from portfolio.models import LedgerEntry, Portfolio, Position
from portfolio.reconcile import reconcile_check, reservation_sources_load
from portfolio.services import portfolio_open, portfolios_lock, trade_settle
from tests.factories import StockFactory, UserFactory
from trading.offer_services import offer_make

D = Decimal
SOURCES = ["trading.reconcile.order_reservations", "trading.offer_reconcile.offer_reservations"]


@pytest.fixture
def stock(db) -> Stock:
    return StockFactory(symbol="AAPL", last_price=D("100.0000"))


@pytest.fixture
def make_portfolio(db):
    def make(**user_fields) -> Portfolio:
        return portfolio_open(owner=UserFactory(**user_fields))

    return make


@pytest.fixture
def maker(make_portfolio) -> Portfolio:
    return make_portfolio(handle="maker")


@pytest.fixture
def taker(make_portfolio) -> Portfolio:
    # Public, so the maker may address offers to them by handle.
    return make_portfolio(handle="taker", public_profile=True)


@pytest.fixture
def third(make_portfolio) -> Portfolio:
    return make_portfolio(handle="third")


def grant_shares(portfolio: Portfolio, stock: Stock, quantity: int, price: str = "100") -> None:
    """Buy shares from the market for `portfolio` (a fee-free fill, straight on the ledger)."""
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        trade_settle(
            portfolio=locked,
            stock=stock,
            side="buy",
            quantity=quantity,
            price=D(price),
            fee=D("0"),
            reference=f"grant:{uuid.uuid4().hex[:12]}",
            idempotency_key=uuid.uuid4().hex,
        )


def make(portfolio: Portfolio, stock: Stock, **terms):
    terms.setdefault("side", "sell")
    terms.setdefault("quantity", 10)
    terms.setdefault("price", D("100.0000"))
    terms.setdefault("idempotency_key", uuid.uuid4().hex)
    return offer_make(maker=portfolio, stock=stock, **terms)


def books() -> tuple:
    """Everything an offer could change: ledger size, balances, reservations."""
    return (
        LedgerEntry.objects.count(),
        sorted(Portfolio.objects.values_list("pk", "cash", "reserved_cash")),
        sorted(Position.objects.values_list("pk", "quantity", "reserved_quantity")),
    )


def reconcile_ok() -> None:
    sources, errors = reservation_sources_load(SOURCES)
    assert not errors
    report = reconcile_check(sources=sources)
    assert report.ok, [str(mismatch) for mismatch in report.mismatches]


def position(portfolio: Portfolio, stock: Stock) -> Position | None:
    return Position.objects.filter(portfolio=portfolio, stock=stock).first()
