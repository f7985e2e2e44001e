"""A real Celery worker ticking the market while PostgreSQL restarts under it, and while
its pool child is SIGKILLed in the middle of a tick. Each test shows that ticks resume
with no process restarted by hand, that every order a price satisfied fills exactly
once, that nothing else fills, and that reconcile stays clean."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from config.embedded import postgres_start, postgres_stop
from market.models import MarketEvent
from market.sessions import slot_time, tick_slot
from tests.faults.conftest import tick_send, wait_for
from tests.faults.game import fills_per_order, game_set_up, quoted_at_slot, reconcile_mismatches
from trading.models import OrderStatus

pytestmark = pytest.mark.slow


def first_slot() -> int:
    # Slots ahead of the clock that no earlier tick on this Redis has claimed (a slot's
    # lock outlives it by a few intervals).
    return tick_slot(timezone.now()) + random.randrange(1_000, 1_000_000, 10)


def test_ticks_resume_after_postgresql_restarts_and_no_fill_is_lost_or_doubled(
    fault_db, start_worker
):
    s0 = first_slot()
    game = game_set_up(shock_slot=s0 + 2)
    worker = start_worker(fault_db)
    pid = worker.process.pid

    tick_send(worker, s0)
    wait_for(lambda: quoted_at_slot(game.shocked, s0), timeout=30, what="tick 0", worker=worker)

    connection.close()
    postgres_stop(fault_db.server)
    tick_send(worker, s0 + 1)  # runs against a stopped database and fails
    wait_for(
        lambda: "OperationalError" in worker.log(), timeout=30, what="tick 1 to fail", worker=worker
    )
    postgres_start(fault_db.server)

    tick_send(worker, s0 + 2)  # the first tick after the restart applies the shock
    wait_for(lambda: quoted_at_slot(game.shocked, s0 + 2), timeout=30, what="tick 2", worker=worker)
    wait_for(
        lambda: fills_per_order(game.triggered) == [1, 1, 1, 1],
        timeout=30,
        what="the triggered orders to fill",
        worker=worker,
    )
    tick_send(worker, s0 + 2)  # a duplicate delivery of the same slot
    tick_send(worker, s0 + 3)
    wait_for(lambda: quoted_at_slot(game.shocked, s0 + 3), timeout=30, what="tick 3", worker=worker)

    assert worker.alive() and worker.process.pid == pid, "the worker was not restarted"
    assert f"tick slot {s0 + 2} already ran" in worker.log()
    assert fills_per_order(game.triggered) == [1, 1, 1, 1]
    assert fills_per_order(game.resting) == [0, 0, 0, 0]
    for order in game.resting:
        order.refresh_from_db()
        assert order.status == OrderStatus.OPEN
    assert MarketEvent.objects.get(pk=game.shock.pk).shock_applied_at == slot_time(s0 + 2)
    assert reconcile_mismatches() == []


def test_a_worker_child_killed_mid_tick_leaves_the_next_tick_fine(fault_db, start_worker):
    s0 = first_slot()
    game = game_set_up(shock_slot=s0 + 1)
    worker = start_worker(fault_db, FAULT_PAUSE_SLOT=str(s0 + 1))
    pid = worker.process.pid

    tick_send(worker, s0)
    wait_for(lambda: quoted_at_slot(game.shocked, s0), timeout=30, what="tick 0", worker=worker)

    tick_send(worker, s0 + 1)
    marker = Path(worker.marker_dir) / f"paused-{s0 + 1}"
    wait_for(marker.exists, timeout=30, what="tick 1 to pause mid-way", worker=worker)
    child = int(marker.read_text())
    assert child != pid
    os.kill(child, signal.SIGKILL)

    # acks_late + reject_on_worker_lost: the broker hands the tick to a new child at
    # once, and the slot's lock makes that second run a no-op.
    wait_for(
        lambda: f"tick slot {s0 + 1} already ran" in worker.log(),
        timeout=60,
        what="the redelivered tick to be skipped",
        worker=worker,
    )
    # The killed tick committed its prices (and the shock, once) before it died, and
    # got no further: its triggers never ran.
    assert quoted_at_slot(game.shocked, s0 + 1)
    assert MarketEvent.objects.get(pk=game.shock.pk).shock_applied_at == slot_time(s0 + 1)
    assert fills_per_order(game.triggered) == [0, 0, 0, 0]
    assert reconcile_mismatches() == []

    tick_send(worker, s0 + 2)  # the next tick is fine and fills what the price satisfies
    wait_for(lambda: quoted_at_slot(game.shocked, s0 + 2), timeout=30, what="tick 2", worker=worker)
    wait_for(
        lambda: fills_per_order(game.triggered) == [1, 1, 1, 1],
        timeout=30,
        what="the triggered orders to fill",
        worker=worker,
    )
    assert worker.alive() and worker.process.pid == pid
    assert fills_per_order(game.resting) == [0, 0, 0, 0]
    assert reconcile_mismatches() == []
