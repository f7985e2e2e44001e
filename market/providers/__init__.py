"""Quote providers. `get_provider()` picks one by settings.MARKET_PROVIDER."""

from __future__ import annotations
