"""Quote providers. `get_provider()` picks one by settings.MARKET_PROVIDER."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from market.providers.base import QuoteProvider

# name -> "module:class"; imported on demand so the simulated market never loads httpx.
PROVIDERS = {
    "simulated": "market.providers.simulated:SimulatedProvider",
    "yahoo": "market.providers.yahoo:YahooProvider",
    "finnhub": "market.providers.finnhub:FinnhubProvider",
    "replay": "market.providers.replay:ReplayProvider",
}


def get_provider(name: str | None = None) -> QuoteProvider:
    """The provider called `name`, else the one settings.MARKET_PROVIDER names."""
    chosen = (name if name is not None else settings.MARKET_PROVIDER).strip().lower()
    target = PROVIDERS.get(chosen)
    if target is None:
        valid = ", ".join(sorted(PROVIDERS))
        raise ImproperlyConfigured(
            f"MARKET_PROVIDER={chosen!r} is not a quote provider; choose one of: {valid}."
        )
    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)()
