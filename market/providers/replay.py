"""Replay: plays imported bars (market.PriceBar) forward at MARKET_REPLAY_SPEED.

The replay clock is anchored in Redis on the first tick: that tick's wall time and the
start of the earliest imported bar. From then on

    replay_time(at) = origin + (at - anchored_at) * MARKET_REPLAY_SPEED

so every worker process reads the same clock. It replays minute bars when the stocks
have any, else daily bars. A tick quotes, for each symbol, the close of the latest bar
that has *ended* by the replay time (a bar still in progress would leak its close
early), with the volume of the bars that ended since the previous tick. Past the last
bar the price holds and the volume is zero; `replay_clock_reset()` starts over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Min, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from market.models import PriceBar, Stock
from market.providers.base import Bar, Listing, ProviderError, Quote, QuoteBatch, Resolution
from market.state import market_redis

CLOCK_KEY = "market:replay:clock"
BAR_LENGTH = {"1m": timedelta(minutes=1), "1d": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class ReplayClock:
    anchored_at: datetime  # wall time of the first tick
    origin: datetime  # replay time at that tick: the earliest bar's start
    resolution: Resolution
    speed: float

    def replay_time(self, at: datetime) -> datetime:
        elapsed = max((at - self.anchored_at).total_seconds(), 0.0)
        return self.origin + timedelta(seconds=elapsed * self.speed)


def replay_clock() -> ReplayClock | None:
    raw = market_redis().get(CLOCK_KEY)
    if raw is None:
        return None
    stored = json.loads(raw)
    return ReplayClock(
        anchored_at=datetime.fromisoformat(stored["anchored_at"]),
        origin=datetime.fromisoformat(stored["origin"]),
        resolution=stored["resolution"],
        speed=settings.MARKET_REPLAY_SPEED,
    )


def replay_clock_reset() -> None:
    """Start the replay again from the earliest bar on the next tick."""
    market_redis().delete(CLOCK_KEY)


def _anchor(symbols: Sequence[str], at: datetime) -> ReplayClock:
    for resolution in ("1m", "1d"):
        first = PriceBar.objects.filter(stock__symbol__in=symbols, resolution=resolution).aggregate(
            first=Min("start")
        )["first"]
        if first is not None:
            break
    else:
        raise ProviderError("replay: no imported bars for the listed stocks; run import_prices")
    stored = {"anchored_at": at.isoformat(), "origin": first.isoformat(), "resolution": resolution}
    # NX: when two workers anchor at once, both end up reading the first one's clock.
    market_redis().set(CLOCK_KEY, json.dumps(stored), nx=True)
    clock = replay_clock()
    assert clock is not None
    return clock


class ReplayProvider:
    name = "replay"

    def quotes(
        self,
        listings: Sequence[Listing],
        at: datetime,
        shocks: Mapping[str, Decimal] | None = None,  # history is history: shocks ignored
    ) -> QuoteBatch:
        if not listings:
            return QuoteBatch(quotes={})
        symbols = [x.symbol for x in listings]
        clock = replay_clock() or _anchor(symbols, at)
        length = BAR_LENGTH[clock.resolution]
        now = clock.replay_time(at)
        before = clock.replay_time(at - timedelta(seconds=settings.MARKET_TICK_SECONDS))
        # Bars that have ended by the replay time start at or before now - length.
        ended = PriceBar.objects.filter(stock=OuterRef("pk"), resolution=clock.resolution)
        latest = ended.filter(start__lte=now - length).order_by("-start")
        traded = (
            ended.filter(start__gt=before - length, start__lte=now - length)
            .values("stock")
            .annotate(total=Sum("volume"))
            .values("total")
        )
        # One query: per stock, an index range scan on (stock, resolution, start) for
        # the latest close and one for the volume since the previous tick.
        rows = (
            Stock.objects.filter(symbol__in=symbols)
            .annotate(
                replay_close=Subquery(latest.values("close")[:1]),
                replay_volume=Coalesce(Subquery(traded), 0),
            )
            .filter(replay_close__isnull=False)
            .values_list("symbol", "replay_close", "replay_volume")
        )
        quotes = {
            symbol: Quote(symbol=symbol, price=close, volume=int(volume), at=at)
            for symbol, close, volume in rows
        }
        return QuoteBatch(quotes=quotes)

    def bars(
        self, symbol: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[Bar]:
        """The imported bars themselves."""
        rows = PriceBar.objects.filter(
            stock__symbol=symbol, resolution=resolution, start__gte=start, start__lt=end
        ).order_by("start")
        return [
            Bar(symbol, b.start.astimezone(UTC), b.open, b.high, b.low, b.close, b.volume)
            for b in rows
        ]
