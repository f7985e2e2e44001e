"""Celery tasks: thin, idempotent, each calling one service."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from celery import shared_task
from django.conf import settings

from trading import events
from trading.collusion import collusion_scan
from trading.offer_services import offers_expire
from trading.services import orders_expire

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def expire_day_orders() -> int:
    """Expire the DAY orders past the session close (beat runs it every minute)."""
    return orders_expire()


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def expire_offers() -> int:
    """Expire the offers past their deadline, releasing their escrow (beat: every minute)."""
    return offers_expire()


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def scan_collusion() -> int:
    """Re-scan every recently active pair of traders for collusion signals."""
    return collusion_scan()


@shared_task
def announce(announcements: list[tuple[str, int]]) -> None:
    """Send a tick's fill and order announcements (trading.events), one after another.
    Best effort and not retried: a push that fails costs a toast, never a trade."""
    for event, object_id in announcements:
        try:
            getattr(events, event)(object_id)
        except Exception:
            logger.warning("trading event %s(%s) failed", event, object_id, exc_info=True)


@shared_task(acks_late=True)
def fill_triggered_orders(orders: list[tuple[int, str]], at: str | None = None) -> int:
    """Fill a chunk of one tick's triggered orders ((order id, price) pairs), each in
    its own transaction, from TRIGGER_FILL_WORKERS threads: a fill mostly waits on
    PostgreSQL, so a worker process filling one at a time would sit idle. Safe to run
    twice (SKIP LOCKED and a status re-check)."""
    from trading.triggers import triggered_fill

    when = datetime.fromisoformat(at) if at else None
    return triggered_fill(
        [(order_id, Decimal(price)) for order_id, price in orders],
        at=when,
        workers=settings.TRIGGER_FILL_WORKERS,
    )
