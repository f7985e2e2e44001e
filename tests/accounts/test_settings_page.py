from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.sessions.models import Session

from accounts.models import User, UserSession
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def profile(**overrides):
    data = {
        "display_name": "Alice A",
        "email": "alice@example.com",
        "public_profile": "on",
        "time_zone": "Europe/Paris",
    }
    data.update(overrides)
    return data


@pytest.fixture
def alice_client(client):
    client.force_login(UserFactory(handle="alice", email="alice@example.com"))
    return client


def test_the_settings_page_needs_a_login(client):
    assert client.get("/accounts/settings/")["Location"].startswith("/accounts/login/")


def test_the_settings_page_shows_profile_password_sessions_and_delete(
    alice_client, django_assert_max_num_queries
):
    alice_client.get("/accounts/settings/")  # the first visit records the session
    with django_assert_max_num_queries(6):
        response = alice_client.get("/accounts/settings/")
    assert response.status_code == 200
    html = response.content.decode()
    for piece in (
        'name="display_name"',
        'name="time_zone"',
        'name="public_profile"',
        "/accounts/password/",
        "Sessions and devices",
        'data-confirm="Delete your Bullpen account',
    ):
        assert piece in html, piece


def test_saving_the_profile_updates_it(alice_client):
    response = alice_client.post("/accounts/settings/", profile())
    assert response.status_code == 302
    user = User.objects.get(handle="alice")
    assert (user.display_name, user.public_profile, user.time_zone) == (
        "Alice A",
        True,
        "Europe/Paris",
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "BOB@example.com"}, "email"),
        ({"email": "nope"}, "email"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ],
)
def test_bad_profile_input_is_a_field_error_and_changes_nothing(alice_client, overrides, field):
    UserFactory(handle="bob", email="bob@example.com")
    response = alice_client.post("/accounts/settings/", profile(**overrides))
    assert response.status_code == 400
    assert field in response.context["profile_form"].errors
    assert f'id="id_{field}_errors"'.encode() in response.content
    assert User.objects.get(handle="alice").time_zone == "UTC"


def test_a_stored_utc_time_is_shown_in_the_players_time_zone(alice_client):
    alice_client.post("/accounts/settings/", profile(time_zone="Asia/Tokyo"))
    alice_client.get("/accounts/settings/")  # tracks this session
    UserSession.objects.update(last_seen_at=datetime(2026, 1, 1, 23, 30, tzinfo=UTC))
    html = alice_client.get("/accounts/settings/").content.decode()
    # 23:30 UTC is 08:30 the next morning in Tokyo.
    assert "2026-01-02 08:30 JST" in html
    assert "2026-01-01 23:30" not in html


def test_deleting_the_account_needs_the_password(alice_client):
    response = alice_client.post("/accounts/delete/", {"password": "wrong"})
    assert response.status_code == 400
    assert "password" in response.context["delete_form"].errors
    assert User.objects.get(handle="alice").deleted_at is None


def test_deleting_the_account_logs_out_and_soft_deletes(alice_client):
    alice_client.get("/")
    response = alice_client.post("/accounts/delete/", {"password": PASSWORD})
    assert response["Location"] == "/accounts/login/"
    user = User.objects.get(handle="alice")
    assert user.deleted_at is not None
    assert not Session.objects.filter(tracking__user=user).exists()
    assert alice_client.get("/")["Location"].startswith("/accounts/login/")
