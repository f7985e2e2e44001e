"""Celery tasks: thin, idempotent, each calling one service."""

from __future__ import annotations

from celery import shared_task

from trading.collusion import collusion_scan
from trading.offer_services import offers_expire
from trading.services import orders_expire


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
