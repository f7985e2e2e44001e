"""What the real quote sources (Yahoo, Finnhub) share: the per-symbol quote loop and
the sanity filter that keeps nonsense prices out of the market."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings

from market.providers.base import (
    Bar,
    Listing,
    ProviderError,
    Quote,
    QuoteBatch,
    Resolution,
)
from market.providers.http_client import GuardedClient, SourceUnavailable

logger = logging.getLogger("market.providers")

PRICE_STEP = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class RawQuote:
    price: object  # as the source sent it: number, None, string...
    volume: int
    at: datetime | None


def to_price(value: object) -> Decimal | None:
    """A source's number as a price quantized to 0.0001, or None if it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite():
        return None
    return price.quantize(PRICE_STEP)


def sane_price(provider: str, listing: Listing, value: object) -> Decimal | None:
    """The price if it makes sense; else None, with a log line saying why."""
    price = to_price(value)
    if price is None:
        logger.warning("%s: dropped %s quote: no price (%r)", provider, listing.symbol, value)
        return None
    if price <= 0:
        logger.warning(
            "%s: dropped %s quote: price %s is not positive", provider, listing.symbol, price
        )
        return None
    if listing.last_price > 0:
        jump = abs(price / listing.last_price - 1)
        if jump > settings.MARKET_MAX_JUMP:
            logger.warning(
                "%s: dropped %s quote: %s is a %.1f%% jump from %s (bound %s%%)",
                provider,
                listing.symbol,
                price,
                jump * 100,
                listing.last_price,
                settings.MARKET_MAX_JUMP * 100,
            )
            return None
    return price


def bar_from_arrays(
    symbol: str,
    start: datetime,
    values: Mapping[str, object],
) -> Bar | None:
    """A bar from one row of a source's arrays; None if a price is missing or absurd."""
    prices = [to_price(values.get(key)) for key in ("open", "high", "low", "close")]
    if any(p is None or p <= 0 for p in prices):
        return None
    open_, high, low, close = prices
    volume = values.get("volume")
    return Bar(
        symbol=symbol,
        start=start,
        open=open_,
        high=max(high, open_, close),
        low=min(low, open_, close),
        close=close,
        volume=int(volume) if isinstance(volume, int | float) and volume > 0 else 0,
    )


def day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


Row = tuple[object, dict[str, object]]  # (unix time, {open, high, low, close, volume})


def rows_from_columns(
    stamps: Sequence[object], columns: Mapping[str, Sequence[object]]
) -> list[Row]:
    """Zip a source's parallel arrays into rows; a short array reads as nulls."""
    return [
        (stamp, {key: col[k] if k < len(col) else None for key, col in columns.items()})
        for k, stamp in enumerate(stamps)
    ]


def bars_in_range(
    symbol: str,
    rows: Sequence[Row],
    start: datetime,
    end: datetime,
    resolution: Resolution,
    *,
    day_offset: timedelta = timedelta(0),
) -> list[Bar]:
    """Bars from rows whose start is in [start, end) (daily: from start's date on).
    Rows with a null or absurd price are skipped. Daily bars start at midnight UTC of
    the trading date, found by shifting the row's time by the exchange's `day_offset`."""
    lower = day_start(start) if resolution == "1d" else start
    bars = []
    for stamp, row in rows:
        if not isinstance(stamp, int | float):
            continue
        moment = datetime.fromtimestamp(stamp, tz=UTC)
        if resolution == "1d":
            bar_start = day_start(moment + day_offset)
        else:
            bar_start = moment.replace(second=0, microsecond=0)
        if lower <= bar_start < end and (bar := bar_from_arrays(symbol, bar_start, row)):
            bars.append(bar)
    return bars


class RemoteProvider:
    """A source asked one symbol at a time. Subclasses set `name` and `client` and
    implement `fetch_quote` and `bars`."""

    name = "remote"
    client: GuardedClient

    def fetch_quote(self, symbol: str) -> RawQuote:
        raise NotImplementedError

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]:
        raise NotImplementedError

    def quotes(
        self,
        listings: Sequence[Listing],
        at: datetime,
        shocks: Mapping[str, Decimal] | None = None,  # a real market ignores moderators
    ) -> QuoteBatch:
        """Quotes for as many listings as the source answers.

        One symbol's failure (say a 404) skips that symbol. When the source as a whole
        fails (down, key refused, budget spent, circuit open) the loop stops: the quotes
        already fetched are returned, and if there are none the whole call fails with
        ProviderError so the tick shows quotes as delayed.
        """
        quotes: dict[str, Quote] = {}
        failures = 0
        last_error: ProviderError | None = None
        for listing in listings:
            try:
                raw = self.fetch_quote(listing.symbol)
            except SourceUnavailable as error:
                if not quotes:
                    raise
                logger.warning(
                    "%s: stopped after %d of %d symbols: %s",
                    self.name,
                    len(quotes),
                    len(listings),
                    error,
                )
                break
            except ProviderError as error:
                failures += 1
                last_error = error
                logger.warning("%s: no quote for %s: %s", self.name, listing.symbol, error)
                continue
            price = sane_price(self.name, listing, raw.price)
            if price is not None:
                quotes[listing.symbol] = Quote(
                    symbol=listing.symbol,
                    price=price,
                    volume=max(raw.volume, 0),
                    at=(raw.at or at).astimezone(UTC),
                )
        if listings and failures == len(listings):
            raise ProviderError(f"{self.name}: no symbol could be quoted; last error: {last_error}")
        return QuoteBatch(quotes=quotes)
