"""Fault tests: real servers stopped and real processes killed under a live system.

The PostgreSQL these tests stop is a private embedded server started for this session,
not the shared one: the shared server also serves the other test runs on this machine,
which must not see it go down (the same choice as tests/config/test_recovery.py). It is
migrated like any database; the Celery worker under test is a real `celery worker`
subprocess pointed at it. The tests themselves reach it through the `default`
connection, switched to it for their duration (no pytest-django transaction: the worker
must see what the test writes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

FAULT_DB = "bullpen_fault"
BASE_DIR = Path(settings.BASE_DIR)
HOOKS = (
    "tests.faults.hooks.pause_mid_tick,"
    "trading.triggers.on_tick,portfolio.live.on_tick,market.live.on_tick"
)


@dataclass
class PrivatePostgres:
    server: Any
    socket_dir: str

    @property
    def url(self) -> str:
        return f"postgres://postgres@/{FAULT_DB}?host={self.socket_dir}"


@contextlib.contextmanager
def default_database_on(db: PrivatePostgres) -> Iterator[None]:
    """Point the `default` connection at the private server, then put it back."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        NAME=FAULT_DB, USER="postgres", PASSWORD="", HOST=db.socket_dir, PORT=""
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture(scope="session")
def private_postgres(django_db_blocker) -> Iterator[PrivatePostgres]:
    try:
        import pgserver
    except ImportError as error:  # pragma: no cover - pgserver is a locked dependency
        pytest.skip(f"fault tests skipped: pgserver is not installed ({error})")
    data_dir = Path(tempfile.mkdtemp(prefix="bullpen-faults-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    server.psql(f"CREATE DATABASE {FAULT_DB};")
    db = PrivatePostgres(server=server, socket_dir=str(server.get_postmaster_info().socket_dir))
    with django_db_blocker.unblock(), default_database_on(db):
        call_command("migrate", verbosity=0)
    try:
        yield db
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fault_db(private_postgres, django_db_blocker) -> Iterator[PrivatePostgres]:
    """The private database, empty of game rows, as this test's `default` connection."""
    with django_db_blocker.unblock(), default_database_on(private_postgres):
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE trading_fill, trading_order, trading_offertake, trading_tradeoffer,"
                " trading_collusionflag, portfolio_ledgerentry, portfolio_position,"
                " portfolio_networthsnapshot, portfolio_watchlistitem, portfolio_watchlist,"
                " portfolio_portfolio, market_marketevent, market_pricebar, market_stock,"
                " accounts_auditentry, accounts_usersession, django_session,"
                " accounts_user_groups, accounts_user CASCADE"
            )
        yield private_postgres


@dataclass
class Worker:
    """A real `celery worker` subprocess (prefork, one child) on its own queue."""

    queue: str
    process: subprocess.Popen
    log_path: Path
    marker_dir: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(db: PrivatePostgres, **env: str) -> Worker:
        queue = f"fault-{uuid.uuid4().hex[:8]}"
        marker_dir = tmp_path / f"markers-{queue}"
        marker_dir.mkdir()
        log_path = tmp_path / f"worker-{queue}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": db.url,
            "REDIS_URL": settings.REDIS_URL,
            "MARKET_PROVIDER": "simulated",
            "MARKET_TICK_SECONDS": str(settings.MARKET_TICK_SECONDS),
            "MARKET_TICK_HOOKS": HOOKS,
            "FAULT_MARKER_DIR": str(marker_dir),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "INFO",
            **env,
        }
        log = log_path.open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "-Q",
                queue,
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{queue}@%h",
            ],
            cwd=BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        worker = Worker(queue=queue, process=process, log_path=log_path, marker_dir=marker_dir)
        started.append(worker)
        wait_for(
            lambda: "ready." in worker.log(), timeout=60, what="the worker to start", worker=worker
        )
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, worker: Worker | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if worker is not None and not worker.alive():
            pytest.fail(f"the worker died waiting for {what}:\n{worker.log()[-3000:]}")
        if time.monotonic() > deadline:
            log = worker.log()[-3000:] if worker is not None else ""
            pytest.fail(f"timed out waiting for {what}\n{log}")
        time.sleep(0.1)


def tick_send(worker: Worker, slot: int) -> None:
    from market.tasks import tick

    tick.apply_async(kwargs={"slot": slot}, queue=worker.queue)


D = Decimal
