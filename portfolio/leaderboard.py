"""The leaderboard: rewritten every minute by SQL aggregates, read by rank ranges.

`leaderboard_recompute` (beat, every LEADERBOARD_RECOMPUTE_SECONDS) ranks every eligible
player from live prices and the running figures the snapshots keep in
PortfolioPerformance, and replaces LeaderboardEntry in one transaction. The page then
costs one indexed range read on a rank column (and its 25 owners by key), plus the
reader's own row; the totals and the time of the last recompute sit in the cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max, Prefetch
from django.utils import timezone

from portfolio.models import LeaderboardEntry, Portfolio
from portfolio.services import HOLDINGS_CTE, bulk_statement_prepare

User = get_user_model()
# Each view and the rank column its page is a range of.
RANK_FIELDS: dict[str, str] = {
    "return": "rank",
    "sharpe": "sharpe_rank",
    "drawdown": "drawdown_rank",
}
# Fewer daily returns than this make a Sharpe ratio and a volatility that mean nothing.
MIN_DAILY_RETURNS = 5
# A daily standard deviation under this is returns that never varied (a player holding
# only cash): the Sharpe ratio is undefined, not a huge number.
MIN_DAILY_STDDEV = 0.000001
# The columns' widths (LeaderboardEntry): a figure beyond them is clipped, never an error.
SHARPE_LIMIT = 999_999.0
PCT_LIMIT = 999_999.0
STATE_CACHE_KEY = "leaderboard:state"
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class LeaderboardState:
    """What the page needs besides its rows: how many are ranked in each view, and when."""

    computed_at: datetime | None
    ranked: int
    sharpe_ranked: int

    @property
    def count(self) -> int:
        return self.ranked

    def total(self, view: str) -> int:
        return self.sharpe_ranked if view == "sharpe" else self.ranked


# Who is ranked: each active player's main portfolio, opted in to a public profile.
# Players who did not opt in are left out altogether: the board lists names, and a
# private player never agreed to be listed. Staff run the game and are not ranked.
#
# Net worth is live (cash + quantity x last price); growth is the performance row's
# carried one more step to it, as selectors.growth_now does (from the starting cash
# when there is no row yet). Drawdown includes that live point. Sharpe and volatility
# come from the running sums of daily returns: mean and sample variance without the
# history.
_RECOMPUTE_SQL = f"""
WITH {HOLDINGS_CTE}, live AS (
    SELECT p.id, p.owner_id, p.net_deposits,
           round(p.cash + coalesce(h.value, 0), 2) AS net_worth,
           coalesce(perf.last_net_worth, p.starting_cash) AS previous_net_worth,
           coalesce(perf.last_net_deposits, p.starting_cash) AS previous_deposits,
           coalesce(perf.growth, 1) AS previous_growth,
           coalesce(perf.peak_growth, 1) AS previous_peak,
           coalesce(perf.max_drawdown, 0) AS previous_drawdown,
           coalesce(perf.daily_returns, 0) AS n,
           coalesce(perf.daily_return_sum, 0) AS total,
           coalesce(perf.daily_return_sum_sq, 0) AS total_sq
    FROM portfolio_portfolio p
    JOIN accounts_user u ON u.id = p.owner_id
    LEFT JOIN portfolio_portfolioperformance perf ON perf.portfolio_id = p.id
    LEFT JOIN holdings h ON h.portfolio_id = p.id
    WHERE p.name = 'Main' AND p.starting_cash > 0
      AND u.public_profile AND u.is_active AND NOT u.is_staff
      AND u.deleted_at IS NULL AND u.suspended_at IS NULL
), grown AS MATERIALIZED (
    -- Ratios, not money: double precision, an order of magnitude faster than numeric
    -- over 100,000 rows, and exact enough for four decimals. Materialized (as is
    -- `figures`) so that each row's divisions and square root run once, not per use.
    SELECT id, owner_id, net_worth, n,
           total::float8 / nullif(n, 0) AS mean,
           previous_peak::float8 AS previous_peak,
           previous_drawdown::float8 AS previous_drawdown,
           CASE WHEN previous_net_worth <= 0 THEN previous_growth::float8
                ELSE greatest(previous_growth::float8
                     * (net_worth - (net_deposits - previous_deposits))::float8
                     / previous_net_worth::float8, 0)
           END AS growth,
           CASE WHEN n >= %(min_returns)s
                THEN sqrt(greatest((total_sq::float8 - total::float8 ^ 2 / n) / (n - 1), 0))
           END AS daily_stddev
    FROM live
), figures AS MATERIALIZED (
    SELECT id, owner_id, net_worth,
           least((growth - 1) * 100, %(pct_limit)s) AS return_pct,
           least(previous_drawdown, growth / greatest(previous_peak, growth) - 1) * 100
               AS max_drawdown_pct,
           CASE WHEN daily_stddev >= %(min_stddev)s
                THEN greatest(least((mean - %(daily_risk_free)s) / daily_stddev * %(sqrt_year)s,
                                    %(sharpe_limit)s), -%(sharpe_limit)s)
           END AS sharpe,
           -- least() skips NULLs: without the CASE, no history would read as the limit.
           CASE WHEN daily_stddev IS NOT NULL
                THEN least(daily_stddev * %(sqrt_year)s * 100, %(pct_limit)s)
           END AS volatility_pct
    FROM grown
), written AS (
    INSERT INTO portfolio_leaderboardentry (
        portfolio_id, owner_id, rank, sharpe_rank, drawdown_rank, net_worth, return_pct,
        sharpe, volatility_pct, max_drawdown_pct, computed_at
    )
    SELECT id, owner_id,
           row_number() OVER (ORDER BY return_pct DESC, id),
           CASE WHEN sharpe IS NOT NULL
                THEN row_number() OVER (PARTITION BY sharpe IS NULL ORDER BY sharpe DESC, id)
           END,
           row_number() OVER (ORDER BY max_drawdown_pct DESC, id),
           net_worth, round(return_pct::numeric, 4), round(sharpe::numeric, 4),
           round(volatility_pct::numeric, 4), round(max_drawdown_pct::numeric, 4), %(now)s
    FROM figures
    -- In order of the main rank: its index is then filled left to right.
    ORDER BY 3
    RETURNING sharpe_rank
)
SELECT count(*), count(sharpe_rank) FROM written
"""  # noqa: S608 - a constant CTE, no input


def _daily_risk_free() -> float:
    """The daily rate that compounds to settings.RISK_FREE_RATE over a year."""
    return (1 + float(settings.RISK_FREE_RATE)) ** (1 / DAYS_PER_YEAR) - 1


def leaderboard_recompute(*, now: datetime | None = None) -> LeaderboardState:
    """Rank every eligible player and replace the leaderboard in one transaction (readers
    see the old board until it commits, never a half-written one). Ranks are dense and
    unique: ties go to the older portfolio."""
    now = now or timezone.now()
    params: dict[str, Any] = {
        "now": now,
        "min_returns": MIN_DAILY_RETURNS,
        # Statistics, not money: floats, as the statement computes them.
        "min_stddev": MIN_DAILY_STDDEV,
        "daily_risk_free": _daily_risk_free(),
        "sqrt_year": math.sqrt(DAYS_PER_YEAR),
        "sharpe_limit": SHARPE_LIMIT,
        "pct_limit": PCT_LIMIT,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        bulk_statement_prepare(cursor)
        # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would stall every page read
        # for the length of the recompute; DELETE leaves readers the old rows (MVCC).
        cursor.execute("DELETE FROM portfolio_leaderboardentry")
        cursor.execute(_RECOMPUTE_SQL, params)
        ranked, sharpe_ranked = cursor.fetchone()
        state = LeaderboardState(computed_at=now, ranked=ranked, sharpe_ranked=sharpe_ranked)
        transaction.on_commit(lambda: cache.set(STATE_CACHE_KEY, state, timeout=None))
    return state


def leaderboard_state() -> LeaderboardState:
    """The totals and time of the last recompute: from the cache, or (after a cache
    flush) from one aggregate over the table, cached again."""
    state = cache.get(STATE_CACHE_KEY)
    if isinstance(state, LeaderboardState):
        return state
    totals = LeaderboardEntry.objects.aggregate(
        ranked=Count("pk"), sharpe_ranked=Count("sharpe_rank"), computed_at=Max("computed_at")
    )
    state = LeaderboardState(**totals)
    if state.computed_at is not None:
        cache.set(STATE_CACHE_KEY, state, timeout=None)
    return state


def leaderboard_rows(*, view: str, first: int, last: int) -> list[LeaderboardEntry]:
    """Entries ranked `first`..`last` (1-based, inclusive) in `view`: one range read on
    that view's rank index, then their owners by primary key. Two plain index
    reads rather than a join: the table is rewritten every minute, and a join planned
    on statistics from before a rewrite can scan every player."""
    field = RANK_FIELDS[view]
    owners = Prefetch("owner", queryset=User.objects.only("id", "handle", "display_name"))
    return list(
        LeaderboardEntry.objects.filter(**{f"{field}__gte": first, f"{field}__lte": last})
        .only(*LEADERBOARD_ENTRY_FIELDS)
        .prefetch_related(owners)
        .order_by(field)
    )


def leaderboard_entry_for(user: Any) -> LeaderboardEntry | None:
    """`user`'s row on the board (only their main portfolio is ranked): their portfolio
    by its owner index, then the row by its key. Not `.first()`: its ORDER BY pk can
    lead the planner to walk the primary key."""
    main = Portfolio.objects.filter(owner=user, name="Main").values("pk")
    return next(iter(LeaderboardEntry.objects.filter(portfolio__in=main).order_by()[:1]), None)


LEADERBOARD_ENTRY_FIELDS = (
    "portfolio_id",
    "owner_id",
    "rank",
    "sharpe_rank",
    "drawdown_rank",
    "net_worth",
    "return_pct",
    "sharpe",
    "volatility_pct",
    "max_drawdown_pct",
    "computed_at",
)


class RankedEntries:
    """One view of the board as a sequence for Django's Paginator: its length is the
    cached total, and a slice is a rank range (no COUNT, no OFFSET)."""

    ordered = True

    def __init__(self, *, view: str, total: int) -> None:
        self.view = view
        self.total = total

    def count(self) -> int:
        return self.total

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, window: slice) -> list[LeaderboardEntry]:
        if not isinstance(window, slice):
            raise TypeError("RankedEntries only slices.")
        start = window.start or 0
        stop = self.total if window.stop is None else window.stop
        if stop <= start:
            return []
        return leaderboard_rows(view=self.view, first=start + 1, last=stop)
