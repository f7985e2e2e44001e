"""Beat's market tasks. Thin: they claim their time slot and call one service."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.metrics import (
    LAST_HISTORY_FLUSH,
    LAST_TICK,
    PROVIDER_FAILURES,
    TICK_DURATION,
    TICKS,
    TICKS_SKIPPED,
)
from market import services, state
from market.sessions import tick_slot

logger = logging.getLogger(__name__)


@shared_task(name="market.tasks.tick", ignore_result=True)
def tick(slot: int | None = None) -> int | None:
    """Run the tick of the current time slot once. Beat may deliver a run twice, or
    late into the next slot; the Redis lock on the slot makes every run after the
    first a no-op. Returns how many stocks moved (None when skipped or delayed)."""
    slot = tick_slot(timezone.now()) if slot is None else slot
    if not state.tick_slot_claim(slot):
        logger.info("tick slot %s already ran; skipping", slot)
        TICKS_SKIPPED.inc()
        return None
    started = time.perf_counter()
    result = services.tick_run(slot=slot)
    if result is None:
        PROVIDER_FAILURES.labels(provider=settings.MARKET_PROVIDER).inc()
        return None
    TICK_DURATION.observe(time.perf_counter() - started)
    TICKS.inc()
    LAST_TICK.set_to_current_time()
    return len(result.ticks)


@shared_task(name="market.tasks.flush_history", ignore_result=True)
def flush_history() -> int:
    """Fold the buffered ticks into bars. Safe to run twice or after a crash."""
    result = services.history_flush()
    LAST_HISTORY_FLUSH.set_to_current_time()
    logger.info(
        "history flush: %s ticks in %s entries, %s minute bars, %s daily bars",
        result.ticks,
        result.entries,
        result.minute_bars,
        result.day_bars,
    )
    return result.ticks
