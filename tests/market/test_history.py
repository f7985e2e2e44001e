from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from market import services, state
from market.models import HistoryCursor, PriceBar
from market.sessions import tick_slot
from market.tasks import flush_history, tick
from tests.factories import StockFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def fill_stream(stock_ids: list[int], *, entries: int, seconds: int = 5) -> None:
    """`entries` ticks `seconds` apart, each quoting every stock with a wandering price."""
    for index in range(entries):
        at = START + timedelta(seconds=index * seconds)
        state.tick_publish(
            at=at,
            slot=index,
            ticks=[
                (stock_id, Decimal(100 + (index * 7 + offset * 3) % 11), 10 + index)
                for offset, stock_id in enumerate(stock_ids)
            ],
        )


def all_bars() -> list[tuple]:
    return list(
        PriceBar.objects.order_by("stock_id", "resolution", "start").values_list(
            "stock_id", "resolution", "start", "open", "high", "low", "close", "volume"
        )
    )


def test_the_flush_folds_ticks_into_minute_and_daily_bars():
    stock = StockFactory(symbol="AAA")
    state.tick_publish(at=START, slot=1, ticks=[(stock.id, Decimal("10"), 5)])
    state.tick_publish(
        at=START + timedelta(seconds=20), slot=2, ticks=[(stock.id, Decimal("12"), 7)]
    )
    state.tick_publish(
        at=START + timedelta(seconds=40), slot=3, ticks=[(stock.id, Decimal("9"), 1)]
    )
    state.tick_publish(
        at=START + timedelta(seconds=65), slot=4, ticks=[(stock.id, Decimal("11"), 2)]
    )
    result = services.history_flush()
    assert result.ticks == 4
    minute = PriceBar.objects.get(stock=stock, resolution="1m", start=START)
    assert (minute.open, minute.high, minute.low, minute.close, minute.volume) == (
        Decimal("10"),
        Decimal("12"),
        Decimal("9"),
        Decimal("9"),
        13,
    )
    day = PriceBar.objects.get(stock=stock, resolution="1d")
    assert day.start == datetime(2026, 3, 10, tzinfo=UTC)
    assert (day.open, day.high, day.low, day.close, day.volume) == (
        Decimal("10"),
        Decimal("12"),
        Decimal("9"),
        Decimal("11"),
        15,
    )
    assert state.stream_length() == 0  # trimmed after the commit


def test_a_minute_split_across_two_flushes_merges_without_double_counting():
    stock = StockFactory(symbol="AAA")
    state.tick_publish(at=START, slot=1, ticks=[(stock.id, Decimal("10"), 5)])
    services.history_flush()
    services.history_flush()  # nothing new: nothing changes
    state.tick_publish(
        at=START + timedelta(seconds=30), slot=2, ticks=[(stock.id, Decimal("8"), 3)]
    )
    services.history_flush()
    minute = PriceBar.objects.get(stock=stock, resolution="1m", start=START)
    assert (minute.open, minute.low, minute.close, minute.volume) == (
        Decimal("10"),
        Decimal("8"),
        Decimal("8"),
        8,
    )


def test_a_flush_that_fails_halfway_and_reruns_matches_a_clean_flush(monkeypatch):
    stocks = [StockFactory(symbol=f"F{index}").id for index in range(5)]
    fill_stream(stocks, entries=90)  # 7.5 minutes of ticks

    services.history_flush(batch_entries=20)
    clean = all_bars()
    assert len([bar for bar in clean if bar[1] == "1m"]) == 5 * 8

    # Start again from the same stream, and crash after the second batch.
    PriceBar.objects.all().delete()
    HistoryCursor.objects.all().delete()
    state.market_redis().flushdb()
    fill_stream(stocks, entries=90)
    real_batch = services._flush_batch
    calls = {"count": 0}

    def crash_on_third_batch(**kwargs):
        calls["count"] += 1
        if calls["count"] == 3:
            raise ConnectionError("worker lost")
        return real_batch(**kwargs)

    monkeypatch.setattr(services, "_flush_batch", crash_on_third_batch)
    with pytest.raises(ConnectionError):
        services.history_flush(batch_entries=20)
    assert all_bars() != clean  # a partial history...
    assert state.stream_length() == 90  # ...and nothing trimmed
    monkeypatch.setattr(services, "_flush_batch", real_batch)

    services.history_flush(batch_entries=20)
    assert all_bars() == clean
    assert state.stream_length() == 0


def test_a_crash_after_the_commit_but_before_the_trim_counts_nothing_twice(monkeypatch):
    stocks = [StockFactory(symbol="AAA").id]
    fill_stream(stocks, entries=24)
    monkeypatch.setattr(
        state, "stream_trim_through", lambda last_id: (_ for _ in ()).throw(OSError("redis gone"))
    )
    with pytest.raises(OSError):
        services.history_flush()
    once = all_bars()
    monkeypatch.undo()
    assert state.stream_length() == 24
    services.history_flush()
    assert all_bars() == once
    assert state.stream_length() == 0


def test_the_flush_task_reports_the_ticks_it_folded():
    stocks = [StockFactory(symbol="AAA").id, StockFactory(symbol="BBB").id]
    fill_stream(stocks, entries=3)
    assert flush_history() == 6
    assert flush_history() == 0


def test_a_duplicate_run_of_a_tick_slot_is_a_no_op(
    provider, settings, django_capture_on_commit_callbacks
):
    settings.MARKET_TICK_HOOKS = []
    stock = StockFactory(symbol="AAA", last_price=Decimal("10"), previous_close=Decimal("10"))
    slot = tick_slot(START)
    with django_capture_on_commit_callbacks(execute=True):
        assert tick(slot) == 1
        assert tick(slot) is None  # beat delivered it twice
    assert len(provider.calls) == 1
    stock.refresh_from_db()
    assert stock.last_price == Decimal("10.10")
    assert state.stream_length() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tick(slot + 1) == 1  # the next slot runs
    assert len(provider.calls) == 2


def test_a_late_run_does_not_tick_a_slot_that_already_ran(provider, settings, monkeypatch):
    settings.MARKET_TICK_HOOKS = []
    StockFactory(symbol="AAA")
    monkeypatch.setattr("market.tasks.timezone.now", lambda: START + timedelta(seconds=2))
    assert tick() == 1  # the slot of "now"
    assert tick() is None  # a late duplicate landing in the same slot
    assert len(provider.calls) == 1
