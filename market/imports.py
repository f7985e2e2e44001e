"""CSV imports of listings and daily prices.

Policy: all or nothing. The whole file is checked first; if any row is bad, nothing is
written and every bad row is reported by its line number, so a fixed file can simply
be imported again. Rows that are fine replace what is there for the same symbol (a
listing) or the same day (a price bar): the file is the source of truth.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from market.errors import ImportFileInvalid
from market.models import Sector, Stock
from market.services import bars_write, index_rebuild, quote_set_from_bars
from market.sessions import day_bar_start

PRICE_STEP = Decimal("0.0001")
SYMBOL_RE = re.compile(r"^[A-Z0-9.\-]{1,12}$")
# Report at most this many bad rows; a file that bad is the wrong file.
MAX_PROBLEMS = 50
Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    return None


def _rows(path: Path) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; line 1 is the header."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise ImportFileInvalid(f"{path.name} is empty.")
        fieldnames = [name.strip() for name in reader.fieldnames]
        reader.fieldnames = fieldnames
        yield 1, dict.fromkeys(fieldnames, "")
        for row in reader:
            yield reader.line_num, row


def _fail_if_problems(path: Path, problems: list[str]) -> None:
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        if more:
            shown.append(f"... and {more} more bad rows")
        raise ImportFileInvalid(
            f"{path.name}: {len(problems)} bad row(s); nothing was imported.", problems=shown
        )


# --- listings ----------------------------------------------------------------------

LISTING_COLUMNS = ("symbol", "name", "sector", "industry")
_SECTOR_NAMES = (
    {key: key for key in Sector.values}
    | {label.lower(): key for key, label in Sector.choices}
    | {"information technology": Sector.TECHNOLOGY, "healthcare": Sector.HEALTH_CARE}
)


@dataclass(frozen=True, slots=True)
class ListingsImported:
    created: int
    updated: int


def listings_import(*, path: Path) -> ListingsImported:
    """Import `symbol,name,sector,industry` rows: new symbols are listed, known ones
    get the file's name, sector and industry."""
    rows = _rows(path)
    _, header = next(rows)
    missing = [column for column in LISTING_COLUMNS if column not in header]
    if missing:
        raise ImportFileInvalid(
            f"{path.name}: the header must be {','.join(LISTING_COLUMNS)}; missing {', '.join(missing)}."
        )
    problems: list[str] = []
    parsed: dict[str, Stock] = {}
    for line, row in rows:
        symbol = (row.get("symbol") or "").strip().upper()
        name = (row.get("name") or "").strip()
        sector = _SECTOR_NAMES.get((row.get("sector") or "").strip().lower())
        industry = (row.get("industry") or "").strip()
        if not SYMBOL_RE.match(symbol):
            problems.append(f"line {line}: symbol {symbol!r} must be 1-12 of A-Z, 0-9, '.', '-'")
        elif symbol in parsed:
            problems.append(f"line {line}: {symbol} appears twice")
        elif not name or len(name) > 120:
            problems.append(f"line {line}: a name of 1 to 120 characters is required")
        elif sector is None:
            problems.append(f"line {line}: unknown sector {row.get('sector')!r}")
        elif len(industry) > 80:
            problems.append(f"line {line}: the industry is longer than 80 characters")
        else:
            parsed[symbol] = Stock(symbol=symbol, name=name, sector=sector, industry=industry)
    _fail_if_problems(path, problems)
    if not parsed:
        raise ImportFileInvalid(f"{path.name} has no listings.")
    with transaction.atomic():
        existing = set(
            Stock.objects.filter(symbol__in=list(parsed)).values_list("symbol", flat=True)
        )
        Stock.objects.bulk_create(
            list(parsed.values()),
            update_conflicts=True,
            unique_fields=["symbol"],
            update_fields=["name", "sector", "industry"],
        )
    return ListingsImported(created=len(parsed) - len(existing), updated=len(existing))


# --- daily prices ------------------------------------------------------------------

YAHOO_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
STOOQ_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")


@dataclass(frozen=True, slots=True)
class PricesImported:
    symbol: str
    layout: str
    rows: int
    inserted: int
    updated: int
    first: date
    last: date


def _layout(header: Iterable[str]) -> str:
    columns = tuple(column.strip() for column in header)
    if columns == YAHOO_COLUMNS:
        return "Yahoo"
    if tuple(column.title() for column in columns) == STOOQ_COLUMNS:
        return "Stooq"
    raise ImportFileInvalid(
        f"unrecognised header {','.join(columns)!r}: expected Yahoo "
        f"({','.join(YAHOO_COLUMNS)}) or Stooq ({','.join(STOOQ_COLUMNS)})."
    )


def symbol_from_filename(path: Path) -> str:
    """AAPL.csv -> AAPL; Stooq's aapl.us.txt -> AAPL."""
    stem = path.name.split(".")[0]
    return stem.upper()


def _price(row: dict[str, str], column: str) -> Decimal:
    raw = (row.get(column) or row.get(column.lower()) or "").strip()
    value = Decimal(raw)
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{column} must be a positive number, not {raw!r}")
    return value.quantize(PRICE_STEP)


def prices_import(
    *,
    path: Path,
    symbol: str | None = None,
    progress: Progress = _no_progress,
    index: bool = True,
) -> PricesImported:
    """Import one stock's daily bars from a Yahoo or Stooq CSV (detected from the header),
    then rebuild the Bullpen Composite from the file's first day (unless `index` is
    False: a batch of files is faster followed by one index_rebuild)."""
    symbol = (symbol or symbol_from_filename(path)).upper()
    stock = Stock.objects.filter(symbol=symbol).only("id").first()
    if stock is None:
        raise ImportFileInvalid(
            f"no stock {symbol}: list it first (import_listings) or pass --symbol."
        )
    rows = _rows(path)
    _, header = next(rows)
    try:
        layout = _layout(header)
    except ImportFileInvalid as error:
        raise ImportFileInvalid(f"{path.name}: {error}") from None
    problems: list[str] = []
    bars: dict[date, tuple] = {}
    count = 0
    for line, row in rows:
        count += 1
        if count % 5000 == 0:
            progress(f"  read {count} rows…")
        try:
            day = date.fromisoformat((row.get("Date") or row.get("date") or "").strip())
            open_, high, low, close = (
                _price(row, name) for name in ("Open", "High", "Low", "Close")
            )
            raw_volume = (row.get("Volume") or row.get("volume") or "0").strip()
            volume = int(Decimal(raw_volume))
            if volume < 0 or Decimal(raw_volume) != volume:
                raise ValueError(f"Volume must be a whole number of shares, not {raw_volume!r}")
            if low > min(open_, close) or high < max(open_, close):
                raise ValueError("Low must be at most Open and Close, High at least both")
        except (ValueError, InvalidOperation) as error:
            message = (
                str(error) if not isinstance(error, InvalidOperation) else "a number is malformed"
            )
            problems.append(f"line {line}: {message}")
            continue
        if day in bars:
            problems.append(f"line {line}: {day} appears twice")
            continue
        bars[day] = (stock.id, "1d", day_bar_start(day), open_, high, low, close, volume)
    _fail_if_problems(path, problems)
    if not bars:
        raise ImportFileInvalid(f"{path.name} has no price rows.")
    progress(f"  writing {len(bars)} daily bars…")
    with transaction.atomic():
        inserted, updated = bars_write(rows=[bars[day] for day in sorted(bars)], replace=True)
        quote_set_from_bars(stock_ids=[stock.id])
        if index:
            # In the same transaction: the Composite never shows levels of history that
            # is not there. From the file's first day on; the levels before it stay.
            index_rebuild(since=day_bar_start(min(bars)), progress=progress)
    return PricesImported(symbol, layout, count, inserted, updated, min(bars), max(bars))
