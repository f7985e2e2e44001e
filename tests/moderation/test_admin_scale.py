"""The player list stays quick with 100,000 players: a fixed number of queries per
page, whatever the filter or search (timings: bench/admin.py)."""

from __future__ import annotations

import pytest

from tests.moderation.seeding import players_seed

pytestmark = pytest.mark.django_db

PAGES = [
    ({}, 50),
    ({"p": "500"}, 50),
    ({"state": "suspended"}, 50),
    ({"state": "active"}, 50),
    ({"role": "staff"}, 1),
    ({"public_profile__exact": "1"}, 50),
    ({"q": "bulk99999"}, 1),
    ({"q": "BULK4242@example.com"}, 1),
    ({"q": "@bulk9999"}, 11),
]


def test_the_player_list_with_100000_players_takes_a_capped_number_of_queries(
    admin_member_client, django_assert_max_num_queries
):
    players_seed(100_000)
    # The first request of a session also records the device (accounts' tracking).
    assert admin_member_client.get("/admin/").status_code == 200
    for query, rows in PAGES:
        # Session, user, 2 x permissions, count, the page, the page's roles.
        with django_assert_max_num_queries(7):
            page = admin_member_client.get("/admin/accounts/user/", query)
        assert page.status_code == 200, query
        assert len(page.context["cl"].result_list) == rows, query
        # A filtered page does not also count the whole table.
        assert page.context["cl"].show_full_result_count is False
