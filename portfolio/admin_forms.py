"""Forms of the portfolio admin."""

from __future__ import annotations

from decimal import Decimal

from django import forms


class CashAdjustForm(forms.Form):
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, help_text="Positive grants cash, negative removes it."
    )
    reason = forms.CharField(max_length=280, help_text="Shown in the player's statement.")

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if not amount:
            raise forms.ValidationError("The amount cannot be zero.")
        return amount
