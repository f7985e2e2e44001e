"""The leaderboard: recomputed every minute by SQL aggregates, kept in Redis, read by
rank ranges.

`leaderboard_recompute` (beat, every LEADERBOARD_RECOMPUTE_SECONDS) reads every eligible
player's figures in one statement: net worth at live prices (a SQL aggregate over the
positions) and the running sums the snapshots keep in PortfolioPerformance. NumPy then
carries growth to the live point, works out Sharpe, volatility and drawdown, and ranks
the three views, and the board goes to Redis as one new *generation* of fixed-width
binary records:

    leaderboard:<g>:return     every ranked player's record, in return-rank order
    leaderboard:<g>:sharpe     int32 positions in that list, in Sharpe-rank order
    leaderboard:<g>:drawdown   the same in drawdown-rank order
    leaderboard:<g>:owners     int32 return rank by owner id (0: not ranked)
    leaderboard:state          a hash: the current generation, when, how many

Switching `state` to the new generation is one atomic script, so a reader never sees a
half-written board; the old generation expires a little later. A page is a GETRANGE of
25 records (plus one of 25 positions for the other views), never a scan. Why the board
is not a table any more: docs/leaderboard.md, "Where the board is kept".
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from portfolio.services import HOLDINGS_CTE, bulk_statement_prepare

logger = logging.getLogger(__name__)
User = get_user_model()
# Fewer daily returns than this make a Sharpe ratio and a volatility that mean nothing.
MIN_DAILY_RETURNS = 5
# A daily standard deviation under this is returns that never varied (a player holding
# only cash): the Sharpe ratio is undefined, not a huge number.
MIN_DAILY_STDDEV = 0.000001
# Figures beyond these are clipped (a player who turned 1 into 100,000 is not a bug).
SHARPE_LIMIT = 999_999.0
PCT_LIMIT = 999_999.0
DAYS_PER_YEAR = 365.25
SQRT_YEAR = math.sqrt(DAYS_PER_YEAR)
FOUR_PLACES = Decimal("0.0001")

KEY_PREFIX = "leaderboard"
STATE_KEY = f"{KEY_PREFIX}:state"
GENERATION_KEY = f"{KEY_PREFIX}:generation"
BOARD_PARTS = ("return", "sharpe", "drawdown", "owners")
# A generation being written lives an hour unless it becomes the current one; the one it
# replaces lives two minutes after the switch, for readers that are mid-page. The current
# one (and the state) lasts a week from its recompute: nothing is left behind for good,
# whatever Redis evicts, and a board not recomputed for a week is gone, not stale.
UNFINISHED_SECONDS = 3600
REPLACED_SECONDS = 120
CURRENT_SECONDS = 7 * 24 * 3600

# One ranked player, as stored: little-endian, fixed width, so record n of the return
# order starts at byte n * RECORD.itemsize. NaN stands for "no figure".
RECORD = np.dtype(
    [
        ("portfolio_id", "<i8"),
        ("owner_id", "<i8"),
        ("net_worth_cents", "<i8"),
        ("return_pct", "<f8"),
        ("sharpe", "<f8"),
        ("volatility_pct", "<f8"),
        ("max_drawdown_pct", "<f8"),
        ("rank", "<i4"),
        ("sharpe_rank", "<i4"),  # 0: no Sharpe ratio
        ("drawdown_rank", "<i4"),
        ("unused", "<i4"),
    ]
)
POSITION = np.dtype("<i4")


@functools.cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def board_redis() -> redis.Redis:
    """The board lives with the caches (settings.REDIS_CACHE_URL): it is derived data,
    rebuilt every minute, and a flush only empties the page until the next run."""
    return _client_for(settings.REDIS_CACHE_URL)


def _key(generation: int, part: str) -> str:
    return f"{KEY_PREFIX}:{generation}:{part}"


@dataclass(frozen=True)
class LeaderboardState:
    """What the page needs besides its rows: which generation is current, how many are
    ranked in each view, and when it was computed."""

    computed_at: datetime | None
    ranked: int
    sharpe_ranked: int
    generation: int = 0

    def total(self, view: str) -> int:
        return self.sharpe_ranked if view == "sharpe" else self.ranked


EMPTY_STATE = LeaderboardState(computed_at=None, ranked=0, sharpe_ranked=0)


@dataclass(frozen=True, slots=True)
class BoardEntry:
    """One ranked player's row, as of the recompute at `computed_at`. `owner` is set on
    a page's rows (handle and name for the links)."""

    portfolio_id: int
    owner_id: int
    rank: int
    sharpe_rank: int | None
    drawdown_rank: int
    net_worth: Decimal
    return_pct: Decimal
    sharpe: Decimal | None
    volatility_pct: Decimal | None
    max_drawdown_pct: Decimal
    computed_at: datetime
    owner: Any = None

    def rank_in(self, view: str) -> int | None:
        return {"return": self.rank, "sharpe": self.sharpe_rank}.get(view, self.drawdown_rank)


# --- the recompute ----------------------------------------------------------------------

# Who is ranked: each active player's main portfolio, opted in to a public profile.
# Players who did not opt in are left out altogether: the board lists names, and a
# private player never agreed to be listed. Staff run the game and are not ranked.
#
# One row per ranked player, every column fixed width and never NULL, so the binary
# COPY of it is an array of equal records (_COPY_ROW). Net worth is live (cash +
# quantity x last price, to the cent); the rest is the performance row the snapshots
# keep, or the opening deposit when there is none yet (as selectors.growth_now does).
_INPUTS_SQL = f"""
WITH {HOLDINGS_CTE}
SELECT p.id, p.owner_id,
       (round(p.cash + coalesce(h.value, 0), 2) * 100)::int8,
       coalesce(perf.last_net_worth, p.starting_cash)::float8,
       (p.net_deposits - coalesce(perf.last_net_deposits, p.starting_cash))::float8,
       coalesce(perf.growth, 1)::float8,
       coalesce(perf.peak_growth, 1)::float8,
       coalesce(perf.max_drawdown, 0)::float8,
       coalesce(perf.daily_returns, 0)::int8,
       coalesce(perf.daily_return_sum, 0)::float8,
       coalesce(perf.daily_return_sum_sq, 0)::float8
FROM portfolio_portfolio p
JOIN accounts_user u ON u.id = p.owner_id
LEFT JOIN portfolio_portfolioperformance perf ON perf.portfolio_id = p.id
LEFT JOIN holdings h ON h.portfolio_id = p.id
WHERE p.name = 'Main' AND p.starting_cash > 0
  AND u.public_profile AND u.is_active AND NOT u.is_staff
  AND u.deleted_at IS NULL AND u.suspended_at IS NULL
"""  # noqa: S608 - a constant statement, no input

_INPUT_COLUMNS = (
    ("portfolio_id", ">i8"),
    ("owner_id", ">i8"),
    ("net_worth_cents", ">i8"),
    ("previous_net_worth", ">f8"),
    ("flow", ">f8"),  # money paid in since the last snapshot
    ("previous_growth", ">f8"),
    ("previous_peak", ">f8"),
    ("previous_drawdown", ">f8"),
    ("n", ">i8"),
    ("total", ">f8"),
    ("total_sq", ">f8"),
)
# PostgreSQL's binary COPY format: a 19-byte header, then per row a 16-bit field count
# and, per field, a 32-bit length and the value (big-endian); a 16-bit -1 ends it.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = 19
_COPY_ROW = np.dtype(
    [("fields", ">i2")]
    + [
        item
        for index, column in enumerate(_INPUT_COLUMNS)
        for item in ((f"_{index}", ">i4"), column)
    ]
)


def board_inputs_read() -> np.ndarray:
    """Every ranked player's inputs, straight from a binary COPY into a NumPy record
    array: no Python object per value."""
    buffer = bytearray()
    with transaction.atomic(), connection.cursor() as cursor:
        bulk_statement_prepare(cursor)
        with cursor.cursor.copy(f"COPY ({_INPUTS_SQL}) TO STDOUT (FORMAT binary)") as copy:
            for chunk in copy:
                buffer += chunk
    if not buffer.startswith(_COPY_SIGNATURE) or buffer[-2:] != b"\xff\xff":
        raise RuntimeError("The leaderboard's COPY did not return PostgreSQL's binary format.")
    rows = np.frombuffer(memoryview(buffer)[_COPY_HEADER:-2], dtype=_COPY_ROW)
    widths = {
        f"_{index}": np.dtype(kind).itemsize for index, (_, kind) in enumerate(_INPUT_COLUMNS)
    }
    if len(rows) and (
        (rows["fields"] != len(_INPUT_COLUMNS)).any()
        or any((rows[name] != width).any() for name, width in widths.items())
    ):
        raise RuntimeError("The leaderboard's COPY rows are not the expected fixed width.")
    return rows


def _daily_risk_free() -> float:
    """The daily rate that compounds to settings.RISK_FREE_RATE over a year."""
    return (1 + float(settings.RISK_FREE_RATE)) ** (1 / DAYS_PER_YEAR) - 1


def _figures(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each player's live figures, vectorised: ratios, not money, so double precision
    (exact enough for the four places shown). Growth is the last snapshot's carried one
    step to the live net worth, as selectors.growth_step does; drawdown includes that
    live point; Sharpe and volatility come from the running sums of daily returns (mean
    and sample variance without the history)."""
    net_worth = rows["net_worth_cents"] / 100
    previous = rows["previous_net_worth"]
    n = rows["n"].astype(np.float64)
    total, total_sq = rows["total"], rows["total_sq"]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = (net_worth - rows["flow"]) / previous
        growth = np.where(
            previous > 0, np.maximum(rows["previous_growth"] * step, 0), rows["previous_growth"]
        )
        peak = np.maximum(rows["previous_peak"], growth)
        live_drawdown = np.where(peak > 0, growth / peak - 1, 0)
        variance = (total_sq - total * total / n) / (n - 1)
        stddev = np.where(n >= MIN_DAILY_RETURNS, np.sqrt(np.maximum(variance, 0)), np.nan)
        sharpe = (total / n - _daily_risk_free()) / stddev * SQRT_YEAR
    # Returns that never varied have no Sharpe ratio (NaN compares false: stays NaN).
    sharpe = np.where(stddev >= MIN_DAILY_STDDEV, sharpe, np.nan)
    return {
        "return_pct": np.minimum((growth - 1) * 100, PCT_LIMIT),
        "max_drawdown_pct": np.minimum(rows["previous_drawdown"], live_drawdown) * 100,
        "sharpe": np.clip(sharpe, -SHARPE_LIMIT, SHARPE_LIMIT),
        "volatility_pct": np.minimum(stddev * SQRT_YEAR * 100, PCT_LIMIT),
    }


def _order(score: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Indexes from the highest score to the lowest; ties go to the older portfolio."""
    return np.lexsort((ids, -score))


def board_build(rows: np.ndarray) -> tuple[dict[str, bytes], int, int]:
    """The generation's four parts as bytes, and how many are ranked (with a Sharpe
    ratio). Ranks are dense and unique."""
    figures = _figures(rows)
    ids = rows["portfolio_id"]
    count = len(rows)
    by_return = _order(figures["return_pct"], ids)
    has_sharpe = np.flatnonzero(~np.isnan(figures["sharpe"]))
    by_sharpe = has_sharpe[_order(figures["sharpe"][has_sharpe], ids[has_sharpe])]
    by_drawdown = _order(figures["max_drawdown_pct"], ids)

    def ranks_of(order: np.ndarray) -> np.ndarray:
        ranks = np.zeros(count, dtype=np.int32)
        ranks[order] = np.arange(1, len(order) + 1, dtype=np.int32)
        return ranks

    return_rank = ranks_of(by_return)
    records = np.zeros(count, dtype=RECORD)
    for name in ("portfolio_id", "owner_id", "net_worth_cents"):
        records[name] = rows[name][by_return]
    for name, values in figures.items():
        records[name] = values[by_return]
    records["rank"] = return_rank[by_return]
    records["sharpe_rank"] = ranks_of(by_sharpe)[by_return]
    records["drawdown_rank"] = ranks_of(by_drawdown)[by_return]
    # The other views point into the return order: position = return rank - 1.
    owners = np.zeros(int(rows["owner_id"].max(initial=0)) + 1, dtype=POSITION)
    owners[rows["owner_id"]] = return_rank
    parts = {
        "return": records.tobytes(),
        "sharpe": (return_rank[by_sharpe] - 1).astype(POSITION).tobytes(),
        "drawdown": (return_rank[by_drawdown] - 1).astype(POSITION).tobytes(),
        "owners": owners.tobytes(),
    }
    return parts, count, len(has_sharpe)


# Make `generation` current if it is newer than the current one (a slow run finishing
# after a quicker later one must not put the older board back), keep its parts, and let
# the replaced generation's parts expire. One script: readers see one state or the other.
# ARGV: generation, computed at, ranked, ranked with a Sharpe ratio, seconds the replaced
# parts live, seconds the current ones live, the key prefix, then the parts' names.
_SWITCH_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'generation')
if current and tonumber(ARGV[1]) <= tonumber(current) then return 0 end
redis.call('HSET', KEYS[1], 'generation', ARGV[1], 'computed_at', ARGV[2],
           'ranked', ARGV[3], 'sharpe_ranked', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
for index = 8, #ARGV do
    redis.call('EXPIRE', ARGV[7] .. ':' .. ARGV[1] .. ':' .. ARGV[index], ARGV[6])
    if current then
        redis.call('EXPIRE', ARGV[7] .. ':' .. current .. ':' .. ARGV[index], ARGV[5])
    end
end
return 1
"""


def board_publish(
    parts: dict[str, bytes], *, computed_at: datetime, ranked: int, sharpe_ranked: int
) -> LeaderboardState:
    client = board_redis()
    generation = int(client.incr(GENERATION_KEY))
    pipe = client.pipeline(transaction=False)
    for part, payload in parts.items():
        pipe.set(_key(generation, part), payload, ex=UNFINISHED_SECONDS)
    pipe.execute()
    switched = client.register_script(_SWITCH_SCRIPT)(
        keys=[STATE_KEY],
        args=[
            generation,
            computed_at.isoformat(),
            ranked,
            sharpe_ranked,
            REPLACED_SECONDS,
            CURRENT_SECONDS,
            KEY_PREFIX,
            *BOARD_PARTS,
        ],
    )
    state = LeaderboardState(
        computed_at=computed_at, ranked=ranked, sharpe_ranked=sharpe_ranked, generation=generation
    )
    if not switched:
        logger.warning("leaderboard generation %s finished after a newer one: dropped", generation)
    return state


def leaderboard_recompute(*, now: datetime | None = None) -> LeaderboardState:
    """Rank every eligible player and publish the board as a new generation. Readers
    keep the previous board until the switch, never a half-written one. Ranks are dense
    and unique: ties go to the older portfolio."""
    now = now or timezone.now()
    rows = board_inputs_read()
    parts, ranked, sharpe_ranked = board_build(rows)
    return board_publish(parts, computed_at=now, ranked=ranked, sharpe_ranked=sharpe_ranked)


# --- reading the board ------------------------------------------------------------------
# Every read goes through the state's generation, so one page never mixes two boards.
# Redis being down reads as "not computed yet" (logged), never a 500: the board is
# derived data and the rest of the site does not need it.


@dataclass
class ReadBreaker:
    """After a failed read the board is not asked again for `retry_seconds`: a Redis that
    times out (rather than refusing at once) would otherwise add its timeout to every
    page that shows the board. One per process, as the cache's own (config/cache.py)."""

    retry_seconds: float = 5.0
    open_until: float = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self, error: Exception) -> None:
        logger.warning(
            "leaderboard unreadable (%s); not asked again for %.0f s", error, self.retry_seconds
        )
        self.open_until = time.monotonic() + self.retry_seconds


read_breaker = ReadBreaker()


def leaderboard_state() -> LeaderboardState:
    """The current generation, its totals and when it was computed (EMPTY_STATE before
    the first recompute, after a flush, or while Redis is unreachable)."""
    if read_breaker.is_open:
        return EMPTY_STATE
    try:
        raw = board_redis().hgetall(STATE_KEY)
    except redis.RedisError as error:
        read_breaker.trip(error)
        return EMPTY_STATE
    if not raw:
        return EMPTY_STATE
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    return LeaderboardState(
        computed_at=datetime.fromisoformat(fields["computed_at"]),
        ranked=int(fields["ranked"]),
        sharpe_ranked=int(fields["sharpe_ranked"]),
        generation=int(fields["generation"]),
    )


def _four_places(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(FOUR_PLACES)


def _optional(value: float) -> Decimal | None:
    return None if math.isnan(value) else _four_places(value)


def _entry(record: np.void, computed_at: datetime) -> BoardEntry:
    return BoardEntry(
        portfolio_id=int(record["portfolio_id"]),
        owner_id=int(record["owner_id"]),
        rank=int(record["rank"]),
        sharpe_rank=int(record["sharpe_rank"]) or None,
        drawdown_rank=int(record["drawdown_rank"]),
        net_worth=Decimal(int(record["net_worth_cents"])).scaleb(-2),
        return_pct=_four_places(record["return_pct"]),
        sharpe=_optional(record["sharpe"]),
        volatility_pct=_optional(record["volatility_pct"]),
        max_drawdown_pct=_four_places(record["max_drawdown_pct"]),
        computed_at=computed_at,
    )


def _records(payloads: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(payloads), dtype=RECORD)


def _read_ranks(state: LeaderboardState, view: str, first: int, last: int) -> np.ndarray:
    """Records ranked `first`..`last` in `view`: one GETRANGE of the return order, or one
    of the view's positions and then its records in one pipelined round trip."""
    client = board_redis()
    size = RECORD.itemsize
    if view == "return":
        payload = client.getrange(
            _key(state.generation, "return"), (first - 1) * size, last * size - 1
        )
        return _records([payload])
    width = POSITION.itemsize
    raw = client.getrange(_key(state.generation, view), (first - 1) * width, last * width - 1)
    positions = np.frombuffer(raw, dtype=POSITION)
    pipe = client.pipeline(transaction=False)
    for position in positions.tolist():
        pipe.getrange(_key(state.generation, "return"), position * size, (position + 1) * size - 1)
    return _records(pipe.execute())


def leaderboard_rows(
    *, view: str, first: int, last: int, state: LeaderboardState | None = None
) -> list[BoardEntry]:
    """Entries ranked `first`..`last` (1-based, inclusive) in `view`, each with its
    owner (one query by primary key). A player who went private, was suspended or
    deleted since the recompute is left out until the next one."""
    state = state or leaderboard_state()
    if state.computed_at is None or last < first:
        return []
    try:
        records = _read_ranks(state, view, first, last)
    except redis.RedisError as error:
        logger.warning("leaderboard unreadable: %s", error)
        return []
    entries = [_entry(record, state.computed_at) for record in records]
    owners = (
        User.objects.filter(
            pk__in=[entry.owner_id for entry in entries],
            public_profile=True,
            is_active=True,
            deleted_at__isnull=True,
            suspended_at__isnull=True,
        )
        .only("id", "handle", "display_name")
        .in_bulk()
        if entries
        else {}
    )
    return [
        replace(entry, owner=owners[entry.owner_id])
        for entry in entries
        if entry.owner_id in owners
    ]


def leaderboard_entry_for(user: Any, state: LeaderboardState | None = None) -> BoardEntry | None:
    """`user`'s row on the board (only their main portfolio is ranked), or None: two
    GETRANGEs, their return rank by owner id and then the record."""
    state = state or leaderboard_state()
    if state.computed_at is None or not getattr(user, "pk", None):
        return None
    width = POSITION.itemsize
    try:
        raw = board_redis().getrange(
            _key(state.generation, "owners"), user.pk * width, (user.pk + 1) * width - 1
        )
        rank = int(np.frombuffer(raw, dtype=POSITION)[0]) if len(raw) == width else 0
        if not rank:
            return None
        records = _read_ranks(state, "return", rank, rank)
    except redis.RedisError as error:
        logger.warning("leaderboard unreadable: %s", error)
        return None
    return _entry(records[0], state.computed_at) if len(records) else None


class RankedEntries:
    """One view of the board as a sequence for Django's Paginator: its length is the
    recompute's total, and a slice is a rank range (no COUNT, no OFFSET)."""

    ordered = True

    def __init__(self, *, view: str, state: LeaderboardState) -> None:
        self.view = view
        self.state = state
        self.total = state.total(view)

    def count(self) -> int:
        return self.total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, window: slice) -> list[BoardEntry]:
        if not isinstance(window, slice):
            raise TypeError("RankedEntries only slices.")
        start = window.start or 0
        stop = self.total if window.stop is None else min(window.stop, self.total)
        if stop <= start:
            return []
        return leaderboard_rows(view=self.view, first=start + 1, last=stop, state=self.state)
