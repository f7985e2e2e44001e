"""What every benchmark needs: the services, a fresh database of its own, a p95.

The scripts run as `python bench/<name>.py`, so this folder is on sys.path and they
import this module as `benchkit`.
"""

from __future__ import annotations

import os
from typing import Any


def database_url(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (TCP or unix-socket URLs alike)."""
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def admin_connection() -> Any:
    """An autocommit connection to the server's `postgres` database, for CREATE/DROP."""
    import psycopg

    return psycopg.connect(database_url(os.environ["DATABASE_URL"], "postgres"), autocommit=True)


def services_start(*, database: str, redis_name: str, fresh: bool = True) -> object:
    """Start the embedded servers (or use the ones the environment names), make the
    bench's own database (dropped first when `fresh`) and point DATABASE_URL at it.
    Keep the returned handle alive while the bench runs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Templates use {% static %}; a bench has no collected manifest.
    os.environ.setdefault(
        "STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage"
    )
    from config.embedded import ensure_services

    services = ensure_services(redis_name=redis_name)
    with admin_connection() as conn:
        if fresh:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {database}")
    os.environ["DATABASE_URL"] = database_url(os.environ["DATABASE_URL"], database)
    return services


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def django_ready() -> None:
    """Django set up on the bench's database (services_start pointed DATABASE_URL at it),
    migrated, and answering the test client whatever host it names."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
