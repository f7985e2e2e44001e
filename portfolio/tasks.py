"""Beat's portfolio tasks. Thin: each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from portfolio import leaderboard, services

logger = logging.getLogger(__name__)


@shared_task(name="portfolio.tasks.snapshot_net_worth", ignore_result=True)
def snapshot_net_worth() -> int:
    """Snapshot every portfolio's net worth: the five-minute slot while prices move, and
    each session close once. Idempotent: a rerun in the same slot writes nothing."""
    run = services.net_worth_snapshot_take()
    if run.close_written:
        logger.info(
            "close snapshots at %s written: %s", run.close_at.isoformat(), run.close_written
        )
    if not run.prices_moved:
        logger.info("no stock quoted since the last snapshot: prices did not move, none taken")
    else:
        logger.info(
            "net-worth snapshots at %s written: %s", run.slot.isoformat(), run.slot_written or 0
        )
    return run.written


@shared_task(name="portfolio.tasks.recompute_leaderboard", ignore_result=True)
def recompute_leaderboard() -> int:
    """Recompute the leaderboard from live prices and the running performance figures.
    Idempotent: each run publishes a whole new board."""
    state = leaderboard.leaderboard_recompute()
    logger.info("leaderboard recomputed: %s players ranked", state.ranked)
    return state.ranked
