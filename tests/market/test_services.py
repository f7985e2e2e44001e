from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from market import state
from market.models import MarketEvent
from market.providers.base import GeneratedEvent, Quote
from market.services import quotes_apply, tick_hooks_call, tick_run
from market.sessions import session_date, slot_time, tick_slot
from market.ticks import TickResult
from tests.factories import MarketEventFactory, PriceBarFactory, StockFactory

pytestmark = pytest.mark.django_db

# 14:00 UTC: mid-session (the session closes at 21:00 UTC).
NOON = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def quote(symbol: str, price: str, volume: int = 100, at: datetime = NOON) -> Quote:
    return Quote(symbol=symbol, price=Decimal(price), volume=volume, at=at)


def test_it_computes_change_and_change_percent_against_the_previous_close():
    StockFactory(
        symbol="ACME",
        last_price=Decimal("100"),
        previous_close=Decimal("80"),
        quoted_at=NOON - timedelta(minutes=1),
    )
    [tick] = quotes_apply(quotes=[quote("ACME", "90")], at=NOON)
    assert tick.price == Decimal("90")
    assert tick.previous_price == Decimal("100")
    assert tick.change == Decimal("10")
    assert tick.change_pct == Decimal("12.5000")


def test_it_widens_the_day_range_and_adds_volume_within_a_session():
    stock = StockFactory(
        symbol="ACME",
        last_price=Decimal("100"),
        previous_close=Decimal("100"),
        day_open=Decimal("99"),
        day_high=Decimal("101"),
        day_low=Decimal("98"),
        volume=500,
        quoted_at=NOON - timedelta(minutes=5),
    )
    quotes_apply(quotes=[quote("ACME", "103", volume=40)], at=NOON)
    quotes_apply(quotes=[quote("ACME", "97", volume=60)], at=NOON + timedelta(seconds=5))
    stock.refresh_from_db()
    assert (stock.day_open, stock.day_high, stock.day_low) == (
        Decimal("99"),
        Decimal("103"),
        Decimal("97"),
    )
    assert stock.volume == 600
    assert stock.last_price == Decimal("97")
    assert stock.change == Decimal("-3")


def test_the_first_quote_of_a_session_rolls_the_close_and_restarts_the_day():
    before_close = datetime(2026, 3, 10, 20, 59, 55, tzinfo=UTC)
    after_close = datetime(2026, 3, 10, 21, 0, 0, tzinfo=UTC)
    assert session_date(after_close) == session_date(before_close) + timedelta(days=1)
    stock = StockFactory(
        symbol="ACME",
        last_price=Decimal("110"),
        previous_close=Decimal("100"),
        day_high=Decimal("120"),
        day_low=Decimal("95"),
        volume=9000,
        quoted_at=before_close,
    )
    quotes_apply(quotes=[quote("ACME", "111", volume=7, at=after_close)], at=after_close)
    stock.refresh_from_db()
    assert stock.previous_close == Decimal("110")
    assert (stock.day_open, stock.day_high, stock.day_low) == (Decimal("111"),) * 3
    assert stock.volume == 7
    assert stock.change == Decimal("1")


def test_a_stock_never_quoted_takes_its_first_price_as_its_close():
    stock = StockFactory(
        symbol="NEWCO", last_price=Decimal("0"), previous_close=Decimal("0"), quoted_at=None
    )
    quotes_apply(quotes=[quote("NEWCO", "25.5")], at=NOON)
    stock.refresh_from_db()
    assert stock.last_price == Decimal("25.5")
    assert stock.change == 0 and stock.change_pct == 0


def test_applying_the_same_tick_twice_counts_its_volume_once():
    stock = StockFactory(symbol="ACME", volume=0, quoted_at=NOON - timedelta(seconds=5))
    quotes_apply(quotes=[quote("ACME", "101", volume=50)], at=NOON)
    again = quotes_apply(quotes=[quote("ACME", "101", volume=50)], at=NOON)
    stock.refresh_from_db()
    assert again == []
    assert stock.volume == 50


def test_it_ignores_delisted_stocks():
    stock = StockFactory(symbol="GONE", delisted_at=NOON - timedelta(days=1))
    assert quotes_apply(quotes=[quote("GONE", "5")], at=NOON) == []
    stock.refresh_from_db()
    assert stock.last_price == Decimal("100")


def test_it_updates_many_stocks_in_one_statement(django_assert_max_num_queries):
    for index in range(30):
        StockFactory(symbol=f"T{index:02d}", quoted_at=NOON - timedelta(seconds=5))
    with django_assert_max_num_queries(3):  # savepoint, the update, release
        ticks = quotes_apply(quotes=[quote(f"T{index:02d}", "102") for index in range(30)], at=NOON)
    assert len(ticks) == 30


def test_price_bars_are_unique_per_stock_resolution_and_start():
    bar = PriceBarFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBarFactory(stock=bar.stock, resolution=bar.resolution, start=bar.start)
    PriceBarFactory(stock=bar.stock, resolution="1m", start=bar.start)  # other resolution: fine


def test_a_bar_cannot_have_its_low_above_its_high():
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceBarFactory(low=Decimal("110"), high=Decimal("100"))


def test_an_event_must_name_the_target_its_scope_says():
    with pytest.raises(IntegrityError), transaction.atomic():
        MarketEventFactory(scope="stock", stock=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        MarketEventFactory(scope="sector", sector="")
    assert MarketEventFactory(scope="sector", sector="energy").pk


# --- the tick ----------------------------------------------------------------------


def test_a_tick_applies_quotes_streams_them_and_calls_the_hooks(
    provider, settings, django_capture_on_commit_callbacks
):
    calls = []
    settings.MARKET_TICK_HOOKS = ["tests.market.test_services.record_hook"]
    RECORDED.clear()
    StockFactory(symbol="AAA", last_price=Decimal("10"), previous_close=Decimal("10"))
    StockFactory(symbol="BBB", last_price=Decimal("20"), previous_close=Decimal("20"))
    StockFactory(symbol="HALT", halted=True, halt_reason="Pending news")
    provider.prices = {"AAA": Decimal("11"), "BBB": Decimal("20")}
    slot = tick_slot(NOON)
    with django_capture_on_commit_callbacks(execute=True):
        result = tick_run(slot=slot)
    assert provider.calls[0][0] == ["AAA", "BBB"]  # the halted stock is not quoted
    assert [tick.symbol for tick in result.ticks] == ["AAA"]  # BBB did not move
    # ... but the triggers see every quoted price, moved or not.
    assert sorted(result.quoted.values()) == [Decimal("11"), Decimal("20")]
    assert [result] == RECORDED
    [[entry]] = list(state.stream_read_after("0-0", batch_entries=10))
    assert entry.at == slot_time(slot)
    assert sorted((tick.price, tick.volume) for tick in entry.ticks) == [
        (Decimal("11"), 100),
        (Decimal("20"), 100),
    ]
    del calls


RECORDED: list[TickResult] = []


def record_hook(result: TickResult) -> None:
    RECORDED.append(result)


def failing_hook(result: TickResult) -> None:
    raise RuntimeError("the broadcast is down")


def test_a_failing_or_missing_hook_does_not_stop_the_others(settings, caplog):
    RECORDED.clear()
    settings.MARKET_TICK_HOOKS = [
        "tests.market.test_services.failing_hook",
        "nowhere.to_be.found",
        "tests.market.test_services.record_hook",
    ]
    result = TickResult(slot=1, at=NOON, ticks=[])
    tick_hooks_call(result)
    assert [result] == RECORDED
    assert "failing_hook failed" in caplog.text
    assert "nowhere.to_be.found cannot be imported" in caplog.text


def test_a_provider_failure_marks_quotes_delayed_until_a_tick_succeeds(
    provider, client, player, settings, django_capture_on_commit_callbacks
):
    settings.MARKET_TICK_HOOKS = []
    stock = StockFactory(symbol="AAA", last_price=Decimal("10"))
    provider.fail = True
    assert tick_run(slot=tick_slot(NOON)) is None
    stock.refresh_from_db()
    assert stock.last_price == Decimal("10")
    since = state.quotes_delayed_since()
    assert since is not None
    provider.fail = True
    tick_run(slot=tick_slot(NOON) + 1)
    assert state.quotes_delayed_since() == since  # the first failure is kept

    client.force_login(player)
    page = client.get("/market/")
    assert "Quotes delayed since" in page.content.decode()

    provider.fail = False
    with django_capture_on_commit_callbacks(execute=True):
        tick_run(slot=tick_slot(NOON) + 2)
    assert state.quotes_delayed_since() is None
    assert "Quotes delayed" not in client.get("/market/").content.decode()


def test_a_moderator_shock_is_applied_once_and_expanded_to_its_sector(
    provider, settings, django_capture_on_commit_callbacks
):
    settings.MARKET_TICK_HOOKS = []
    StockFactory(symbol="OIL1", sector="energy", last_price=Decimal("100"))
    StockFactory(symbol="OIL2", sector="energy", last_price=Decimal("50"))
    StockFactory(symbol="TECH", sector="technology", last_price=Decimal("10"))
    event = MarketEventFactory(
        scope="sector",
        sector="energy",
        impact_pct=Decimal("-10"),
        source="moderator",
        published_at=NOON - timedelta(minutes=1),
        shock_applied_at=None,
    )
    tick_run(slot=tick_slot(NOON))
    assert provider.calls[0][2] == {"OIL1": Decimal("-10"), "OIL2": Decimal("-10")}
    event.refresh_from_db()
    assert event.shock_applied_at == slot_time(tick_slot(NOON))
    tick_run(slot=tick_slot(NOON) + 1)
    assert provider.calls[1][2] == {}


def test_the_events_a_provider_generates_are_recorded(provider, settings):
    settings.MARKET_TICK_HOOKS = []
    stock = StockFactory(symbol="AAA", sector="energy")
    provider.events = [
        GeneratedEvent(
            headline="AAA wins a contract", body="Big one.", impact_pct=Decimal("4.5"), symbol="AAA"
        ),
        GeneratedEvent(headline="Oil slides", body="", impact_pct=Decimal("-2"), sector="energy"),
    ]
    tick_run(slot=tick_slot(NOON))
    stock_event = MarketEvent.objects.get(stock=stock)
    assert (stock_event.scope, stock_event.source, stock_event.impact_pct) == (
        "stock",
        "simulator",
        Decimal("4.5"),
    )
    assert stock_event.shock_applied_at is not None  # already priced in by the provider
    assert MarketEvent.objects.get(scope="sector").sector == "energy"


def test_a_moderator_publishes_a_shock_through_the_admin(client, provider, settings):
    from django.contrib.auth import get_user_model

    settings.MARKET_TICK_HOOKS = []
    admin_user = get_user_model().objects.create_superuser(
        handle="boss", email="boss@example.com", password="correct-horse-battery-9"
    )
    stock = StockFactory(symbol="ACME", last_price=Decimal("100"))
    client.force_login(admin_user)
    response = client.post(
        "/admin/market/marketevent/add/",
        {
            "headline": "ACME recalls its rockets",
            "body": "",
            "scope": "stock",
            "stock": stock.id,
            "sector": "",
            "impact_pct": "-20",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = MarketEvent.objects.get()
    assert (event.source, event.created_by, event.shock_applied_at) == (
        "moderator",
        admin_user,
        None,
    )
    tick_run(slot=tick_slot(NOON) + 10_000_000)
    assert provider.calls[-1][2] == {"ACME": Decimal("-20.0000")}


def test_an_event_for_a_stock_needs_the_stock(client):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser(
        handle="boss", email="boss@example.com", password="correct-horse-battery-9"
    )
    client.force_login(admin_user)
    response = client.post(
        "/admin/market/marketevent/add/",
        {"headline": "Something", "scope": "stock", "stock": "", "sector": "", "impact_pct": "0"},
    )
    assert response.status_code == 200
    assert "Choose the stock this event is about." in response.content.decode()
    assert not MarketEvent.objects.exists()
