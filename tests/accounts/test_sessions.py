from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from accounts.models import UserSession
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


def device(user_agent: str, ip: str, handle: str = "alice") -> Client:
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post("/accounts/login/", {"username": handle, "password": PASSWORD})
    assert response.status_code == 302
    return client


@pytest.fixture
def alice():
    return UserFactory(handle="alice")


def test_each_login_is_listed_with_device_ip_and_this_device(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    device(SAFARI_IPHONE, "198.51.100.7")
    page = laptop.get("/accounts/settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Chrome 120 on Mac OS X 10.15.7 (desktop)" in html
    assert "Mobile Safari 17 on iOS 17.1 (phone)" in html
    assert "203.0.113.5" in html and "198.51.100.7" in html
    assert html.count("This device") == 1
    assert len(page.context["sessions"]) == 2


def test_last_active_is_written_at_most_once_a_minute(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    laptop.get("/accounts/settings/")
    tracked = UserSession.objects.get()
    first_seen = tracked.last_seen_at
    laptop.get("/accounts/settings/")
    tracked.refresh_from_db()
    assert tracked.last_seen_at == first_seen


def test_ending_one_session_deletes_it_from_django_session(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    phone = device(SAFARI_IPHONE, "198.51.100.7")
    phone.get("/")
    phone_session = UserSession.objects.get(ip="198.51.100.7")
    response = laptop.post(f"/accounts/sessions/{phone_session.pk}/end/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=phone_session.session_id).exists()
    assert phone.get("/")["Location"].startswith("/accounts/login/")
    assert laptop.get("/").status_code == 200


def test_ending_the_current_session_over_htmx_logs_out(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    mine = UserSession.objects.get()
    response = laptop.post(f"/accounts/sessions/{mine.pk}/end/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/"
    assert not Session.objects.filter(session_key=mine.session_id).exists()


def test_a_player_cannot_end_someone_elses_session(alice):
    UserFactory(handle="bob")
    bob = device(CHROME_MAC, "203.0.113.9", handle="bob")
    bob.get("/")
    laptop = device(CHROME_MAC, "203.0.113.5")
    bobs = UserSession.objects.get(user__handle="bob")
    laptop.post(f"/accounts/sessions/{bobs.pk}/end/")
    assert Session.objects.filter(session_key=bobs.session_id).exists()
    assert bob.get("/").status_code == 200


def test_log_out_all_other_sessions_keeps_this_one(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    phone = device(SAFARI_IPHONE, "198.51.100.7")
    tablet = device(SAFARI_IPHONE, "198.51.100.8")
    response = laptop.post("/accounts/sessions/end-others/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'id="sessions"' in response.content
    assert b"<html" not in response.content  # the partial only
    assert phone.get("/").status_code == 302
    assert tablet.get("/").status_code == 302
    assert laptop.get("/").status_code == 200
    assert UserSession.objects.count() == 1


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    phone = device(SAFARI_IPHONE, "198.51.100.7")
    response = laptop.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "velvet-otter-sunrise-4",
            "new_password2": "velvet-otter-sunrise-4",
        },
    )
    assert response.status_code == 302
    assert phone.get("/").status_code == 302
    assert laptop.get("/").status_code == 200
    assert UserSession.objects.filter(user=alice).count() == 1
    # The rotated key of this device is what is tracked now.
    assert UserSession.objects.get().session_id == laptop.session.session_key


def test_a_bad_password_change_is_a_field_error(alice):
    laptop = device(CHROME_MAC, "203.0.113.5")
    response = laptop.post(
        "/accounts/password/",
        {"old_password": "wrong", "new_password1": "velvet-otter-sunrise-4", "new_password2": "x"},
    )
    assert response.status_code == 400
    assert "old_password" in response.context["form"].errors


def test_password_reset_mails_a_link_that_sets_the_password_and_ends_sessions(client, alice):
    phone = device(SAFARI_IPHONE, "198.51.100.7")
    response = client.post("/accounts/password-reset/", {"email": "ALICE@example.com"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password-reset/" in line)
    path = link.split("testserver", 1)[1]
    confirm = client.get(path)
    assert confirm.status_code == 302  # Django swaps the token for a session-held one
    new_password = "velvet-otter-sunrise-4"
    done = client.post(
        confirm["Location"], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done["Location"] == "/accounts/password-reset/done/"
    alice.refresh_from_db()
    assert alice.check_password(new_password)
    assert phone.get("/").status_code == 302


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(client):
    response = client.post("/accounts/password-reset/", {"email": "nobody@example.com"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []
