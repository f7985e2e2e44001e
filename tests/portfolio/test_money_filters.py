"""The money filters as players read them, and why their output may skip escaping: it
is only ever digits, signs, separators, "$", "%" or a dash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils.safestring import SafeString

from portfolio.templatetags.money import money, price, shares, signed_money, signed_pct, trend

D = Decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1234.567"), "$1,234.57"),
        (D("-0.5"), "-$0.50"),
        (None, "—"),
        ("not a number", "—"),
    ],
)
def test_money(value, expected):
    assert money(value) == expected


def test_signed_figures_and_trend():
    assert signed_money(D("12.3")) == "+$12.30"
    assert signed_money(D("-12.3")) == "-$12.30"
    assert signed_money(D("0")) == "$0.00"
    assert signed_pct(D("-4.2")) == "-4.20%"
    assert [trend(D("1")), trend(D("-1")), trend(D("0")), trend(None)] == [
        "gain",
        "loss",
        "flat",
        "flat",
    ]


def test_price_keeps_four_places_only_when_it_has_them():
    assert price(D("190.0000")) == "190.00"
    assert price(D("12345.1234")) == "12,345.1234"


def test_shares_group_thousands_and_refuse_what_is_not_a_number():
    assert shares(1234567) == "1,234,567"
    assert shares(D("-1200")) == "-1,200"
    assert shares("<b>") == "—"


def test_every_output_is_marked_safe_and_holds_no_markup():
    outputs = [
        money("<script>"),
        signed_money(D("1")),
        signed_pct(D("1")),
        price(D("1")),
        trend(D("1")),
        shares(5),
        shares(None),
    ]
    assert all(isinstance(output, SafeString) for output in outputs)
    assert not any(set(output) & set("<>&\"'") for output in outputs)
    html = Template("{% load money %}{{ v|money }} {{ q|shares }}").render(
        Context({"v": "<i>", "q": "<i>"})
    )
    assert html == "— —"
