"""Readiness and recovery: PostgreSQL stopped and started again under a live process.

The PostgreSQL stopped here is a private embedded server started for this test, not
the shared one: the shared server also serves the other test runs on this machine
(and the rest of this run), which must not see it go down. The web code under test is
the same; only the connection settings of the `default` alias point at the private
server for the duration of the test.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from config.embedded import postgres_start, postgres_stop

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres() -> Iterator[object]:
    try:
        import pgserver
    except ImportError as error:
        pytest.skip(f"recovery test skipped: pgserver is not installed ({error})")
    data_dir = Path(tempfile.mkdtemp(prefix="bullpen-recovery-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def default_database_on(server: object) -> Iterator[None]:
    """Point the `default` connection at another server, then put it back."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        NAME="postgres",
        USER="postgres",
        PASSWORD="",
        HOST=str(server.get_postmaster_info().socket_dir),
        PORT="",
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_readyz_goes_503_naming_postgresql_and_recovers_when_it_is_back(
    client, private_postgres, django_db_blocker
):
    with django_db_blocker.unblock(), default_database_on(private_postgres):
        assert client.get("/readyz").status_code == 200

        postgres_stop(private_postgres)
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["down"] == ["postgresql"]
        assert down.json()["checks"] == {"postgresql": False, "redis": True}
        # Still down on a second look: the broken connection was dropped, not reused.
        assert client.get("/readyz").status_code == 503

        postgres_start(private_postgres)
        up = client.get("/readyz")
        assert up.status_code == 200, up.json()
        assert up.json()["down"] == []
        # The same process keeps serving queries: no restart was needed.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 41 + 1")
            assert cursor.fetchone() == (42,)

    # And the test database connection of this run works again afterwards.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == connection.settings_dict["NAME"]


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_unreachable(client, settings):
    # A closed port instead of stopping the Redis that this run's cache uses.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]
    assert response.json()["checks"]["postgresql"] is True


@pytest.mark.django_db
def test_readyz_is_200_after_the_redis_check_recovers(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get("/readyz").status_code == 503
    settings.REDIS_URL = settings.CACHES["default"]["LOCATION"]
    assert client.get("/readyz").status_code == 200
