from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction

from portfolio.models import Portfolio, Position
from portfolio.reconcile import reconcile_check
from portfolio.services import portfolios_lock, reservation_hold
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal


def buy(portfolio, stock, quantity, key):
    settle(portfolio, stock, "buy", quantity, "10.0000", key=key)


def hold(portfolio, **amounts):
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, **amounts)


def test_clean_books_pass(portfolio, stock):
    buy(portfolio, stock, 5, "fill:1")
    report = reconcile_check(sources=[])
    assert report.ok, report.mismatches
    assert report.portfolios == 1 and report.positions == 1


def test_a_tampered_cash_balance_is_reported(portfolio, stock):
    buy(portfolio, stock, 5, "fill:1")
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D("99999.00"))
    report = reconcile_check(sources=[])
    assert [(m.what, m.balance, m.expected) for m in report.mismatches] == [
        ("cash", D("99999.00"), D("99949.00"))
    ]


def test_a_tampered_quantity_is_reported(portfolio, stock):
    buy(portfolio, stock, 5, "fill:1")
    Position.objects.filter(portfolio=portfolio).update(quantity=6)
    (mismatch,) = reconcile_check(sources=[]).mismatches
    assert (mismatch.what, mismatch.stock_id, mismatch.balance, mismatch.expected) == (
        "quantity",
        stock.pk,
        6,
        5,
    )


def test_reservations_are_checked_against_their_sources(portfolio, stock):
    buy(portfolio, stock, 5, "fill:1")
    hold(portfolio, cash=D("100.00"), stock=stock, quantity=2)

    def orders():
        return {portfolio.pk: (D("100.00"), {stock.pk: 2})}

    assert reconcile_check(sources=[("orders", orders)]).ok

    def fewer():
        return {portfolio.pk: (D("60.00"), {stock.pk: 1})}

    whats = {m.what for m in reconcile_check(sources=[("orders", fewer)]).mismatches}
    assert whats == {"reserved_cash", "reserved_quantity"}
    # With no source at all, any reservation is unexplained.
    assert not reconcile_check(sources=[]).ok


def test_a_failing_source_makes_the_check_fail(portfolio):
    def broken():
        raise RuntimeError("boom")

    report = reconcile_check(sources=[("broken", broken)])
    assert not report.ok and "boom" in report.source_errors[0]


def test_the_command_exits_1_on_a_mismatch_and_0_when_clean(portfolio, settings, capsys):
    settings.RECONCILE_RESERVATION_SOURCES = []
    call_command("reconcile")
    assert "OK: the books balance." in capsys.readouterr().out
    Portfolio.objects.filter(pk=portfolio.pk).update(cash=D("5.00"))
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile")
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert f"MISMATCH portfolio #{portfolio.pk}: cash is 5.00 but should be 100000.00" in out


def test_an_unimportable_source_is_reported(portfolio, settings):
    settings.RECONCILE_RESERVATION_SOURCES = ["nowhere.reconcile.nothing"]
    report = reconcile_check()
    assert not report.ok and "nowhere.reconcile.nothing" in report.source_errors[0]
