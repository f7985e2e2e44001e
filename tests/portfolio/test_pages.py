from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from portfolio.models import Portfolio, WatchlistItem
from portfolio.services import (
    cash_adjust,
    portfolio_open,
    watchlist_add,
)
from tests.factories import UserFactory
from tests.portfolio.trades import settle as trade

pytestmark = pytest.mark.django_db
D = Decimal


def text(response) -> str:
    return response.content.decode()


# --- /portfolio/ ---------------------------------------------------------------


def test_the_owner_sees_positions_with_live_spans(player_client, portfolio, make_stock):
    aapl = make_stock("AAPL", "100.0000", previous_close=D("95.0000"))
    trade(portfolio, aapl, "buy", 10, "100.0000", fee="0")
    aapl.last_price = D("110.0000")
    aapl.save()
    response = player_client.get(reverse("portfolio"))
    assert response.status_code == 200
    page = text(response)
    assert '<span id="pos-px-AAPL">110.00</span>' in page
    assert '<span id="pos-val-AAPL">$1,100.00</span>' in page
    assert '<span id="pos-pnl-AAPL" class="gain">+$100.00</span>' in page
    assert '<span id="pf-networth">$100,100.00</span>' in page
    assert '<span id="pf-cash">$99,000.00</span>' in page
    assert 'id="hdr-cash"' in page and 'id="hdr-networth"' in page
    assert 'data-live-symbols="AAPL"' in page
    assert "<svg" in page and "Technology" in page  # the allocation donut


def test_a_player_without_positions_sees_the_empty_state(player_client, portfolio):
    page = text(player_client.get(reverse("portfolio")))
    assert "You don't hold any shares yet." in page


def test_an_account_without_a_portfolio_can_open_one(player_client, player):
    page = text(player_client.get(reverse("portfolio")))
    assert "Open my portfolio" in page
    response = player_client.post(reverse("portfolio_open"))
    assert response.status_code == 302
    assert Portfolio.objects.filter(owner=player).count() == 1
    player_client.post(reverse("portfolio_open"))
    assert Portfolio.objects.filter(owner=player).count() == 1


def test_the_portfolio_page_needs_a_login(client):
    response = client.get(reverse("portfolio"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_portfolio_page_query_count_does_not_grow_with_positions(
    player_client, portfolio, make_stock, django_assert_max_num_queries
):
    for n in range(40):
        trade(portfolio, make_stock(f"S{n}", "10.0000"), "buy", 1, "10.0000", key=f"k{n}")
    player_client.get(reverse("portfolio"))  # the session's first request also records the device
    # Session, user, the session's last-seen touch; then portfolio and positions (the
    # header reuses the page's figures).
    with django_assert_max_num_queries(8):
        response = player_client.get(reverse("portfolio"))
    assert text(response).count('id="pos-px-') == 40


# --- dashboard ---------------------------------------------------------------------


def test_the_dashboard_shows_net_worth_change_since_last_login_and_top_holdings(
    client, player, portfolio, make_stock, django_assert_max_num_queries
):
    stock = make_stock("MSFT", "100.0000")
    client.force_login(player)  # first login: baseline 100,000
    trade(portfolio, stock, "buy", 100, "100.0000", fee="0")
    stock.last_price = D("101.0000")
    stock.save()
    client.force_login(player)  # second login: the change is measured from the first
    stock.last_price = D("102.0000")
    stock.save()
    client.get(reverse("dashboard"))  # the session's first request also records the device
    with django_assert_max_num_queries(12):
        response = client.get(reverse("dashboard"))
    page = text(response)
    assert "Since your last login" in page
    assert '<span id="dash-since-login" class="gain">+$200.00</span>' in page
    assert '<span id="pos-val-MSFT">$10,200.00</span>' in page
    assert "Market movers" in page


# --- statement ----------------------------------------------------------------------


def test_the_statement_is_a_csv_with_running_balances(player_client, player, portfolio, make_stock):
    stock = make_stock("AAPL", "10.0000")
    trade(portfolio, stock, "buy", 10, "10.0000", fee="1.00", key="fill:1")
    trade(portfolio, stock, "sell", 4, "12.5000", fee="1.00", key="fill:2")
    cash_adjust(
        portfolio=portfolio, amount=D("-5.00"), reason="=cmd()", by=player, idempotency_key="a1"
    )
    other = portfolio_open(owner=UserFactory())
    trade(other, stock, "buy", 1, "10.0000", key="not-mine")

    response = player_client.get(reverse("statement"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="bullpen-statement-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["kind"], r["cash_change"], r["cash_balance"], r["shares_after"]) for r in rows] == [
        ("deposit", "100000.00", "100000.00", ""),
        ("buy", "-100.00", "99900.00", "10"),
        ("fee", "-1.00", "99899.00", "10"),
        ("sell", "50.00", "99949.00", "6"),
        ("fee", "-1.00", "99948.00", "6"),
        ("adjustment", "-5.00", "99943.00", ""),
    ]
    assert rows[-1]["memo"] == "'=cmd()"  # neutralised for spreadsheets
    assert (
        "not-mine"
        not in b"".join(player_client.get(reverse("statement")).streaming_content).decode()
    )


# --- watchlist ----------------------------------------------------------------------


def test_watch_and_unwatch_with_htmx_swap_the_button(player_client, player, stock):
    response = player_client.post(
        reverse("watchlist_add"), {"symbol": "aapl"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "★ Watching" in text(response) and 'action="/watchlist/remove/"' in text(response)
    assert WatchlistItem.objects.filter(watchlist__owner=player, stock=stock).exists()
    response = player_client.post(
        reverse("watchlist_remove"), {"symbol": "AAPL"}, headers={"HX-Request": "true"}
    )
    assert "☆ Watch" in text(response)
    assert not WatchlistItem.objects.filter(watchlist__owner=player).exists()


def test_a_plain_post_redirects_back_to_a_safe_next(player_client, stock):
    response = player_client.post(reverse("watchlist_add"), {"symbol": "AAPL", "next": "/market/"})
    assert response.status_code == 302 and response["Location"] == "/market/"
    response = player_client.post(
        reverse("watchlist_add"), {"symbol": "AAPL", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("watchlist")


def test_the_watchlist_page_lists_watched_stocks_with_live_spans(player_client, player, stock):
    watchlist_add(user=player, stock=stock)
    page = text(player_client.get(reverse("watchlist")))
    assert '<span id="wl-px-AAPL">150.00</span>' in page
    assert 'data-live-view="watch" data-live-symbols="AAPL"' in page


def test_an_unknown_symbol_is_a_field_error(player_client):
    response = player_client.post(reverse("watchlist_add"), {"symbol": "NOPE"})
    assert response.status_code == 400
    assert "There is no stock with the symbol NOPE." in text(response)


def test_the_watchlist_holds_at_most_the_limit(player_client, player, make_stock, settings):
    settings.MAX_WATCHLIST = 2
    for symbol in ("A1", "A2"):
        watchlist_add(user=player, stock=make_stock(symbol))
    make_stock("A3")
    response = player_client.post(
        reverse("watchlist_add"), {"symbol": "A3"}, headers={"HX-Request": "true"}
    )
    assert "Your watchlist is full: it holds at most 2 stocks." in text(response)
    assert WatchlistItem.objects.filter(watchlist__owner=player).count() == 2
    response = player_client.post(
        reverse("watchlist_add"), {"symbol": "A3", "next": "/watchlist/"}, follow=True
    )
    assert "Your watchlist is full" in text(response)


# --- leaderboard and profiles ---------------------------------------------------------


def test_a_private_profile_is_404_to_others_but_visible_to_its_owner(
    player_client, player, portfolio
):
    private = UserFactory(handle="hidden")
    portfolio_open(owner=private)
    assert player_client.get(reverse("profile", args=["hidden"])).status_code == 404
    assert player_client.get(reverse("profile", args=["nobody"])).status_code == 404
    mine = player_client.get(reverse("profile", args=[player.handle]))
    assert mine.status_code == 200 and "Offer to trade" not in text(mine)


def test_a_public_profile_shows_return_and_an_offer_link(player_client, make_stock):
    owner = UserFactory(handle="showoff", public_profile=True)
    portfolio_open(owner=owner)
    response = player_client.get(reverse("profile", args=["ShowOff"]))
    assert response.status_code == 200
    assert 'href="/offers/new/?to=showoff"' in text(response)


def test_a_public_profile_charts_daily_net_worth(player_client):
    from datetime import timedelta

    from django.utils import timezone

    from portfolio.models import NetWorthSnapshot

    owner = UserFactory(handle="charted", public_profile=True)
    portfolio = portfolio_open(owner=owner)
    now = timezone.now()
    for days, value in ((3, "99000.00"), (2, "101000.00"), (1, "102000.00")):
        for minutes in (0, 5):  # two a day: only the last of each day is drawn
            NetWorthSnapshot.objects.create(
                portfolio=portfolio,
                at=now - timedelta(days=days, minutes=minutes),
                net_worth=D(value),
                cash=D(value),
            )
    page = text(player_client.get(reverse("profile", args=["charted"])))
    assert "<polyline" in page and "low $99,000.00" in page


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_statement_streams_in_batches():
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from portfolio.views import STATEMENT_BATCH_ROWS

    user = UserFactory()
    portfolio = portfolio_open(owner=user)
    for n in range(STATEMENT_BATCH_ROWS + 10):
        cash_adjust(
            portfolio=portfolio, amount=D("1.00"), reason="drip", by=user, idempotency_key=f"d{n}"
        )
    client = AsyncClient()

    async def scenario():
        await client.aforce_login(user)
        response = await client.get(reverse("statement"))
        assert response.status_code == 200 and response.is_async
        return [chunk async for chunk in response.streaming_content]

    chunks = async_to_sync(scenario)()
    assert len(chunks) == 2  # header + 500 rows, then the last 11
    last = b"".join(chunks).decode().strip().splitlines()[-1]
    assert f",{D('100000.00') + STATEMENT_BATCH_ROWS + 10}," in last


def test_the_watchlist_page_query_count_does_not_grow_with_items(
    player_client, player, portfolio, make_stock, django_assert_max_num_queries
):
    for n in range(20):
        watchlist_add(user=player, stock=make_stock(f"W{n}"))
    player_client.get(reverse("watchlist"))  # the session's first request also records the device
    # Session, user, last-seen touch, the items with their stocks, the header wallet.
    with django_assert_max_num_queries(7):
        response = player_client.get(reverse("watchlist"))
    assert text(response).count("★ Watching") == 20
