"""The site runs with data rights only: the roles SQL of docs/operations.md, tested.

The SQL block is read from the docs and run against this run's test database, with
role names made unique to it (roles are cluster-wide and other engineers share the
server). Then the default connection is swapped for one that logs in as the
application role, and real requests and ORM writes go through it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections
from django.db.backends.postgresql.base import DatabaseWrapper

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(settings.BASE_DIR) / "docs" / "operations.md"


def documented_roles_sql() -> str:
    text = DOCS.read_text()
    match = re.search(r"```sql\n(-- bullpen: database roles\n.*?)```", text, re.S)
    assert match, "docs/operations.md lost its database roles SQL block"
    return match.group(1)


def raw_connection(database: str, user: str | None = None) -> psycopg.Connection:
    """A plain psycopg connection to the test database, as the test user or `user`."""
    params = connections["default"].get_connection_params()
    params.update(dbname=database, autocommit=True)
    if user:
        params["user"] = user
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params)


@pytest.fixture
def roles() -> Iterator[dict[str, str]]:
    database = connections["default"].settings_dict["NAME"]
    names = {"app": f"{database}_app", "migrate": f"{database}_migrate"}
    sql = (
        documented_roles_sql()
        .replace("bullpen_migrate", names["migrate"])
        .replace("bullpen_app", names["app"])
    )
    sql = re.sub(r"\bDATABASE bullpen\b", f"DATABASE {database}", sql)
    with raw_connection(database) as admin:
        drop_roles(admin, names)  # a crashed earlier run may have left them
        admin.execute(sql)
        try:
            yield names
        finally:
            drop_roles(admin, names)


def drop_roles(admin: psycopg.Connection, names: dict[str, str]) -> None:
    for role in names.values():
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if exists:
            admin.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


@pytest.fixture
def as_app_role(roles) -> Iterator[DatabaseWrapper]:
    """The site's default connection, logged in as the application role."""
    original = connections["default"]
    settings_dict = copy.deepcopy(original.settings_dict)
    settings_dict.update(USER=roles["app"], PASSWORD="")
    app_connection = DatabaseWrapper(settings_dict, alias="default")
    connections["default"] = app_connection
    try:
        with app_connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == roles["app"]
        yield app_connection
    finally:
        app_connection.close()
        connections["default"] = original


def test_the_app_role_reads_and_writes_through_the_site(as_app_role, client):
    user = UserFactory()  # INSERT through an identity column: needs the sequence grant
    response = client.post("/accounts/login/", {"username": user.handle, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["checks"]["postgresql"] is True

    user_model = get_user_model()
    user.refresh_from_db()
    assert user.last_login is not None  # the login UPDATEd the row as the app role
    user_model.objects.filter(pk=user.pk).update(display_name="Renamed")
    assert user_model.objects.get(pk=user.pk).display_name == "Renamed"
    user_model.objects.filter(pk=user.pk).delete()
    assert not user_model.objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE ops_probe (id integer)",
        "ALTER TABLE accounts_user ADD COLUMN ops_probe integer",
        "DROP TABLE django_session",
        "TRUNCATE django_session",
        "CREATE INDEX ops_probe ON accounts_user (email)",
    ],
)
def test_the_app_role_is_refused_schema_changes(as_app_role, ddl):
    with (
        pytest.raises(DatabaseError, match="permission denied|must be owner"),
        as_app_role.cursor() as cursor,
    ):
        cursor.execute(ddl)


def test_tables_the_migration_role_creates_later_are_usable_by_the_app_role(roles):
    database = connections["default"].settings_dict["NAME"]
    with raw_connection(database) as admin:
        admin.execute(f'SET ROLE "{roles["migrate"]}"')
        admin.execute(
            "CREATE TABLE ops_later (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)"
        )
        try:
            with raw_connection(database, user=roles["app"]) as app:
                row = app.execute(
                    "INSERT INTO ops_later (note) VALUES ('x') RETURNING id"
                ).fetchone()
                assert row[0] == 1
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute("DROP TABLE ops_later")
        finally:
            admin.execute("DROP TABLE ops_later")
