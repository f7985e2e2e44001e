"""What one market tick produced, handed to every hook in settings.MARKET_TICK_HOOKS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class StockTick:
    stock_id: int
    symbol: str
    price: Decimal
    previous_price: Decimal
    change: Decimal
    change_pct: Decimal
    day_high: Decimal
    day_low: Decimal
    volume: int  # the day's volume so far

    @property
    def is_up(self) -> bool:
        return self.price > self.previous_price

    @property
    def is_down(self) -> bool:
        return self.price < self.previous_price


@dataclass(frozen=True, slots=True)
class TickResult:
    slot: int
    at: datetime
    # Only the stocks whose price moved this tick (what the live pages need).
    ticks: list[StockTick] = field(default_factory=list)
    # Every stock quoted this tick, moved or not: stock id -> price. Order triggers
    # read this, because a tick that died after committing its prices but before its
    # triggers ran leaves satisfied orders behind, and the next tick may well quote
    # the same price again.
    quoted: dict[int, Decimal] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return [tick.symbol for tick in self.ticks]
