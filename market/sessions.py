"""Trading sessions. The simulated market trades round the clock, so a "day" is the
24 hours ending at settings.SESSION_CLOSE_UTC; real sources close at the same time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings


def _close_offset() -> timedelta:
    close: time = settings.SESSION_CLOSE_UTC
    return timedelta(hours=close.hour, minutes=close.minute, seconds=close.second)


def session_date(at: datetime) -> date:
    """The trading date `at` belongs to: after the close it is already the next one."""
    return (at.astimezone(UTC) + (timedelta(days=1) - _close_offset())).date()


def session_start(at: datetime) -> datetime:
    """When the session holding `at` opened (the previous close)."""
    day = session_date(at)
    return datetime.combine(day, time(), tzinfo=UTC) - timedelta(days=1) + _close_offset()


def day_bar_start(day: date) -> datetime:
    """A daily bar starts at midnight UTC of its trading date, as imported daily files do."""
    return datetime.combine(day, time(), tzinfo=UTC)


def tick_slot(at: datetime) -> int:
    """The tick time slot `at` falls in: one per MARKET_TICK_SECONDS."""
    return int(at.timestamp()) // settings.MARKET_TICK_SECONDS


def slot_time(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * settings.MARKET_TICK_SECONDS, tz=UTC)
