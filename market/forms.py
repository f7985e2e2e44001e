from __future__ import annotations

from django import forms

from market.models import Sector
from market.selectors import SORT_FIELDS, TABS

SORT_CHOICES = [("", "Default")] + [
    (f"{prefix}{key}", key) for key in SORT_FIELDS for prefix in ("", "-")
]


class MarketFilterForm(forms.Form):
    """The market table's search, sector filter, tab and sort: all GET parameters."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=40,
        strip=True,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Symbol or name"}),
    )
    sector = forms.ChoiceField(
        label="Sector", required=False, choices=[("", "All sectors"), *Sector.choices]
    )
    tab = forms.ChoiceField(required=False, choices=[(tab, tab) for tab in TABS])
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def filters(self) -> dict[str, str]:
        """The valid filters; a field that failed validation falls back to its default."""
        data = self.cleaned_data if self.is_bound else {}
        return {
            "query": data.get("q") or "",
            "sector": data.get("sector") or "",
            "tab": data.get("tab") or "all",
            "sort": data.get("sort") or "",
        }
