"""Market state kept in Redis (settings.REDIS_MARKET_URL): the buffer of ticks not yet
folded into bars, the per-slot tick locks, and whether the quote source is failing.
None of it is user-owned; losing it loses at most the unflushed minutes of history."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import redis
from django.conf import settings

TICK_STREAM = "market:ticks"
DELAYED_KEY = "market:quotes-delayed-since"


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def market_redis() -> redis.Redis:
    # Keyed by URL so tests or benches that point REDIS_MARKET_URL elsewhere get a fresh client.
    return _client_for(settings.REDIS_MARKET_URL)


# --- tick locks ------------------------------------------------------------------


def tick_slot_claim(slot: int) -> bool:
    """True for the first caller of a slot; a duplicate or late run of it gets False.
    The key outlives the slot by a few intervals, long enough for any straggler."""
    ttl = max(settings.MARKET_TICK_SECONDS * 4, 10)
    return bool(market_redis().set(f"market:tick-slot:{slot}", "1", nx=True, ex=ttl))


# --- the tick stream -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamTick:
    stock_id: int
    price: Decimal
    volume: int


@dataclass(frozen=True, slots=True)
class StreamEntry:
    entry_id: str
    at: datetime
    ticks: list[StreamTick]


# A bound on the buffer if the flush stops running: about 2.8 hours of 5-second ticks.
STREAM_MAX_ENTRIES = 2000


def tick_publish(*, at: datetime, slot: int, ticks: Sequence[tuple[int, Decimal, int]]) -> str:
    """Append one stream entry holding every applied quote as [stock_id, price, volume],
    and clear the "quotes delayed" mark, in one round trip."""
    payload = json.dumps([[stock_id, str(price), volume] for stock_id, price, volume in ticks])
    pipe = market_redis().pipeline(transaction=False)
    pipe.xadd(
        TICK_STREAM,
        {"at": at.isoformat(), "slot": str(slot), "ticks": payload},
        maxlen=STREAM_MAX_ENTRIES,
        approximate=True,
    )
    pipe.delete(DELAYED_KEY)
    entry_id = pipe.execute()[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def _decode(entry_id: bytes | str, fields: dict) -> StreamEntry:
    raw = {key.decode() if isinstance(key, bytes) else key: value for key, value in fields.items()}
    at = datetime.fromisoformat(raw["at"].decode() if isinstance(raw["at"], bytes) else raw["at"])
    ticks = [
        StreamTick(stock_id=int(stock_id), price=Decimal(price), volume=int(volume))
        for stock_id, price, volume in json.loads(raw["ticks"])
    ]
    return StreamEntry(
        entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        at=at.astimezone(UTC),
        ticks=ticks,
    )


def stream_read_after(last_id: str, *, batch_entries: int) -> Iterator[list[StreamEntry]]:
    """Entries after `last_id`, oldest first, in batches."""
    client = market_redis()
    cursor = last_id
    while True:
        rows = client.xrange(TICK_STREAM, min=f"({cursor}", max="+", count=batch_entries)
        if not rows:
            return
        batch = [_decode(entry_id, fields) for entry_id, fields in rows]
        yield batch
        cursor = batch[-1].entry_id
        if len(rows) < batch_entries:
            return


def stream_trim_through(last_id: str) -> int:
    """Drop every entry up to and including `last_id` (already folded into bars)."""
    millis, seq = (int(part) for part in last_id.split("-"))
    return market_redis().xtrim(TICK_STREAM, minid=f"{millis}-{seq + 1}", approximate=False)


def stream_length() -> int:
    return int(market_redis().xlen(TICK_STREAM))


# --- provider health -------------------------------------------------------------


def quotes_delayed_mark(at: datetime) -> None:
    """Remember the first failure only: the banner says since when quotes are late."""
    market_redis().set(DELAYED_KEY, at.astimezone(UTC).isoformat(), nx=True)


def quotes_delayed_clear() -> None:
    market_redis().delete(DELAYED_KEY)


def quotes_delayed_since() -> datetime | None:
    raw = market_redis().get(DELAYED_KEY)
    if raw is None:
        return None
    return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
