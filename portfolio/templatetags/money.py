"""Money and percentages as players read them: $1,234.56, +$12.30, -4.20%."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
CENT = Decimal("0.01")


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _grouped(amount: Decimal, places: int = 2) -> str:
    return f"{abs(amount):,.{places}f}"


# What these filters return is digits, signs, commas, "$", "%" or "—", never markup: it
# is marked safe, so the template does not escape it again (a positions table outputs
# thousands of them).
NONE = mark_safe("—")  # noqa: S308 - constants
FLAT, GAIN, LOSS = mark_safe("flat"), mark_safe("gain"), mark_safe("loss")  # noqa: S308


def _formatted(value: Any, *, signed: bool, prefix: str = "", suffix: str = "") -> SafeString:
    amount = _decimal(value)
    if amount is None:
        return NONE
    amount = amount.quantize(CENT)
    sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
    return mark_safe(f"{sign}{prefix}{_grouped(amount)}{suffix}")  # noqa: S308 - no markup


@register.filter
def money(value: Any) -> SafeString:
    return _formatted(value, signed=False, prefix="$")


@register.filter
def signed_money(value: Any) -> SafeString:
    return _formatted(value, signed=True, prefix="$")


@register.filter
def signed_pct(value: Any) -> SafeString:
    return _formatted(value, signed=True, suffix="%")


@register.filter
def price(value: Any) -> SafeString:
    """A share price: two decimals, or up to four when the price carries them."""
    amount = _decimal(value)
    if amount is None:
        return NONE
    places = 4 if amount != amount.quantize(CENT) else 2
    return mark_safe(f"{'-' if amount < 0 else ''}{_grouped(amount, places)}")  # noqa: S308


@register.filter
def trend(value: Any) -> SafeString:
    """The CSS class of a signed figure: gain, loss or flat."""
    amount = _decimal(value)
    if not amount:
        return FLAT
    return GAIN if amount > 0 else LOSS


@register.filter
def shares(value: Any) -> SafeString:
    """A whole number of shares with thousands separators: 1,234. (floatformat:"0g" goes
    through the locale machinery, twice a row of a positions table.)"""
    try:
        return mark_safe(f"{int(value):,}")  # noqa: S308 - digits and commas
    except (TypeError, ValueError):
        return NONE
