from __future__ import annotations

import re
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


# --- the public profile and what it shares --------------------------------------------


def test_the_settings_page_explains_the_public_profile_choices_and_links_to_it(alice_client):
    html = alice_client.get("/accounts/settings/").content.decode()
    for piece in (
        'name="public_profile"',
        'name="profile_show_shares"',
        'name="profile_show_trades"',
        "Make my profile public",
        "Anyone, even people who are not logged in, can open your profile page",
        "Also show how many shares of each stock you hold",
        "It never says who the other player was.",
        'href="/u/alice/">View your profile</a>',
        'hx-post="/accounts/settings/"',
    ):
        assert piece in html, piece
    # All three start off: nothing is shared until the player chooses to.
    assert "checked" not in html


def test_saving_the_sharing_choices_without_htmx_redirects_back(alice_client):
    response = alice_client.post(
        "/accounts/settings/", profile(profile_show_shares="on", profile_show_trades="on")
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/settings/"
    user = User.objects.get(handle="alice")
    assert (user.public_profile, user.profile_show_shares, user.profile_show_trades) == (
        True,
        True,
        True,
    )
    html = alice_client.get("/accounts/settings/").content.decode()
    assert "Settings saved." in html
    assert html.count("checked") == 3


def test_saving_with_htmx_answers_the_profile_card_only(alice_client):
    response = alice_client.post(
        "/accounts/settings/",
        profile(public_profile="", profile_show_shares="on"),
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert '<section class="card" id="profile-settings"' in html and "<html" not in html
    assert '<span class="gain" role="status">Saved.</span>' in html
    assert re.search(r'<input type="checkbox" name="profile_show_shares"[^>]* checked>', html)
    user = User.objects.get(handle="alice")
    assert (user.public_profile, user.profile_show_shares, user.profile_show_trades) == (
        False,
        True,
        False,
    )


def test_unticking_a_choice_turns_it_off(alice_client):
    alice_client.post("/accounts/settings/", profile(profile_show_trades="on"))
    alice_client.post("/accounts/settings/", profile())
    assert User.objects.get(handle="alice").profile_show_trades is False


def test_bad_input_with_htmx_is_a_400_card_with_the_error_and_saves_nothing(alice_client):
    response = alice_client.post(
        "/accounts/settings/",
        profile(email="nope", profile_show_shares="on"),
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    # The card is marked data-swap-errors, so static/js/app.js swaps this 400 in.
    assert 'id="profile-settings" aria-labelledby="profile-title" data-swap-errors' in html
    assert 'id="id_email_errors"' in html and "Saved." not in html
    user = User.objects.get(handle="alice")
    assert (user.public_profile, user.profile_show_shares) == (False, False)


def test_a_taken_email_saves_none_of_the_sharing_choices(alice_client):
    UserFactory(handle="bob", email="bob@example.com")
    response = alice_client.post(
        "/accounts/settings/", profile(email="Bob@Example.com", profile_show_trades="on")
    )
    assert response.status_code == 400
    user = User.objects.get(handle="alice")
    assert (user.public_profile, user.profile_show_trades) == (False, False)


def test_the_signup_page_answers_only_get_and_post(client):
    # Its method check and rate limit once sat on a helper instead of the view.
    assert client.put("/accounts/signup/").status_code == 405
    assert client.get("/accounts/signup/").status_code == 200
