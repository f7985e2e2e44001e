from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Max

from market.models import Stock
from portfolio import services
from portfolio.models import LedgerEntry, NetWorthSnapshot, Portfolio, PortfolioPerformance
from portfolio.reconcile import reconcile_check
from portfolio.selectors import growth_step
from portfolio.services import (
    cash_adjust,
    net_worth_snapshot_take,
    portfolio_login_record,
    portfolio_open,
)
from portfolio.tasks import snapshot_net_worth
from tests.factories import UserFactory
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal
# SESSION_CLOSE_UTC is 21:00: the session of Monday 5 January 2026 closes at 21:00.
OPENED = datetime(2026, 1, 1, tzinfo=UTC)
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _session_close(settings):
    settings.SESSION_CLOSE_UTC = datetime.strptime("21:00", "%H:%M").time()


def buy(portfolio, stock, quantity, price="10.0000"):
    settle(portfolio, stock, "buy", quantity, price, fee="0", key=uuid.uuid4().hex)


def backdate(*portfolios):
    """The snapshots below are taken at fixed past times: the portfolios must predate them."""
    Portfolio.objects.filter(pk__in=[p.pk for p in portfolios]).update(created_at=OPENED)


def quote(stock, price, at):
    stock.last_price = D(price)
    stock.quoted_at = at
    stock.save(update_fields=["last_price", "quoted_at"])


def at_time(day: datetime, hh: int, mm: int, ss: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm, second=ss)


def performance(portfolio) -> PortfolioPerformance:
    return PortfolioPerformance.objects.get(portfolio=portfolio)


def test_a_snapshot_values_every_portfolio_at_last_prices_once_per_slot(
    portfolio, make_portfolio, make_stock
):
    stock = make_stock("SNAP", "10.0000")
    idle = make_portfolio()
    buy(portfolio, stock, 100)
    backdate(portfolio, idle)
    quote(stock, "12.5000", at_time(MONDAY, 10, 6))
    run = net_worth_snapshot_take(at=at_time(MONDAY, 10, 7, 31))
    # The first run also records the last close it missed (Sunday 21:00), at current prices.
    assert (run.close_written, run.slot_written) == (2, 2)
    assert run.close_at == datetime(2026, 1, 4, 21, tzinfo=UTC)
    again = net_worth_snapshot_take(at=at_time(MONDAY, 10, 9))  # same five-minute slot
    assert again.written == 0
    mine = NetWorthSnapshot.objects.get(portfolio=portfolio, is_close=False)
    assert mine.at == at_time(MONDAY, 10, 5)
    assert mine.cash == D("99000.00") and mine.net_worth == D("100250.00")
    assert mine.net_deposits == D("100000.00")
    assert NetWorthSnapshot.objects.get(portfolio=idle, is_close=False).net_worth == D("100000.00")


def test_a_rerun_in_the_same_slot_changes_nothing(portfolio, make_stock):
    stock = make_stock("RERUN", "10.0000")
    buy(portfolio, stock, 100)
    backdate(portfolio)
    quote(stock, "11.0000", at_time(MONDAY, 10, 1))
    net_worth_snapshot_take(at=at_time(MONDAY, 10, 2))
    before = list(NetWorthSnapshot.objects.order_by("at").values())
    state = PortfolioPerformance.objects.filter(portfolio=portfolio).values().get()
    quote(stock, "30.0000", at_time(MONDAY, 10, 3))  # a new price inside the same slot
    run = net_worth_snapshot_take(at=at_time(MONDAY, 10, 4, 59))
    assert run.written == 0
    assert list(NetWorthSnapshot.objects.order_by("at").values()) == before
    assert PortfolioPerformance.objects.filter(portfolio=portfolio).values().get() == state
    # The statement itself is idempotent too, not only the check in front of it.
    with connection.cursor() as cursor:
        assert services._snapshots_write(cursor, at=at_time(MONDAY, 10, 0), is_close=False) == 0
    assert PortfolioPerformance.objects.filter(portfolio=portfolio).values().get() == state


def test_no_slot_snapshot_is_taken_when_no_price_moved(portfolio, make_stock):
    stock = make_stock("STILL", "10.0000")
    backdate(portfolio)
    quote(stock, "10.0000", at_time(MONDAY, 9, 58))
    assert net_worth_snapshot_take(at=at_time(MONDAY, 10, 2)).slot_written == 1
    # Nothing quoted since the 10:00 slot: the 10:05 slot is not taken.
    quiet = net_worth_snapshot_take(at=at_time(MONDAY, 10, 7))
    assert quiet.slot_written is None and not quiet.prices_moved
    assert not NetWorthSnapshot.objects.filter(at=at_time(MONDAY, 10, 5)).exists()
    quote(stock, "10.5000", at_time(MONDAY, 10, 13))
    assert net_worth_snapshot_take(at=at_time(MONDAY, 10, 16)).slot_written == 1
    assert NetWorthSnapshot.objects.get(at=at_time(MONDAY, 10, 15)).net_worth == D("100000.00")


def test_the_task_says_when_prices_did_not_move(portfolio, make_stock, monkeypatch, caplog):
    stock = make_stock("TASK", "10.0000")
    backdate(portfolio)
    quote(stock, "10.0000", at_time(MONDAY, 9, 59))
    now = [at_time(MONDAY, 10, 2)]
    monkeypatch.setattr(services.timezone, "now", lambda: now[0])
    assert snapshot_net_worth() == 2  # Sunday's close and this slot
    now[0] = at_time(MONDAY, 10, 7)
    with caplog.at_level(logging.INFO, logger="portfolio.tasks"):
        assert snapshot_net_worth() == 0
    assert "prices did not move" in caplog.text


def test_a_cash_grant_between_snapshots_does_not_change_growth(portfolio, player, make_stock):
    stock = make_stock("GRANT", "100.0000")
    buy(portfolio, stock, 500, "100.0000")  # half in shares, half in cash
    backdate(portfolio)
    quote(stock, "120.0000", at_time(MONDAY, 10, 1))
    net_worth_snapshot_take(at=at_time(MONDAY, 10, 2))
    before = performance(portfolio).growth
    assert before == D("1.1")  # 50,000 cash + 500 x 120 = 110,000
    cash_adjust(
        portfolio=portfolio,
        amount=D("50000.00"),
        reason="Prize",
        by=UserFactory(is_staff=True),
        idempotency_key="grant-1",
    )
    quote(stock, "120.0000", at_time(MONDAY, 10, 6))  # quoted again, unchanged
    net_worth_snapshot_take(at=at_time(MONDAY, 10, 7))
    snapshot = NetWorthSnapshot.objects.get(portfolio=portfolio, at=at_time(MONDAY, 10, 5))
    assert snapshot.net_worth == D("160000.00") and snapshot.net_deposits == D("150000.00")
    assert snapshot.growth == before == performance(portfolio).growth


def test_growth_chains_across_steps_to_a_hand_computed_figure(portfolio, make_stock):
    stock = make_stock("CHAIN", "100.0000")
    buy(portfolio, stock, 1000, "100.0000")  # all in: 1,000 shares, no cash
    backdate(portfolio)
    staff = UserFactory(is_staff=True)
    steps = [
        # (price, grant before the step, growth after it, worked by hand)
        ("100.0000", None, D("1")),  # 100,000
        ("110.0000", None, D("1.1")),  # 110,000 / 100,000
        ("132.0000", None, D("1.32")),  # x 132,000 / 110,000 = 1.2
        # + 10,000 granted: (142,000 + 10,000 - 10,000) / 132,000 = 142 / 132
        ("142.0000", D("10000.00"), D("1.42")),
        # 81,000 / 152,000: 1.42 x 81 / 152 = 0.756710526315789...
        ("71.0000", None, D("0.756710526316")),
    ]
    for minute, (price, grant, expected) in zip(range(0, 50, 10), steps, strict=True):
        if grant:
            cash_adjust(
                portfolio=portfolio, amount=grant, reason="Grant", by=staff, idempotency_key="g"
            )
        quote(stock, price, at_time(MONDAY, 11, minute))
        net_worth_snapshot_take(at=at_time(MONDAY, 11, minute, 30))
        assert performance(portfolio).growth == expected, price
    state = performance(portfolio)
    assert state.peak_growth == D("1.42")
    # 0.756710526316 / 1.42 - 1 = 81 / 152 - 1
    assert state.max_drawdown == D("-0.467105263158")
    assert state.last_net_worth == D("81000.00") and state.last_net_deposits == D("110000.00")
    # The Python formula (selectors.growth_step) agrees with the statement.
    assert growth_step(
        growth=D("1.42"),
        previous_net_worth=D("152000.00"),
        previous_deposits=D("110000.00"),
        net_worth=D("81000.00"),
        net_deposits=D("110000.00"),
    ).quantize(D("1E-12")) == D("0.756710526316")
    growths = list(
        NetWorthSnapshot.objects.filter(portfolio=portfolio, is_close=False)
        .order_by("at")
        .values_list("growth", flat=True)
    )
    assert growths == [expected for _, _, expected in steps]


def test_a_close_snapshot_is_taken_once_per_close_and_sums_the_daily_returns(portfolio, make_stock):
    stock = make_stock("DAILY", "100.0000")
    buy(portfolio, stock, 1000, "100.0000")
    backdate(portfolio)
    # Close prices 100, 110, 99, 99: daily returns +10%, -10%, 0.
    for day, price in enumerate(["100.0000", "110.0000", "99.0000", "99.0000"]):
        close = at_time(MONDAY + timedelta(days=day), 21, 0)
        quote(stock, price, close - timedelta(minutes=1))
        first = net_worth_snapshot_take(at=close + timedelta(seconds=20))
        assert first.close_at == close and first.close_written == 1
        # The close is also this slot's snapshot: one row serves both.
        assert first.slot_written is None
        assert net_worth_snapshot_take(at=close + timedelta(minutes=3)).written == 0
    assert NetWorthSnapshot.objects.filter(portfolio=portfolio, is_close=True).count() == 4
    assert NetWorthSnapshot.objects.filter(portfolio=portfolio).count() == 4
    state = performance(portfolio)
    assert state.close_at == at_time(MONDAY + timedelta(days=3), 21, 0)
    assert state.close_growth == D("0.99")
    # Monday -> Tuesday +0.1; -> Wednesday 0.99 / 1.1 - 1 = -0.1; -> Thursday 0.
    assert state.daily_returns == 3
    assert state.daily_return_sum == D("0")
    assert state.daily_return_sum_sq == D("0.02")
    assert state.max_drawdown == D("-0.1")


def test_a_close_missed_while_the_worker_was_down_is_taken_on_the_next_run(portfolio, make_stock):
    stock = make_stock("DOWN", "100.0000")
    buy(portfolio, stock, 1000, "100.0000")
    backdate(portfolio)
    quote(stock, "100.0000", at_time(MONDAY, 20, 50))
    net_worth_snapshot_take(at=at_time(MONDAY, 20, 51))  # Sunday's close, and 20:50
    # No run from 20:55 until 23:12; the price moved meanwhile.
    quote(stock, "105.0000", at_time(MONDAY, 22, 30))
    late = net_worth_snapshot_take(at=at_time(MONDAY, 23, 12))
    assert late.close_at == at_time(MONDAY, 21, 0) and late.close_written == 1
    assert late.slot_written == 1
    close = NetWorthSnapshot.objects.get(portfolio=portfolio, at=at_time(MONDAY, 21, 0))
    assert close.is_close and close.net_worth == D("105000.00")  # the prices when taken
    slot = NetWorthSnapshot.objects.get(portfolio=portfolio, at=at_time(MONDAY, 23, 10))
    assert not slot.is_close and slot.growth == D("1.05")
    assert performance(portfolio).close_at == at_time(MONDAY, 21, 0)
    # The next runs do not take that close again.
    quote(stock, "106.0000", at_time(MONDAY, 23, 14))
    assert net_worth_snapshot_take(at=at_time(MONDAY, 23, 16)).close_written == 0
    assert NetWorthSnapshot.objects.filter(portfolio=portfolio, is_close=True).count() == 2


def test_a_portfolio_without_performance_steps_from_its_starting_cash(make_portfolio, make_stock):
    stock = make_stock("NEW", "50.0000")
    first = make_portfolio()
    backdate(first)
    quote(stock, "50.0000", at_time(MONDAY, 9, 0))
    net_worth_snapshot_take(at=at_time(MONDAY, 9, 1))
    late = make_portfolio()
    buy(late, stock, 1000, "50.0000")
    Portfolio.objects.filter(pk=late.pk).update(created_at=at_time(MONDAY, 9, 3))
    quote(stock, "60.0000", at_time(MONDAY, 9, 4))
    net_worth_snapshot_take(at=at_time(MONDAY, 9, 6))
    # 50,000 cash + 1,000 x 60 = 110,000 against the 100,000 it started with.
    assert performance(late).growth == D("1.1")
    assert NetWorthSnapshot.objects.filter(portfolio=late).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_snapshots_racing_real_trades_finish_and_the_books_balance():
    from trading.errors import TradingError
    from trading.services import order_place

    stocks = [
        Stock.objects.create(symbol=f"RS{n}", name=f"Race {n}", sector="energy", last_price=D(100))
        for n in range(3)
    ]
    portfolios = [portfolio_open(owner=UserFactory()) for _ in range(12)]
    # Snapshots are taken in the future so that every portfolio already exists, and the
    # prices are quoted later still so that every run sees them move.
    base = services.snapshot_slot(datetime.now(UTC)) + timedelta(days=2)
    Stock.objects.update(quoted_at=base + timedelta(days=5))
    stop = threading.Event()
    start = threading.Barrier(8)
    failures: list[BaseException] = []
    runs: list[services.SnapshotRun] = []

    def trader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            while not stop.is_set():
                # Not enough cash or shares is an expected refusal.
                with contextlib.suppress(TradingError):
                    order_place(
                        portfolio=rng.choice(portfolios),
                        stock=rng.choice(stocks),
                        side=rng.choice(["buy", "buy", "sell"]),
                        type="market",
                        quantity=rng.randint(1, 20),
                        idempotency_key=uuid.uuid4().hex,
                    )
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connection.close()

    def ticker() -> None:
        rng = random.Random(99)
        try:
            start.wait()
            while not stop.is_set():
                stock = rng.choice(stocks)
                Stock.objects.filter(pk=stock.pk).update(
                    last_price=D(rng.randint(8000, 12000)) / 100
                )
        except BaseException as error:  # noqa: BLE001
            failures.append(error)
        finally:
            connection.close()

    def snapshotter() -> None:
        try:
            start.wait()
            for step in range(12):
                time.sleep(0.05)  # let trades land between the runs, not only during them
                runs.append(net_worth_snapshot_take(at=base + timedelta(minutes=5 * step)))
        except BaseException as error:  # noqa: BLE001
            failures.append(error)
        finally:
            stop.set()
            connection.close()

    threads = [threading.Thread(target=trader, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=ticker), threading.Thread(target=snapshotter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert len(runs) == 12
    # Every run snapshotted every portfolio (its slot, or the close standing for it) or
    # (only a close already taken) none: never a part.
    assert all(
        run.slot_written == len(portfolios)
        or (run.slot == run.close_at and run.close_written == len(portfolios))
        for run in runs
    )
    assert all(run.close_written in (0, len(portfolios)) for run in runs)
    assert LedgerEntry.objects.filter(kind="buy").exists()  # trades did run meanwhile
    report = reconcile_check()
    assert report.ok, report.mismatches
    for portfolio in portfolios:
        newest = NetWorthSnapshot.objects.filter(portfolio=portfolio).aggregate(at=Max("at"))["at"]
        state = performance(portfolio)
        assert state.last_at == newest == base + timedelta(minutes=55)
        latest = NetWorthSnapshot.objects.get(portfolio=portfolio, at=newest)
        assert (state.growth, state.last_net_worth) == (latest.growth, latest.net_worth)
        assert latest.net_worth > 0


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
