from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from portfolio.models import NetWorthSnapshot, Portfolio
from portfolio.services import (
    net_worth_snapshot_take,
    portfolio_login_record,
)
from portfolio.tasks import snapshot_net_worth
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal


def buy(portfolio, stock, quantity, price="10.0000"):
    settle(portfolio, stock, "buy", quantity, price, fee="0")


def test_a_snapshot_values_every_portfolio_at_last_prices_once_per_slot(
    portfolio, make_portfolio, make_stock
):
    stock = make_stock("SNAP", "10.0000")
    idle = make_portfolio()
    buy(portfolio, stock, 100)
    stock.last_price = D("12.5000")
    stock.save()
    at = datetime(2026, 1, 5, 10, 7, 31, tzinfo=UTC)
    assert net_worth_snapshot_take(at=at) == 2
    assert net_worth_snapshot_take(at=at.replace(minute=9)) == 0  # same five-minute slot
    mine = NetWorthSnapshot.objects.get(portfolio=portfolio)
    assert mine.at == datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    assert mine.cash == D("99000.00") and mine.net_worth == D("100250.00")
    assert NetWorthSnapshot.objects.get(portfolio=idle).net_worth == D("100000.00")


def test_the_task_writes_snapshots(portfolio):
    assert snapshot_net_worth() == 1


def test_each_login_keeps_the_previous_logins_net_worth(portfolio, player, make_stock):
    stock = make_stock("LOG", "10.0000")
    portfolio_login_record(owner=player)
    buy(portfolio, stock, 10)
    stock.last_price = D("20.0000")
    stock.save()
    portfolio_login_record(owner=player)
    portfolio = Portfolio.objects.get(pk=portfolio.pk)
    assert portfolio.previous_login_net_worth == D("100000.00")
    assert portfolio.last_login_net_worth == D("100100.00")


def test_logging_in_through_the_site_records_the_net_worth(portfolio, player, client):
    client.force_login(player)  # goes through django.contrib.auth.login, as the form does
    portfolio.refresh_from_db()
    assert portfolio.last_login_net_worth == D("100000.00")


def test_signing_up_opens_a_portfolio():
    from accounts.services import user_signup

    user = user_signup(handle="newbie", email="newbie@example.com", password="a-long-pass-phrase-9")
    assert Portfolio.objects.get(owner=user).cash == D("100000.00")
