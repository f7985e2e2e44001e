"""Replay: imported bars played forward on a clock anchored in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from market.providers import get_provider
from market.providers.base import Listing, ProviderError
from market.providers.replay import ReplayProvider, replay_clock, replay_clock_reset
from tests.factories import PriceBarFactory, StockFactory

pytestmark = pytest.mark.django_db

ORIGIN = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
WALL = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # the first tick's wall-clock time


@pytest.fixture(autouse=True)
def _replay_settings(settings):
    settings.MARKET_REPLAY_SPEED = 60.0  # one replayed minute per wall second
    settings.MARKET_TICK_SECONDS = 5


def minute_bars(symbol: str, first: datetime, closes: list[str], volume: int = 100) -> None:
    stock = StockFactory(symbol=symbol)
    for k, close in enumerate(closes):
        PriceBarFactory(
            stock=stock,
            resolution="1m",
            start=first + timedelta(minutes=k),
            open=Decimal(close),
            high=Decimal(close),
            low=Decimal(close),
            close=Decimal(close),
            volume=volume * (k + 1),
        )


def listings(*symbols: str) -> list[Listing]:
    return [Listing(s, "technology", Decimal("10"), Decimal("10")) for s in symbols]


def closes(count: int, start: float = 10.0) -> list[str]:
    return [f"{start + 0.1 * k:.2f}" for k in range(count)]


def test_get_provider_builds_the_replay():
    assert get_provider("replay").name == "replay"


def test_the_first_tick_anchors_the_clock_at_the_earliest_bar():
    minute_bars("AAA", ORIGIN, closes(30))
    batch = ReplayProvider().quotes(listings("AAA"), WALL)
    assert batch.quotes == {}  # at the origin no bar has ended yet
    clock = replay_clock()
    assert (clock.anchored_at, clock.origin, clock.resolution) == (WALL, ORIGIN, "1m")


def test_each_tick_quotes_the_close_of_the_latest_bar_that_has_ended(django_assert_num_queries):
    minute_bars("AAA", ORIGIN, closes(30))
    provider = ReplayProvider()
    provider.quotes(listings("AAA"), WALL)
    with django_assert_num_queries(1):
        batch = provider.quotes(listings("AAA"), WALL + timedelta(seconds=5))
    # Replay time 14:35: the 14:34 bar (the fifth) is the latest that has ended.
    quote = batch.quotes["AAA"]
    assert quote.price == Decimal("10.4000")
    assert quote.at == WALL + timedelta(seconds=5)
    assert quote.volume == 100 + 200 + 300 + 400 + 500  # the bars that ended since the last tick
    later = provider.quotes(listings("AAA"), WALL + timedelta(seconds=10)).quotes["AAA"]
    assert later.price == Decimal("10.9000")
    assert later.volume == 600 + 700 + 800 + 900 + 1000


def test_the_replay_speed_sets_how_fast_history_plays(settings):
    settings.MARKET_REPLAY_SPEED = 120.0
    minute_bars("AAA", ORIGIN, closes(30))
    provider = ReplayProvider()
    provider.quotes(listings("AAA"), WALL)
    quote = provider.quotes(listings("AAA"), WALL + timedelta(seconds=5)).quotes["AAA"]
    assert quote.price == Decimal("10.9000")  # ten minutes in five seconds


def test_every_worker_reads_the_same_clock():
    minute_bars("AAA", ORIGIN, closes(30))
    ReplayProvider().quotes(listings("AAA"), WALL)
    other_worker = ReplayProvider()
    quote = other_worker.quotes(listings("AAA"), WALL + timedelta(seconds=3)).quotes["AAA"]
    assert quote.price == Decimal("10.2000")


def test_a_stock_whose_history_starts_later_is_quoted_once_it_begins():
    minute_bars("AAA", ORIGIN, closes(30))
    minute_bars("BBB", ORIGIN + timedelta(minutes=7), closes(5, start=50.0))
    provider = ReplayProvider()
    provider.quotes(listings("AAA", "BBB"), WALL)
    early = provider.quotes(listings("AAA", "BBB"), WALL + timedelta(seconds=5))
    assert set(early.quotes) == {"AAA"}
    later = provider.quotes(listings("AAA", "BBB"), WALL + timedelta(seconds=10))
    assert later.quotes["BBB"].price == Decimal("50.2000")  # 14:39 is BBB's third bar


def test_past_the_last_bar_the_price_holds_with_no_volume_until_a_reset():
    minute_bars("AAA", ORIGIN, closes(3))
    provider = ReplayProvider()
    provider.quotes(listings("AAA"), WALL)
    provider.quotes(listings("AAA"), WALL + timedelta(seconds=5))
    held = provider.quotes(listings("AAA"), WALL + timedelta(seconds=60)).quotes["AAA"]
    assert (held.price, held.volume) == (Decimal("10.2000"), 0)
    replay_clock_reset()
    provider.quotes(listings("AAA"), WALL + timedelta(seconds=100))
    assert replay_clock().anchored_at == WALL + timedelta(seconds=100)


def test_without_minute_bars_it_replays_daily_bars():
    stock = StockFactory(symbol="DDD")
    for k in range(5):
        PriceBarFactory(
            stock=stock,
            resolution="1d",
            start=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=k),
            close=Decimal(20 + k),
        )
    provider = ReplayProvider()
    provider.quotes(listings("DDD"), WALL)
    assert replay_clock().resolution == "1d"
    # 4,400 wall seconds at 60x is Jan 4th 01:20 in the replay: Jan 3rd's bar has
    # ended, Jan 4th's has not.
    quote = provider.quotes(listings("DDD"), WALL + timedelta(seconds=4400)).quotes["DDD"]
    assert quote.price == Decimal("22.0000")


def test_with_nothing_imported_the_replay_fails_clearly():
    StockFactory(symbol="EEE")
    with pytest.raises(ProviderError, match="import_prices"):
        ReplayProvider().quotes(listings("EEE"), WALL)
    assert replay_clock() is None


def test_bars_are_the_imported_bars_in_the_range():
    minute_bars("AAA", ORIGIN, closes(10))
    bars = ReplayProvider().bars(
        "AAA", ORIGIN + timedelta(minutes=2), ORIGIN + timedelta(minutes=5), "1m"
    )
    assert [b.close for b in bars] == [Decimal("10.2000"), Decimal("10.3000"), Decimal("10.4000")]
    assert bars[0].start == ORIGIN + timedelta(minutes=2)
