"""Yahoo Finance's public chart endpoint (no key; one request per symbol).

GET /v8/finance/chart/{symbol}?interval=1m&range=1d answers
{"chart": {"result": [{"meta": {...regularMarketPrice, regularMarketTime,
chartPreviousClose, gmtoffset...}, "timestamp": [...], "indicators": {"quote":
[{"open": [...], "high": [...], "low": [...], "close": [...], "volume": [...]}]}}],
"error": null}}. Minutes without trades are nulls in the arrays; they are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote as urlquote

import httpx
from django.conf import settings

from market.providers.base import Bar, ProviderError, Resolution
from market.providers.http_client import GuardedClient
from market.providers.remote import (
    RawQuote,
    RemoteProvider,
    Row,
    bars_in_range,
    rows_from_columns,
)

BASE_URL = "https://query1.finance.yahoo.com"


def _result(payload: Any, symbol: str) -> dict:
    chart = payload.get("chart") if isinstance(payload, dict) else None
    results = (chart or {}).get("result") or []
    if not results or not isinstance(results[0], dict):
        error = (chart or {}).get("error") or {}
        raise ProviderError(
            f"yahoo: no chart for {symbol}: {error.get('description', 'empty answer')}"
        )
    return results[0]


def _rows(result: dict) -> list[Row]:
    quote = ((result.get("indicators") or {}).get("quote") or [{}])[0] or {}
    columns = {key: quote.get(key) or [] for key in ("open", "high", "low", "close", "volume")}
    return rows_from_columns(result.get("timestamp") or [], columns)


class YahooProvider(RemoteProvider):
    name = "yahoo"

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **client_options) -> None:
        self.client = GuardedClient(
            "yahoo",
            base_url=BASE_URL,
            budget_per_minute=settings.MARKET_YAHOO_BUDGET_PER_MINUTE,
            transport=transport,
            **client_options,
        )

    def _chart(self, symbol: str, params: dict[str, object]) -> dict:
        payload = self.client.get_json(f"/v8/finance/chart/{urlquote(symbol, safe='')}", params)
        return _result(payload, symbol)

    def fetch_quote(self, symbol: str) -> RawQuote:
        result = self._chart(symbol, {"interval": "1m", "range": "1d"})
        meta = result.get("meta") or {}
        rows = [(t, row) for t, row in _rows(result) if row["close"] is not None]
        price = meta.get("regularMarketPrice")
        if price is None and rows:  # fall back to the last minute that traded
            price = rows[-1][1]["close"]
        volume = rows[-1][1]["volume"] if rows else 0
        stamp = meta.get("regularMarketTime") or (rows[-1][0] if rows else None)
        return RawQuote(
            price=price,
            volume=int(volume) if isinstance(volume, int | float) else 0,
            at=datetime.fromtimestamp(stamp, tz=UTC) if isinstance(stamp, int | float) else None,
        )

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]:
        result = self._chart(
            symbol,
            {
                "interval": resolution,
                "period1": int(start.timestamp()),
                "period2": int(end.timestamp()),
            },
        )
        # Daily rows are stamped at the exchange's open; the bar belongs to that
        # exchange's date.
        offset = timedelta(seconds=(result.get("meta") or {}).get("gmtoffset") or 0)
        return bars_in_range(symbol, _rows(result), start, end, resolution, day_offset=offset)
