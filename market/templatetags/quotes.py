"""Fast number filters for the quote spans: the market pages render them and every tick
pushes them for every moved symbol (market.live), so they sit on the live hot path.

`fixed2` prints exactly what `floatformat:2` prints and `grouped` exactly what humanize's
`intcomma` prints (tests/live/test_filters.py compares them value by value), at a
fraction of the cost: `floatformat` builds a Decimal context, walks the digits and goes
through the localized number_format for every value. The fast path covers the types the
quotes hold (Decimal, int); anything else falls back to Django's own filter. Bullpen has
no LocaleMiddleware, so the active language is always LANGUAGE_CODE (en-us: "." for
decimals, "," for thousands).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat

register = template.Library()

_CENT = Decimal("0.01")


@register.filter(is_safe=True)
def fixed2(value: Any) -> str:
    """`floatformat:2`: two decimals, half up, no grouping, never "-0.00"."""
    if type(value) is Decimal:
        try:
            text = f"{value.quantize(_CENT, ROUND_HALF_UP):f}"
        except InvalidOperation:  # NaN, infinity, more digits than the context holds
            return floatformat(value, 2)
        return "0.00" if text == "-0.00" else text
    return floatformat(value, 2)


@register.filter(is_safe=True)
def grouped(value: Any) -> str:
    """`intcomma` for an int: thousands separated by commas."""
    if type(value) is int:
        return f"{value:,}"
    return intcomma(value)
