"""Real threads racing on one portfolio, on real PostgreSQL (no test transaction)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from market.models import Stock
from portfolio.errors import InsufficientFunds
from portfolio.models import LedgerEntry, Portfolio, Position
from portfolio.reconcile import reconcile_check
from portfolio.services import (
    portfolio_open,
    portfolios_lock,
    reservation_hold,
    trade_settle,
)
from tests.factories import UserFactory

D = Decimal


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_eight_threads_buying_never_overspend_and_the_books_balance(settings):
    settings.STARTING_CASH = D("100000.00")
    portfolio = portfolio_open(owner=UserFactory())
    stock = Stock.objects.create(
        symbol="RACE", name="Race", sector="technology", last_price=D("100")
    )
    # Each buy costs 30 x 100 + 1 fee = 3,001: exactly 33 fit in 100,000.
    threads_count, attempts = 8, 8
    outcomes: list[str] = []
    barrier = threading.Barrier(threads_count)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(attempts):
                try:
                    with transaction.atomic():
                        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
                        # A reservation held and released in the same breath: the
                        # reserved cash must never leak between threads.
                        reservation_hold(portfolio=locked, cash=D("3001.00"))
                        trade_settle(
                            portfolio=locked,
                            stock=stock,
                            side="buy",
                            quantity=30,
                            price=D("100.0000"),
                            fee=D("1.00"),
                            reference=f"fill:{n}-{i}",
                            idempotency_key=f"fill:{n}-{i}",
                            release_cash=D("3001.00"),
                        )
                    outcomes.append("filled")
                except InsufficientFunds:
                    outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == threads_count * attempts
    assert outcomes.count("filled") == 33
    portfolio = Portfolio.objects.get(pk=portfolio.pk)
    assert portfolio.cash == D("100000.00") - 33 * D("3001.00")
    assert portfolio.reserved_cash == 0
    assert Position.objects.get(portfolio=portfolio).quantity == 33 * 30
    assert LedgerEntry.objects.filter(kind="buy").count() == 33
    report = reconcile_check(sources=[])
    assert report.ok, report.mismatches


@pytest.mark.django_db(transaction=True)
def test_a_key_replayed_concurrently_takes_effect_once(settings):
    portfolio = portfolio_open(owner=UserFactory())
    stock = Stock.objects.create(symbol="DUP", name="Dup", sector="technology", last_price=D("10"))
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
                trade_settle(
                    portfolio=locked,
                    stock=stock,
                    side="buy",
                    quantity=1,
                    price=D("10.0000"),
                    fee=D("0"),
                    reference="fill:1",
                    idempotency_key="fill:1",
                )
            results.append("posted")
        except Exception as error:
            results.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["DuplicateEntry"] * 3 + ["posted"]
    assert Portfolio.objects.get(pk=portfolio.pk).cash == D("99990.00")
    assert reconcile_check(sources=[]).ok
