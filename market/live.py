"""The live price broadcast: one small channel-layer message per tick, fragments
rendered once per web process.

The worker's tick hook (`on_tick`) stores the moved quotes once in Redis under the
tick's slot and sends the market group a message holding only the slot. Each web
process fetches the quotes once per tick (`tick_quotes`: every consumer of the process
awaits the same fetch) and renders a symbol's fragment for a page kind ("view") the
first time one of its connections needs it in that tick (`tick_fragments`), so a
thousand connections watching AAPL cost one decode and one render, not a thousand.
The consumers then only pick their page's symbols and forward the HTML.

Why not put the quotes in the group message: both channels_redis layers deserialize a
message once per receiving consumer, and 500 quotes decoded a thousand times a tick
cost more than the whole push (bench/live.py, docs/live.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import redis.asyncio
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.template import Context
from django.template.loader import get_template

from market.groups import market_group, market_redis
from market.models import Moving
from market.selectors import IndexQuote, index_quote, index_quote_cached
from market.ticks import TickResult

logger = logging.getLogger(__name__)

# The consumer's handler for a tick is LiveConsumer.market_tick.
TICK_EVENT = "market.tick"

# A page kind and the template partial holding the out-of-band spans of one symbol
# on that kind of page. A page subscribes to symbols per view (see static/js/live.js).
STOCK_VIEWS: dict[str, str] = {
    # Market table, dashboard movers: price, change, change %.
    "quote": "market/partials/quote.html#push_quote",
    # The stock page: the above, the day range and the chart's newest point.
    "stock": "market/partials/quote.html#push_stock",
    # The watchlist.
    "watch": "portfolio/partials/live_spans.html#push_watch",
}
# The Bullpen Composite's panel on /market/. Its page subscribes to the view with no
# symbols; the index rides in each tick's quotes under INDEX_KEY, which no stock can
# have (Stock.symbol allows A-Z, 0-9, "." and "-").
INDEX_VIEW = "index"
INDEX_KEY = "^BPX"
# Every view a page may subscribe to (market/consumers.py checks against it).
VIEWS: dict[str, str] = {
    **STOCK_VIEWS,
    INDEX_VIEW: "market/partials/composite.html#push_index",
}

_QUOTE_FIELDS = ("price", "previous_price", "change", "change_pct", "day_high", "day_low")


# The quotes of a tick, stored once by the worker for the web processes to fetch.
TICK_QUOTES_KEY = "live:tick:{slot}"
TICK_QUOTES_TTL_SECONDS = 60


def tick_quotes_payload(result: TickResult) -> dict[str, list[Any]]:
    """Moved quotes keyed by symbol; Decimals as strings."""
    return {
        tick.symbol: [str(getattr(tick, name)) for name in _QUOTE_FIELDS]
        + [tick.volume, tick.stock_id]
        for tick in result.ticks
    }


def index_quote_payload(quote: IndexQuote) -> list[Any]:
    """The Composite's figures for the tick's quotes; Decimals as strings."""
    return [
        str(quote.level),
        "" if quote.previous_close is None else str(quote.previous_close),
        str(quote.change),
        str(quote.change_pct),
        int(quote.as_of.timestamp()),
        quote.intraday,
        quote.constituents,
    ]


def pushed_index(key: str, payload: list[Any]) -> IndexQuote:
    """The IndexQuote the page renders, rebuilt from index_quote_payload."""
    return IndexQuote(
        level=Decimal(payload[0]),
        previous_close=Decimal(payload[1]) if payload[1] else None,
        change=Decimal(payload[2]),
        change_pct=Decimal(payload[3]),
        as_of=datetime.fromtimestamp(payload[4], tz=UTC),
        intraday=bool(payload[5]),
        constituents=int(payload[6]),
    )


# The players portfolio.live sent a wallet to for a tick (it runs first, in this worker
# process): the tick's message names them, so each of their connections knows to wait
# for its wallet and send both in one frame, whichever reaches it first.
_wallets_sent: dict[int, list[int]] = {}


def tick_wallets_sent(*, slot: int, user_ids: Iterable[int]) -> None:
    """Called by portfolio.live.on_tick once the tick's wallets are on their way."""
    _wallets_sent.clear()  # only the tick being published matters
    _wallets_sent[slot] = sorted(user_ids)


def tick_event(result: TickResult) -> dict[str, Any]:
    """The channel-layer message of one tick: the slot (the quotes are in Redis) and the
    players whose wallet for this tick was sent."""
    return {
        "type": TICK_EVENT,
        "slot": result.slot,
        "at": int(result.at.timestamp()),
        "wallets": _wallets_sent.pop(result.slot, []),
    }


def on_tick(result: TickResult) -> None:
    """Tick hook (settings.MARKET_TICK_HOOKS): publish the moved prices. Runs in the
    worker after the prices committed."""
    if not result.ticks:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    quotes = tick_quotes_payload(result)
    # The tick stored the index's new quote just before the hooks (market.services);
    # the database answers only if the cache lost it.
    found, composite = index_quote_cached()
    if not found:
        composite = index_quote()
    if composite is not None:
        quotes[INDEX_KEY] = index_quote_payload(composite)
    market_redis().set(
        TICK_QUOTES_KEY.format(slot=result.slot),
        json.dumps(quotes, separators=(",", ":")),
        ex=TICK_QUOTES_TTL_SECONDS,
    )
    async_to_sync(layer.group_send)(market_group(), tick_event(result))


async def _quotes_fetch(slot: int) -> dict[str, list[Any]]:
    # A connection per fetch: one every tick per process, and no client tied to an
    # event loop that a test (or a restart of the loop) has since closed.
    client = redis.asyncio.Redis.from_url(settings.REDIS_MARKET_URL, socket_timeout=5)
    try:
        raw = await client.get(TICK_QUOTES_KEY.format(slot=slot))
    finally:
        await client.aclose()
    if raw is None:
        logger.warning("live: quotes of tick %s are gone; nothing pushed", slot)
        return {}
    return json.loads(raw)


class _TickQuotes:
    """The quotes of the latest tick this process saw: fetched once, shared by all."""

    def __init__(self) -> None:
        self.slot: int | None = None
        self.fetch: asyncio.Future | None = None
        self.quotes: dict[str, list[Any]] | None = None
        self.fetches = 0

    async def get(self, slot: int) -> dict[str, list[Any]]:
        if slot == self.slot and self.quotes is not None:
            return self.quotes  # the common case: another consumer already fetched them
        if (
            slot != self.slot
            or self.fetch is None
            or self.fetch.get_loop() is not asyncio.get_running_loop()
        ):
            self.slot = slot
            self.quotes = None
            self.fetch = asyncio.ensure_future(_quotes_fetch(slot))
            self.fetches += 1
        fetch = self.fetch
        try:
            quotes = await asyncio.shield(fetch)
        except Exception:
            logger.exception("live: quotes of tick %s could not be fetched", slot)
            return {}
        if fetch is self.fetch:
            self.quotes = quotes
        return quotes


_quotes = _TickQuotes()


async def tick_quotes(event: dict[str, Any]) -> dict[str, list[Any]]:
    return await _quotes.get(event["slot"])


class PushedStock(Moving):
    """What the quote partials read of a stock, for a pushed quote. A Stock model
    instance cost more to build than its spans cost to render; this holds the same
    attributes (and `is_up`/`is_down`, from Moving as for Stock), so the partials print
    exactly what the page prints (tests/live/test_render.py compares the two)."""

    __slots__ = ("symbol", "last_price", "change", "change_pct", "day_high", "day_low", "volume")

    def __init__(self, symbol: str, quote: list[Any]) -> None:
        self.symbol = symbol
        self.last_price = Decimal(quote[0])
        self.change = Decimal(quote[2])
        self.change_pct = Decimal(quote[3])
        self.day_high = Decimal(quote[4])
        self.day_low = Decimal(quote[5])
        self.volume = int(quote[6])


class _FragmentCache:
    """Rendered fragments of the latest tick this process saw, by (view, symbol).

    One template Context per view and tick, reused for every symbol: the partials'
    {% include %}s cache the templates they load in the context's render state, so a
    fresh context per symbol would look each one up again (most of a render's cost)."""

    def __init__(self) -> None:
        self.slot: int | None = None
        self.fragments: dict[tuple[str, str], str] = {}
        self.contexts: dict[str, Context] = {}
        self.renders = 0  # for tests and the benchmark: how many renders ran

    def for_slot(self, slot: int) -> dict[tuple[str, str], str]:
        if slot != self.slot:
            self.slot = slot
            self.fragments = {}
            self.contexts = {}
        return self.fragments

    def context(self, view: str, at: int) -> Context:
        context = self.contexts.get(view)
        if context is None:
            # A plain Context: no request, no context processors (the spans need none).
            # `at` is the start of the tick's minute: the chart's candle the price belongs
            # to (static/js/market-chart.js opens a new candle when it is past the last).
            context = self.contexts[view] = Context(
                {"at": at - at % 60, "live": True}, autoescape=True
            )
        return context


_cache = _FragmentCache()


def tick_fragments(
    event: dict[str, Any], quotes: dict[str, list[Any]], view: str, symbols: Iterable[str]
) -> list[str]:
    """The fragments of `symbols` that moved in this tick (`quotes`, from tick_quotes),
    for one page kind. Called by every consumer of the process; each (view, symbol)
    renders once per tick."""
    template_name = VIEWS.get(view)
    if template_name is None:
        return []
    name, build = "stock", PushedStock
    if view == INDEX_VIEW:
        name, build, symbols = "index", pushed_index, (INDEX_KEY,)
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
            if template is None:
                # The engine's Template behind the backend wrapper: it renders a Context.
                template = get_template(template_name).template
                context = _cache.context(view, event["at"])
            with context.push({name: build(symbol, quote)}):
                html = template.render(context).strip()
            fragments[key] = html
            _cache.renders += 1
        out.append(html)
    return out
