"""The order ticket and the /orders/ filters."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms

from trading.errors import InvalidOrder
from trading.models import MAX_QUANTITY, OrderType, Side, TimeInForce
from trading.services import OrderTerms, order_terms_validate

PRICE_ERRORS = {
    "invalid": "Enter a number.",
    "max_decimal_places": "Prices have at most 4 decimal places.",
    "max_digits": "That price is too large.",
    "max_whole_digits": "That price is too large.",
}

# The price fields each order type uses; the others are ignored (they may hold what
# the player typed before switching type, and are hidden on the ticket).
FIELDS_BY_TYPE = {
    OrderType.MARKET: (),
    OrderType.LIMIT: ("limit_price",),
    OrderType.STOP: ("stop_price",),
    OrderType.STOP_LIMIT: ("stop_price", "limit_price"),
    OrderType.TRAILING_STOP: ("trail_amount", "trail_percent"),
}
PRICE_FIELDS = ("limit_price", "stop_price", "trail_amount", "trail_percent")


def _price_field(label: str, help_text: str = "", **kwargs: Any) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        max_digits=kwargs.pop("max_digits", 14),
        decimal_places=4,
        help_text=help_text,
        error_messages=PRICE_ERRORS,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        **kwargs,
    )


class OrderForm(forms.Form):
    symbol = forms.CharField(max_length=12, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)
    side = forms.ChoiceField(choices=Side.choices, initial=Side.BUY, widget=forms.RadioSelect)
    type = forms.ChoiceField(
        label="Order type", choices=OrderType.choices, initial=OrderType.MARKET
    )
    quantity = forms.IntegerField(
        label="Shares",
        min_value=1,
        max_value=MAX_QUANTITY,
        error_messages={
            "invalid": "Enter a whole number of shares.",
            "min_value": "Enter at least 1 share.",
            "max_value": f"At most {MAX_QUANTITY:,} shares per order.",
            "required": "Enter how many shares.",
        },
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    limit_price = _price_field("Limit price")
    stop_price = _price_field("Stop price")
    trail_amount = _price_field("Trail ($)", "Follow the price by this many dollars.")
    trail_percent = _price_field("Trail (%)", "…or by this percent.", max_digits=7)
    time_in_force = forms.ChoiceField(
        label="Good for", choices=TimeInForce.choices, initial=TimeInForce.GTC
    )

    terms: OrderTerms | None = None

    @classmethod
    def for_stock(cls, symbol: str, **initial: Any) -> OrderForm:
        """A blank ticket with a fresh idempotency key: one key per rendered ticket, so a
        double submit of it makes one order."""
        return cls(initial={"symbol": symbol, "idempotency_key": uuid.uuid4().hex, **initial})

    def clean_symbol(self) -> str:
        return self.cleaned_data["symbol"].strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        order_type = cleaned.get("type")
        if order_type is None:
            return cleaned
        used = FIELDS_BY_TYPE[order_type]
        for name in PRICE_FIELDS:
            if name not in used:
                self.errors.pop(name, None)
                cleaned[name] = None
        if self.errors:
            return cleaned
        try:
            self.terms = order_terms_validate(
                side=cleaned["side"],
                type=order_type,
                quantity=cleaned["quantity"],
                limit_price=cleaned.get("limit_price"),
                stop_price=cleaned.get("stop_price"),
                trail_amount=cleaned.get("trail_amount"),
                trail_percent=cleaned.get("trail_percent"),
                time_in_force=cleaned.get("time_in_force") or TimeInForce.GTC,
            )
        except InvalidOrder as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned

    def place_kwargs(self) -> dict[str, Any]:
        """The order_place arguments (after is_valid())."""
        assert self.terms is not None
        return {
            "side": self.terms.side,
            "type": self.terms.type,
            "quantity": self.terms.quantity,
            "limit_price": self.terms.limit_price,
            "stop_price": self.terms.stop_price,
            "trail_amount": self.terms.trail_amount,
            "trail_percent": self.terms.trail_percent,
            "time_in_force": self.terms.time_in_force,
            "idempotency_key": self.cleaned_data["idempotency_key"],
        }


class OrderFilterForm(forms.Form):
    STATUS_CHOICES = [
        ("", "All"),
        ("open", "Open"),
        ("filled", "Filled"),
        ("cancelled", "Cancelled"),
        ("expired", "Expired"),
        ("rejected", "Rejected"),
    ]
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    side = forms.ChoiceField(choices=[("", "Buy and sell"), *Side.choices], required=False)
    symbol = forms.CharField(max_length=12, required=False)

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {
            "status": self.cleaned_data.get("status") or "",
            "side": self.cleaned_data.get("side") or "",
            "symbol": (self.cleaned_data.get("symbol") or "").strip().upper(),
        }
