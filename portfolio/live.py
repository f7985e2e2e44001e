"""A player's wallet, pushed to their open tabs: header cash and net worth, the
portfolio totals, and each moved position's price, value and P&L.

Only online players (market.groups presence) whose holdings moved get one, and each
is rendered once per tick in the worker, whatever the number of their open tabs. The
consumer keeps only the positions the page shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import get_template

from market.groups import players_online, user_group
from market.live import tick_wallets_sent
from market.ticks import TickResult
from portfolio.models import Portfolio, Position
from portfolio.selectors import portfolio_summary

logger = logging.getLogger(__name__)

# The consumer's handler is LiveConsumer.wallet_update.
WALLET_EVENT = "wallet.update"


def _main_portfolios(user_ids: Iterable[int]) -> dict[int, Portfolio]:
    """Each player's main portfolio (their first, for now the only one)."""
    portfolios: dict[int, Portfolio] = {}
    for portfolio in Portfolio.objects.filter(owner_id__in=list(user_ids)).order_by("-id"):
        portfolios[portfolio.owner_id] = portfolio
    return portfolios


def wallet_events(*, user_ids: Iterable[int], slot: int | None) -> dict[int, dict[str, Any]]:
    """The wallet message of each player, keyed by user id: two queries in all. The
    spans are the portfolio pages' own partials (portfolio/partials/live_spans.html)."""
    portfolios = _main_portfolios(user_ids)
    if not portfolios:
        return {}
    held: dict[int, list[Position]] = defaultdict(list)
    positions = (
        Position.objects.filter(portfolio__in=portfolios.values(), quantity__gt=0)
        .select_related("stock")
        .order_by("stock__symbol")
    )
    for position in positions:
        held[position.portfolio_id].append(position)
    summary_template = get_template("portfolio/partials/live_spans.html#push_summary")
    position_template = get_template("portfolio/partials/live_spans.html#push_position")
    events: dict[int, dict[str, Any]] = {}
    for user_id, portfolio in portfolios.items():
        mine = held.get(portfolio.pk, [])
        summary = portfolio_summary(portfolio, mine)
        summary_html = summary_template.render(
            {
                "portfolio": portfolio,
                "net_worth": summary.net_worth,
                "holdings_value": summary.holdings_value,
                "unrealized_pnl": summary.unrealized_pnl,
                "day_change": summary.day_change,
            }
        ).strip()
        events[user_id] = {
            "type": WALLET_EVENT,
            "slot": slot,
            "summary": summary_html,
            "positions": {
                position.stock.symbol: position_template.render({"position": position}).strip()
                for position in mine
            },
        }
    return events


def _send(events: dict[int, dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None or not events:
        return

    async def send_all() -> None:
        # One event loop for the whole batch: a loop per send would open a Redis
        # connection per player.
        await asyncio.gather(
            *(layer.group_send(user_group(uid), event) for uid, event in events.items())
        )

    async_to_sync(send_all)()


def on_tick(result: TickResult) -> None:
    """Tick hook (settings.MARKET_TICK_HOOKS, before market.live.on_tick so the consumer
    can put wallet and prices in one frame): wallets of the online players holding a
    stock that moved."""
    if not result.ticks:
        return
    online = players_online()
    if not online:
        return
    moved = {tick.stock_id for tick in result.ticks}
    holders = set(
        Position.objects.filter(
            portfolio__owner_id__in=online, stock_id__in=moved, quantity__gt=0
        ).values_list("portfolio__owner_id", flat=True)
    )
    events = wallet_events(user_ids=holders, slot=result.slot)
    _send(events)
    tick_wallets_sent(slot=result.slot, user_ids=events)


def wallet_push(*, user_ids: Iterable[int], extra_html: str = "") -> None:
    """Push the wallets of these players now (after a fill or a settled offer). The
    event's own fragment (`extra_html`: a toast, a refresh signal) rides in the same
    frame. Sent whether or not presence counts them online: events are rare, and a tab
    whose heartbeat is late must still hear about its fill."""
    events = wallet_events(user_ids=user_ids, slot=None)
    for event in events.values():
        event["extra"] = extra_html
    _send(events)
