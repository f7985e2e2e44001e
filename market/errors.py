"""The market's domain errors."""

from __future__ import annotations


class MarketError(Exception):
    field: str | None = None


class StockUnknown(MarketError):
    field = "symbol"


class ChartRangeUnknown(MarketError):
    field = "range"


class ImportFileInvalid(MarketError):
    """A CSV that cannot be imported: wrong header, or bad rows (listed with line numbers)."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)
