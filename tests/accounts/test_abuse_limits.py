from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_signups_past_the_rate_limit_get_the_429_page(client, settings):
    settings.RATELIMIT_SIGNUP_IP = "2/m"
    for n in range(2):
        response = client.post("/accounts/signup/", {"handle": f"bad {n}"})
        assert response.status_code == 400
    response = client.post("/accounts/signup/", {"handle": "bad 3"})
    assert response.status_code == 429
    assert b"Slow down" in response.content
    # Reading the form is not limited.
    assert client.get("/accounts/signup/").status_code == 200


def test_logins_past_the_per_ip_limit_get_429(client, settings):
    settings.RATELIMIT_LOGIN_IP = "3/m"
    for n in range(3):
        client.post("/accounts/login/", {"username": f"nobody{n}", "password": "x"})
    response = client.post("/accounts/login/", {"username": "nobody9", "password": "x"})
    assert response.status_code == 429


def test_logins_past_the_per_account_limit_get_429_from_any_ip(client, settings):
    settings.RATELIMIT_LOGIN_USERNAME = "2/m"
    UserFactory(handle="alice", email="alice@example.com")
    client.post("/accounts/login/", {"username": "alice", "password": "x"}, REMOTE_ADDR="10.0.0.1")
    client.post(
        "/accounts/login/",
        {"username": "ALICE@example.com", "password": "x"},
        REMOTE_ADDR="10.0.0.2",
    )
    response = client.post(
        "/accounts/login/", {"username": "Alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.3"
    )
    assert response.status_code == 429


def test_password_resets_past_the_limit_get_429(client, settings):
    settings.RATELIMIT_PASSWORD_RESET_EMAIL = "1/h"
    client.post("/accounts/password-reset/", {"email": "a@example.com"})
    response = client.post("/accounts/password-reset/", {"email": "A@example.com"})
    assert response.status_code == 429


class TestLockout:
    def fail(self, client, username="alice"):
        return client.post("/accounts/login/", {"username": username, "password": "wrong-password"})

    def test_repeated_failures_lock_the_account_even_with_the_right_password(self, client):
        UserFactory(handle="alice", email="alice@example.com")
        for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
            # Handle and email count as one account.
            assert (
                self.fail(client, "alice" if attempt % 2 else "alice@example.com").status_code
                == 400
            )
        locked = self.fail(client)
        assert locked.status_code == 429
        assert b"Too many failed log-ins" in locked.content
        right = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        assert right.status_code == 429
        assert "_auth_user_id" not in client.session

    def test_a_successful_login_resets_the_failure_count(self, client):
        UserFactory(handle="alice")
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            self.fail(client)
        assert AccessAttempt.objects.get().failures_since_start == settings.AXES_FAILURE_LIMIT - 1
        assert (
            client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code
            == 302
        )
        assert not AccessAttempt.objects.exists()
        client.post("/accounts/logout/")
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert self.fail(client).status_code == 400
        assert (
            client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code
            == 302
        )


def test_a_body_over_the_limit_gets_413_without_being_read(client):
    oversized = b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(
        "/accounts/login/", data=oversized, content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert b"Too large" in response.content


def test_a_form_with_too_many_fields_gets_400(client):
    fields = {f"f{n}": "x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post("/accounts/login/", fields)
    assert response.status_code == 400
