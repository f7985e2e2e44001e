"""The market pages are public: a visitor browses prices before signing up. Whatever
needs a player (the order ticket, the watch button, the offer link) asks them to log
in instead, and `next` brings them back."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone

from market.models import PriceBar
from portfolio.models import WatchlistItem
from portfolio.services import portfolio_open
from tests.factories import PASSWORD, MarketEventFactory, PriceBarFactory, StockFactory
from trading.models import Order, TradeOffer

pytestmark = pytest.mark.django_db

LOGIN_NEXT_STOCK = "/accounts/login/?next=" + quote("/stocks/AAPL/", safe="/")


def symbols_in(html: str) -> list[str]:
    return re.findall(r'id="px-([A-Z0-9.\-]+)"', html)


@pytest.fixture
def apple(db):
    return StockFactory(
        symbol="AAPL",
        name="Apple Inc.",
        last_price=Decimal("190"),
        change=Decimal("2"),
        change_pct=Decimal("1.06"),
        volume=900,
    )


@pytest.fixture
def listed(apple):
    StockFactory(symbol="XOM", sector="energy", last_price=Decimal("110"), change=Decimal("-3"))
    return apple


# --- the pages ---------------------------------------------------------------------


def test_a_visitor_sees_the_market_with_prices_and_a_way_to_log_in(client, listed):
    response = client.get("/market/")
    html = response.content.decode()
    assert response.status_code == 200
    assert symbols_in(html) == ["AAPL", "XOM"]
    assert 'id="px-AAPL">190.00<' in html and 'id="chg-XOM" class="loss">-3.00<' in html
    # Watch buttons are login links here, not forms that would bounce off the POST.
    assert 'action="/watchlist/add/"' not in html
    assert 'href="/accounts/login/?next=/market/"' in html
    # The guest top bar: Market, Log in, Sign up; no wallet, no sidebar.
    assert 'href="/market/">Market</a>' in html
    assert 'href="/accounts/signup/"' in html
    assert 'class="sidebar"' not in html and "header-wallet" not in html


def test_a_visitor_can_search_the_market_with_htmx(client, listed):
    response = client.get("/market/?q=apple", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert symbols_in(response.content.decode()) == ["AAPL"]


def test_a_visitor_sees_sector_performance(client, listed):
    response = client.get("/market/sectors/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<rect ") == 2  # technology and energy


def test_a_visitor_sees_a_stock_with_its_price_and_no_ticket_form(client, apple):
    MarketEventFactory(headline="Apple unveils a thing", scope="stock", stock=apple)
    response = client.get("/stocks/AAPL/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="px-AAPL">190.00<' in html
    assert "Apple unveils a thing" in html
    assert 'data-chart-url="/stocks/AAPL/chart.json"' in html
    # The ticket is a card with links, with no form and no order endpoint in it.
    assert "Log in or sign up to trade AAPL." in html
    assert 'name="idempotency_key"' not in html and "/orders/new/" not in html
    assert f'href="{LOGIN_NEXT_STOCK}"' in html
    assert 'href="/accounts/signup/?next=/stocks/AAPL/"' in html
    # Watch and offer lead to the login, coming back to where they were going.
    assert 'action="/watchlist/add/"' not in html
    assert 'href="/offers/new/?symbol=AAPL"' not in html
    offer_login = "/accounts/login/?next=" + quote("/offers/new/?symbol=AAPL", safe="/")
    assert f'href="{offer_login}">Offer to trade</a>' in html
    assert "<script>" not in html


def test_a_visitor_sees_a_halted_stock_without_a_ticket(client):
    StockFactory(symbol="HLT", halted=True, halt_reason="News pending")
    html = client.get("/stocks/HLT/").content.decode()
    assert "Trading in HLT is halted: News pending." in html
    assert 'name="idempotency_key"' not in html


def test_a_player_still_gets_the_ticket_watch_form_and_offer_link(player_client, player, apple):
    portfolio_open(owner=player)
    html = player_client.get("/stocks/AAPL/").content.decode()
    assert 'name="idempotency_key"' in html and "Log in or sign up" not in html
    assert 'action="/watchlist/add/"' in html
    assert 'href="/offers/new/?symbol=AAPL"' in html
    assert 'href="/market/">Market</a>' not in html.split('class="sidebar"')[0]


def test_chart_json_works_for_a_visitor(client, apple):
    base = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    PriceBar.objects.bulk_create(
        PriceBar(
            stock=apple,
            resolution="1m",
            start=base + timedelta(minutes=minute),
            open=Decimal(100 + minute),
            high=Decimal(101 + minute),
            low=Decimal(99 + minute),
            close=Decimal("100.5") + minute,
            volume=10,
        )
        for minute in range(3)
    )
    response = client.get("/stocks/AAPL/chart.json?range=1d")
    assert response.status_code == 200
    assert response.json()["bars"] == [
        [int(base.timestamp()), "100.0000", "103.0000", "99.0000", "102.5000", 30]
    ]
    assert client.get("/stocks/AAPL/chart.json?range=forever").status_code == 400
    assert client.get("/stocks/NOPE/chart.json?range=1d").status_code == 404


@pytest.mark.parametrize("path", ["/market/", "/market/sectors/", "/stocks/AAPL/"])
def test_the_public_pages_stay_get_only(client, apple, path):
    assert client.post(path).status_code == 405


# --- what still needs a player -----------------------------------------------------


def test_a_visitor_posting_to_the_watchlist_is_sent_to_log_in(client, apple):
    response = client.post("/watchlist/add/", {"symbol": "AAPL", "next": "/stocks/AAPL/"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not WatchlistItem.objects.exists()


def test_a_visitor_posting_an_order_is_sent_to_log_in(client, apple):
    response = client.post(
        "/orders/new/",
        {"symbol": "AAPL", "side": "buy", "type": "market", "quantity": "1", "step": "confirm"},
    )
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Order.objects.exists()


def test_a_visitor_posting_an_offer_is_sent_to_log_in(client, apple):
    response = client.post("/offers/new/", {"symbol": "AAPL", "quantity": "1"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/offers/new/?symbol=AAPL").status_code == 302
    assert not TradeOffer.objects.exists()


# --- log in and come back ------------------------------------------------------------


def test_logging_in_from_the_stock_page_comes_back_to_it(client, apple, player):
    html = client.get("/stocks/AAPL/").content.decode()
    assert f'href="{LOGIN_NEXT_STOCK}"' in html
    login_page = client.get(LOGIN_NEXT_STOCK).content.decode()
    assert 'name="next" value="/stocks/AAPL/"' in login_page
    response = client.post(
        "/accounts/login/",
        {"username": player.handle, "password": PASSWORD, "next": "/stocks/AAPL/"},
    )
    assert response.status_code == 302 and response["Location"] == "/stocks/AAPL/"
    assert 'name="idempotency_key"' in client.get("/stocks/AAPL/").content.decode()


def test_the_login_next_refuses_another_site(client, player):
    response = client.post(
        "/accounts/login/",
        {"username": player.handle, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.status_code == 302 and response["Location"] == "/"


# --- query counts ----------------------------------------------------------------------


def _busy_market() -> None:
    for index in range(60):
        stock = StockFactory(symbol=f"Q{index:03d}")
        PriceBarFactory(
            stock=stock, resolution="1m", start=timezone.now().replace(second=0, microsecond=0)
        )
    MarketEventFactory.create_batch(5)


def test_the_market_query_count_for_a_visitor_is_capped(client, django_assert_max_num_queries):
    _busy_market()
    # No session, no user, no wallet, no watchlist: only the market's own count, page,
    # sparklines and news (4).
    with django_assert_max_num_queries(4):
        response = client.get("/market/")
    assert len(symbols_in(response.content.decode())) == 50


def test_a_stock_page_for_a_visitor_asks_for_no_wallet(client, apple, django_assert_num_queries):
    with django_assert_num_queries(3) as captured:
        response = client.get("/stocks/AAPL/")
    assert response.status_code == 200
    tables = " ".join(query["sql"] for query in captured.captured_queries)
    assert "portfolio_" not in tables and "accounts_" not in tables
