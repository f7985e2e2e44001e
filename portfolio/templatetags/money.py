"""Money and percentages as players read them: $1,234.56, +$12.30, -4.20%."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

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


def _formatted(value: Any, *, signed: bool, prefix: str = "", suffix: str = "") -> str:
    amount = _decimal(value)
    if amount is None:
        return "—"
    amount = amount.quantize(CENT)
    sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
    return f"{sign}{prefix}{_grouped(amount)}{suffix}"


@register.filter
def money(value: Any) -> str:
    return _formatted(value, signed=False, prefix="$")


@register.filter
def signed_money(value: Any) -> str:
    return _formatted(value, signed=True, prefix="$")


@register.filter
def signed_pct(value: Any) -> str:
    return _formatted(value, signed=True, suffix="%")


@register.filter
def price(value: Any) -> str:
    """A share price: two decimals, or up to four when the price carries them."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    places = 4 if amount != amount.quantize(CENT) else 2
    return f"{'-' if amount < 0 else ''}{_grouped(amount, places)}"


@register.filter
def trend(value: Any) -> str:
    """The CSS class of a signed figure: gain, loss or flat."""
    amount = _decimal(value)
    if not amount:
        return "flat"
    return "gain" if amount > 0 else "loss"
