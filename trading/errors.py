"""What can go wrong with an order. Views show `message` next to `field` (or above the form)."""

from __future__ import annotations


class TradingError(Exception):
    """Base of trading's domain errors.

    `field` names the form field the message belongs next to (None: the whole form).
    `status` is the HTTP status a view answers with: 400 for input that can never be
    right, 409 for input that conflicts with the current state (cash, shares, market).
    """

    field: str | None = None
    status: int = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidOrder(TradingError):
    """The order's own values do not make sense (a stop on the wrong side, a bad trail)."""


class StockNotTradable(TradingError):
    """The stock is halted or delisted."""

    status = 409


class TooManyOpenOrders(TradingError):
    status = 409


class InsufficientFunds(TradingError):
    field = "quantity"
    status = 409


class InsufficientShares(TradingError):
    field = "quantity"
    status = 409


class OrderNotOpen(TradingError):
    """The order already filled, was cancelled or expired: there is nothing to cancel."""

    status = 409


class NoQuote(TradingError):
    """The stock has no price yet, so nothing can be estimated or filled."""

    status = 409
