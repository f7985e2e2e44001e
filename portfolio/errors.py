"""The portfolio domain errors. A view shows `str(error)` to the player; each names the
form field it belongs to when there is one (`field`), as accounts.errors does."""

from __future__ import annotations


class PortfolioError(Exception):
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        if field is not None:
            self.field = field
        super().__init__(message)


class InsufficientFunds(PortfolioError):
    field = "quantity"


class InsufficientShares(PortfolioError):
    field = "quantity"


class DuplicateEntry(PortfolioError):
    """An idempotency key that already took effect. Nothing was posted this time."""

    def __init__(self, message: str, *, idempotency_key: str) -> None:
        self.idempotency_key = idempotency_key
        super().__init__(message)


class PortfolioNotFound(PortfolioError):
    pass


class PortfolioNotLocked(PortfolioError):
    """A programming error: a balance was about to change on a row not locked by
    `portfolios_lock` in the current transaction."""


class ReservationMismatch(PortfolioError):
    """A release larger than what is held: a programming error in the caller."""


class WatchlistFull(PortfolioError):
    field = "stock"


class InvalidAmount(PortfolioError):
    field = "amount"
