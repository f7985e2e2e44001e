"""What trading tells the live layer (trading.events), and when: after the commit, one
call per fill; a tick's fills go out in one batch task instead of inline."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.trading.conftest import place, tick
from trading import events, services, tasks
from trading.models import Fill
from trading.triggers import on_tick

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


@pytest.fixture(autouse=True)
def _no_pending_pushes():
    # Fills of earlier tests may still wait in this process's batch, their timer running.
    services.announcements_flush()
    time.sleep(2 * services.PUSH_BATCH_SECONDS)


@pytest.fixture
def announced(monkeypatch):
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(events, "fill_made", lambda fill_id: calls.append(("fill_made", fill_id)))
    monkeypatch.setattr(
        events, "order_changed", lambda order_id: calls.append(("order_changed", order_id))
    )
    return calls


def test_a_market_fill_is_announced_once_from_a_task_queued_at_its_commit(
    portfolio, stock, announced, monkeypatch
):
    queued: list[list] = []
    monkeypatch.setattr(tasks.announce, "delay", lambda batch: queued.append(batch))
    monkeypatch.setattr(services, "PUSH_BATCH_SECONDS", 60)  # the test flushes, not the timer
    first = place(portfolio, stock, "buy", "market", 1)
    second = place(portfolio, stock, "buy", "market", 2)

    fills = [first.fills.get().pk, second.fills.get().pk]
    assert announced == []  # nothing rendered or pushed in the order's request
    assert queued == []  # not one task per fill: the process's batch goes out together
    assert services.announcements_flush() == 2
    assert queued == [[("fill_made", fills[0]), ("fill_made", fills[1])]]
    tasks.announce(queued[0])
    assert announced == [("fill_made", fills[0]), ("fill_made", fills[1])]
    assert services.announcements_flush() == 0


def test_a_market_fills_batch_is_queued_by_its_timer(portfolio, stock, monkeypatch):
    queued: list[list] = []
    monkeypatch.setattr(tasks.announce, "delay", lambda batch: queued.append(batch))
    order = place(portfolio, stock, "buy", "market", 1)
    deadline = time.monotonic() + 5
    while not queued and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queued == [[("fill_made", order.fills.get().pk)]]


def test_a_market_fill_is_announced_inline_when_the_broker_refuses_the_task(
    portfolio, stock, announced, monkeypatch
):
    def refuse(batch):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.announce, "delay", refuse)
    monkeypatch.setattr(services, "PUSH_BATCH_SECONDS", 60)
    order = place(portfolio, stock, "buy", "market", 1)
    services.announcements_flush()
    assert announced == [("fill_made", order.fills.get().pk)]


def test_a_resting_order_and_its_cancel_are_announced(portfolio, stock, player, announced):
    from trading.services import order_cancel

    order = place(portfolio, stock, "buy", "limit", 1, limit_price=D("90"))
    order_cancel(order=order, by=player)
    assert announced == [("order_changed", order.pk), ("order_changed", order.pk)]


def test_a_ticks_fills_are_announced_in_one_batch_off_the_tick(
    portfolio, stock, announced, monkeypatch
):
    queued: list[list] = []
    monkeypatch.setattr(tasks.announce, "delay", lambda batch: queued.append(batch))
    first = place(portfolio, stock, "buy", "limit", 1, limit_price=D("95"))
    second = place(portfolio, stock, "buy", "limit", 2, limit_price=D("96"))
    announced.clear()

    on_tick(tick((stock, "94")))

    fills = {fill.order_id: fill.pk for fill in Fill.objects.all()}
    assert announced == []  # nothing rendered or pushed inline
    assert queued == [[("fill_made", fills[first.pk]), ("fill_made", fills[second.pk])]]

    tasks.announce(queued[0])
    assert announced == queued[0]


def test_fan_out_hands_a_ticks_fills_to_tasks_that_may_run_twice(portfolio, stock, monkeypatch):
    from trading.triggers import orders_trigger

    queued: list[tuple] = []
    monkeypatch.setattr(tasks.fill_triggered_orders, "delay", lambda *args: queued.append(args))
    monkeypatch.setattr(tasks.announce, "delay", lambda batch: None)
    orders = [place(portfolio, stock, "buy", "limit", 1, limit_price=D("95")) for _ in range(3)]
    tick((stock, "94"))

    report = orders_trigger(prices={stock.pk: D("94")}, fan_out=2)

    assert (report.triggered, report.queued, report.filled) == (3, 3, 0)
    assert [len(chunk) for chunk, _ in queued] == [2, 1]
    assert Fill.objects.count() == 0
    for chunk, at in queued + queued:  # a redelivered task fills nothing more
        tasks.fill_triggered_orders(chunk, at)
    assert sorted(Fill.objects.values_list("order_id", flat=True)) == [o.pk for o in orders]
