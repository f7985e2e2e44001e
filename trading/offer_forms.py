"""The forms of the offer pages: make, counter, accept. Prices and quantities are
quantized where they enter (prices to 0.0001, whole shares)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms

from market.models import Stock
from trading.models import MAX_QUANTITY, Side
from trading.offer_selectors import player_by_handle
from trading.offer_services import MAX_MESSAGE_CHARS

LIFETIMES = [(1, "1 hour"), (6, "6 hours"), (24, "24 hours"), (72, "3 days"), (168, "7 days")]


def _new_key() -> str:
    return uuid.uuid4().hex


class _Terms(forms.Form):
    """Quantity, price, message and lifetime: what every new offer has."""

    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, label="Shares")
    price = forms.DecimalField(
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        label="Price per share",
        widget=forms.NumberInput(attrs={"step": "0.0001", "inputmode": "decimal"}),
    )
    message = forms.CharField(
        required=False,
        max_length=MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": MAX_MESSAGE_CHARS}),
        help_text=f"Optional, at most {MAX_MESSAGE_CHARS} characters.",
    )
    expires_in = forms.TypedChoiceField(
        choices=LIFETIMES, coerce=int, initial=24, label="Expires after"
    )
    # A double click or a retried POST makes one offer.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def terms(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "quantity": data["quantity"],
            "price": data["price"].quantize(Decimal("0.0001")),
            "message": data["message"],
            "expires_in": timedelta(hours=data["expires_in"]),
            "idempotency_key": data["idempotency_key"],
        }


class OfferForm(_Terms):
    side = forms.ChoiceField(
        choices=[(Side.SELL, "I sell shares"), (Side.BUY, "I buy shares")],
        widget=forms.RadioSelect,
        initial=Side.SELL,
    )
    symbol = forms.CharField(max_length=12, label="Stock symbol")
    to = forms.CharField(
        required=False,
        max_length=31,
        label="To player",
        help_text="A handle, like @jane. Leave empty to offer to every player.",
    )

    field_order = ["side", "symbol", "quantity", "price", "to", "message", "expires_in"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.stock: Stock | None = None
        self.addressee = None

    @classmethod
    def initial_for(cls, *, user: Any, symbol: str = "", to: str = "", side: str = "") -> OfferForm:
        initial: dict[str, Any] = {"idempotency_key": _new_key(), "expires_in": 24}
        stock = Stock.objects.filter(
            symbol=symbol.strip().upper(), delisted_at__isnull=True
        ).first()
        if stock is not None:
            initial["symbol"] = stock.symbol
            initial["price"] = stock.last_price
        if to:
            initial["to"] = to.strip().lstrip("@")[:30]
        if side in Side.values:
            initial["side"] = side
        form = cls(initial=initial, user=user)
        form.stock = stock
        return form

    def clean_symbol(self) -> str:
        symbol = self.cleaned_data["symbol"].strip().upper()
        self.stock = Stock.objects.filter(symbol=symbol, delisted_at__isnull=True).first()
        if self.stock is None:
            raise forms.ValidationError(f"No listed stock has the symbol {symbol}.")
        return symbol

    def clean_to(self) -> str:
        handle = self.cleaned_data["to"].strip().lstrip("@").lower()
        if not handle:
            return ""
        if self.user is not None and handle == self.user.handle.lower():
            raise forms.ValidationError("You can't make an offer to yourself.")
        self.addressee = player_by_handle(handle, by=self.user)
        if self.addressee is None:
            raise forms.ValidationError(
                f"No player can trade as @{handle}. Offers go to players with a public "
                "profile or to players you have dealt with; anyone can take an offer "
                "open to all."
            )
        return handle

    def make_kwargs(self) -> dict[str, Any]:
        return {
            "stock": self.stock,
            "side": self.cleaned_data["side"],
            "addressee": self.addressee,
            **self.terms(),
        }


class CounterForm(_Terms):
    @classmethod
    def initial_for(cls, offer: Any) -> CounterForm:
        return cls(
            initial={
                "quantity": offer.remaining_quantity,
                "price": offer.price,
                "expires_in": 24,
                "idempotency_key": _new_key(),
            }
        )


class AcceptForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, label="Shares to take")
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    @classmethod
    def initial_for(cls, offer: Any) -> AcceptForm:
        return cls(initial={"quantity": offer.remaining_quantity, "idempotency_key": _new_key()})
