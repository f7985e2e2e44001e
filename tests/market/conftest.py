"""Market test fixtures: a clean market Redis database and a scripted quote provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import pytest

import market.providers
from market import state
from market.providers.base import (
    GeneratedEvent,
    Listing,
    ProviderError,
    Quote,
    QuoteBatch,
)


@pytest.fixture(autouse=True)
def _clean_market_redis():
    # This engineer's own embedded Redis (EMBEDDED_REDIS_NAME): flushing its market db is safe.
    state.market_redis().flushdb()
    yield
    state.market_redis().flushdb()


class ScriptedProvider:
    """A real provider whose next prices a test sets: `prices[symbol]`, or +1% otherwise.
    Records what the tick asked for."""

    name = "scripted"

    def __init__(self) -> None:
        self.prices: dict[str, Decimal] = {}
        self.volume = 100
        self.events: list[GeneratedEvent] = []
        self.fail = False
        self.calls: list[tuple[list[str], datetime, dict[str, Decimal]]] = []

    def quotes(
        self,
        listings: Sequence[Listing],
        at: datetime,
        shocks: Mapping[str, Decimal] | None = None,
    ) -> QuoteBatch:
        self.calls.append(([listing.symbol for listing in listings], at, dict(shocks or {})))
        if self.fail:
            raise ProviderError("source unreachable")
        quotes = {}
        for listing in listings:
            price = self.prices.get(listing.symbol, listing.last_price * Decimal("1.01"))
            shock = (shocks or {}).get(listing.symbol)
            if shock:
                price = price * (1 + shock / 100)
            quotes[listing.symbol] = Quote(
                symbol=listing.symbol,
                price=price.quantize(Decimal("0.01")),
                volume=self.volume,
                at=at,
            )
        return QuoteBatch(quotes=quotes, events=list(self.events))

    def bars(self, symbol, start, end, resolution):
        return []


@pytest.fixture
def provider(monkeypatch) -> ScriptedProvider:
    scripted = ScriptedProvider()
    monkeypatch.setattr(market.providers, "get_provider", lambda name=None: scripted, raising=False)
    return scripted
