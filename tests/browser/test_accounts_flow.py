from __future__ import annotations

import pytest

from accounts.models import User

PASSWORD = "plum-harbor-compass-88"


def log_in(page, identifier: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email or handle").fill(identifier)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_new_player_signs_up_logs_out_and_logs_back_in_by_handle_and_email(browser_page):
    page = browser_page
    page.goto("/accounts/signup/")
    page.get_by_label("Handle").fill("Browser_Bob")
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("Display name").fill("Bob Browser")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()

    page.wait_for_url("**/")
    assert page.locator(".profile-chip__handle").inner_text() == "@browser_bob"
    assert page.locator("nav.sidebar").get_by_role("link", name="Dashboard").is_visible()
    assert page.locator(".avatar").inner_text() == "BB"
    assert User.objects.filter(handle="browser_bob").exists()

    log_out(page)
    assert page.get_by_role("heading", name="Log in").is_visible()

    log_in(page, "browser_bob")
    assert page.locator(".profile-chip__handle").inner_text() == "@browser_bob"
    log_out(page)

    log_in(page, "BOB@example.com")
    assert page.locator(".profile-chip__handle").inner_text() == "@browser_bob"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_taken_handle_shows_the_error_next_to_the_field(browser_page):
    User.objects.create_user("taken", "taken@example.com", PASSWORD)
    page = browser_page
    page.goto("/accounts/signup/")
    page.get_by_label("Handle").fill("TAKEN")
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    assert page.locator("#id_handle_errors").inner_text() == "That handle is taken."
    assert page.get_by_label("Email").input_value() == "new@example.com"
