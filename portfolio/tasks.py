"""Beat's portfolio tasks. Thin: each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from portfolio import services

logger = logging.getLogger(__name__)


@shared_task(name="portfolio.tasks.snapshot_net_worth", ignore_result=True)
def snapshot_net_worth() -> int:
    """Snapshot every portfolio's net worth. Idempotent: the time is rounded to a
    five-minute slot and a slot already taken is skipped."""
    written = services.net_worth_snapshot_take()
    logger.info("net-worth snapshots written: %s", written)
    return written
