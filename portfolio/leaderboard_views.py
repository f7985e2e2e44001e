"""The leaderboard page: three views of the board in Redis, each a range of its rank.

Open to visitors, like the market pages: it lists only players who made their profile
public, and each row links to that public profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from portfolio import leaderboard as board

LEADERBOARD_PAGE_SIZE = 25
DEFAULT_VIEW = "return"


@dataclass(frozen=True)
class BoardView:
    key: str
    label: str
    description: str


BOARD_VIEWS: dict[str, BoardView] = {
    view.key: view
    for view in (
        BoardView(
            "return",
            "Total return",
            "Time-weighted return since each player started: deposits and grants are "
            "taken out, so only trading counts.",
        ),
        BoardView(
            "sharpe",
            "Sharpe ratio",
            f"Return over the risk-free rate per unit of daily volatility, annualized. "
            f"Needs at least {board.MIN_DAILY_RETURNS} daily closes.",
        ),
        BoardView(
            "drawdown",
            "Max drawdown",
            "The deepest fall from a high so far: the smallest comes first.",
        ),
    )
}


@dataclass(frozen=True)
class BoardRow:
    """One row of the table. The plain figures are formatted here, once: the template's
    floatformat goes through the locale machinery, three times a row."""

    rank: int
    entry: board.BoardEntry
    is_me: bool

    @property
    def sharpe(self) -> str:
        return "—" if self.entry.sharpe is None else f"{self.entry.sharpe:,.2f}"

    @property
    def volatility(self) -> str:
        value = self.entry.volatility_pct
        return "—" if value is None else f"{value:,.1f}%"


@dataclass(frozen=True)
class MyStanding:
    """The reader's place, shown above the table."""

    entry: board.BoardEntry | None
    rank: int | None
    reason: str = ""  # why there is no rank
    link_to_settings: bool = False


def _my_standing(
    request: HttpRequest, view: str, state: board.LeaderboardState
) -> MyStanding | None:
    user: Any = request.user
    if not user.is_authenticated:
        return None
    # A player who went private since the recompute is told so, not shown a rank.
    entry = board.leaderboard_entry_for(user, state) if user.public_profile else None
    if entry is not None:
        rank = entry.rank_in(view)
        if rank is None:
            return MyStanding(
                entry=entry,
                rank=None,
                reason=f"You have no Sharpe ratio yet: it needs at least "
                f"{board.MIN_DAILY_RETURNS} daily closes of history with returns that vary.",
            )
        return MyStanding(entry=entry, rank=rank)
    if user.is_staff:
        return MyStanding(None, None, "Staff run the game and are not ranked.")
    if not user.public_profile:
        return MyStanding(
            None,
            None,
            "You are not ranked: your profile is private. Only players who make their "
            "profile public are listed.",
            link_to_settings=True,
        )
    return MyStanding(
        None,
        None,
        "You are not ranked yet: the board is recomputed every minute, from your main portfolio.",
    )


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    view = request.GET.get("by", DEFAULT_VIEW)
    view_error = ""
    if view not in BOARD_VIEWS:
        view_error = (
            f"Unknown leaderboard view {view[:40]!r}. Choose by=return (total return), "
            f"by=sharpe (Sharpe ratio) or by=drawdown (maximum drawdown)."
        )
        view = DEFAULT_VIEW
    state = board.leaderboard_state()
    entries = board.RankedEntries(view=view, state=state)
    # get_page: a page past the end shows the last one, a page that is not a number the
    # first (as the site's other lists do).
    page = Paginator(entries, LEADERBOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        BoardRow(rank=entry.rank_in(view), entry=entry, is_me=entry.owner_id == request.user.pk)
        for entry in page.object_list
    ]
    updated_seconds = (
        max(int((timezone.now() - state.computed_at).total_seconds()), 0)
        if state.computed_at
        else None
    )
    context = {
        "view": BOARD_VIEWS[view],
        "views": BOARD_VIEWS.values(),
        "view_error": view_error,
        "page": page,
        "rows": rows,
        "state": state,
        "updated_seconds": updated_seconds,
        "me": _my_standing(request, view, state),
        "min_daily_returns": board.MIN_DAILY_RETURNS,
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "portfolio/leaderboard.html#board" if partial else "portfolio/leaderboard.html"
    response = render(request, template, context, status=400 if view_error else 200)
    patch_vary_headers(response, ["HX-Request"])
    return response
