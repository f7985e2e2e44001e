"""The live price broadcast: one channel-layer message per tick, fragments rendered
once per web process.

The worker's tick hook (`on_tick`) publishes the moved quotes as plain data to the
market group: one group send per tick, whatever the number of connections. Each web
process renders a symbol's fragment for a page kind ("view") the first time one of
its connections needs it in that tick and keeps it until the next tick
(`tick_fragments`), so a thousand connections watching AAPL cost one render, not a
thousand. The consumers then only pick their page's symbols and forward the HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import get_template

from market.groups import market_group
from market.models import Stock
from market.ticks import StockTick, TickResult

logger = logging.getLogger(__name__)

# The consumer's handler for a tick is LiveConsumer.market_tick.
TICK_EVENT = "market.tick"

# A page kind and the template partial holding the out-of-band spans of one symbol
# on that kind of page. A page subscribes to symbols per view (see static/js/live.js).
VIEWS: dict[str, str] = {
    # Market table, dashboard movers: price, change, change %.
    "quote": "live/quote.html#quote",
    # The stock page: the above, the day range and the chart's newest point.
    "stock": "live/quote.html#stock",
    # The watchlist.
    "watch": "live/quote.html#watch",
}

_QUOTE_FIELDS = ("price", "previous_price", "change", "change_pct", "day_high", "day_low")


def tick_event(result: TickResult) -> dict[str, Any]:
    """The channel-layer message of one tick: moved quotes as strings (msgpack has no
    Decimal), keyed by symbol."""
    return {
        "type": TICK_EVENT,
        "slot": result.slot,
        "at": int(result.at.timestamp()),
        "quotes": {
            tick.symbol: [str(getattr(tick, name)) for name in _QUOTE_FIELDS]
            + [tick.volume, tick.stock_id]
            for tick in result.ticks
        },
    }


def on_tick(result: TickResult) -> None:
    """Tick hook (settings.MARKET_TICK_HOOKS): publish the moved prices. Runs in the
    worker after the prices committed."""
    if not result.ticks:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(market_group(), tick_event(result))


def stock_tick_from_event(symbol: str, quote: list[Any]) -> StockTick:
    price, previous, change, change_pct, high, low = (Decimal(value) for value in quote[:6])
    return StockTick(
        stock_id=int(quote[7]),
        symbol=symbol,
        price=price,
        previous_price=previous,
        change=change,
        change_pct=change_pct,
        day_high=high,
        day_low=low,
        volume=int(quote[6]),
    )


def _render_context(symbol: str, quote: list[Any], at: int) -> dict[str, Any]:
    tick = stock_tick_from_event(symbol, quote)
    # An unsaved Stock carrying the new quote, so the market's own partials (which
    # take a `stock`) render the pushed spans exactly as they render the page.
    stock = Stock(
        id=tick.stock_id,
        symbol=symbol,
        last_price=tick.price,
        change=tick.change,
        change_pct=tick.change_pct,
        day_high=tick.day_high,
        day_low=tick.day_low,
        volume=tick.volume,
    )
    return {"stock": stock, "tick": tick, "at": at, "live": True}


class _FragmentCache:
    """Rendered fragments of the latest tick this process saw, by (view, symbol)."""

    def __init__(self) -> None:
        self.slot: int | None = None
        self.fragments: dict[tuple[str, str], str] = {}
        self.renders = 0  # for tests and the benchmark: how many renders ran

    def for_slot(self, slot: int) -> dict[tuple[str, str], str]:
        if slot != self.slot:
            self.slot = slot
            self.fragments = {}
        return self.fragments


_cache = _FragmentCache()


def tick_fragments(event: dict[str, Any], view: str, symbols: Iterable[str]) -> list[str]:
    """The fragments of `symbols` that moved in this tick, for one page kind. Called by
    every consumer of the process; each (view, symbol) renders once per tick."""
    template_name = VIEWS.get(view)
    if template_name is None:
        return []
    quotes: dict[str, list[Any]] = event["quotes"]
    fragments = _cache.for_slot(event["slot"])
    template = None
    out: list[str] = []
    for symbol in symbols:
        quote = quotes.get(symbol)
        if quote is None:
            continue
        key = (view, symbol)
        html = fragments.get(key)
        if html is None:
            template = template or get_template(template_name)
            html = template.render(_render_context(symbol, quote, event["at"])).strip()
            fragments[key] = html
            _cache.renders += 1
        out.append(html)
    return out
