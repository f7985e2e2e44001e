"""The market's writes: applying quotes, running a tick, folding ticks into bars.

The tick runs every few seconds over every listed stock, so nothing here loops over
rows issuing statements: quotes go to PostgreSQL as arrays in one UPDATE, bars as
arrays in one upsert per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from market import state
from market.models import (
    EventScope,
    EventSource,
    HistoryCursor,
    IndexBar,
    MarketEvent,
    Resolution,
    Stock,
)
from market.providers.base import GeneratedEvent, Listing, ProviderError, Quote
from market.selectors import IndexQuote, index_quote, index_quote_make, index_quote_remember
from market.sessions import day_bar_start, session_date, session_start, slot_time
from market.ticks import StockTick, TickResult

logger = logging.getLogger(__name__)

PRICE_STEP = Decimal("0.0001")
FLUSH_CURSOR = "tick-stream"

# Applies a whole tick in one statement. `n` holds, per quoted stock, the new price and
# volume, whether the quote opens a new session (`roll`), and the previous close that
# applies after it. A stock never quoted before takes its first price as its close.
_APPLY_SQL = """
UPDATE market_stock AS s SET
    last_price = n.price,
    previous_close = n.prev_close,
    change = n.price - n.prev_close,
    change_pct = round((n.price - n.prev_close) * 100 / n.prev_close, 4),
    day_open = CASE WHEN n.roll OR s.day_open = 0 THEN n.price ELSE s.day_open END,
    day_high = CASE WHEN n.roll OR s.day_high = 0 THEN n.price
                    ELSE GREATEST(s.day_high, n.price) END,
    day_low = CASE WHEN n.roll OR s.day_low = 0 THEN n.price ELSE LEAST(s.day_low, n.price) END,
    volume = CASE WHEN n.roll THEN n.volume ELSE s.volume + n.volume END,
    quoted_at = %(at)s
FROM (
    SELECT o.id, o.last_price AS old_price, u.price, u.volume, r.roll,
           CASE WHEN r.roll AND o.last_price > 0 THEN o.last_price
                WHEN NOT r.roll AND o.previous_close > 0 THEN o.previous_close
                ELSE u.price END AS prev_close
    FROM unnest(%(symbols)s::text[], %(prices)s::numeric[], %(volumes)s::bigint[])
         AS u(symbol, price, volume)
    JOIN market_stock o ON o.symbol = u.symbol
    CROSS JOIN LATERAL (
        SELECT (o.quoted_at IS NULL OR o.quoted_at < %(session_start)s) AS roll
    ) AS r
    WHERE o.delisted_at IS NULL AND (o.quoted_at IS NULL OR o.quoted_at < %(at)s)
) AS n
WHERE s.id = n.id
RETURNING s.id, s.symbol, s.last_price, n.old_price, s.change, s.change_pct,
          s.day_high, s.day_low, s.volume
"""


def quotes_apply(*, quotes: Iterable[Quote], at: datetime) -> list[StockTick]:
    """Write a tick's quotes to the Stock rows, with change, change % and the day's
    range and volume computed in the same statement. The first quote of a session
    makes the last price the previous close and restarts the day's figures.

    A quote no newer than the row's is ignored, so applying a tick twice counts its
    volume once. Returns one StockTick per row written, moved or not."""
    symbols: list[str] = []
    prices: list[Decimal] = []
    volumes: list[int] = []
    for quote in quotes:
        if quote.price <= 0:
            logger.warning("quote for %s ignored: price %s", quote.symbol, quote.price)
            continue
        symbols.append(quote.symbol)
        prices.append(quote.price.quantize(PRICE_STEP))
        volumes.append(max(int(quote.volume), 0))
    if not symbols:
        return []
    params = {
        "symbols": symbols,
        "prices": prices,
        "volumes": volumes,
        "at": at,
        "session_start": session_start(at),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, params)
        rows = cursor.fetchall()
    return [
        StockTick(
            stock_id=row[0],
            symbol=row[1],
            price=row[2],
            previous_price=row[3],
            change=row[4],
            change_pct=row[5],
            day_high=row[6],
            day_low=row[7],
            volume=row[8],
        )
        for row in rows
    ]


# --- shocks and events -----------------------------------------------------------


def shocks_pending(*, at: datetime) -> list[MarketEvent]:
    return list(
        MarketEvent.objects.filter(shock_applied_at__isnull=True, published_at__lte=at)
        .exclude(impact_pct=0)
        .select_related("stock")
        .order_by("published_at", "id")
    )


def shocks_expand(
    *, events: Sequence[MarketEvent], listings: Sequence[Listing]
) -> tuple[dict[str, Decimal], list[int]]:
    """Per-symbol shocks in percent (several events on one symbol add up) and the ids
    of the events they came from. A stock-level shock on a stock not quoted this tick
    (halted) stays pending until it trades again."""
    by_sector: dict[str, list[str]] = {}
    quoted = set()
    for listing in listings:
        by_sector.setdefault(listing.sector, []).append(listing.symbol)
        quoted.add(listing.symbol)
    shocks: dict[str, Decimal] = {}
    used: list[int] = []
    for event in events:
        if event.scope == EventScope.STOCK:
            if event.stock is None or event.stock.symbol not in quoted:
                continue
            targets = [event.stock.symbol]
        elif event.scope == EventScope.SECTOR:
            targets = by_sector.get(event.sector, [])
        else:
            targets = list(quoted)
        for symbol in targets:
            shocks[symbol] = shocks.get(symbol, Decimal("0")) + event.impact_pct
        used.append(event.id)
    return shocks, used


def events_record(*, generated: Sequence[GeneratedEvent], at: datetime) -> list[MarketEvent]:
    """Store the news the provider made up to explain its moves (already priced in)."""
    if not generated:
        return []
    symbols = {event.symbol for event in generated if event.symbol}
    stock_ids = dict(Stock.objects.filter(symbol__in=symbols).values_list("symbol", "id"))
    rows = []
    for event in generated:
        if event.symbol and event.symbol in stock_ids:
            scope, stock_id, sector = EventScope.STOCK, stock_ids[event.symbol], ""
        elif event.sector:
            scope, stock_id, sector = EventScope.SECTOR, None, event.sector
        else:
            scope, stock_id, sector = EventScope.MARKET, None, ""
        rows.append(
            MarketEvent(
                headline=event.headline[:200],
                body=event.body,
                scope=scope,
                stock_id=stock_id,
                sector=sector,
                impact_pct=event.impact_pct.quantize(PRICE_STEP),
                source=EventSource.SIMULATOR,
                published_at=event.at or at,
                shock_applied_at=at,
            )
        )
    return MarketEvent.objects.bulk_create(rows)


# --- the tick --------------------------------------------------------------------


def listings_tradable() -> list[Listing]:
    rows = Stock.objects.filter(delisted_at__isnull=True, halted=False).values_list(
        "symbol", "sector", "last_price", "previous_close"
    )
    return [
        Listing(symbol=symbol, sector=sector, last_price=last, previous_close=close)
        for symbol, sector, last, close in rows
    ]


_failed_hooks: set[str] = set()


def tick_hooks_call(result: TickResult) -> None:
    """Call every hook in settings.MARKET_TICK_HOOKS. One that fails, or is not written
    yet, is logged and the others still run: a broken broadcast must not stop orders
    from triggering."""
    for path in settings.MARKET_TICK_HOOKS:
        try:
            hook: Callable[[TickResult], object] = import_string(path)
        except ImportError:
            if path not in _failed_hooks:  # once per process, not every five seconds
                _failed_hooks.add(path)
                logger.warning("tick hook %s cannot be imported; skipped", path)
            continue
        try:
            hook(result)
        except Exception:
            logger.exception("tick hook %s failed at slot %s", path, result.slot)


def _tick_publish(
    result: TickResult,
    stream_ticks: list[tuple[int, Decimal, int]],
    composite: IndexQuote | None,
) -> None:
    try:
        state.tick_publish(at=result.at, slot=result.slot, ticks=stream_ticks)
    except Exception:
        # The prices are committed; only this tick's share of the history is lost.
        logger.exception("tick %s could not be appended to the stream", result.slot)
    if composite is not None:
        # Before the hooks: the live push reads it from there.
        index_quote_remember(composite)
    tick_hooks_call(result)


def tick_run(*, slot: int) -> TickResult | None:
    """One market tick for time slot `slot`: quotes from the provider (with pending
    moderator shocks), applied to every listed, trading stock. The shocks are marked
    applied in the same transaction as the prices. After the commit the tick goes to
    the history stream and to the hooks. Returns None when the provider failed: the
    pages then say since when quotes are delayed."""
    from market.providers import get_provider

    at = slot_time(slot)
    listings = listings_tradable()
    if not listings:
        return TickResult(slot=slot, at=at, ticks=[])
    pending = shocks_pending(at=at)
    shocks, shock_event_ids = shocks_expand(events=pending, listings=listings)
    try:
        batch = get_provider().quotes(listings, at, shocks=shocks or None)
    except ProviderError as error:
        logger.warning("quotes unavailable at slot %s: %s", slot, error)
        state.quotes_delayed_mark(timezone.now())
        return None

    volumes = {symbol: max(int(quote.volume), 0) for symbol, quote in batch.quotes.items()}
    with transaction.atomic():
        applied = quotes_apply(quotes=batch.quotes.values(), at=at)
        composite = index_move(ticks=applied, constituents=len(listings), at=at)
        if shock_event_ids:
            MarketEvent.objects.filter(
                id__in=shock_event_ids, shock_applied_at__isnull=True
            ).update(shock_applied_at=at)
        events_record(generated=batch.events, at=at)
    # The stream holds every applied quote, moved or not: its volume still counts.
    stream_ticks = [(tick.stock_id, tick.price, volumes.get(tick.symbol, 0)) for tick in applied]
    result = TickResult(
        slot=slot,
        at=at,
        ticks=[tick for tick in applied if tick.price != tick.previous_price],
        quoted={tick.stock_id: tick.price for tick in applied},
    )
    transaction.on_commit(lambda: _tick_publish(result, stream_ticks, composite))
    return result


# --- history -----------------------------------------------------------------------

_MERGE_BARS_SQL = """
INSERT INTO market_pricebar (stock_id, resolution, start, open, high, low, close, volume)
SELECT u.stock_id, %(resolution)s, u.start, u.open, u.high, u.low, u.close, u.volume
FROM unnest(%(stock_ids)s::bigint[], %(starts)s::timestamptz[], %(opens)s::numeric[],
            %(highs)s::numeric[], %(lows)s::numeric[], %(closes)s::numeric[],
            %(volumes)s::bigint[])
     AS u(stock_id, start, open, high, low, close, volume)
JOIN market_stock s ON s.id = u.stock_id
ON CONFLICT (stock_id, resolution, start) DO UPDATE SET
    high = GREATEST(market_pricebar.high, EXCLUDED.high),
    low = LEAST(market_pricebar.low, EXCLUDED.low),
    close = EXCLUDED.close,
    volume = market_pricebar.volume + EXCLUDED.volume
"""


@dataclass
class _BarFold:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def add(self, price: Decimal, volume: int) -> None:
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += volume


def _fold(entries: Sequence[state.StreamEntry]) -> tuple[dict, dict]:
    minutes: dict[tuple[int, datetime], _BarFold] = {}
    days: dict[tuple[int, date], _BarFold] = {}
    for entry in entries:
        minute = entry.at.replace(second=0, microsecond=0)
        day = session_date(entry.at)
        for tick in entry.ticks:
            for folds, key in ((minutes, (tick.stock_id, minute)), (days, (tick.stock_id, day))):
                bar = folds.get(key)
                if bar is None:
                    folds[key] = _BarFold(
                        tick.price, tick.price, tick.price, tick.price, tick.volume
                    )
                else:
                    bar.add(tick.price, tick.volume)
    return minutes, days


def bars_merge(*, resolution: str, bars: dict[tuple[int, datetime], _BarFold]) -> int:
    """Merge folded bars into PriceBar: an existing bar keeps its open, widens its range,
    takes the newer close and adds the volume. Callers pass each tick exactly once
    (the flush cursor guarantees it), which is what makes the addition safe."""
    if not bars:
        return 0
    keys = list(bars)
    params = {
        "resolution": resolution,
        "stock_ids": [stock_id for stock_id, _ in keys],
        "starts": [start for _, start in keys],
        "opens": [bars[key].open for key in keys],
        "highs": [bars[key].high for key in keys],
        "lows": [bars[key].low for key in keys],
        "closes": [bars[key].close for key in keys],
        "volumes": [bars[key].volume for key in keys],
    }
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_BARS_SQL, params)
        return cursor.rowcount


@dataclass(frozen=True, slots=True)
class FlushResult:
    entries: int
    ticks: int
    minute_bars: int
    day_bars: int
    last_stream_id: str


def _flush_batch(*, entries: Sequence[state.StreamEntry], expected_cursor: str) -> tuple[int, int]:
    """Fold one batch of stream entries into minute and daily bars and advance the
    cursor, all in one transaction: either the whole batch counts, or none of it."""
    minutes, days = _fold(entries)
    with transaction.atomic():
        cursor = HistoryCursor.objects.select_for_update().get(name=FLUSH_CURSOR)
        if cursor.last_stream_id != expected_cursor:
            raise RuntimeError("another flush advanced the tick cursor; stopping this one")
        minute_count = bars_merge(resolution=Resolution.MINUTE, bars=minutes)
        day_count = bars_merge(
            resolution=Resolution.DAY,
            bars={(stock_id, day_bar_start(day)): bar for (stock_id, day), bar in days.items()},
        )
        cursor.last_stream_id = entries[-1].entry_id
        cursor.save(update_fields=["last_stream_id", "updated_at"])
    return minute_count, day_count


def history_flush(*, batch_entries: int = 500) -> FlushResult:
    """Fold the buffered ticks into 1-minute bars and roll them into daily bars, in
    batches of stream entries, each committed with the cursor that records it. A
    flush that dies halfway is rerun from the last committed batch: nothing is lost
    and nothing counted twice. The stream is trimmed only after the commits."""
    cursor, _ = HistoryCursor.objects.get_or_create(name=FLUSH_CURSOR)
    last_id = cursor.last_stream_id
    entries = ticks = minute_bars = day_bars = 0
    for batch in state.stream_read_after(last_id, batch_entries=batch_entries):
        minute_count, day_count = _flush_batch(entries=batch, expected_cursor=last_id)
        last_id = batch[-1].entry_id
        entries += len(batch)
        ticks += sum(len(entry.ticks) for entry in batch)
        minute_bars += minute_count
        day_bars += day_count
    if last_id != "0-0":
        state.stream_trim_through(last_id)
    return FlushResult(entries, ticks, minute_bars, day_bars, last_id)


# --- bulk bar writes (seeding, imports) --------------------------------------------

BarRow = tuple[int, str, datetime, Decimal, Decimal, Decimal, Decimal, int]

_BAR_COLUMNS = "stock_id, resolution, start, open, high, low, close, volume"


def bars_write(*, rows: Iterable[BarRow], replace: bool) -> tuple[int, int]:
    """Write many bars at once: COPY into a temporary table, then one INSERT ... ON
    CONFLICT. `replace` overwrites bars that exist (an import is the source of truth
    for its days); otherwise existing bars are kept (seeding twice changes nothing).
    Returns (inserted, updated)."""
    conflict = (
        "DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, "
        "close = EXCLUDED.close, volume = EXCLUDED.volume"
        if replace
        else "DO NOTHING"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Dropped at commit; dropped here too for a second load in the same transaction.
        cursor.execute("DROP TABLE IF EXISTS market_bar_load")
        cursor.execute(
            "CREATE TEMPORARY TABLE market_bar_load "
            "(LIKE market_pricebar INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        cursor.execute("ALTER TABLE market_bar_load DROP COLUMN id")
        with cursor.cursor.copy(f"COPY market_bar_load ({_BAR_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # Only module constants are interpolated here.
        insert = (
            f"INSERT INTO market_pricebar ({_BAR_COLUMNS}) "  # noqa: S608
            f"SELECT {_BAR_COLUMNS} FROM market_bar_load ORDER BY stock_id, resolution, start "
            f"ON CONFLICT (stock_id, resolution, start) {conflict} "
            "RETURNING (xmax = 0)"
        )
        cursor.execute(insert)
        outcomes = [inserted for (inserted,) in cursor.fetchall()]
    inserted = sum(1 for outcome in outcomes if outcome)
    return inserted, len(outcomes) - inserted


def quote_set_from_bars(*, stock_ids: Sequence[int]) -> int:
    """Give stocks that were never quoted a quote from their newest daily bar (the day's
    figures) and the one before (the previous close), so seeded or imported stocks show
    sensible prices before the first tick. Stocks already quoted are left alone."""
    if not stock_ids:
        return 0
    sql = """
    UPDATE market_stock AS s SET
        last_price = b.close,
        previous_close = COALESCE(b.prev_close, b.open),
        change = b.close - COALESCE(b.prev_close, b.open),
        change_pct = round((b.close - COALESCE(b.prev_close, b.open)) * 100
                           / COALESCE(b.prev_close, b.open), 4),
        day_open = b.open, day_high = b.high, day_low = b.low, volume = b.volume,
        quoted_at = b.quoted_at
    FROM (
        SELECT DISTINCT ON (stock_id) stock_id, open, high, low, close, volume,
               lag(close) OVER (PARTITION BY stock_id ORDER BY start) AS prev_close,
               start + %(close)s - interval '1 second' AS quoted_at
        FROM market_pricebar
        WHERE resolution = '1d' AND stock_id = ANY(%(ids)s)
        ORDER BY stock_id, start DESC
    ) AS b
    WHERE s.id = b.stock_id AND s.quoted_at IS NULL
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # The quote time is the last second of the bar's session, so the first live
        # tick after it starts a new day and rolls the close.
        close = settings.SESSION_CLOSE_UTC
        offset = timedelta(hours=close.hour, minutes=close.minute, seconds=close.second)
        cursor.execute(sql, {"ids": list(stock_ids), "close": offset})
        return cursor.rowcount


# --- the Bullpen Composite ------------------------------------------------------------

INDEX_BASE_LEVEL = Decimal("1000")
INDEX_STEP = Decimal("0.0001")

# One statement per tick: read the previous level (the newest minute bar's close, else
# the newest daily bar's, else the base), move it by the tick's ratio, upsert the
# minute and the daily bar, and return the new level with the previous session's close
# (the quote the pages show). Every read is a backward scan of the (resolution, start)
# unique index of a small table.
_INDEX_MOVE_SQL = """
WITH previous AS (
    SELECT COALESCE(
        (SELECT close FROM market_indexbar WHERE resolution = '1m' ORDER BY start DESC LIMIT 1),
        (SELECT close FROM market_indexbar WHERE resolution = '1d' ORDER BY start DESC LIMIT 1),
        %(base)s
    ) AS level
), moved AS MATERIALIZED (  -- once, not once per column it fills
    SELECT GREATEST(round(level * %(ratio)s, 4), %(step)s) AS level FROM previous
), upserted AS (
    INSERT INTO market_indexbar AS i (resolution, start, open, high, low, close, constituents)
    SELECT b.resolution, b.start, m.level, m.level, m.level, m.level, %(constituents)s
    FROM moved m,
         (VALUES ('1m', %(minute)s::timestamptz), ('1d', %(day)s::timestamptz))
         AS b(resolution, start)
    ON CONFLICT (resolution, start) DO UPDATE SET
        high = GREATEST(i.high, EXCLUDED.close),
        low = LEAST(i.low, EXCLUDED.close),
        close = EXCLUDED.close,
        constituents = EXCLUDED.constituents
    RETURNING i.resolution, i.close
)
SELECT u.close,
       (SELECT close FROM market_indexbar
        WHERE resolution = '1d' AND start < %(day)s ORDER BY start DESC LIMIT 1)
FROM upserted u
WHERE u.resolution = '1m'
"""


def index_move(*, ticks: Sequence[StockTick], constituents: int, at: datetime) -> IndexQuote | None:
    """Move the Bullpen Composite by one tick: the new level is the previous one times
    1 + the average return of the `constituents` listed, trading stocks, where a stock
    the tick did not quote counts as a zero return. Being a chain of returns, it never
    jumps when a stock is listed or delisted. Call it in the tick's transaction, with
    what `quotes_apply` applied: a redelivered tick applies nothing and moves nothing.

    A stock's first ever quote (no previous price) counts as a zero return. Returns the
    index's new quote, or None when the tick applied nothing."""
    if not ticks:
        return None
    ratios = [tick.price / tick.previous_price for tick in ticks if tick.previous_price > 0]
    # A stock listed between the tick's listing read and its quotes still counts once.
    count = max(constituents, len(ticks))
    ratio = 1 + (sum(ratios, Decimal("0")) - len(ratios)) / count
    minute = at.replace(second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            _INDEX_MOVE_SQL,
            {
                "base": INDEX_BASE_LEVEL,
                "ratio": ratio,
                "step": INDEX_STEP,
                "constituents": count,
                "minute": minute,
                "day": day_bar_start(session_date(at)),
            },
        )
        level, previous_close = cursor.fetchone()
    return index_quote_make(
        level=level,
        previous_close=previous_close,
        as_of=minute,
        intraday=True,
        constituents=count,
    )


# Rebuilding from price history. `grouped` reads one resolution of every stock (one
# index range scan per stock, which keeps the daily rebuild off the minute bars), pairs
# each bar with the stock's previous one and sums the ratios per (period, previous
# period) in one pass. A period's move is the average over the stocks whose previous
# bar is in the market's previous period (the previous start any stock has), so a
# stock back from a halt does not bring a week's return into one period. Levels chain
# as base × exp(Σ ln(ratio)), in numeric. The range is the average of the stocks'
# ranges: an outer bound of the index's own, which nobody observed.
_INDEX_MOVES_SQL = """
WITH grouped AS (
    SELECT b.start, b.prev_start, count(*) AS stocks,
           sum(b.open / b.prev_close) AS opens, sum(b.high / b.prev_close) AS highs,
           sum(b.low / b.prev_close) AS lows, sum(b.close / b.prev_close) AS closes
    FROM (
        SELECT p.start, p.open, p.high, p.low, p.close,
               lag(p.start) OVER w AS prev_start, lag(p.close) OVER w AS prev_close
        FROM market_stock s
        CROSS JOIN LATERAL (
            SELECT p.stock_id, p.start, p.open, p.high, p.low, p.close
            FROM market_pricebar p
            WHERE p.stock_id = s.id AND p.resolution = %(resolution)s
              AND p.start >= %(read_from)s
        ) AS p
        WINDOW w AS (PARTITION BY p.stock_id ORDER BY p.start)
    ) AS b
    GROUP BY b.start, b.prev_start
), periods AS (
    SELECT start, stocks, lag(start) OVER (ORDER BY start) AS prev_start
    FROM (SELECT start, sum(stocks) AS stocks FROM grouped GROUP BY start) AS d
), moves AS (
    SELECT q.start, q.stocks AS constituents,
           coalesce(g.opens / g.stocks, 1) AS open_ratio,
           coalesce(g.highs / g.stocks, 1) AS high_ratio,
           coalesce(g.lows / g.stocks, 1) AS low_ratio,
           coalesce(g.closes / g.stocks, 1) AS close_ratio
    FROM periods q
    LEFT JOIN grouped g ON g.start = q.start AND g.prev_start = q.prev_start
    WHERE q.start >= %(write_from)s
)
"""

_INDEX_INSERT_SQL = """
INSERT INTO market_indexbar (resolution, start, open, high, low, close, constituents)
SELECT %(resolution)s, start,
       GREATEST(round(before * open_ratio, 4), %(step)s),
       GREATEST(round(before * GREATEST(high_ratio, open_ratio, close_ratio), 4), %(step)s),
       GREATEST(round(before * LEAST(low_ratio, open_ratio, close_ratio), 4), %(step)s),
       GREATEST(round(before * close_ratio, 4), %(step)s),
       constituents
FROM chained
"""

# Daily: one chain from the anchor (the bar before the rebuilt range) or the base.
_INDEX_DAILY_SQL = (
    _INDEX_MOVES_SQL  # noqa: S608 (module constants only)
    + """, chained AS (
    SELECT m.*, %(base)s * exp(coalesce(sum(ln(close_ratio)) OVER (
               ORDER BY start ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS before
    FROM moves m
)"""
    + _INDEX_INSERT_SQL
)

# Minute: one chain per session, starting from the previous session's daily close, so
# the minute and the daily bars tell the same story (an average of minute returns
# compounded over a day is not the average of the day's returns; without the anchor
# the two would drift apart by that difference every day).
_INDEX_MINUTE_SQL = (
    _INDEX_MOVES_SQL  # noqa: S608 (module constants only)
    + """, sessions AS (
    SELECT m.*, ((m.start AT TIME ZONE 'UTC' + %(shift)s)::date) AS session
    FROM moves m
), anchors AS (
    SELECT d.session, coalesce((
        SELECT close FROM market_indexbar
        WHERE resolution = '1d' AND start < d.session::timestamp AT TIME ZONE 'UTC'
        ORDER BY start DESC LIMIT 1
    ), %(base)s) AS level
    FROM (SELECT DISTINCT session FROM sessions) AS d
), chained AS (
    SELECT s.*, a.level * exp(coalesce(sum(ln(s.close_ratio)) OVER (
               PARTITION BY s.session ORDER BY s.start
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS before
    FROM sessions s JOIN anchors a ON a.session = s.session
)"""
    + _INDEX_INSERT_SQL
)


def _index_anchor(resolution: str, before: datetime) -> IndexBar | None:
    return (
        IndexBar.objects.filter(resolution=resolution, start__lt=before)
        .order_by("-start")
        .only("start", "close")
        .first()
    )


def _index_rebuild_resolution(*, resolution: str, write_from: datetime | None) -> int:
    anchor = _index_anchor(resolution, write_from) if write_from is not None else None
    if anchor is None:
        # Nothing before the range: rebuild this resolution from its first bar.
        write_from = None
    close = settings.SESSION_CLOSE_UTC
    params = {
        "resolution": resolution,
        "read_from": anchor.start if anchor else datetime.min.replace(tzinfo=UTC),
        "write_from": write_from or datetime.min.replace(tzinfo=UTC),
        "base": anchor.close if anchor else INDEX_BASE_LEVEL,
        "step": INDEX_STEP,
        "shift": timedelta(days=1)
        - timedelta(hours=close.hour, minutes=close.minute, seconds=close.second),
    }
    deleted = IndexBar.objects.filter(resolution=resolution)
    if write_from is not None:
        deleted = deleted.filter(start__gte=write_from)
    deleted.delete()
    sql = _INDEX_DAILY_SQL if resolution == Resolution.DAY else _INDEX_MINUTE_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def index_rebuild(
    *, since: datetime | None = None, progress: Callable[[str], None] = lambda message: None
) -> int:
    """Recompute the Composite's bars from the price history, from the session holding
    `since` onwards (everything when None), so a seeded or imported market has index
    history; the ticks then continue from the newest rebuilt bar. Daily bars chain the
    average daily return, minute bars the average minute return within each session,
    starting from the previous session's daily close. Returns how many bars it wrote.

    The table is locked against writes meanwhile: a tick waits (reads go on) rather
    than move a level the rebuild is about to replace."""
    day_from = day_bar_start(session_date(since)) if since is not None else None
    minute_from = session_start(since) if since is not None else None
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE market_indexbar IN EXCLUSIVE MODE")
        progress("Rebuilding the Bullpen Composite's daily bars…")
        days = _index_rebuild_resolution(resolution=Resolution.DAY, write_from=day_from)
        progress(f"  {days} daily bars. Rebuilding its minute bars…")
        minutes = _index_rebuild_resolution(resolution=Resolution.MINUTE, write_from=minute_from)
        progress(f"  {minutes} minute bars.")
        composite = index_quote()
        transaction.on_commit(lambda: index_quote_remember(composite))
    return days + minutes


# --- moderation ----------------------------------------------------------------------


def stock_halt(*, stock_ids: Sequence[int], reason: str) -> int:
    """Stop trading in the stocks: the tick stops quoting them and pages show the reason."""
    reason = reason.strip()[:280] or "Trading halted by a moderator."
    return Stock.objects.filter(id__in=stock_ids, delisted_at__isnull=True).update(
        halted=True, halt_reason=reason
    )


def stock_resume(*, stock_ids: Sequence[int]) -> int:
    return Stock.objects.filter(id__in=stock_ids, halted=True).update(halted=False, halt_reason="")


def stock_delist(*, stock_ids: Sequence[int], at: datetime) -> int:
    """Soft delete: the stock leaves browsing and the tick, and keeps its history and page."""
    return Stock.objects.filter(id__in=stock_ids, delisted_at__isnull=True).update(delisted_at=at)


def event_publish(
    *,
    headline: str,
    body: str,
    scope: str,
    impact_pct: Decimal,
    created_by_id: int | None,
    at: datetime,
    stock_id: int | None = None,
    sector: str = "",
) -> MarketEvent:
    """A moderator's news. A non-zero impact is a price shock the next tick applies once."""
    event = MarketEvent(
        headline=headline.strip(),
        body=body.strip(),
        scope=scope,
        stock_id=stock_id if scope == EventScope.STOCK else None,
        sector=sector if scope == EventScope.SECTOR else "",
        impact_pct=impact_pct.quantize(PRICE_STEP),
        source=EventSource.MODERATOR,
        created_by_id=created_by_id,
        published_at=at,
    )
    event.full_clean()
    event.save()
    return event
