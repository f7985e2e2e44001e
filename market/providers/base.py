"""The one small interface every quote provider implements.

A provider answers two questions: the latest quote for a list of symbols, and the
bars of one symbol over a time range. It never writes to the database; the tick
service (market.services) applies what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

Resolution = Literal["1m", "1d"]


class ProviderError(Exception):
    """The provider could not answer (network, budget, circuit open). The tick marks quotes stale."""


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: Decimal  # quantized to 0.0001 (0.01 for the simulated market)
    volume: int  # shares traded since the previous quote
    at: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    start: datetime  # aware, UTC; minute or day start
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True, slots=True)
class GeneratedEvent:
    """News a provider made up to explain a move (the simulated market's jumps)."""

    headline: str
    body: str
    impact_pct: Decimal
    symbol: str | None = None
    sector: str | None = None  # None with symbol None: the whole market
    at: datetime | None = None  # when it happened; None means "at the tick's time"


@dataclass(slots=True)
class QuoteBatch:
    quotes: dict[str, Quote]
    events: list[GeneratedEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Listing:
    """What a provider needs to know about a stock to quote it."""

    symbol: str
    sector: str
    last_price: Decimal
    previous_close: Decimal


class QuoteProvider(Protocol):
    name: str

    def quotes(
        self,
        listings: Sequence[Listing],
        at: datetime,
        shocks: Mapping[str, Decimal] | None = None,
    ) -> QuoteBatch:
        """Quotes for the listings at `at`. `shocks` maps symbol to a one-off move in
        percent that a moderator published (the simulated market applies it; real
        sources ignore it)."""
        ...

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]: ...
