"""Headlines for the simulated market's jumps.

A jump is drawn first; the story is picked afterwards to fit its size, sign and
level (one stock, one sector, the whole market), so the news always explains the
move rather than the other way round.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import numpy as np

from market.providers.base import GeneratedEvent

# (headline, body). {sym} the symbol, {sector} the sector's label, {move} "rose 4.20%".
# A template may be limited to some sectors; None means any.
_STOCK_UP: list[tuple[str, str, frozenset[str] | None]] = [
    (
        "{sym} beats earnings estimates",
        "{sym} reported quarterly earnings well ahead of analyst expectations and "
        "raised its margin outlook. The stock {move} on the results.",
        None,
    ),
    (
        "{sym} raises full-year guidance",
        "Management at {sym} lifted its revenue forecast for the year, citing strong "
        "demand. Shares {move}.",
        None,
    ),
    (
        "FDA approves {sym}'s lead drug candidate",
        "Regulators approved {sym}'s most advanced therapy after a positive late-stage "
        "trial. The stock {move} as analysts raised peak-sales estimates.",
        frozenset({"health_care"}),
    ),
    (
        "{sym} wins multi-year government contract",
        "{sym} was awarded a large multi-year contract, adding visibility to its order "
        "book. Shares {move}.",
        frozenset({"industrials", "technology", "energy", "materials", "communication"}),
    ),
    (
        "{sym} announces $2 billion share buyback",
        "The board of {sym} authorised a new share repurchase programme. The stock {move}.",
        None,
    ),
    (
        "Analysts upgrade {sym} to buy",
        "Two brokers upgraded {sym}, pointing to an improving competitive position. Shares {move}.",
        None,
    ),
]
_STOCK_DOWN: list[tuple[str, str, frozenset[str] | None]] = [
    (
        "{sym} misses earnings estimates",
        "{sym} reported quarterly earnings below analyst expectations as costs rose "
        "faster than sales. The stock {move}.",
        None,
    ),
    (
        "{sym} cuts guidance",
        "{sym} lowered its full-year outlook, blaming softer orders. Shares {move}.",
        None,
    ),
    (
        "{sym} CEO steps down unexpectedly",
        "The chief executive of {sym} resigned with immediate effect; the board named an "
        "interim successor. The stock {move}.",
        None,
    ),
    (
        "FDA rejects {sym}'s drug application",
        "Regulators declined to approve {sym}'s application and asked for another trial. "
        "The stock {move}.",
        frozenset({"health_care"}),
    ),
    (
        "{sym} recalls products over safety concerns",
        "{sym} announced a voluntary recall of several product lines. Shares {move}.",
        frozenset({"consumer_discretionary", "consumer_staples", "health_care"}),
    ),
    (
        "Regulators open probe into {sym}",
        "Authorities opened an investigation into {sym}'s accounting practices. The stock {move}.",
        None,
    ),
    (
        "Analysts downgrade {sym} to sell",
        "A leading broker downgraded {sym}, warning of slowing growth. Shares {move}.",
        None,
    ),
]
_SECTOR_UP: dict[str | None, tuple[str, str]] = {
    None: (
        "{sector} stocks rally on upbeat industry data",
        "Better-than-expected industry figures lifted {sector} shares across the board; "
        "the sector {move}.",
    ),
    "energy": (
        "Oil prices surge, lifting energy stocks",
        "Crude jumped after producers agreed to cut output. Energy shares {move}.",
    ),
    "financials": (
        "Banks rally as the yield curve steepens",
        "Wider lending margins are expected to lift bank earnings. Financials {move}.",
    ),
    "technology": (
        "Chip demand forecast lifts technology shares",
        "A bullish industry forecast for semiconductor demand sent technology stocks "
        "higher; the sector {move}.",
    ),
    "health_care": (
        "Drug pricing proposal shelved; health care rallies",
        "Lawmakers dropped a plan to cap drug prices. Health care shares {move}.",
    ),
}
_SECTOR_DOWN: dict[str | None, tuple[str, str]] = {
    None: (
        "{sector} stocks slide as regulators tighten rules",
        "New rules for the industry weighed on {sector} shares; the sector {move}.",
    ),
    "energy": (
        "Oil slumps on supply glut, dragging energy stocks",
        "Crude fell sharply on rising inventories. Energy shares {move}.",
    ),
    "financials": (
        "Bank stocks fall on credit worries",
        "Rising loan defaults at regional lenders rattled investors. Financials {move}.",
    ),
    "technology": (
        "Export restrictions hit technology stocks",
        "New export controls on advanced chips weighed on technology shares; the sector {move}.",
    ),
    "real_estate": (
        "Real estate slides as mortgage rates climb",
        "Higher borrowing costs hit property stocks. Real estate {move}.",
    ),
}
_MARKET_UP: list[tuple[str, str]] = [
    (
        "Central bank cuts interest rates",
        "The central bank lowered its policy rate by a quarter point, more than markets "
        "expected. The broad market {move}.",
    ),
    (
        "Jobs report beats expectations",
        "Employers added far more jobs than forecast while wage growth stayed moderate. "
        "Stocks {move}.",
    ),
    (
        "Inflation cools more than expected",
        "Consumer prices rose less than forecast, raising hopes of lower rates. The market {move}.",
    ),
]
_MARKET_DOWN: list[tuple[str, str]] = [
    (
        "Central bank signals more rate hikes",
        "Policymakers warned that rates will stay higher for longer. The broad market {move}.",
    ),
    (
        "Jobs report disappoints",
        "Hiring slowed sharply last month, stoking recession fears. Stocks {move}.",
    ),
    (
        "Inflation runs hotter than expected",
        "Consumer prices rose faster than forecast, pushing bond yields up. The market {move}.",
    ),
    (
        "Geopolitical tensions rattle markets",
        "Escalating tensions abroad sent investors into safe havens. Stocks {move}.",
    ),
]


def sector_label(sector: str) -> str:
    try:
        from market.models import Sector

        return str(Sector(sector).label)
    except (ImportError, ValueError):
        return sector.replace("_", " ").title()


def _move(impact_pct: Decimal) -> str:
    verb = "rose" if impact_pct >= 0 else "fell"
    return f"{verb} {abs(impact_pct)}%"


def _pick(rng: np.random.Generator, options: list) -> object:
    return options[int(rng.integers(len(options)))]


def stock_event(
    rng: np.random.Generator, *, symbol: str, sector: str, impact_pct: Decimal, at: datetime | None
) -> GeneratedEvent:
    pool = _STOCK_UP if impact_pct >= 0 else _STOCK_DOWN
    fitting = [(h, b) for h, b, only in pool if only is None or sector in only]
    headline, body = _pick(rng, fitting)
    fields = {"sym": symbol, "move": _move(impact_pct)}
    return GeneratedEvent(
        headline=headline.format(**fields),
        body=body.format(**fields),
        impact_pct=impact_pct,
        symbol=symbol,
        sector=sector,
        at=at,
    )


def sector_event(
    rng: np.random.Generator, *, sector: str, impact_pct: Decimal, at: datetime | None
) -> GeneratedEvent:
    pool = _SECTOR_UP if impact_pct >= 0 else _SECTOR_DOWN
    headline, body = pool.get(sector, pool[None])
    fields = {"sector": sector_label(sector), "move": _move(impact_pct)}
    return GeneratedEvent(
        headline=headline.format(**fields),
        body=body.format(**fields),
        impact_pct=impact_pct,
        sector=sector,
        at=at,
    )


def market_event(
    rng: np.random.Generator, *, impact_pct: Decimal, at: datetime | None
) -> GeneratedEvent:
    headline, body = _pick(rng, _MARKET_UP if impact_pct >= 0 else _MARKET_DOWN)
    return GeneratedEvent(
        headline=headline,
        body=body.format(move=_move(impact_pct)),
        impact_pct=impact_pct,
        at=at,
    )
