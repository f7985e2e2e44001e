"""The fill model: what a fill against the market costs.

Pure Decimal functions, no database. A market fill pays half the spread (buys pay up,
sells receive less) and a commission of a flat fee plus basis points of the notional.
Resting buy orders reserve the worst case of what their fill can cost, fee included,
so that nothing can be spent twice while they wait.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.conf import settings

CENT = Decimal("0.01")
PRICE_STEP = Decimal("0.0001")
BPS = Decimal(10_000)

BUY = "buy"
SELL = "sell"


def quantize_cash(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def quantize_price(price: Decimal) -> Decimal:
    return price.quantize(PRICE_STEP, rounding=ROUND_HALF_UP)


def commission(notional: Decimal) -> Decimal:
    """The fee for one fill: flat + notional × bps / 10,000, to the cent."""
    return quantize_cash(
        settings.FILL_COMMISSION_FLAT + abs(notional) * settings.FILL_COMMISSION_BPS / BPS
    )


def market_fill_price(*, quote: Decimal, side: str) -> Decimal:
    """The quote moved by half the spread against the player, to 0.0001.

    Rounded against the player too (a buy rounds up, a sell down), so the spread never
    rounds away to nothing on cheap stocks.
    """
    half_spread = quote * settings.FILL_HALF_SPREAD_BPS / BPS
    if side == BUY:
        return (quote + half_spread).quantize(PRICE_STEP, rounding=ROUND_CEILING)
    # Never to zero: a sale at a price of 0 is no sale (and the ledger refuses it).
    return max((quote - half_spread).quantize(PRICE_STEP, rounding=ROUND_FLOOR), PRICE_STEP)


def limit_fill_price(*, quote: Decimal, side: str, limit: Decimal) -> Decimal:
    """A limit order never fills worse than its limit: the spread is capped by it."""
    price = market_fill_price(quote=quote, side=side)
    return min(price, limit) if side == BUY else max(price, limit)


def notional(*, price: Decimal, quantity: int) -> Decimal:
    return quantize_cash(price * quantity)


def buy_cost(*, price: Decimal, quantity: int) -> tuple[Decimal, Decimal]:
    """(notional, fee) of a buy at `price`: the cash it takes is their sum."""
    amount = notional(price=price, quantity=quantity)
    return amount, commission(amount)


def protected_price(quote: Decimal) -> Decimal:
    """The highest price a buy that fills "at market" later is budgeted for.

    A stop or trailing buy becomes a market order when it fires, at a price nobody
    knows yet; its reservation assumes the market may gap up to
    ORDER_PROTECTION_BAND past the trigger (plus the half spread). A fill that gaps
    further draws on the portfolio's free cash, and is rejected if there is not enough.
    """
    band = Decimal(1) + settings.ORDER_PROTECTION_BAND
    return market_fill_price(quote=quote * band, side=BUY)


def buy_reservation(*, price: Decimal, quantity: int) -> Decimal:
    """Cash to hold for a resting buy whose fill price is at most `price`, fee included."""
    amount, fee = buy_cost(price=price, quantity=quantity)
    return amount + fee
