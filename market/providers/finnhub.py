"""Finnhub (https://finnhub.io), with the API key from FINNHUB_API_KEY.

GET /api/v1/quote?symbol=AAPL&token=... answers {"c": current, "d": change,
"dp": change %, "h", "l", "o", "pc": previous close, "t": unix time}; an unknown
symbol answers all zeros, which the sanity filter drops.
GET /api/v1/stock/candle?symbol=&resolution=1|D&from=&to=&token= answers
{"s": "ok", "t": [...], "o": [...], "h": [...], "l": [...], "c": [...], "v": [...]}
or {"s": "no_data"}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from market.providers.base import Bar, ProviderError, Resolution
from market.providers.http_client import GuardedClient
from market.providers.remote import RawQuote, RemoteProvider, bars_in_range, rows_from_columns

BASE_URL = "https://finnhub.io"
_RESOLUTION = {"1m": "1", "1d": "D"}


class FinnhubProvider(RemoteProvider):
    name = "finnhub"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        **client_options,
    ) -> None:
        key = settings.FINNHUB_API_KEY if api_key is None else api_key
        if not key:
            raise ImproperlyConfigured(
                "MARKET_PROVIDER=finnhub needs an API key: set FINNHUB_API_KEY in the "
                "environment (a free key is at https://finnhub.io/register)."
            )
        self.api_key = key
        self.client = GuardedClient(
            "finnhub",
            base_url=BASE_URL,
            budget_per_minute=settings.MARKET_FINNHUB_BUDGET_PER_MINUTE,
            transport=transport,
            # The key travels in a header, so it never shows in logged URLs.
            headers={"X-Finnhub-Token": key},
            **client_options,
        )

    def _get(self, path: str, params: dict[str, object]) -> dict[str, Any]:
        payload = self.client.get_json(path, params)
        if not isinstance(payload, dict):
            raise ProviderError(f"finnhub: {path} sent {type(payload).__name__}, not an object")
        return payload

    def fetch_quote(self, symbol: str) -> RawQuote:
        payload = self._get("/api/v1/quote", {"symbol": symbol})
        stamp = payload.get("t")
        return RawQuote(
            price=payload.get("c"),
            volume=0,  # the quote endpoint carries no volume
            at=datetime.fromtimestamp(stamp, tz=UTC)
            if isinstance(stamp, int | float) and stamp > 0
            else None,
        )

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]:
        payload = self._get(
            "/api/v1/stock/candle",
            {
                "symbol": symbol,
                "resolution": _RESOLUTION[resolution],
                "from": int(start.timestamp()),
                "to": int(end.timestamp()),
            },
        )
        status = payload.get("s")
        if status == "no_data":
            return []
        if status != "ok":
            raise ProviderError(f"finnhub: candles for {symbol}: status {status!r}")
        columns = {key: payload.get(short) or [] for key, short in _COLUMNS.items()}
        rows = rows_from_columns(payload.get("t") or [], columns)
        return bars_in_range(symbol, rows, start, end, resolution)


_COLUMNS = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
