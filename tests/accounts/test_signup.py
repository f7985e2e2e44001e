from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from accounts import errors, roles, services
from accounts.models import User
from tests.factories import UserFactory

GOOD_PASSWORD = "plum-harbor-compass-88"


def signup_post(client, **overrides):
    data = {
        "handle": "new_player",
        "email": "new@example.com",
        "display_name": "New Player",
        "password": GOOD_PASSWORD,
    }
    data.update(overrides)
    return client.post("/accounts/signup/", data)


@pytest.mark.django_db
class TestSignupPage:
    def test_it_creates_the_player_logs_them_in_and_lands_on_the_dashboard(self, client):
        response = signup_post(client, handle="New_Player")
        assert response.status_code == 302
        assert response["Location"] == "/"
        user = User.objects.get()
        assert user.handle == "new_player"
        assert user.check_password(GOOD_PASSWORD)
        assert [group.name for group in user.groups.all()] == [roles.USER]
        dashboard = client.get("/")
        assert dashboard.status_code == 200
        assert b"@new_player" in dashboard.content

    def test_the_form_renders(self, client):
        response = client.get("/accounts/signup/")
        assert response.status_code == 200
        assert b'name="handle"' in response.content
        assert b'name="password"' in response.content

    def test_a_logged_in_player_is_sent_to_the_dashboard(self, player_client):
        assert player_client.get("/accounts/signup/")["Location"] == "/"

    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"handle": "ALICE"}, "handle", "That handle is taken."),
            ({"email": "Alice@Example.COM"}, "email", "That email is already registered."),
            ({"handle": "no spaces"}, "handle", "A handle is 3 to 30 characters"),
            ({"handle": "ab"}, "handle", "A handle is 3 to 30 characters"),
            ({"handle": "dash-ed"}, "handle", "A handle is 3 to 30 characters"),
            ({"handle": ""}, "handle", "This field is required."),
            ({"email": "not-an-email"}, "email", "Enter a valid email address."),
            ({"password": "short"}, "password", "This password is too short."),
            ({"password": "password123"}, "password", "This password is too common."),
            ({"password": "83749201846"}, "password", "This password is entirely numeric."),
            ({"password": "new_player1"}, "password", "too similar"),
        ],
    )
    def test_bad_input_is_a_field_error_and_writes_nothing(self, client, overrides, field, message):
        UserFactory(handle="alice", email="alice@example.com")
        response = signup_post(client, **overrides)
        assert response.status_code == 400
        errors_for_field = response.context["form"].errors.get(field, [])
        assert any(message in error for error in errors_for_field), errors_for_field
        assert f'id="id_{field}_errors"'.encode() in response.content
        assert User.objects.count() == 1


@pytest.mark.django_db
def test_user_signup_normalises_and_reports_the_field_of_each_error():
    user = services.user_signup(
        handle="  Trader_Jo ", email="jo@Example.com", password=GOOD_PASSWORD
    )
    assert user.handle == "trader_jo"
    assert user.email == "jo@example.com"
    with pytest.raises(errors.HandleTaken) as taken:
        services.user_signup(handle="TRADER_JO", email="x@example.com", password=GOOD_PASSWORD)
    assert taken.value.field == "handle"
    with pytest.raises(errors.EmailTaken):
        services.user_signup(handle="other", email="JO@EXAMPLE.COM", password=GOOD_PASSWORD)


def _run_in_threads(*targets):
    """Run callables at the same moment in real threads; return their results or errors."""
    results: list[object] = [None] * len(targets)
    start = threading.Barrier(len(targets))

    def run(index, target):
        try:
            start.wait()
            results[index] = target()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_signups_racing_for_one_handle_make_one_player_and_one_field_error():
    results = _run_in_threads(
        lambda: services.user_signup(handle="racer", email="a@example.com", password=GOOD_PASSWORD),
        lambda: services.user_signup(handle="RACER", email="b@example.com", password=GOOD_PASSWORD),
    )
    assert User.objects.filter(handle="racer").count() == 1
    assert sum(isinstance(result, User) for result in results) == 1
    losers = [result for result in results if not isinstance(result, User)]
    assert len(losers) == 1 and isinstance(losers[0], errors.HandleTaken), losers


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"handle": "RACER", "email": "b@example.com"}, errors.HandleTaken),
        ({"handle": "someone", "email": "A@EXAMPLE.COM"}, errors.EmailTaken),
    ],
)
def test_a_signup_that_passes_the_checks_while_another_commits_gets_the_field_error(
    second, expected
):
    # Deterministic version of the race: the first sign-up has inserted but not
    # committed, so the second passes the "is it taken?" checks and the database's
    # case-insensitive constraint has to decide.
    inserted = threading.Event()

    def first():
        with transaction.atomic():
            services.user_signup(handle="racer", email="a@example.com", password=GOOD_PASSWORD)
            inserted.set()
            time.sleep(0.5)
        return "committed"

    def second_signup():
        inserted.wait(10)
        return services.user_signup(password=GOOD_PASSWORD, **second)

    results = _run_in_threads(first, second_signup)
    assert results[0] == "committed"
    assert isinstance(results[1], expected), results[1]
    assert User.objects.count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_signup_posts_never_give_a_500(client):
    from django.test import Client

    def post():
        response = Client().post(
            "/accounts/signup/",
            {
                "handle": "racer",
                "email": f"{threading.get_ident()}@example.com",
                "password": GOOD_PASSWORD,
            },
        )
        return response.status_code

    statuses = _run_in_threads(post, post, post)
    assert sorted(statuses) == [302, 400, 400], statuses
    assert User.objects.filter(handle="racer").count() == 1


@pytest.mark.django_db
def test_passwords_are_hashed_with_argon2_under_the_real_settings(settings):
    # tests/conftest.py puts a fast hasher first for speed; undo that here.
    settings.PASSWORD_HASHERS = [
        hasher for hasher in settings.PASSWORD_HASHERS if "MD5" not in hasher
    ]
    user = services.user_signup(handle="hashed", email="h@example.com", password=GOOD_PASSWORD)
    assert user.password.startswith("argon2$")
    assert user.check_password(GOOD_PASSWORD)


def test_signup_returns_to_the_page_the_link_came_from(client, db):
    response = signup_post(client, next="/stocks/AAPL/")
    assert response.status_code == 302
    assert response["Location"] == "/stocks/AAPL/"


def test_signup_ignores_a_next_that_leaves_the_site(client, db):
    response = signup_post(client, next="https://evil.example.com/")
    assert response.status_code == 302
    assert response["Location"] == "/"
