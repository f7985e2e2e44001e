from __future__ import annotations

from django import forms

from market.models import Stock


class WatchForm(forms.Form):
    """Which stock to add to or remove from the watchlist."""

    symbol = forms.CharField(max_length=12, strip=True)

    def clean_symbol(self) -> Stock:
        symbol = self.cleaned_data["symbol"].upper()
        stock = Stock.objects.filter(symbol=symbol).first()
        if stock is None:
            raise forms.ValidationError(f"There is no stock with the symbol {symbol}.")
        return stock
