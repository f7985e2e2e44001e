"""The order ticket's live estimate: what an order would cost and leave, before placing it.

A read: nothing here writes. The figures come from the same fill model and reservation
rules that order_place uses, so the estimate and the order agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from market.models import Stock
from portfolio.models import Portfolio, Position
from trading import fill_model
from trading.models import OrderType, Side
from trading.services import (
    OrderTerms,
    buy_reservation_for,
    order_fill_price,
    trailing_trigger,
)

ZERO = Decimal("0")


def price_text(price: Decimal) -> str:
    """A price as people write it: cents always, sub-cent digits only when there are any."""
    if price == price.quantize(fill_model.CENT):
        return f"{price:,.2f}"
    return f"{price.normalize():,f}"


@dataclass(frozen=True, slots=True)
class Estimate:
    terms: OrderTerms
    symbol: str
    quote: Decimal
    price: Decimal  # the expected fill price
    notional: Decimal
    fee: Decimal
    total: Decimal  # cash out for a buy, cash in for a sell
    reserved_cash: Decimal  # what a resting buy holds until it fills
    buying_power: Decimal
    buying_power_after: Decimal
    shares_available: int
    fills_now: bool
    problem: str = ""  # not enough cash or shares: shown, and the order is refused

    @property
    def is_buy(self) -> bool:
        return self.terms.side == Side.BUY

    @property
    def description(self) -> str:
        """The order in words: "Buy 10 AAPL, stop $110.00, limit $110.50"."""
        terms = self.terms
        words = f"{terms.side.title()} {terms.quantity:,} {self.symbol}"
        if terms.type == OrderType.MARKET:
            return f"{words} at market"
        parts = []
        if terms.stop_price is not None:
            parts.append(f"stop ${price_text(terms.stop_price)}")
        if terms.limit_price is not None:
            parts.append(f"limit ${price_text(terms.limit_price)}")
        if terms.trail_amount is not None:
            parts.append(f"trailing by ${price_text(terms.trail_amount)}")
        if terms.trail_percent is not None:
            parts.append(f"trailing by {terms.trail_percent.normalize():f}%")
        return ", ".join([words, *parts])

    @property
    def confirm_label(self) -> str:
        verb = "buy" if self.is_buy else "sell"
        return f"Confirm {verb} {self.terms.quantity:,} {self.symbol} ~${self.total:,.2f}"


def _expected_quote(terms: OrderTerms, quote: Decimal) -> tuple[Decimal, bool]:
    """The quote the order is expected to fill against, and whether it fills at once."""
    buy = terms.side == Side.BUY
    if terms.type == OrderType.MARKET:
        return quote, True
    if terms.type == OrderType.LIMIT:
        now = quote <= terms.limit_price if buy else quote >= terms.limit_price
        return (quote if now else terms.limit_price), now
    if terms.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        now = quote >= terms.stop_price if buy else quote <= terms.stop_price
        if terms.type == OrderType.STOP_LIMIT:
            reachable = quote <= terms.limit_price if buy else quote >= terms.limit_price
            return (quote if now and reachable else terms.limit_price), now and reachable
        return (quote if now else terms.stop_price), now
    return trailing_trigger(side=terms.side, water=quote, terms=terms), False


def order_estimate(*, portfolio: Portfolio, stock: Stock, terms: OrderTerms) -> Estimate:
    quote = stock.last_price
    expected, fills_now = _expected_quote(terms, quote)
    price = order_fill_price(terms, quote=expected)
    notional = fill_model.notional(price=price, quantity=terms.quantity)
    fee = fill_model.commission(notional)
    buying_power = portfolio.cash - portfolio.reserved_cash
    position = Position.objects.filter(portfolio=portfolio, stock=stock).first()
    shares_available = position.available_quantity if position else 0
    problem = ""
    reserved_cash = ZERO
    if terms.side == Side.BUY:
        total = notional + fee
        reserved_cash = total if fills_now else buy_reservation_for(terms, quote=quote)
        buying_power_after = buying_power - max(total, reserved_cash)
        if buying_power_after < 0:
            problem = (
                f"Not enough buying power: this needs about ${max(total, reserved_cash):,.2f} "
                f"and ${buying_power:,.2f} is available."
            )
    else:
        total = notional - fee
        buying_power_after = buying_power + (total if fills_now else ZERO)
        if terms.quantity > shares_available:
            problem = (
                f"Not enough {stock.symbol} shares: this needs {terms.quantity:,} and "
                f"{shares_available:,} are available."
            )
    return Estimate(
        terms=terms,
        symbol=stock.symbol,
        quote=quote,
        price=price,
        notional=notional,
        fee=fee,
        total=total,
        reserved_cash=reserved_cash,
        buying_power=buying_power,
        buying_power_after=buying_power_after,
        shares_available=shares_available,
        fills_now=fills_now,
        problem=problem,
    )
