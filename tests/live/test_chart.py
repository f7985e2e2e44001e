"""The stock chart follows the live push in Chromium: a price in the last candle's
bucket moves that candle, a price of a later minute opens the next candle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from market.models import PriceBar
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A 3-minute bucket of the 1D range (market/selectors.py CHART_RANGES).
LAST_BUCKET = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _push(page, *, minute: datetime, price: str) -> None:
    """What the ws extension does with the pushed #candle-AAPL span: an out-of-band swap."""
    page.evaluate(
        """([time, price]) => htmx.swap(document.body,
             '<span id="candle-AAPL" hx-swap-oob="true" hidden data-symbol="AAPL" data-time="'
               + time + '" data-price="' + price + '"></span>',
             {swapStyle: "none"})""",
        [int(minute.timestamp()), price],
    )


def test_the_chart_moves_its_last_candle_and_opens_the_next_minute_live(
    browser_page, live_server, client, make_stock
):
    stock = make_stock("AAPL", "100.0000")
    for index in range(5):
        start = LAST_BUCKET - timedelta(minutes=3 * (4 - index))
        PriceBar.objects.create(
            stock=stock,
            resolution="1m",
            start=start,
            open=Decimal("100"),
            high=Decimal("101"),
            low=Decimal("99"),
            close=Decimal("100"),
            volume=10,
        )
    client.force_login(UserFactory())
    browser_page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    browser_page.goto("/stocks/AAPL/")
    browser_page.wait_for_function("() => window.Bullpen.chart.candles().length === 5")

    # Two minutes later, still the last 3-minute bucket: the candle moves.
    _push(browser_page, minute=LAST_BUCKET + timedelta(minutes=2), price="104.5000")
    candles = browser_page.evaluate("window.Bullpen.chart.candles()")
    assert len(candles) == 5
    assert candles[-1]["close"] == 104.5 and candles[-1]["high"] == 104.5

    # The next bucket: a new candle opens at the pushed price.
    _push(browser_page, minute=LAST_BUCKET + timedelta(minutes=4), price="98.2500")
    candles = browser_page.evaluate("window.Bullpen.chart.candles()")
    assert len(candles) == 6
    assert candles[-1]["time"] == int((LAST_BUCKET + timedelta(minutes=3)).timestamp())
    assert (candles[-1]["open"], candles[-1]["close"]) == (98.25, 98.25)
    assert candles[-2]["close"] == 104.5
