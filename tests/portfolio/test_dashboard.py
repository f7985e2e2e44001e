"""The dashboard: net worth, the change since the last login and today, the player's own
biggest movers, the market's movers and the news, and an empty state."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from market.models import Stock
from portfolio.services import cash_adjust
from tests.factories import MarketEventFactory, UserFactory
from tests.portfolio.trades import settle

pytestmark = pytest.mark.django_db
D = Decimal


def text(response) -> str:
    return response.content.decode()


def move(stock: Stock, price: str) -> None:
    Stock.objects.filter(pk=stock.pk).update(last_price=D(price))


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</section>", start)]


def test_the_dashboard_needs_a_login(client):
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_it_shows_the_change_since_the_last_login_in_money_and_percent(
    client, player, portfolio, make_stock
):
    stock = make_stock("MSFT", "100.0000")
    client.force_login(player)  # first login: 100,000
    settle(portfolio, stock, "buy", 100, "100.0000", fee="0")
    client.force_login(player)  # second login: the change is measured from the first
    move(stock, "150.0000")  # +5,000
    html = text(client.get("/"))
    assert "Since your last login" in html
    assert '<span id="dash-since-login" class="gain">+$5,000.00</span>' in html
    assert '<span class="pill gain">+5.00%</span> since' in html


def test_a_first_visit_measures_from_the_start(player_client, portfolio):
    html = text(player_client.get("/"))
    assert "Since you started" in html
    assert '<span id="dash-since-login" class="flat">$0.00</span>' in html


def test_it_shows_the_day_change_in_money_and_percent(player_client, portfolio, make_stock):
    stock = make_stock("MSFT", "100.0000")
    settle(portfolio, stock, "buy", 200, "100.0000", fee="0")
    move(stock, "90.0000")  # -2,000 of a 100,000 net worth at the close
    html = text(player_client.get("/"))
    assert '<span id="pf-daychange" class="loss">-$2,000.00</span>' in html
    assert '<span class="pill loss">-2.00%</span>' in html


def test_the_total_return_is_time_weighted(player_client, portfolio, make_stock):
    stock = make_stock("MSFT", "100.0000")
    settle(portfolio, stock, "buy", 100, "100.0000", fee="0")
    cash_adjust(
        portfolio=portfolio,
        amount=D("25000.00"),
        reason="Prize",
        by=UserFactory(),
        idempotency_key="grant-dash",
    )
    move(stock, "120.0000")  # +2,000 on 100,000; the grant is not a gain
    html = text(player_client.get("/"))
    assert '<span id="dash-total-return" class="gain">+2.00%</span>' in html


def test_your_movers_list_the_top_gainers_and_losers_among_your_holdings(
    player_client, portfolio, make_stock
):
    prices = {"AAA": "105", "BBB": "102", "CCC": "101", "DDD": "110", "EEE": "97", "FFF": "100"}
    for symbol, price in prices.items():
        stock = make_stock(symbol, "100.0000")
        settle(portfolio, stock, "buy", 10, "100.0000", fee="0", key=symbol)
        move(stock, price)
    html = text(player_client.get("/"))
    gainers = section(html, "dash-my-movers")
    gainers, losers = gainers.split('id="dash-losers"')
    # Three gainers at most, biggest first; an unmoved stock is neither.
    assert re.findall(r'/stocks/([A-Z]+)/"', gainers) == ["DDD", "AAA", "BBB"]
    assert re.findall(r'/stocks/([A-Z]+)/"', losers) == ["EEE"]
    assert '<span class="gain">+10.00%</span>' in gainers
    assert '<span class="gain">+$100.00</span>' in gainers  # 10 shares up $10
    assert '<span class="loss">-3.00%</span>' in losers
    assert '<span class="loss">-$30.00</span>' in losers


def test_quiet_holdings_say_nothing_moved(player_client, portfolio, make_stock):
    settle(portfolio, make_stock("MSFT", "100.0000"), "buy", 1, "100.0000", fee="0")
    html = text(player_client.get("/"))
    assert "None of your stocks has moved since the last close." in html


def test_it_shows_market_movers_and_the_latest_news(player_client, portfolio, make_stock):
    make_stock("UPUP", "110.0000", previous_close=D("100.0000"), change_pct=D("10.0000"))
    for hours in range(7):
        MarketEventFactory(
            headline=f"Headline {hours}", published_at=timezone.now() - timedelta(hours=hours)
        )
    html = text(player_client.get("/"))
    assert "Market movers" in html and "/stocks/UPUP/" in html
    news = section(html, "dash-news")
    assert re.findall(r"Headline (\d)", news) == ["0", "1", "2", "3", "4"]


def test_without_news_the_card_says_so(player_client, portfolio):
    assert "No market news yet." in section(text(player_client.get("/")), "dash-news")


def test_a_player_with_no_holdings_gets_the_empty_state(player_client, portfolio):
    html = text(player_client.get("/"))
    empty = section(html, "dash-empty")
    assert "All of your $100,000.00 is cash." in empty
    assert 'href="/market/"' in empty
    assert "dash-my-movers" not in html and "Top holdings" not in html
    assert "Market movers" in html  # still something to look at


def test_an_account_without_a_portfolio_is_offered_one(player_client):
    html = text(player_client.get("/"))
    assert "This account has no portfolio yet." in html and 'action="/portfolio/open/"' in html


def test_the_dashboard_query_count_does_not_grow_with_holdings_or_news(
    client, player, portfolio, make_stock, django_assert_max_num_queries
):
    for index in range(25):
        stock = make_stock(f"Q{index:02d}", "100.0000")
        settle(portfolio, stock, "buy", 5, "100.0000", fee="0", key=f"q{index}")
        move(stock, str(95 + index % 10))
    MarketEventFactory.create_batch(8)
    client.force_login(player)
    client.get("/")  # the session's first request also records the device
    # Session, user, portfolio, positions, performance, snapshots, the market's three
    # movers lists and the news: 10, however many holdings and events there are.
    with django_assert_max_num_queries(10):
        response = client.get("/")
    html = text(response)
    assert response.status_code == 200
    assert len(re.findall(r'/stocks/Q\d\d/"', section(html, "dash-my-movers"))) == 6
