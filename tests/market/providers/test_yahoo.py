"""Yahoo's chart endpoint, against recorded responses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from market.providers import get_provider
from market.providers.base import Listing, ProviderError
from market.providers.yahoo import YahooProvider
from tests.market.providers.recorded import Clock, RecordedSource

AT = datetime(2025, 3, 3, 18, 45, tzinfo=UTC)
AAPL = "/v8/finance/chart/AAPL"
MSFT = "/v8/finance/chart/MSFT"
TSLA = "/v8/finance/chart/TSLA"


def listing(symbol: str, last: str = "0") -> Listing:
    return Listing(symbol, "technology", Decimal(last), Decimal(last))


def yahoo(source: RecordedSource, **options) -> YahooProvider:
    options.setdefault("retries", 0)
    return YahooProvider(transport=source.transport, clock=Clock(), sleep=lambda s: None, **options)


def test_get_provider_builds_the_yahoo_source():
    assert get_provider("yahoo").name == "yahoo"


def test_a_quote_is_the_regular_market_price_with_the_last_minute_volume():
    source = RecordedSource().on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
    batch = yahoo(source).quotes([listing("AAPL", "237.50")], AT)
    quote = batch.quotes["AAPL"]
    assert quote.price == Decimal("238.0300")
    assert quote.volume == 20311
    assert quote.at == datetime(2025, 3, 3, 18, 43, tzinfo=UTC)
    request = source.requests[0]
    assert request.url.params["interval"] == "1m" and request.url.params["range"] == "1d"
    assert "Mozilla" in request.headers["user-agent"]


def test_without_a_market_price_the_last_minute_that_traded_is_used():
    source = RecordedSource().on(TSLA, (200, "yahoo_chart_TSLA_no_price.json"))
    quote = yahoo(source).quotes([listing("TSLA", "270")], AT).quotes["TSLA"]
    assert quote.price == Decimal("272.3100")  # the last non-null close; the null minute is skipped


def test_an_unknown_symbol_is_skipped_and_the_others_are_quoted(caplog):
    source = (
        RecordedSource()
        .on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
        .on("/v8/finance/chart/NOPE", (404, "yahoo_chart_not_found.json"))
    )
    with caplog.at_level(logging.WARNING, logger="market.providers"):
        batch = yahoo(source).quotes([listing("NOPE", "10"), listing("AAPL", "238")], AT)
    assert set(batch.quotes) == {"AAPL"}
    assert "no quote for NOPE" in caplog.text


def test_quotes_that_make_no_sense_are_dropped_with_a_log_line(caplog):
    source = (
        RecordedSource()
        .on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
        .on(MSFT, (200, "yahoo_chart_MSFT_1d.json"))
    )
    with caplog.at_level(logging.WARNING, logger="market.providers"):
        batch = yahoo(source).quotes([listing("AAPL", "150.00"), listing("MSFT", "380.00")], AT)
    assert set(batch.quotes) == {"MSFT"}  # 238.03 is a 59% jump from 150
    records = [r for r in caplog.records if r.name == "market.providers"]
    assert len(records) == 1
    assert "dropped AAPL quote" in records[0].getMessage()
    assert "jump" in records[0].getMessage()


def test_the_jump_bound_is_configurable(settings):
    settings.MARKET_MAX_JUMP = Decimal("0.70")
    source = RecordedSource().on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
    assert "AAPL" in yahoo(source).quotes([listing("AAPL", "150.00")], AT).quotes


def test_when_every_symbol_fails_the_call_fails():
    source = RecordedSource().on(AAPL, (404, "yahoo_chart_not_found.json"))
    with pytest.raises(ProviderError, match="no symbol could be quoted"):
        yahoo(source).quotes([listing("AAPL", "238")], AT)


def test_a_spent_budget_returns_what_was_fetched_and_fails_only_when_nothing_was(settings, caplog):
    settings.MARKET_YAHOO_BUDGET_PER_MINUTE = 1
    source = (
        RecordedSource()
        .on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
        .on(MSFT, (200, "yahoo_chart_MSFT_1d.json"))
    )
    provider = yahoo(source)
    batch = provider.quotes([listing("AAPL", "238"), listing("MSFT", "390")], AT)
    assert set(batch.quotes) == {"AAPL"}
    assert "stopped after 1 of 2 symbols" in caplog.text
    with pytest.raises(ProviderError, match="budget"):
        provider.quotes([listing("MSFT", "390")], AT)
    assert source.count(MSFT) == 0


def test_minute_bars_skip_the_minutes_with_nulls():
    source = RecordedSource().on(AAPL, (200, "yahoo_chart_AAPL_1m.json"))
    start, end = datetime(2025, 3, 3, 18, 0, tzinfo=UTC), datetime(2025, 3, 3, 19, 0, tzinfo=UTC)
    bars = yahoo(source).bars("AAPL", start, end, "1m")
    assert [b.start.strftime("%H:%M") for b in bars] == ["18:39", "18:40", "18:42", "18:43"]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("238.4100"),
        Decimal("238.5500"),
        Decimal("238.0200"),
        Decimal("238.1100"),
        112345,
    )
    params = source.requests[0].url.params
    assert params["interval"] == "1m"
    assert params["period1"] == str(int(start.timestamp()))


def test_daily_bars_are_dated_by_the_exchange_and_skip_incomplete_days():
    source = RecordedSource().on(MSFT, (200, "yahoo_chart_MSFT_1d.json"))
    bars = yahoo(source).bars(
        "MSFT", datetime(2025, 2, 27, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC), "1d"
    )
    assert [b.start for b in bars] == [
        datetime(2025, 2, 27, tzinfo=UTC),
        datetime(2025, 2, 28, tzinfo=UTC),
    ]  # March 3rd has a null low
    assert bars[1].close == Decimal("396.9900") and bars[1].volume == 32845700


def test_a_source_that_is_down_is_not_asked_for_every_symbol():
    source = RecordedSource().on(AAPL, (503, None)).on(MSFT, (200, "yahoo_chart_MSFT_1d.json"))
    with pytest.raises(ProviderError, match="HTTP 503"):
        yahoo(source).quotes([listing("AAPL", "238"), listing("MSFT", "390")], AT)
    assert source.count(MSFT) == 0


def test_providers_made_each_tick_share_one_connection_pool():
    assert YahooProvider().client.http is YahooProvider().client.http
