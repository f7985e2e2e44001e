"""The simulated market: determinism, prices, shocks, jumps and their news, carried state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from market.providers import get_provider, simulated
from market.providers.base import Listing
from market.providers.simulated import SimulatedProvider, generate_history, universe_for
from market.state import market_redis

AT = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
SECTORS = ["technology", "energy", "utilities", "health_care", "financials"]


def make_listings(n: int = 20, price: str = "50.00") -> list[Listing]:
    return [
        Listing(f"SIM{i:02d}", SECTORS[i % len(SECTORS)], Decimal(price), Decimal(price))
        for i in range(n)
    ]


def run_ticks(provider: SimulatedProvider, listings: list[Listing], ticks: int) -> list[dict]:
    """Ticks in a row, feeding each quote back as the next last price (as the tick does)."""
    history = []
    for k in range(ticks):
        batch = provider.quotes(listings, AT + timedelta(seconds=5 * k))
        history.append({s: q.price for s, q in batch.quotes.items()})
        listings = [
            Listing(x.symbol, x.sector, batch.quotes[x.symbol].price, x.previous_close)
            for x in listings
        ]
    return history


def test_get_provider_defaults_to_the_simulated_market(settings):
    settings.MARKET_PROVIDER = "simulated"
    assert isinstance(get_provider(), SimulatedProvider)
    assert get_provider("simulated").name == "simulated"


def test_get_provider_names_the_valid_choices_for_an_unknown_name():
    with pytest.raises(ImproperlyConfigured) as error:
        get_provider("bloomberg")
    for name in ("simulated", "yahoo", "finnhub", "replay"):
        assert name in str(error.value)


def test_the_same_seed_gives_the_same_ticks_and_another_seed_different_ones():
    listings = make_listings()
    first = run_ticks(SimulatedProvider(seed=7, tick_seconds=5), listings, 5)
    market_redis().flushdb()
    again = run_ticks(SimulatedProvider(seed=7, tick_seconds=5), listings, 5)
    market_redis().flushdb()
    other = run_ticks(SimulatedProvider(seed=8, tick_seconds=5), listings, 5)
    assert first == again
    assert first != other


def test_the_order_of_the_listings_does_not_change_the_quotes():
    listings = make_listings()
    forward = SimulatedProvider(seed=7, tick_seconds=5).quotes(listings, AT).quotes
    market_redis().flushdb()
    backward = SimulatedProvider(seed=7, tick_seconds=5).quotes(listings[::-1], AT).quotes
    assert {s: q.price for s, q in forward.items()} == {s: q.price for s, q in backward.items()}


def test_prices_stay_positive_and_are_rounded_to_the_cent():
    listings = make_listings(10, price="0.02")  # a penny stock must never reach zero
    provider = SimulatedProvider(seed=3, tick_seconds=60)
    for prices in run_ticks(provider, listings, 60):
        for price in prices.values():
            assert price >= Decimal("0.01")
            assert price.as_tuple().exponent == -2


def test_small_moves_are_not_rounded_away_tick_after_tick():
    # A $20 stock moves well under a cent in 5 seconds; the unrounded price carried in
    # Redis makes those moves add up instead of rounding back to the same cent.
    history = run_ticks(SimulatedProvider(seed=3, tick_seconds=5), make_listings(3, "20.00"), 120)
    assert len({prices["SIM00"] for prices in history}) > 5


def test_quotes_carry_volume_and_the_tick_time():
    batch = SimulatedProvider(seed=3, tick_seconds=5).quotes(make_listings(), AT)
    assert all(q.volume >= 0 and q.at == AT for q in batch.quotes.values())
    assert sum(q.volume for q in batch.quotes.values()) > 0


def test_a_moderator_shock_moves_only_its_stock_by_about_that_much():
    listings = make_listings()
    plain = SimulatedProvider(seed=5, tick_seconds=5).quotes(listings, AT).quotes
    market_redis().flushdb()
    shocked = (
        SimulatedProvider(seed=5, tick_seconds=5)
        .quotes(listings, AT, shocks={"SIM03": Decimal("-12.5")})
        .quotes
    )
    assert shocked["SIM03"].price / plain["SIM03"].price == pytest.approx(
        Decimal("0.875"), abs=Decimal("0.001")
    )
    assert shocked["SIM03"].volume > plain["SIM03"].volume
    others = {s: q.price for s, q in shocked.items() if s != "SIM03"}
    assert others == {s: q.price for s, q in plain.items() if s != "SIM03"}


def test_a_jump_comes_with_news_that_explains_it(monkeypatch):
    # Make every stock jump in this tick; each must get a story whose sign matches its move.
    monkeypatch.setitem(simulated.JUMPS_PER_DAY, "stock", 1e12)
    listings = make_listings()
    batch = SimulatedProvider(seed=5, tick_seconds=5).quotes(listings, AT)
    by_symbol = {e.symbol: e for e in batch.events if e.symbol}
    assert set(by_symbol) == {x.symbol for x in listings}
    for x in listings:
        event = by_symbol[x.symbol]
        assert event.headline and x.symbol in event.headline
        assert event.sector == x.sector and event.at == AT
        assert abs(event.impact_pct) >= Decimal("0.5")
        moved = batch.quotes[x.symbol].price - x.last_price
        assert (moved > 0) == (event.impact_pct > 0), (event, moved)
        if event.impact_pct > 0:
            assert "rose" in event.body
        else:
            assert "fell" in event.body


def test_market_and_sector_jumps_make_market_and_sector_news(monkeypatch):
    monkeypatch.setitem(simulated.JUMPS_PER_DAY, "market", 1e12)
    monkeypatch.setitem(simulated.JUMPS_PER_DAY, "sector", 1e12)
    batch = SimulatedProvider(seed=5, tick_seconds=5).quotes(make_listings(), AT)
    market_news = [e for e in batch.events if e.symbol is None and e.sector is None]
    sector_news = {e.sector for e in batch.events if e.symbol is None and e.sector}
    assert len(market_news) == 1
    assert sector_news == set(SECTORS)


def test_the_state_between_ticks_lives_in_redis_and_survives_a_new_listing():
    listings = make_listings(4)
    provider = SimulatedProvider(seed=5, tick_seconds=5)
    provider.quotes(listings, AT)
    assert market_redis().exists(provider.state_key)
    before = universe_for(listings, 5)
    variance_before, _, _ = provider._load_state(before)

    grown = [*listings, Listing("NEWCO", "energy", Decimal("30"), Decimal("30"))]
    after = universe_for(grown, 5)
    variance_after, carried, _ = provider._load_state(after)
    assert variance_after[-1] == after.long_run[-1]  # the new stock starts at its long-run variance
    assert np.isnan(carried[-1])
    assert list(variance_after[-5:-1]) == list(variance_before[-4:])


def test_missing_state_falls_back_to_the_long_run_variance():
    listings = make_listings(4)
    provider = SimulatedProvider(seed=5, tick_seconds=5)
    variance, _, pending = provider._load_state(universe_for(listings, 5))
    assert list(variance) == list(universe_for(listings, 5).long_run)
    assert not pending.any()


def test_history_is_a_pure_function_of_its_arguments():
    listings = make_listings(6)
    start, end = AT, AT + timedelta(hours=2)
    one = generate_history(listings, start, end, "1m", seed=11)
    two = generate_history(listings, start, end, "1m", seed=11)
    other = generate_history(listings, start, end, "1m", seed=12)
    assert one == two
    assert one != other
    assert [len(bars) for bars in one.values()] == [120] * 6


def test_history_bars_are_consistent_candles():
    listings = make_listings(8, price="3.00")
    events: list = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    history = generate_history(listings, start, start + timedelta(days=250), "1d", 4, events=events)
    for x in listings:
        bars = history[x.symbol]
        assert len(bars) == 250
        assert bars[0].open == Decimal("3.00")
        assert all(b.start.hour == 0 and b.start.minute == 0 for b in bars)
        for b in bars:
            assert Decimal("0.01") <= b.low <= min(b.open, b.close)
            assert b.high >= max(b.open, b.close)
            assert b.volume > 0
            assert b.close.as_tuple().exponent == -2
        assert all(a.close == b.open for a, b in zip(bars, bars[1:], strict=False))
    assert events, "250 days of 8 stocks should have some news"
    assert all(start <= e.at <= start + timedelta(days=250) for e in events)


def test_bars_of_one_symbol_are_a_made_up_but_repeatable_history():
    provider = SimulatedProvider(seed=9, tick_seconds=5)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    bars = provider.bars("SOLO", start, start + timedelta(days=30), "1d")
    assert len(bars) == 30 and all(b.low > 0 for b in bars)
    assert bars[0].open == simulated.initial_price("SOLO", 9)
    assert bars == provider.bars("SOLO", start, start + timedelta(days=30), "1d")
