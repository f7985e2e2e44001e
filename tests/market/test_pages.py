from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from market.models import PriceBar
from market.selectors import market_movers
from tests.factories import MarketEventFactory, PriceBarFactory, StockFactory

pytestmark = pytest.mark.django_db


def symbols_in(html: str) -> list[str]:
    return re.findall(r'id="px-([A-Z0-9.\-]+)"', html)


@pytest.fixture
def listed(db):
    return [
        StockFactory(
            symbol="AAPL",
            name="Apple Inc.",
            sector="technology",
            last_price=Decimal("190"),
            change=Decimal("2"),
            change_pct=Decimal("1.06"),
            volume=900,
        ),
        StockFactory(
            symbol="XOM",
            name="Exxon Mobil",
            sector="energy",
            last_price=Decimal("110"),
            change=Decimal("-3"),
            change_pct=Decimal("-2.65"),
            volume=5000,
        ),
        StockFactory(
            symbol="MSFT",
            name="Microsoft",
            sector="technology",
            last_price=Decimal("400"),
            change=Decimal("-1"),
            change_pct=Decimal("-0.25"),
            volume=100,
        ),
        StockFactory(
            symbol="PFE",
            name="Pfizer",
            sector="health_care",
            last_price=Decimal("30"),
            change=Decimal("0.9"),
            change_pct=Decimal("3.10"),
            volume=2000,
        ),
    ]


def test_the_market_lists_every_listed_stock_with_its_live_spans(player_client, listed):
    StockFactory(symbol="GONE", delisted_at=timezone.now())
    response = player_client.get("/market/")
    html = response.content.decode()
    assert response.status_code == 200
    assert symbols_in(html) == ["AAPL", "MSFT", "PFE", "XOM"]
    assert 'id="chg-XOM" class="loss">-3.00<' in html
    assert 'id="chgp-PFE" class="gain">+3.10%<' in html


def test_the_market_is_public(client):
    # Visitors browse before signing up; tests/public covers what they see.
    assert client.get("/market/").status_code == 200


def test_search_finds_by_symbol_prefix_or_name(player_client, listed):
    assert symbols_in(player_client.get("/market/?q=ms").content.decode()) == ["MSFT"]
    assert symbols_in(player_client.get("/market/?q=mobil").content.decode()) == ["XOM"]
    html = player_client.get("/market/?q=zzz").content.decode()
    assert "No stocks match your search." in html


def test_htmx_search_returns_only_the_list_partial(player_client, listed):
    response = player_client.get("/market/?q=apple", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert symbols_in(html) == ["AAPL"]
    assert "<html" not in html and 'id="market-filter"' not in html


def test_the_sector_filter_keeps_one_sector(player_client, listed):
    assert symbols_in(player_client.get("/market/?sector=technology").content.decode()) == [
        "AAPL",
        "MSFT",
    ]


def test_an_unknown_sector_is_a_400_with_the_error_next_to_the_field(player_client, listed):
    response = player_client.get("/market/?sector=crypto")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price", ["PFE", "XOM", "AAPL", "MSFT"]),
        ("-price", ["MSFT", "AAPL", "XOM", "PFE"]),
        ("-change_pct", ["PFE", "AAPL", "MSFT", "XOM"]),
        ("volume", ["MSFT", "AAPL", "PFE", "XOM"]),
        ("name", ["AAPL", "XOM", "MSFT", "PFE"]),
        ("-sector", ["AAPL", "MSFT", "PFE", "XOM"]),
        ("change", ["XOM", "MSFT", "PFE", "AAPL"]),
    ],
)
def test_every_column_sorts(player_client, listed, sort, expected):
    assert symbols_in(player_client.get(f"/market/?sort={sort}").content.decode()) == expected


@pytest.mark.parametrize(
    ("tab", "expected"),
    [
        ("gainers", ["PFE", "AAPL"]),
        ("losers", ["XOM", "MSFT"]),
        ("active", ["XOM", "PFE", "AAPL", "MSFT"]),
    ],
)
def test_the_tabs_list_gainers_losers_and_the_most_active(player_client, listed, tab, expected):
    assert symbols_in(player_client.get(f"/market/?tab={tab}").content.decode()) == expected


def test_the_list_pages_by_fifty(player_client):
    for index in range(120):
        StockFactory(symbol=f"P{index:03d}")
    first = player_client.get("/market/").content.decode()
    third = player_client.get("/market/?page=3").content.decode()
    assert len(symbols_in(first)) == 50 and symbols_in(first)[0] == "P000"
    assert symbols_in(third) == [f"P{index:03d}" for index in range(100, 120)]
    assert "Page 3 of 3" in third
    assert symbols_in(player_client.get("/market/?page=999").content.decode()) == symbols_in(third)


def test_the_market_shows_recent_news(player_client, listed):
    MarketEventFactory(headline="Oil prices tumble", scope="sector", sector="energy")
    assert "Oil prices tumble" in player_client.get("/market/").content.decode()


def test_the_sparkline_is_drawn_from_the_last_days_minute_bars(player_client, listed):
    now = timezone.now().replace(second=0, microsecond=0)
    quarter = now - timedelta(minutes=now.minute % 15)
    # A bar from yesterday, outside the rolling day, is not drawn.
    PriceBarFactory(
        stock=listed[0],
        resolution="1m",
        start=quarter - timedelta(hours=25),
        open=Decimal("1"),
        high=Decimal("1"),
        low=Decimal("1"),
        close=Decimal("1"),
    )
    for step, close in enumerate(["180", "185", "188"]):
        PriceBarFactory(
            stock=listed[0],
            resolution="1m",
            start=quarter - timedelta(hours=20) + timedelta(minutes=15 * step),
            open=Decimal(close),
            high=Decimal(close),
            low=Decimal(close),
            close=Decimal(close),
        )
    html = player_client.get("/market/?q=AAPL").content.decode()
    assert re.search(
        r'<polyline [^>]*points="0\.0,[\d.]+ 33\.3,[\d.]+ 66\.7,[\d.]+ 100\.0,1\.0"', html
    )


def test_the_market_page_query_count_is_capped(player_client, django_assert_max_num_queries):
    for index in range(60):
        stock = StockFactory(symbol=f"Q{index:03d}")
        PriceBarFactory(
            stock=stock, resolution="1m", start=timezone.now().replace(second=0, microsecond=0)
        )
    MarketEventFactory.create_batch(5)
    player_client.get("/market/")  # the first request of a session records the device
    # Session and user (2), then the market's own: count, page, sparklines, news (4).
    with django_assert_max_num_queries(8):
        response = player_client.get("/market/")
    assert len(symbols_in(response.content.decode())) == 50


def test_sector_performance_draws_a_heat_map_and_a_table(player_client, listed):
    response = player_client.get("/market/sectors/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<rect ") == 3  # three sectors have listed stocks
    assert "Health Care" in html and "+3.10%" in html
    # Technology averages (1.06 - 0.25) / 2.
    assert "+0.41%" in html


def test_market_movers_pick_gainers_losers_and_the_most_active(listed):
    movers = market_movers(limit=1)
    assert [stock.symbol for stock in movers.gainers] == ["PFE"]
    assert [stock.symbol for stock in movers.losers] == ["XOM"]
    assert [stock.symbol for stock in movers.active] == ["XOM"]


def test_the_movers_partial_renders_for_the_dashboard(rf, player, listed):
    from django.template.loader import render_to_string

    html = render_to_string("market/partials/movers.html", {"movers": market_movers()})
    assert 'id="chgp-PFE"' in html and "Most active" in html
    assert html.count('id="px-XOM"') == 1  # a loser and the most active: one live copy


# --- the stock page ----------------------------------------------------------------


def test_the_stock_page_shows_quote_figures_and_news(player_client, listed):
    stock = listed[0]
    stock.day_open, stock.day_high, stock.day_low, stock.previous_close = (
        Decimal("188"),
        Decimal("191"),
        Decimal("187"),
        Decimal("188"),
    )
    stock.save()
    PriceBarFactory(
        stock=stock,
        start=timezone.now() - timedelta(days=100),
        high=Decimal("250"),
        low=Decimal("150"),
    )
    PriceBarFactory(
        stock=stock,
        start=timezone.now() - timedelta(days=400),
        high=Decimal("999"),
        low=Decimal("1"),
    )
    MarketEventFactory(headline="Apple unveils a thing", scope="stock", stock=stock)
    MarketEventFactory(headline="Chips rally", scope="sector", sector="technology")
    MarketEventFactory(headline="Oil slides", scope="sector", sector="energy")
    html = player_client.get("/stocks/AAPL/").content.decode()
    assert (
        'id="px-AAPL">190.00<' in html
        and 'id="hi-AAPL">191.00<' in html
        and 'id="lo-AAPL">187.00<' in html
    )
    assert "150.00 – 250.00" in html  # the 52-week range ignores the older bar
    assert "Apple unveils a thing" in html and "Chips rally" in html and "Oil slides" not in html
    assert 'href="/offers/new/?symbol=AAPL"' in html
    assert 'data-chart-url="/stocks/AAPL/chart.json"' in html
    assert "<script>" not in html


def test_a_lowercase_symbol_redirects_to_the_stock(player_client, listed):
    response = player_client.get("/stocks/aapl/")
    assert response.status_code == 302 and response["Location"] == "/stocks/AAPL/"


def test_an_unknown_symbol_gets_the_404_page(player_client, listed):
    response = player_client.get("/stocks/NOPE/")
    assert response.status_code == 404
    assert "Back to Bullpen" in response.content.decode()
    assert player_client.get("/stocks/NOPE/chart.json?range=1d").status_code == 404


def test_a_halted_stock_shows_a_banner_with_the_reason(player_client, listed):
    StockFactory(symbol="HLT", halted=True, halt_reason="News pending")
    html = player_client.get("/stocks/HLT/").content.decode()
    assert "Trading in HLT is halted: News pending." in html


def test_a_delisted_stock_leaves_browsing_but_keeps_its_page(player_client, listed):
    gone = StockFactory(symbol="GONE", delisted_at=timezone.now())
    PriceBarFactory(stock=gone)
    assert "GONE" not in symbols_in(player_client.get("/market/?q=GONE").content.decode())
    page = player_client.get("/stocks/GONE/")
    assert page.status_code == 200
    assert "GONE was delisted" in page.content.decode()
    assert "Offer to trade" not in page.content.decode()
    assert len(player_client.get("/stocks/GONE/chart.json?range=5y").json()["bars"]) == 1


# --- chart.json --------------------------------------------------------------------


def test_chart_json_groups_minute_bars_into_buckets_in_sql(player_client, listed):
    stock = listed[0]
    base = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    PriceBar.objects.bulk_create(
        PriceBar(
            stock=stock,
            resolution="1m",
            start=base + timedelta(minutes=minute),
            open=Decimal(100 + minute),
            high=Decimal(101 + minute),
            low=Decimal(99 + minute),
            close=Decimal("100.5") + minute,
            volume=10,
        )
        for minute in range(6)
    )
    payload = player_client.get("/stocks/AAPL/chart.json?range=1d").json()
    assert payload["range"] == "1d"
    first, second = payload["bars"]  # two 3-minute buckets
    assert first == [int(base.timestamp()), "100.0000", "103.0000", "99.0000", "102.5000", 30]
    assert second[1] == "103.0000" and second[4] == "105.5000"


def test_chart_json_long_ranges_read_daily_bars_and_stay_under_500_points(player_client, listed):
    stock = listed[0]
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    PriceBar.objects.bulk_create(
        PriceBar(
            stock=stock,
            resolution="1d",
            start=today - timedelta(days=day),
            open=Decimal(100),
            high=Decimal(110),
            low=Decimal(90),
            close=Decimal(105),
            volume=1,
        )
        for day in range(6 * 365)
    )
    one_year = player_client.get("/stocks/AAPL/chart.json?range=1y").json()["bars"]
    five_years = player_client.get("/stocks/AAPL/chart.json?range=5y").json()["bars"]
    assert 365 <= len(one_year) <= 367
    assert 255 <= len(five_years) <= 263
    assert all(bar[5] <= 7 for bar in five_years)


@pytest.mark.parametrize("bad", ["2y", "", "1D", "all"])
def test_chart_json_rejects_an_unknown_range_with_a_400(player_client, listed, bad):
    response = player_client.get(f"/stocks/AAPL/chart.json?range={bad}")
    assert response.status_code == 400
    assert "Unknown range" in response.json()["error"]


def test_chart_json_is_empty_without_history(player_client, listed):
    assert player_client.get("/stocks/MSFT/chart.json?range=1w").json()["bars"] == []
