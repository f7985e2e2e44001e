"""Real threads racing on one offer, on real PostgreSQL (no test transaction)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from portfolio.models import LedgerEntry, Portfolio, Position
from trading.errors import TradingError
from trading.models import OfferStatus, OfferTake, TradeOffer
from trading.offer_services import offer_accept, offer_cancel

from .conftest import grant_shares, make, reconcile_ok

D = Decimal


def race(*workers: Callable[[], str]) -> list[str]:
    """Start the workers together; each returns an outcome or raises a TradingError."""
    barrier = threading.Barrier(len(workers))
    outcomes: list[str] = []

    def run(worker: Callable[[], str]) -> None:
        try:
            barrier.wait()
            outcomes.append(worker())
        except TradingError as error:
            outcomes.append(f"refused: {error.message}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == len(workers), "a worker hung"
    return outcomes


def totals(stock) -> tuple[Decimal, int]:
    cash = Portfolio.objects.aggregate(total=Sum("cash"))["total"]
    shares = Position.objects.filter(stock=stock).aggregate(total=Sum("quantity"))["total"] or 0
    return cash, shares


def fees_paid() -> Decimal:
    total = LedgerEntry.objects.filter(kind="fee").aggregate(total=Sum("cash_delta"))["total"]
    return -(total or D("0"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_takers_racing_for_one_offer_never_oversell_it(make_portfolio, stock):
    maker = make_portfolio()
    takers = [make_portfolio() for _ in range(4)]
    grant_shares(maker, stock, 10)
    offer = make(maker, stock, quantity=10)
    cash_before, shares_before = totals(stock)

    def take(taker: Portfolio) -> Callable[[], str]:
        def worker() -> str:
            offer_accept(offer=offer, taker=taker, quantity=4, idempotency_key=uuid.uuid4().hex)
            return "took"

        return worker

    outcomes = race(*(take(taker) for taker in takers))

    # 10 shares, takes of 4: two fit, the others are told how many remain.
    assert outcomes.count("took") == 2
    assert all("remain" in outcome for outcome in outcomes if outcome != "took")
    offer = TradeOffer.objects.get(pk=offer.pk)
    assert offer.remaining_quantity == 2 and offer.status == OfferStatus.PARTLY_FILLED
    assert OfferTake.objects.filter(offer=offer).aggregate(n=Sum("quantity"))["n"] == 8
    assert sorted(OfferTake.objects.values_list("number", flat=True)) == [1, 2]
    cash_after, shares_after = totals(stock)
    assert shares_after == shares_before
    assert cash_after == cash_before - fees_paid()
    assert Position.objects.get(portfolio=maker, stock=stock).reserved_quantity == 2
    reconcile_ok()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_an_accept_leaves_one_outcome(make_portfolio, stock):
    for round_ in range(3):
        maker, taker = make_portfolio(), make_portfolio()
        offer = make(maker, stock, side="buy", quantity=5, price=D("100"))
        grant_shares(taker, stock, 5)
        cash_before, shares_before = totals(stock)
        fees_before = fees_paid()

        def accept() -> str:
            offer_accept(offer=offer, taker=taker, quantity=5, idempotency_key=f"r{round_}")
            return "took"

        def cancel() -> str:
            offer_cancel(offer=offer, by=maker.owner)
            return "cancelled"

        outcomes = race(accept, cancel)
        offer = TradeOffer.objects.get(pk=offer.pk)
        winner = "took" if offer.status == OfferStatus.FILLED else "cancelled"
        assert winner in outcomes and len([o for o in outcomes if o.startswith("refused")]) == 1
        assert offer.reserved_cash == 0
        assert Portfolio.objects.get(pk=maker.pk).reserved_cash == 0
        cash_after, shares_after = totals(stock)
        assert shares_after == shares_before
        assert cash_after == cash_before - (fees_paid() - fees_before)
        reconcile_ok()
