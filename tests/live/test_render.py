"""The pushed spans are the pages' spans: the fast number filters print what Django's
print, and a tick's fragment of a symbol is what the page renders for that stock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string

from market import live
from market.models import Stock
from market.templatetags.quotes import fixed2, grouped

DECIMALS = [
    "0",
    "0.0000",
    "-0",
    "-0.0000",
    "-0.0049",
    "-0.005",
    "0.005",
    "0.0049",
    "0.0050",
    "1.005",
    "2.675",
    "-2.675",
    "1.9999",
    "-1.9951",
    "99.9950",
    "100",
    "105.0000",
    "123456789.1234",
    "-98765.4321",
    "1E+3",
    "1.5E-7",
    "12345678901234.5678",
    "NaN",
    "Infinity",
]


@pytest.mark.parametrize("text", DECIMALS)
def test_fixed2_prints_what_floatformat_2_prints(text):
    value = Decimal(text)
    assert fixed2(value) == floatformat(value, 2)


@pytest.mark.parametrize("value", [None, "", "abc", "12.345", 3, 2.675, -0.001])
def test_fixed2_falls_back_to_floatformat_for_anything_but_a_decimal(value):
    assert fixed2(value) == floatformat(value, 2)


@pytest.mark.parametrize("value", [0, 7, 999, 1000, -1000, 1234567, 10**15, -(10**9) - 1])
def test_grouped_prints_what_intcomma_prints(value):
    assert grouped(value) == intcomma(value)


@pytest.mark.parametrize("value", [None, "", "12345", Decimal("1234.5"), 1234.5])
def test_grouped_falls_back_to_intcomma(value):
    assert grouped(value) == intcomma(value)


QUOTES = {
    "UP": ["105.0050", "100.0000", "5.0050", "5.0050", "106.0000", "99.0000", 1234567, 1],
    "DOWN": ["94.9950", "100.0000", "-5.0050", "-5.0050", "100.0000", "94.9950", 12, 2],
    "FLAT": ["100.0000", "100.0000", "0.0000", "0.0000", "100.0000", "100.0000", 0, 3],
    "TINY": ["0.0049", "0.0050", "-0.0001", "-2.0000", "0.0050", "0.0049", 1000, 4],
}


def _page_stock(symbol: str, quote: list) -> Stock:
    # Every column set, so a partial that starts reading one PushedStock lacks fails here.
    return Stock(
        id=quote[7],
        symbol=symbol,
        name=f"{symbol} Corp",
        sector="technology",
        previous_close=Decimal(quote[1]),
        day_open=Decimal(quote[1]),
        last_price=Decimal(quote[0]),
        change=Decimal(quote[2]),
        change_pct=Decimal(quote[3]),
        day_high=Decimal(quote[4]),
        day_low=Decimal(quote[5]),
        volume=quote[6],
    )


@pytest.mark.parametrize("view", sorted(live.STOCK_VIEWS))
def test_a_pushed_fragment_is_what_the_page_partials_render_for_the_stock(view):
    at = 1_700_000_123
    event = {"slot": 900_000 + sorted(live.STOCK_VIEWS).index(view), "at": at}
    pushed = live.tick_fragments(event, QUOTES, view, list(QUOTES))
    assert len(pushed) == len(QUOTES)
    for symbol, html in zip(QUOTES, pushed, strict=True):
        page = render_to_string(
            live.VIEWS[view], {"stock": _page_stock(symbol, QUOTES[symbol]), "at": at - at % 60}
        ).strip()
        assert html == page
        assert f'-{symbol}"' in html


def test_the_quote_spans_keep_their_ids_and_classes():
    event = {"slot": 424242, "at": 1_700_000_000}
    up, down, flat = live.tick_fragments(event, QUOTES, "quote", ["UP", "DOWN", "FLAT"])
    assert up == (
        '<span id="px-UP">105.01</span><span id="chg-UP" class="gain">+5.01</span>'
        '<span id="chgp-UP" class="gain">+5.01%</span><span id="vol-UP">1,234,567</span>'
    )
    assert '<span id="chg-DOWN" class="loss">-5.01</span>' in down
    assert '<span id="chgp-FLAT" class="flat">0.00%</span>' in flat
