"""Celery tasks: thin, idempotent, each calling one service."""

from __future__ import annotations

from celery import shared_task

from trading.services import orders_expire


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def expire_day_orders() -> int:
    """Expire the DAY orders past the session close (beat runs it every minute)."""
    return orders_expire()
