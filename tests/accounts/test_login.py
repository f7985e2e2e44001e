from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts import services
from accounts.models import User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


@pytest.mark.parametrize("identifier", ["alice", "ALICE", "alice@example.com", "Alice@Example.com"])
def test_a_player_logs_in_by_handle_or_email_in_any_case(client, identifier):
    UserFactory(handle="alice", email="alice@example.com")
    response = log_in(client, identifier)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_a_form_error(client):
    UserFactory(handle="alice")
    response = log_in(client, "alice", "not-the-password")
    assert response.status_code == 400
    assert b"don&#x27;t match an account" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_ends_the_session(client):
    UserFactory(handle="alice")
    log_in(client, "alice")
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_a_deleted_player_cannot_log_in_and_their_sessions_end_at_once(client):
    user = UserFactory(handle="alice", email="alice@example.com")
    other_device = Client()
    log_in(other_device, "alice")
    other_device.get("/")  # tracked
    services.user_delete(user=user)
    assert not Session.objects.exists()
    assert other_device.get("/").status_code == 302
    assert log_in(client, "alice").status_code == 400
    assert log_in(client, "alice@example.com").status_code == 400


def test_deleting_keeps_the_row_and_reserves_the_handle_but_frees_the_email():
    user = UserFactory(handle="alice", email="alice@example.com", public_profile=True)
    services.user_delete(user=user)
    user.refresh_from_db()
    assert user.deleted_at is not None and not user.is_active
    assert user.handle == "alice"
    assert not user.has_usable_password()
    assert not user.public_profile
    again = services.user_signup(
        handle="alice2", email="alice@example.com", password="plum-harbor-88-x"
    )
    assert again.pk != user.pk
    with pytest.raises(services.errors.HandleTaken):
        services.user_signup(handle="alice", email="new@example.com", password="plum-harbor-88-x")


def test_a_suspended_player_cannot_log_in_and_their_sessions_end_at_once(client):
    moderator = UserFactory(handle="mod")
    services.role_grant(user=moderator, role="moderator")
    user = UserFactory(handle="alice")
    other_device = Client()
    log_in(other_device, "alice")
    other_device.get("/")
    services.user_suspend(user=user, reason="spam in offers", by=moderator)
    assert not Session.objects.filter(tracking__user=user).exists()
    assert other_device.get("/").status_code == 302
    assert log_in(client, "alice").status_code == 400

    services.user_reactivate(user=user, by=moderator)
    assert log_in(client, "alice").status_code == 302


def test_a_suspension_needs_the_permission_and_a_reason():
    player = UserFactory()
    target = UserFactory()
    with pytest.raises(services.errors.AccountNotAllowed):
        services.user_suspend(user=target, reason="because", by=player)
    moderator = UserFactory()
    services.role_grant(user=moderator, role="moderator")
    with pytest.raises(services.errors.AccountNotAllowed):
        services.user_suspend(user=target, reason="  ", by=moderator)
    assert User.objects.get(pk=target.pk).suspended_at is None


def test_a_session_opened_before_a_suspension_is_ended_by_the_middleware(client):
    # A session the tracking has not seen yet (force_login writes no UserSession).
    user = UserFactory()
    client.force_login(user)
    User.objects.filter(pk=user.pk).update(suspended_at="2026-01-01T00:00:00Z")
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_the_login_page_renders_with_links_to_sign_up_and_reset(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'href="/accounts/signup/"' in response.content
    assert b'href="/accounts/password-reset/"' in response.content
