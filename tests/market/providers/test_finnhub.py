"""Finnhub, against recorded responses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from market.providers import get_provider
from market.providers.base import Listing, ProviderError
from market.providers.finnhub import FinnhubProvider
from tests.market.providers.recorded import Clock, RecordedSource

AT = datetime(2025, 3, 3, 21, 0, tzinfo=UTC)
QUOTE = "/api/v1/quote"
CANDLE = "/api/v1/stock/candle"


def listing(symbol: str, last: str) -> Listing:
    return Listing(symbol, "technology", Decimal(last), Decimal(last))


def finnhub(source: RecordedSource, **options) -> FinnhubProvider:
    options.setdefault("retries", 0)
    return FinnhubProvider(
        api_key="test-key",
        transport=source.transport,
        clock=Clock(),
        sleep=lambda s: None,
        **options,
    )


def test_choosing_finnhub_without_a_key_says_what_to_set(settings):
    settings.FINNHUB_API_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="FINNHUB_API_KEY"):
        get_provider("finnhub")


def test_get_provider_builds_finnhub_with_the_key_from_the_settings(settings):
    settings.FINNHUB_API_KEY = "from-env"
    assert get_provider("finnhub").api_key == "from-env"


def test_a_quote_is_the_current_price_and_the_key_stays_out_of_the_url():
    source = RecordedSource().on(QUOTE, (200, "finnhub_quote_AAPL.json"))
    quote = finnhub(source).quotes([listing("AAPL", "240.00")], AT).quotes["AAPL"]
    assert quote.price == Decimal("238.0300")
    assert quote.at == datetime(2025, 3, 3, 21, 0, tzinfo=UTC)
    request = source.requests[0]
    assert request.url.params["symbol"] == "AAPL"
    assert request.headers["x-finnhub-token"] == "test-key"
    assert "test-key" not in str(request.url)


def test_an_unknown_symbol_answers_zero_and_is_dropped_with_a_log_line(caplog):
    source = RecordedSource().on(QUOTE, (200, "finnhub_quote_unknown.json"))
    with caplog.at_level(logging.WARNING, logger="market.providers"):
        batch = finnhub(source).quotes([listing("ZZZZ", "12.00")], AT)
    assert batch.quotes == {}
    assert "dropped ZZZZ quote: price 0.0000 is not positive" in caplog.text


def test_a_refused_key_is_an_error_that_counts_towards_the_breaker(settings):
    settings.MARKET_BREAKER_FAILURES = 2
    source = RecordedSource().on(QUOTE, (401, "finnhub_error_401.json"))
    provider = finnhub(source)
    for _ in range(2):
        with pytest.raises(ProviderError, match="refused"):
            provider.quotes([listing("AAPL", "240")], AT)
    assert provider.client.breaker.is_open
    with pytest.raises(ProviderError, match="circuit open"):
        provider.quotes([listing("AAPL", "240")], AT)
    assert source.count(QUOTE) == 2


def test_the_rate_limit_answer_is_retried():
    source = RecordedSource().on(
        QUOTE, (429, "finnhub_error_429.json"), (200, "finnhub_quote_AAPL.json")
    )
    batch = finnhub(source, retries=1).quotes([listing("AAPL", "240")], AT)
    assert batch.quotes["AAPL"].price == Decimal("238.0300")
    assert source.count(QUOTE) == 2


def test_daily_candles_become_bars():
    source = RecordedSource().on(CANDLE, (200, "finnhub_candle_AAPL_D.json"))
    start, end = datetime(2025, 2, 28, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC)
    bars = finnhub(source).bars("AAPL", start, end, "1d")
    assert [b.start.date().isoformat() for b in bars] == ["2025-02-28", "2025-03-03"]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        Decimal("236.9500"),
        Decimal("242.3400"),
        Decimal("230.2000"),
        Decimal("241.8400"),
        56833360,
    )
    params = source.requests[0].url.params
    assert params["resolution"] == "D" and params["from"] == str(int(start.timestamp()))


def test_no_data_is_an_empty_history():
    source = RecordedSource().on(CANDLE, (200, "finnhub_candle_no_data.json"))
    assert (
        finnhub(source).bars(
            "AAPL", datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC), "1m"
        )
        == []
    )
