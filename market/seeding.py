"""A plausible made-up market: companies across the 11 usual sectors, and their history
from the simulated market's model. Everything is derived from the count and the seed,
so seeding twice gives the same stocks and the same bars."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from market.models import Sector, Stock
from market.providers.base import Bar, GeneratedEvent, Listing
from market.services import BarRow, bars_write, index_rebuild, quote_set_from_bars
from market.sessions import day_bar_start, session_date, session_start

# Industries and name stems per sector; a company is a stem plus a suffix.
SECTOR_BOOK: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    Sector.TECHNOLOGY: (
        ("Software", "Semiconductors", "IT Services", "Hardware", "Cybersecurity"),
        (
            "Quantix",
            "Nimbus",
            "Vertex",
            "Lumina",
            "Corelogic",
            "Bitwave",
            "Syntra",
            "Helix",
            "Arcwise",
            "Pixelon",
        ),
        ("Systems", "Technologies", "Software", "Micro", "Labs"),
    ),
    Sector.HEALTH_CARE: (
        ("Pharmaceuticals", "Biotechnology", "Medical Devices", "Health Insurance", "Diagnostics"),
        ("Veridian", "Caremont", "Genova", "Medica", "Biosphere", "Curative", "Novalis", "Sanora"),
        ("Therapeutics", "Health", "Biosciences", "Pharma", "Medical"),
    ),
    Sector.FINANCIALS: (
        ("Banks", "Insurance", "Asset Management", "Payments", "Brokerage"),
        (
            "Granite",
            "Summit",
            "Harbor",
            "Sterling",
            "Keystone",
            "Meridian",
            "Ironbridge",
            "Fairmont",
        ),
        ("Financial", "Bancorp", "Capital", "Holdings", "Trust"),
    ),
    Sector.CONSUMER_DISCRETIONARY: (
        ("Retail", "Automobiles", "Restaurants", "Leisure", "Apparel"),
        ("Roadstar", "Urbanline", "Velo", "Brightway", "Tastebud", "Northwind", "Luxe", "Kindred"),
        ("Brands", "Motors", "Group", "Outfitters", "Inc."),
    ),
    Sector.CONSUMER_STAPLES: (
        ("Food Products", "Beverages", "Household Products", "Grocery", "Personal Care"),
        (
            "Harvest",
            "Purely",
            "Greenfield",
            "Homestead",
            "Crystal",
            "Dailyfare",
            "Orchard",
            "Maple",
        ),
        ("Foods", "Beverage Co.", "Goods", "Farms", "Products"),
    ),
    Sector.COMMUNICATION: (
        ("Telecom", "Media", "Interactive Media", "Entertainment", "Advertising"),
        (
            "Signal",
            "Broadcast",
            "Streamly",
            "Echo",
            "Parallax",
            "Wavelength",
            "Chatter",
            "Spotlight",
        ),
        ("Communications", "Media", "Networks", "Studios", "Interactive"),
    ),
    Sector.INDUSTRIALS: (
        ("Aerospace", "Machinery", "Logistics", "Construction", "Airlines"),
        ("Atlas", "Forge", "Ridgeline", "Steelhead", "Trident", "Cargo", "Skyward", "Bedrock"),
        ("Industries", "Dynamics", "Logistics", "Engineering", "Aerospace"),
    ),
    Sector.ENERGY: (
        ("Oil & Gas", "Refining", "Oilfield Services", "Renewables", "Pipelines"),
        ("Petra", "Blackwell", "Sunridge", "Gulfstream", "Crude", "Windward", "Basin", "Flare"),
        ("Energy", "Petroleum", "Resources", "Power", "Oil"),
    ),
    Sector.UTILITIES: (
        ("Electric Utilities", "Water Utilities", "Gas Utilities", "Power Producers"),
        ("Riverbend", "Coastal", "Prairie", "Lakeshore", "Evergreen", "Valley", "Pinecrest"),
        ("Utilities", "Electric", "Power & Light", "Water", "Gas"),
    ),
    Sector.REAL_ESTATE: (
        ("REITs", "Real Estate Services", "Data Centers", "Residential", "Office"),
        ("Cornerstone", "Landmark", "Parkview", "Highrise", "Terrace", "Boulevard", "Courtyard"),
        ("Properties", "Realty", "REIT", "Estates", "Land"),
    ),
    Sector.MATERIALS: (
        ("Chemicals", "Metals & Mining", "Construction Materials", "Packaging", "Paper"),
        (
            "Quarry",
            "Alloy",
            "Cobalt",
            "Granitex",
            "Polymer",
            "Silverline",
            "Copperfield",
            "Claystone",
        ),
        ("Materials", "Mining", "Chemicals", "Minerals", "Packaging"),
    ),
}


@dataclass(frozen=True, slots=True)
class SeedCompany:
    symbol: str
    name: str
    sector: str
    industry: str


def _symbol_for(name: str, taken: set[str]) -> str:
    letters = re.sub(r"[^A-Z]", "", name.upper())
    for length in (4, 3, 5):
        candidate = letters[:length]
        if candidate not in taken:
            return candidate
    # Large markets run out of letter symbols: add digits, as some real tickers do.
    for number in range(10_000):
        candidate = f"{letters[:3]}{number}" if number < 10 else f"{letters[:2]}{number}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"no symbol left for {name}")


def companies_make(*, count: int, seed: int) -> list[SeedCompany]:
    """`count` companies spread round-robin over the sectors, the same for the same seed."""
    rng = random.Random(seed)
    sectors = list(SECTOR_BOOK)
    pools = {}
    for sector in sectors:
        industries, stems, suffixes = SECTOR_BOOK[sector]
        names = [f"{stem} {suffix}" for stem in stems for suffix in suffixes]
        rng.shuffle(names)
        pools[sector] = (industries, names)
    companies: list[SeedCompany] = []
    taken: set[str] = set()
    for index in range(count):
        sector = sectors[index % len(sectors)]
        industries, names = pools[sector]
        round_number, position = divmod(index // len(sectors), len(names))
        name = names[position] if round_number == 0 else f"{names[position]} {round_number + 1}"
        symbol = _symbol_for(name, taken)
        taken.add(symbol)
        industry = industries[(index // len(sectors)) % len(industries)]
        companies.append(SeedCompany(symbol, name, sector, industry))
    return companies


def stocks_seed(*, companies: list[SeedCompany], seed: int) -> tuple[list[Stock], int]:
    """Create the stocks that do not exist yet, priced where the simulated market would
    start them; existing ones are left as they are. Returns all of them and how many
    were new."""
    from market.providers.simulated import initial_price

    symbols = [company.symbol for company in companies]
    with transaction.atomic():
        existing = set(Stock.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
        Stock.objects.bulk_create(
            [
                Stock(
                    symbol=c.symbol,
                    name=c.name,
                    sector=c.sector,
                    industry=c.industry,
                    **dict.fromkeys(
                        ("last_price", "previous_close", "day_open", "day_high", "day_low"),
                        initial_price(c.symbol, seed),
                    ),
                )
                for c in companies
                if c.symbol not in existing
            ],
            ignore_conflicts=True,
        )
    stocks = list(Stock.objects.filter(symbol__in=symbols).order_by("symbol"))
    return stocks, len(symbols) - len(existing)


def _rows(stock_ids: dict[str, int], resolution: str, bars: dict[str, list[Bar]]) -> list[BarRow]:
    return [
        (
            stock_ids[symbol],
            resolution,
            bar.start,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
        )
        for symbol, series in bars.items()
        for bar in series
    ]


def _roll_up_days(minute_bars: dict[str, list[Bar]]) -> dict[str, list[Bar]]:
    days: dict[str, list[Bar]] = {}
    for symbol, series in minute_bars.items():
        folded: list[Bar] = []
        for bar in series:
            start = day_bar_start(session_date(bar.start))
            last = folded[-1] if folded else None
            if last is None or last.start != start:
                folded.append(
                    Bar(symbol, start, bar.open, bar.high, bar.low, bar.close, bar.volume)
                )
            else:
                folded[-1] = Bar(
                    symbol,
                    start,
                    last.open,
                    max(last.high, bar.high),
                    min(last.low, bar.low),
                    bar.close,
                    last.volume + bar.volume,
                )
        days[symbol] = folded
    return days


@dataclass(frozen=True, slots=True)
class HistorySeeded:
    daily_inserted: int
    minute_inserted: int
    quoted: int


NEWS_WINDOW = timedelta(days=30)


def history_seed(
    *,
    stocks: list[Stock],
    days: int,
    minute_days: int,
    now: datetime,
    seed: int,
    progress: Callable[[str], None] = lambda message: None,
) -> HistorySeeded:
    """Generated history ending at the start of the current session: daily bars for
    `days` trading dates, of which the last `minute_days` come from 1-minute bars.
    Windows end at a session boundary and paths start from the model's initial
    prices, so a second run in the same session writes nothing new."""
    from market.providers.simulated import generate_history

    if days <= 0 or not stocks:
        return HistorySeeded(0, 0, 0)
    minute_days = min(minute_days, days)
    stock_ids = {stock.symbol: stock.id for stock in stocks}
    fresh = [
        Listing(symbol=stock.symbol, sector=stock.sector, last_price=0, previous_close=0)
        for stock in stocks
    ]
    today = session_date(now)
    first_day = today - timedelta(days=days)
    minute_start = session_start(now) - timedelta(days=minute_days)
    daily_end_day = today - timedelta(days=minute_days)  # exclusive

    daily_inserted = 0
    daily: dict[str, list[Bar]] = {}
    # The news that explained the generated jumps: the recent part becomes the market's
    # news feed, so a new market has a story to read. Kept only when its bars were
    # newly written, so a second run adds no second copy.
    news: list[GeneratedEvent] = []
    if daily_end_day > first_day:
        progress(f"Generating {(daily_end_day - first_day).days} days of daily bars…")
        daily_news: list[GeneratedEvent] = []
        daily = generate_history(
            fresh,
            day_bar_start(first_day),
            day_bar_start(daily_end_day),
            "1d",
            seed,
            events=daily_news,
        )
        daily_inserted, _ = bars_write(rows=_rows(stock_ids, "1d", daily), replace=False)
        if daily_inserted:
            news += daily_news
        progress(f"  {daily_inserted} daily bars written.")

    minute_inserted = 0
    if minute_days:
        progress(f"Generating {minute_days} day(s) of 1-minute bars…")
        # The minute path continues from the last daily close.
        continued = [
            Listing(
                symbol=listing.symbol,
                sector=listing.sector,
                last_price=daily[listing.symbol][-1].close if daily.get(listing.symbol) else 0,
                previous_close=0,
            )
            for listing in fresh
        ]
        minute_news: list[GeneratedEvent] = []
        minutes = generate_history(
            continued, minute_start, session_start(now), "1m", seed, events=minute_news
        )
        minute_inserted, _ = bars_write(rows=_rows(stock_ids, "1m", minutes), replace=False)
        if minute_inserted:
            news += minute_news
        rolled, _ = bars_write(rows=_rows(stock_ids, "1d", _roll_up_days(minutes)), replace=False)
        daily_inserted += rolled
        progress(f"  {minute_inserted} minute bars and {rolled} daily roll-ups written.")
    recent = [event for event in news if event.at is None or event.at >= now - NEWS_WINDOW]
    if recent:
        from market.services import events_record

        events_record(generated=recent, at=session_start(now))
        progress(f"  {len(recent)} news items from the last {NEWS_WINDOW.days} days recorded.")
    quoted = quote_set_from_bars(stock_ids=list(stock_ids.values()))
    if daily_inserted or minute_inserted:
        # New history changes every level after it; a run that wrote nothing keeps them.
        index_rebuild(progress=progress)
    return HistorySeeded(daily_inserted, minute_inserted, quoted)
