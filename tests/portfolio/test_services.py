from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from portfolio.errors import (
    DuplicateEntry,
    InsufficientFunds,
    InsufficientShares,
    InvalidAmount,
    PortfolioNotLocked,
    ReservationMismatch,
)
from portfolio.models import LedgerEntry, Portfolio, Position
from portfolio.services import (
    cash_adjust,
    portfolio_open,
    portfolios_lock,
    reservation_hold,
    reservation_release,
    trade_settle,
)
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal


def position_of(portfolio, stock) -> Position:
    return Position.objects.get(portfolio=portfolio, stock=stock)


def test_opening_a_portfolio_deposits_the_starting_cash(player, settings):
    settings.STARTING_CASH = D("100000.00")
    portfolio = portfolio_open(owner=player)
    portfolio.refresh_from_db()
    assert portfolio.cash == D("100000.00") and portfolio.starting_cash == D("100000.00")
    (entry,) = LedgerEntry.objects.filter(portfolio=portfolio)
    assert entry.kind == "deposit" and entry.cash_delta == D("100000.00")
    assert entry.idempotency_key == f"open:{player.pk}"


def test_opening_twice_raises_duplicate_and_keeps_one_portfolio(player):
    portfolio_open(owner=player)
    with pytest.raises(DuplicateEntry):
        portfolio_open(owner=player)
    assert Portfolio.objects.filter(owner=player).count() == 1


def test_a_buy_posts_trade_and_fee_and_sets_average_cost(portfolio, stock):
    entries = settle(portfolio, stock, "buy", 10, "150.0000", fee="1.00", key="fill:1")
    assert [(e.kind, e.cash_delta, e.quantity_delta) for e in entries] == [
        ("buy", D("-1500.00"), 10),
        ("fee", D("-1.00"), 0),
    ]
    assert {e.reference for e in entries} == {"fill:fill:1"}
    portfolio.refresh_from_db()
    assert portfolio.cash == D("98499.00")
    position = position_of(portfolio, stock)
    assert position.quantity == 10
    assert position.cost_basis == D("1501.0000")
    assert position.average_cost == D("150.1000")


def test_average_cost_blends_buys_and_a_sell_books_realized_pnl(portfolio, stock):
    settle(portfolio, stock, "buy", 10, "100.0000", fee="0", key="b1")
    settle(portfolio, stock, "buy", 30, "120.0000", fee="0", key="b2")
    position = position_of(portfolio, stock)
    assert position.average_cost == D("115.0000")  # (1000 + 3600) / 40
    settle(portfolio, stock, "sell", 10, "130.0000", fee="2.00", key="s1")
    position = position_of(portfolio, stock)
    assert position.quantity == 30
    assert position.cost_basis == D("3450.0000")
    # Proceeds 1300 - fee 2 - cost 1150.
    assert position.realized_pnl == D("148.0000")
    assert position.average_cost == D("115.0000")
    portfolio.refresh_from_db()
    assert portfolio.cash == D("100000.00") - 1000 - 3600 + 1300 - 2


def test_selling_everything_zeroes_the_cost_basis_exactly(portfolio, stock):
    settle(portfolio, stock, "buy", 3, "33.3333", fee="0.01", key="b1")
    settle(portfolio, stock, "sell", 1, "40.0000", fee="0", key="s1")
    settle(portfolio, stock, "sell", 2, "40.0000", fee="0", key="s2")
    position = position_of(portfolio, stock)
    assert position.quantity == 0 and position.cost_basis == 0
    assert position.realized_pnl == D("120.00") - D("100.00") - D("0.01")


def test_a_replayed_key_raises_duplicate_and_posts_nothing(portfolio, stock):
    settle(portfolio, stock, "buy", 5, "150.0000", key="fill:7")
    with pytest.raises(DuplicateEntry):
        settle(portfolio, stock, "buy", 5, "150.0000", key="fill:7")
    portfolio.refresh_from_db()
    assert LedgerEntry.objects.filter(portfolio=portfolio, kind="buy").count() == 1
    assert portfolio.cash == D("100000.00") - D("750.00") - D("1.00")
    assert position_of(portfolio, stock).quantity == 5


def test_a_buy_beyond_buying_power_says_what_is_available(portfolio, stock):
    with pytest.raises(InsufficientFunds) as error:
        settle(portfolio, stock, "buy", 1000, "150.0000", key="big")
    assert "$150,001.00" in str(error.value) and "$100,000.00 is available" in str(error.value)
    assert not LedgerEntry.objects.filter(kind="buy").exists()


def test_reserved_cash_is_not_buying_power(portfolio, stock):
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, cash=D("99000.00"))
    with pytest.raises(InsufficientFunds, match=r"\$1,000.00 is available"):
        settle(portfolio, stock, "buy", 10, "150.0000", key="b")


def test_a_fill_releases_its_own_reservation_before_the_funds_check(portfolio, stock):
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, cash=D("99990.00"))
    settle(portfolio, stock, "buy", 600, "150.0000", key="b", release_cash=D("99990.00"))
    portfolio.refresh_from_db()
    assert portfolio.reserved_cash == 0
    assert portfolio.cash == D("100000.00") - D("90000.00") - D("1.00")


def test_selling_more_than_available_says_what_is_held_and_reserved(portfolio, stock):
    settle(portfolio, stock, "buy", 10, "150.0000", key="b")
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, stock=stock, quantity=4)
    with pytest.raises(InsufficientShares) as error:
        settle(portfolio, stock, "sell", 7, "150.0000", key="s")
    assert "needs 7 and 6 are available (10 held, 4 reserved" in str(error.value)
    # Its own reservation counts as available to the sell that releases it.
    settle(portfolio, stock, "sell", 7, "150.0000", key="s2", release_quantity=4)
    position = position_of(portfolio, stock)
    assert position.quantity == 3 and position.reserved_quantity == 0


def test_selling_a_stock_never_held_is_refused(portfolio, stock):
    with pytest.raises(InsufficientShares, match="You hold no AAPL shares"):
        settle(portfolio, stock, "sell", 1, "150.0000", key="s")


def test_hold_and_release_move_only_reservations(portfolio, stock):
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, cash=D("500.00"))
        reservation_release(portfolio=locked, cash=D("200.00"))
    portfolio.refresh_from_db()
    assert portfolio.reserved_cash == D("300.00") and portfolio.cash == D("100000.00")
    assert LedgerEntry.objects.filter(portfolio=portfolio).count() == 1
    with transaction.atomic(), pytest.raises(ReservationMismatch):
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_release(portfolio=locked, cash=D("300.01"))


def test_balances_refuse_an_unlocked_portfolio(portfolio, stock):
    with pytest.raises(PortfolioNotLocked):
        reservation_hold(portfolio=portfolio, cash=D("1.00"))


def test_amounts_with_too_many_decimals_or_floats_are_refused(portfolio, stock):
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        with pytest.raises(InvalidAmount):
            reservation_hold(portfolio=locked, cash=D("1.001"))
        with pytest.raises(TypeError):
            reservation_hold(portfolio=locked, cash=1.5)
    with pytest.raises(InvalidAmount):
        settle(portfolio, stock, "buy", 1, "1.00001", key="x")


def test_offers_post_offer_kinds_under_one_reference(make_portfolio, stock):
    seller, buyer = make_portfolio(), make_portfolio()
    settle(seller, stock, "buy", 10, "100.0000", fee="0", key="seed")
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[seller.pk, buyer.pk])
        for portfolio, side in ((seller, "sell"), (buyer, "buy")):
            trade_settle(
                portfolio=locked[portfolio.pk],
                stock=stock,
                side=side,
                quantity=4,
                price=D("110.0000"),
                fee=D("0"),
                kind_prefix="offer_",
                reference="offer:1/settle:1",
                idempotency_key=f"offer:1/settle:1:{side}",
            )
    kinds = LedgerEntry.objects.filter(reference="offer:1/settle:1").values_list("kind", flat=True)
    assert sorted(kinds) == ["offer_buy", "offer_sell"]
    assert position_of(buyer, stock).quantity == 4 and position_of(seller, stock).quantity == 6


def test_cash_adjust_needs_a_reason_and_never_goes_below_reserved(portfolio, staff_user=None):
    from tests.factories import UserFactory

    moderator = UserFactory()
    entry = cash_adjust(
        portfolio=portfolio,
        amount=D("250.00"),
        reason="Contest prize",
        by=moderator,
        idempotency_key="adj:1",
    )
    assert entry.kind == "adjustment" and entry.created_by == moderator
    portfolio.refresh_from_db()
    assert portfolio.cash == D("100250.00")
    with transaction.atomic():
        locked = portfolios_lock(portfolio_ids=[portfolio.pk])[portfolio.pk]
        reservation_hold(portfolio=locked, cash=D("100000.00"))
    with pytest.raises(InsufficientFunds, match=r"only \$250.00 is not reserved"):
        cash_adjust(
            portfolio=portfolio,
            amount=D("-250.01"),
            reason="x",
            by=moderator,
            idempotency_key="adj:2",
        )
    with pytest.raises(Exception, match="reason"):
        cash_adjust(
            portfolio=portfolio,
            amount=D("-1.00"),
            reason=" ",
            by=moderator,
            idempotency_key="adj:3",
        )


def test_the_database_refuses_cash_below_reserved(portfolio):
    with pytest.raises(IntegrityError), transaction.atomic():
        Portfolio.objects.filter(pk=portfolio.pk).update(reserved_cash=D("100000.01"))


def test_the_database_refuses_negative_reservations(portfolio, stock):
    settle(portfolio, stock, "buy", 1, "1.0000", key="b")
    with pytest.raises(IntegrityError), transaction.atomic():
        Portfolio.objects.filter(pk=portfolio.pk).update(reserved_cash=D("-1"), cash=D("-2"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.filter(portfolio=portfolio).update(reserved_quantity=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.filter(portfolio=portfolio).update(reserved_quantity=-1)


def test_the_database_refuses_to_rewrite_the_ledger(portfolio):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(portfolio=portfolio).update(cash_delta=D("1"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(portfolio=portfolio).delete()
