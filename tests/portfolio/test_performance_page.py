"""/portfolio/performance/: the owner's page, empty states, range tabs, privacy, query cap."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from market.models import PriceBar
from market.sessions import session_date
from portfolio import analytics
from portfolio.models import NetWorthSnapshot, Portfolio
from tests.factories import UserFactory
from tests.portfolio.trades import settle as trade

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/portfolio/performance/"


def text(response) -> str:
    return response.content.decode()


def age(portfolio: Portfolio, *, days: float) -> None:
    """Pretend the portfolio opened `days` ago (snapshots before the opening are ignored)."""
    Portfolio.objects.filter(pk=portfolio.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    portfolio.refresh_from_db()


def record(portfolio: Portfolio, values: list[str], *, step: timedelta, end=None) -> list:
    """Snapshots of `values`, oldest first, `step` apart, the last one at `end`."""
    end = end or timezone.now() - timedelta(minutes=1)
    snapshots = [
        NetWorthSnapshot(
            portfolio=portfolio,
            at=end - step * (len(values) - 1 - number),
            net_worth=D(value),
            cash=portfolio.cash,
        )
        for number, value in enumerate(values)
    ]
    return NetWorthSnapshot.objects.bulk_create(snapshots)


def daily_bars(stock, closes: list[str], *, end_day=None) -> None:
    """One daily bar per close, the last on `end_day` (today by default), midnight UTC."""
    today = end_day or timezone.now().astimezone(UTC).date()
    PriceBar.objects.bulk_create(
        PriceBar(
            stock=stock,
            resolution="1d",
            start=datetime.combine(
                today - timedelta(days=len(closes) - 1 - n), datetime.min.time(), tzinfo=UTC
            ),
            open=D(close),
            high=D(close),
            low=D(close),
            close=D(close),
        )
        for n, close in enumerate(closes)
    )


def test_the_page_needs_a_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_url_is_named_performance():
    assert reverse("performance") == URL


def test_a_new_player_sees_the_empty_states(player_client, portfolio):
    response = player_client.get(URL)
    assert response.status_code == 200
    page = text(response)
    assert "Performance &amp; risk" in page
    assert "Not enough history yet: your net worth is recorded every five minutes" in page
    assert "You hold only cash" in page
    assert "<polyline" not in page
    # Risk figures that need a history say so instead of showing a number.
    assert "Not enough history yet: it needs 10 days of returns" in page
    assert '<div class="stat__value"><span class="flat">—</span></div>' in page


def test_an_account_without_a_portfolio_is_offered_one(player_client):
    page = text(player_client.get(URL))
    assert "Open my portfolio" in page


def test_the_owner_sees_charts_returns_and_risk(player_client, portfolio):
    age(portfolio, days=2)
    # 100k -> 110k -> 88k -> 99k -> 100k (live): drawdown 110k -> 88k is -20%.
    record(portfolio, ["100000", "110000", "88000", "99000"], step=timedelta(hours=4))
    response = player_client.get(URL + "?range=1w")
    assert response.status_code == 200
    page = text(response)
    assert page.count("<polyline") == 2  # net worth and drawdown
    assert "Starting cash $100,000.00" in page
    assert 'class="perf-chart__reference"' in page
    assert "-20.00%" in page
    assert "From $110,000.00 on" in page and "to $88,000.00 on" in page
    assert "not back at the high yet" in page
    # Range return from the first point (100k) to the live net worth (100k, all cash).
    assert '<span class="flat" id="range-return">0.00%</span>' in page
    # The week is clamped to the two days since opening, drawn every 15 minutes.
    assert "one per 15 minutes" in page
    assert "Since you started on" in page
    assert "Risk-free rate taken as 0%" in page
    vol = re.search(r'id="risk-volatility">.*?stat__value">([^<]+)<', page, re.S)
    assert vol and vol.group(1).endswith("%")


def test_charts_are_downsampled_to_at_most_about_300_points(player_client, portfolio):
    age(portfolio, days=8)
    # A week of five-minute snapshots: 2,016 rows, drawn as one point per hour.
    record(portfolio, ["100000.00"] * 2016, step=timedelta(minutes=5))
    page = text(player_client.get(URL + "?range=1w"))
    line = re.search(r'<polyline class="perf-chart__line" points="([^"]+)"', page).group(1)
    assert 160 <= len(line.split()) <= 170
    assert "Standard deviation of" in page


def test_holdings_are_sorted_by_weight_with_volatility_and_risk(
    player_client, portfolio, make_stock
):
    big = make_stock("BIG", "100.0000")
    small = make_stock("SMALL", "100.0000")
    trade(portfolio, small, "buy", 10, "100.0000", fee="0", key="s")
    trade(portfolio, big, "buy", 30, "100.0000", fee="0", key="b")
    daily_bars(big, ["100", "102", "99", "101", "100", "103"])
    daily_bars(small, ["100", "100", "101", "100", "100", "101"])
    page = text(player_client.get(URL))
    assert page.index(">BIG</a>") < page.index(">SMALL</a>")
    # Weights of net worth: 3,000 and 1,000 of 100,000.
    assert '<td class="num">3.0%</td>' in page and '<td class="num">1.0%</td>' in page
    # Concentration: 75% / 25% of the holdings -> HHI 0.625, like 1.6 equal stocks.
    assert "BIG 75%" in page
    assert "0.62" in page or "0.63" in page
    assert "like holding 1.6 equal-sized stocks" in page
    rows = re.findall(
        r'<td class="num">([\d.]+)%</td>\s*<td class="num">([\d.-]+)%</td>\s*</tr>', page
    )
    assert len(rows) == 2
    (big_vol, big_share), (small_vol, small_share) = rows
    assert float(big_vol) > float(small_vol) > 0
    assert float(big_share) > float(small_share)
    assert float(big_share) + float(small_share) == pytest.approx(100, abs=0.2)


def test_the_market_benchmark_and_beta_come_from_daily_closes(player_client, portfolio, make_stock):
    age(portfolio, days=20)
    # The portfolio's last recorded session close (20:55 UTC, just before the 21:00 close).
    close = timezone.now().astimezone(UTC).replace(hour=20, minute=55, second=0, microsecond=0)
    if close > timezone.now():
        close -= timedelta(days=1)
    stock_a, stock_b = make_stock("AAA"), make_stock("BBB")
    # Both stocks move +1% then -1% alternately over 15 sessions, the last one the
    # session of `close` (a daily bar is dated by its session).
    closes = [100.0]
    for n in range(14):
        closes.append(closes[-1] * (1.01 if n % 2 == 0 else 0.99))
    daily_bars(stock_a, [f"{c:.4f}" for c in closes], end_day=session_date(close))
    daily_bars(stock_b, [f"{c:.4f}" for c in closes], end_day=session_date(close))
    # The portfolio moves twice as much each session.
    worth = [100_000.0]
    for n in range(14):
        worth.append(worth[-1] * (1.02 if n % 2 == 0 else 0.98))
    record(portfolio, [f"{w:.2f}" for w in worth], step=timedelta(days=1), end=close)
    report = analytics.performance_report(
        portfolio, range_key="1m", positions=[], net_worth=D(f"{worth[-1]:.2f}")
    )
    assert report.beta_returns >= 10
    assert report.beta == pytest.approx(2.0, abs=0.01)
    # The range (30 days, clamped to the 20 days since opening) holds every bar's return.
    assert report.market_days == 14
    # (Closes are stored to four places, hence the tolerance.)
    assert report.market_range_return_pct == pytest.approx(
        (closes[-1] / closes[0] - 1) * 100, abs=1e-3
    )
    page = text(player_client.get(URL))
    assert '<div class="stat__value">2.00</div>' in page
    assert "daily returns over the last 90 days" in page
    assert 'id="market-return"' in page


def test_a_range_tab_over_htmx_returns_only_the_report(player_client, portfolio):
    response = player_client.get(URL + "?range=1d", headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = text(response)
    assert fragment.lstrip().startswith('<div id="performance"')
    assert "<html" not in fragment and "page-head" not in fragment
    assert re.search(
        r'<a href="/portfolio/performance/\?range=1d" [^>]*class="is-active"', fragment
    )


def test_a_history_restore_gets_the_whole_page(player_client, portfolio):
    response = player_client.get(
        URL + "?range=1d", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in text(response)
    assert "HX-Request" in response["Vary"]


def test_the_full_page_marks_the_chosen_tab_and_keeps_hrefs(player_client, portfolio):
    page = text(player_client.get(URL + "?range=all"))
    assert "<html" in page
    for key in analytics.RANGES:
        assert (
            f'href="/portfolio/performance/?range={key}" hx-get="/portfolio/performance/?range={key}"'
            in page
        )
    assert re.search(r'\?range=all"[^>]*class="is-active" aria-current="page">ALL<', page)
    assert "Risk, since you started" in page


def test_an_unknown_range_is_a_400_with_a_message(player_client, portfolio):
    response = player_client.get(URL + "?range=5y")
    assert response.status_code == 400
    page = text(response)
    assert "Unknown range. Choose one of 1D, 1W, 1M, ALL." in page
    assert "Showing 1M." in page


def test_it_only_ever_shows_the_requesters_portfolio(client, portfolio, make_portfolio):
    other = make_portfolio()
    age(other, days=2)
    record(other, ["100000", "50000", "75000"], step=timedelta(hours=6))
    client.force_login(other.owner)
    assert "-50.00%" in text(client.get(URL + "?range=1w"))
    # The player (no history) sees only their own figures, whatever they pass.
    client.force_login(portfolio.owner)
    page = text(client.get(URL + f"?range=1w&portfolio={other.pk}&portfolio_id={other.pk}"))
    assert "-50.00%" not in page
    assert "$50,000.00" not in page
    assert "Not enough history yet: your net worth is recorded every five minutes" in page


def test_the_query_count_does_not_grow_with_positions_or_snapshots(
    player_client, portfolio, make_stock, django_assert_max_num_queries
):
    age(portfolio, days=31)
    record(portfolio, ["100000.00"] * 2000, step=timedelta(minutes=20))
    for n in range(30):
        stock = make_stock(f"Q{n}", "10.0000")
        trade(portfolio, stock, "buy", 1 + n, "10.0000", key=f"q{n}")
        daily_bars(stock, ["10", "10.5", "10.2", "9.9"])
    player_client.get(URL)  # the session's first request also records the device
    # Session, user, the session's last-seen touch; then portfolio, positions, the
    # chart's buckets, the market's daily returns (cached after this request's first
    # read), the daily buckets for beta and the holdings' daily closes.
    with django_assert_max_num_queries(9):
        response = player_client.get(URL)
    assert response.status_code == 200
    assert text(response).count('<a href="/stocks/Q') == 30


def test_the_portfolio_page_links_to_performance(player_client, portfolio):
    assert 'href="/portfolio/performance/"' in text(player_client.get(reverse("portfolio")))


def test_the_dashboard_links_to_performance(player_client, portfolio):
    assert 'href="/portfolio/performance/"' in text(player_client.get(reverse("dashboard")))


def test_a_player_without_a_portfolio_never_sees_someone_elses(client, portfolio):
    intruder = UserFactory()
    client.force_login(intruder)
    # The intruder has no portfolio: they are offered one, never shown someone else's.
    page = text(client.get(URL + f"?portfolio={portfolio.pk}"))
    assert "Open my portfolio" in page


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_range_tabs_swap_the_report_without_errors(browser_page, make_stock):
    from portfolio.services import portfolio_open
    from tests.factories import PASSWORD

    owner = UserFactory(handle="chartist")
    portfolio = portfolio_open(owner=owner)
    age(portfolio, days=10)
    values = [100_000 + 1500 * math.sin(n / 9) - 40 * n for n in range(600)]
    record(portfolio, [f"{v:.2f}" for v in values], step=timedelta(minutes=20))
    stock = make_stock("WAVE", "100.0000")
    trade(portfolio, stock, "buy", 200, "100.0000", fee="0", key="w")
    daily_bars(stock, ["98", "101", "99.5", "102", "100"])

    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # Collected: script errors, CSP refusals, refused htmx requests. Not collected: the
    # websocket's errors (pytest's WSGI live server has no socket route).
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and ("Content Security Policy" in m.text or m.text.startswith("Response Status Error"))
            and problems.append(m.text)
        ),
    )
    page.goto("/accounts/login/")
    page.get_by_label("Email or handle").fill("chartist")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    page.get_by_role("link", name="Performance & risk").click()
    page.wait_for_url("**/portfolio/performance/")
    assert page.locator(".tabs a.is-active").inner_text() == "1M"
    assert page.locator("svg.perf-chart").count() == 2
    page.screenshot(path="/tmp/risk-performance-1m.png", full_page=True)

    page.locator(".tabs").get_by_role("link", name="1D").click()
    page.wait_for_url("**/portfolio/performance/?range=1d")
    page.wait_for_selector(".tabs a.is-active:text-is('1D')")
    assert "Risk, the last 24 hours" in page.locator("#risk-title").inner_text()
    assert page.locator("svg.perf-chart").count() == 2
    assert problems == []
