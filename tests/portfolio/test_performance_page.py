"""The performance section on /portfolio/ and the risk page /portfolio/performance/:
empty states, ranges, the comparison, refusals, the htmx fragment, privacy, query caps."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from market.models import IndexBar, PriceBar
from portfolio import analytics
from portfolio.models import NetWorthSnapshot, Portfolio
from tests.factories import UserFactory
from tests.portfolio.trades import settle as trade

pytestmark = pytest.mark.django_db
D = Decimal
PAGE = "/portfolio/"
# The plain page loads its performance section right after (htmx); with a range in the
# address it carries the section itself, as it does for a tab used without JavaScript.
SECTION = "/portfolio/?range=1m"
RISK = "/portfolio/performance/"
FRAGMENT = {"HX-Request": "true", "HX-Target": "performance"}


def text(response) -> str:
    return response.content.decode()


def age(portfolio: Portfolio, *, days: float) -> None:
    """Pretend the portfolio opened `days` ago."""
    Portfolio.objects.filter(pk=portfolio.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    portfolio.refresh_from_db()


def record(
    portfolio: Portfolio,
    growth: list[float],
    *,
    step: timedelta,
    end: datetime | None = None,
    is_close: bool = False,
) -> list[NetWorthSnapshot]:
    """Snapshots of these growths, oldest first, `step` apart, the last one at `end`;
    no money paid in meanwhile, so net worth is the opening deposit × growth."""
    end = end or timezone.now() - timedelta(minutes=1)
    return NetWorthSnapshot.objects.bulk_create(
        NetWorthSnapshot(
            portfolio=portfolio,
            at=end - step * (len(growth) - 1 - number),
            net_worth=(portfolio.net_deposits * D(f"{value:.12f}")).quantize(D("0.01")),
            cash=portfolio.cash,
            net_deposits=portfolio.net_deposits,
            growth=D(f"{value:.12f}"),
            is_close=is_close,
        )
        for number, value in enumerate(growth)
    )


def index_bar(start: datetime, level: float, resolution: str = "1m") -> None:
    value = D(f"{level:.4f}")
    IndexBar.objects.create(
        resolution=resolution, start=start, open=value, high=value, low=value, close=value
    )


def stock_bar(stock, start: datetime, price: float, resolution: str = "1m") -> None:
    value = D(f"{price:.4f}")
    PriceBar.objects.create(
        stock=stock, resolution=resolution, start=start, open=value, high=value, low=value,
        close=value,
    )  # fmt: skip


def daily_bars(stock, closes: list[str]) -> None:
    """One daily bar per close, the last today, midnight UTC."""
    today = timezone.now().astimezone(UTC).date()
    for n, close in enumerate(closes):
        day = today - timedelta(days=len(closes) - 1 - n)
        stock_bar(stock, datetime.combine(day, time(), tzinfo=UTC), float(close), "1d")


def worth(portfolio: Portfolio, stock, gain: str) -> None:
    """Hold 100 shares bought at 100 that now show `gain` dollars in all."""
    trade(portfolio, stock, "buy", 100, "100.0000", fee="0", key=f"worth-{stock.symbol}")
    stock.last_price = D("100") + D(gain) / 100
    stock.save()


def with_history(portfolio: Portfolio, make_stock) -> None:
    """Two days of hourly snapshots ending at +3% (with a dip to 0.96 on the way), a net
    worth of 103,000 now, and the Composite from 1,000 two days ago to 1,050 now."""
    age(portfolio, days=3)
    worth(portfolio, make_stock("HIST"), "3000")
    growth = [1.0 + 0.03 * n / 47 for n in range(48)]
    growth[20] = 0.96
    record(portfolio, growth, step=timedelta(hours=1))
    now = timezone.now()
    index_bar(now - timedelta(days=2, hours=1), 1000.0)
    index_bar(now - timedelta(minutes=5), 1050.0)


# --- Access -------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_the_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_urls_keep_their_names():
    assert reverse("portfolio") == PAGE and reverse("performance") == RISK


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_an_account_without_a_portfolio_is_offered_one(player_client, url):
    assert "Open my portfolio" in text(player_client.get(url))


def test_the_portfolio_page_links_to_the_risk_page(player_client, portfolio):
    assert 'href="/portfolio/performance/"' in text(player_client.get(PAGE))


def test_the_dashboard_links_to_the_risk_page(player_client, portfolio):
    assert 'href="/portfolio/performance/"' in text(player_client.get(reverse("dashboard")))


# --- Empty states ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [SECTION, RISK])
def test_a_new_player_sees_the_empty_states(player_client, portfolio, url):
    response = player_client.get(url)
    assert response.status_code == 200
    page = text(response)
    assert "Not enough history yet: your net worth is recorded every five minutes" in page
    assert "<polyline" not in page
    # The returns row is there from the start: nothing has moved yet.
    for key in ("1d", "1w", "1m", "all"):
        assert re.search(
            rf'id="return-{key}">.*?<span class="flat">0.00%</span>.*?Since you started', page, re.S
        )
    assert "Not enough history yet: it needs 10 daily returns" not in page
    assert "The Bullpen Composite has no prices yet." in page  # beta's basis, no index
    assert "Risk-free rate 4.00% a year." in page


def test_a_return_that_rounds_to_zero_is_shown_flat():
    from django.template.loader import render_to_string

    # Float noise (1.03 / 1.03 computed two ways) must not colour a 0.00% red.
    period = analytics.PeriodReturn("all", "All time", "", -1e-14, timezone.now(), True)
    report = analytics.PerformanceReport(
        range=analytics.RANGES["1m"],
        since=timezone.now(),
        now=timezone.now(),
        net_worth=D("100000.00"),
        net_deposits=D("100000.00"),
        starting_cash=D("100000.00"),
        step=timedelta(hours=4),
        step_name="4 hours",
        periods=[period],
    )
    html = render_to_string(
        "portfolio/partials/performance_section.html#returns", {"report": report}
    )
    assert '<span class="flat">0.00%</span>' in html


def test_a_new_player_has_no_profit_or_loss_yet(player_client, portfolio):
    assert "No profit or loss yet" in text(player_client.get(PAGE))


def test_a_handful_of_returns_gives_no_volatility_or_sharpe_ratio(player_client, portfolio):
    """Three five-minute returns would annualise to a Sharpe ratio in the hundreds."""
    age(portfolio, days=1)
    record(portfolio, [1.0, 1.01, 0.99, 1.02], step=timedelta(minutes=5))
    page = text(player_client.get(SECTION))
    volatility = re.search(r'id="risk-volatility">(.*?)</div>\s*<div class="stat"', page, re.S)
    assert "Not enough history yet." in volatility.group(1)
    assert re.search(r'id="risk-sharpe">.*?<span class="flat">—</span>', page, re.S)
    # The drawdown needs no minimum: a fall is a fall.
    drawdown = re.search(r'id="risk-drawdown">.*?stat__value">(.*?)</div>', page, re.S)
    assert "%" in drawdown.group(1) and "—" not in drawdown.group(1)


def test_without_the_composite_the_comparison_says_so(player_client, portfolio):
    age(portfolio, days=3)
    record(portfolio, [1.0, 1.01, 1.02], step=timedelta(hours=12))
    page = text(player_client.get(SECTION))
    assert 'id="no-index"' in page and "The Bullpen Composite has no prices yet" in page
    assert page.count('<polyline class="perf-line') == 1  # the portfolio alone
    assert re.search(r'id="compare-index">.*?<span class="flat"[^>]*>—</span>', page, re.S)


# --- The section ---------------------------------------------------------------------


def test_the_portfolio_page_shows_returns_charts_and_risk(player_client, portfolio, make_stock):
    with_history(portfolio, make_stock)
    response = player_client.get(PAGE + "?range=1w")
    assert response.status_code == 200
    page = text(response)
    # Returns: the latest growth is 1.03 and nothing moved since (all cash).
    assert re.search(r'id="return-all">.*?<span class="gain">\+3.00%</span>', page, re.S)
    # The net worth chart, then the comparison: the portfolio and the Composite.
    assert page.count('<polyline class="perf-chart__line"') == 1
    assert page.count('<polyline class="perf-line perf-line--') == 2
    assert "Paid in $100,000.00" in page
    assert re.search(r'id="compare-portfolio">.*?\+3.00%', page, re.S)
    assert re.search(r'id="compare-index">.*?Bullpen Composite.*?\+5.00%', page, re.S)
    # Risk on growth: the dip from the high before it to 0.96.
    assert re.search(r'id="risk-drawdown">.*?<span class="loss">-[\d.]+%</span>', page, re.S)
    assert "Risk-free rate 4.00% a year." in page
    assert "Risk, the last 7 days" in page
    # The deeper figures stay on the risk page.
    assert 'id="risk-best-worst"' not in page and "Drawdown</h3>" not in page
    assert re.search(r'\?range=1w"[^>]*class="is-active" aria-current="page">1W<', page)


def test_the_risk_page_adds_the_drawdown_chart_and_the_best_and_worst_steps(
    player_client, portfolio, make_stock
):
    with_history(portfolio, make_stock)
    page = text(player_client.get(RISK + "?range=1w"))
    assert 'id="risk-best-worst"' in page and "Best and worst 15 minutes" in page
    assert page.count('<polyline class="perf-chart__line"') == 2  # net worth and drawdown
    assert "Holdings and their risk" in page


def test_grants_move_net_worth_but_not_the_returns(player_client, portfolio, make_stock):
    from portfolio.services import cash_adjust

    age(portfolio, days=2)
    worth(portfolio, make_stock("GROW"), "2000")
    record(portfolio, [1.0, 1.02], step=timedelta(hours=12))
    # A 50,000 grant after the last snapshot: net worth 152,000, growth still 1.02.
    cash_adjust(
        portfolio=portfolio, amount=D("50000.00"), reason="prize", by=None, idempotency_key="g"
    )
    page = text(player_client.get(SECTION))
    assert re.search(r'id="return-all">.*?\+2.00%', page, re.S)
    assert "+52.00%" not in page and "$152,000.00" in page


@pytest.mark.parametrize("url", [PAGE, RISK])
@pytest.mark.parametrize("key", list(analytics.RANGES))
def test_every_range_renders_with_its_tab_marked(player_client, portfolio, make_stock, url, key):
    with_history(portfolio, make_stock)
    response = player_client.get(url + f"?range={key}")
    assert response.status_code == 200
    page = text(response)
    label = analytics.RANGES[key].label
    assert re.search(rf'\?range={key}"[^>]*class="is-active" aria-current="page">{label}<', page)
    assert f"Risk, {analytics.RANGES[key].description}" in page
    for other in analytics.RANGES:
        assert f'href="{url}?range={other}" hx-get="{url}?range={other}"' in page


def test_the_beta_against_the_composite_comes_from_daily_closes(player_client, portfolio):
    age(portfolio, days=20)
    close = timezone.now().astimezone(UTC).replace(hour=21, minute=0, second=0, microsecond=0)
    if close > timezone.now():
        close -= timedelta(days=1)
    # 15 sessions: the Composite alternates +1% / -1%, the portfolio twice as much.
    level, growth = [1000.0], [1.0]
    for n in range(14):
        level.append(level[-1] * (1.01 if n % 2 == 0 else 0.99))
        growth.append(growth[-1] * (1.02 if n % 2 == 0 else 0.98))
    for n, value in enumerate(level):
        day = (close - timedelta(days=14 - n)).date()
        index_bar(datetime.combine(day, time(), tzinfo=UTC), value, "1d")
    record(portfolio, growth, step=timedelta(days=1), end=close, is_close=True)
    page = text(player_client.get(SECTION))
    assert re.search(r'id="risk-beta">.*?<div class="stat__value">2.00</div>', page, re.S)
    assert "From 14 daily returns over the last 90 days, against the Bullpen Composite." in page


# --- Compare with a stock ----------------------------------------------------------------


def test_compare_draws_a_stock_against_the_portfolio_and_the_composite(
    player_client, portfolio, make_stock
):
    with_history(portfolio, make_stock)
    stock = make_stock("CMP", "30.0000")
    stock_bar(stock, timezone.now() - timedelta(days=3), 40.0)
    stock_bar(stock, timezone.now() - timedelta(minutes=3), 30.0)
    response = player_client.get(PAGE + "?range=1w&compare=cmp")
    assert response.status_code == 200
    page = text(response)
    assert page.count('<polyline class="perf-line perf-line--') == 3
    assert re.search(r'id="compare-stock">.*?CMP.*?<span class="loss">-25.00%</span>', page, re.S)
    assert 'value="CMP"' in page
    # The tabs keep the comparison; Clear drops it.
    assert 'href="/portfolio/?range=1m&amp;compare=CMP"' in page
    assert re.search(r'href="/portfolio/\?range=1w"[^>]*>Clear</a>', page)


def test_the_compare_box_suggests_the_held_stocks(player_client, portfolio, make_stock):
    trade(portfolio, make_stock("HELD", "10.0000"), "buy", 3, "10.0000", fee="0")
    age(portfolio, days=1)
    record(portfolio, [1.0, 1.0], step=timedelta(hours=1))
    page = text(player_client.get(SECTION))
    assert '<datalist id="compare-held"><option value="HELD"></option></datalist>' in page


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("NOPE", "There is no stock with the symbol NOPE. Showing the chart without it."),
        ("OLD", "OLD is delisted: choose a listed stock to compare with."),
        ("X" * 13, "A stock symbol has at most 12 characters."),
    ],
)
@pytest.mark.parametrize("url", [PAGE, RISK])
def test_an_unknown_or_delisted_symbol_is_a_400_with_a_message(
    player_client, portfolio, make_stock, url, symbol, message
):
    make_stock("OLD", delisted_at=timezone.now())
    with_history(portfolio, make_stock)
    for headers in ({}, FRAGMENT):
        response = player_client.get(url, {"range": "1w", "compare": symbol}, headers=headers)
        assert response.status_code == 400
        page = text(response)
        assert message in page
        assert page.count('<polyline class="perf-line perf-line--') == 2  # without the stock
        assert "data-swap-errors" in page  # htmx swaps the refusal in


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_an_unknown_range_is_a_400_with_a_message(player_client, portfolio, url):
    for headers in ({}, FRAGMENT):
        response = player_client.get(url + "?range=5y", headers=headers)
        assert response.status_code == 400
        page = text(response)
        assert "Unknown range. Choose one of 1D, 1W, 1M, 1Y, All. Showing 1M." in page
        assert re.search(r'\?range=1m"[^>]*class="is-active"', page)


# --- htmx and the live re-fetch --------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_a_range_tab_over_htmx_gets_only_the_section(player_client, portfolio, url):
    response = player_client.get(url + "?range=1d", headers=FRAGMENT)
    assert response.status_code == 200
    fragment = text(response)
    assert fragment.lstrip().startswith('<div id="performance"')
    assert "<html" not in fragment and "page-head" not in fragment
    assert "Positions" not in fragment
    assert re.search(rf'<a href="{url}\?range=1d" [^>]*class="is-active"', fragment)
    assert "HX-Request" in response["Vary"] and "HX-Target" in response["Vary"]
    assert response["HX-Push-Url"] == f"{url}?range=1d"


def test_the_address_bar_gets_the_canonical_query_and_nothing_when_refused(
    player_client, portfolio, make_stock
):
    make_stock("LOWER")
    response = player_client.get(PAGE + "?range=1y&compare=lower", headers=FRAGMENT)
    assert response["HX-Push-Url"] == "/portfolio/?range=1y&compare=LOWER"
    response = player_client.get(PAGE + "?range=1y&compare=nope", headers=FRAGMENT)
    assert response.status_code == 400 and response["HX-Push-Url"] == "false"


def test_other_htmx_requests_to_the_portfolio_get_the_holdings(player_client, portfolio):
    response = player_client.get(
        PAGE, headers={"HX-Request": "true", "HX-Target": "portfolio-live"}
    )
    fragment = text(response)
    assert "<html" not in fragment and "Positions" in fragment
    assert 'id="performance"' not in fragment


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_a_history_restore_gets_the_whole_page(player_client, portfolio, url):
    response = player_client.get(
        url + "?range=1d", headers={**FRAGMENT, "HX-History-Restore-Request": "true"}
    )
    assert "<html" in text(response) and 'id="performance"' in text(response)


def test_the_live_refetch_of_the_portfolio_skips_the_section(player_client, portfolio):
    response = player_client.get(PAGE, headers={"X-Live-Refresh": "1"})
    page = text(response)
    assert 'id="portfolio-live"' in page and 'id="performance"' not in page


# --- Privacy --------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PAGE, RISK])
def test_it_only_ever_shows_the_requesters_portfolio(client, portfolio, make_portfolio, url):
    other = make_portfolio()
    age(other, days=2)
    record(other, [1.0, 0.5, 0.75], step=timedelta(hours=6))
    client.force_login(other.owner)
    assert "-50.00%" in text(client.get(url + "?range=1w"))
    # The player (no history) sees only their own figures, whatever they pass.
    client.force_login(portfolio.owner)
    page = text(client.get(url + f"?range=1w&portfolio={other.pk}&portfolio_id={other.pk}"))
    assert "-50.00%" not in page and "-25.00%" not in page
    assert "Not enough history yet: your net worth is recorded every five minutes" in page


def test_a_player_without_a_portfolio_never_sees_someone_elses(client, portfolio):
    client.force_login(UserFactory())
    assert "Open my portfolio" in text(client.get(RISK + f"?portfolio={portfolio.pk}"))


# --- The risk page's holdings ---------------------------------------------------------------


def test_holdings_are_sorted_by_weight_with_volatility_and_risk(
    player_client, portfolio, make_stock
):
    big = make_stock("BIG", "100.0000")
    small = make_stock("SMALL", "100.0000")
    trade(portfolio, small, "buy", 10, "100.0000", fee="0", key="s")
    trade(portfolio, big, "buy", 30, "100.0000", fee="0", key="b")
    daily_bars(big, ["100", "102", "99", "101", "100", "103"])
    daily_bars(small, ["100", "100", "101", "100", "100", "101"])
    page = text(player_client.get(RISK))
    page = page[page.index("Holdings and their risk") :]
    assert page.index(">BIG</a>") < page.index(">SMALL</a>")
    # Weights of net worth: 3,000 and 1,000 of 100,000.
    assert '<td class="num">3.0%</td>' in page and '<td class="num">1.0%</td>' in page
    rows = re.findall(
        r'<td class="num">([\d.]+)%</td>\s*<td class="num">([\d.-]+)%</td>\s*</tr>', page
    )
    assert len(rows) == 2
    (big_vol, big_share), (small_vol, small_share) = rows
    assert float(big_vol) > float(small_vol) > 0
    assert float(big_share) + float(small_share) == pytest.approx(100, abs=0.2)
    risk_page = text(player_client.get(RISK))
    assert "BIG 75%" in risk_page and "like holding 1.6 equal-sized stocks" in risk_page


def test_the_portfolio_page_shows_pnl_by_position_and_sector(player_client, portfolio, make_stock):
    gains = make_stock("GAIN", "100.0000", sector="technology")
    sold = make_stock("SOLD", "50.0000", sector="energy")
    trade(portfolio, gains, "buy", 10, "100.0000", fee="0", key="g1")
    trade(portfolio, gains, "sell", 5, "110.0000", fee="0", key="g2")
    trade(portfolio, sold, "buy", 10, "50.0000", fee="0", key="s1")
    trade(portfolio, sold, "sell", 10, "40.0000", fee="0", key="s2")
    gains.last_price = D("120.0000")
    gains.save()
    page = text(player_client.get(SECTION))
    # Open positions: the positions table's unrealized (+ %) and realized columns.
    assert '<span id="pos-pnl-GAIN" class="gain">+$100.00</span>' in page
    assert '<span id="pos-pnlpct-GAIN" class="gain">+20.00%</span>' in page
    assert '<tr id="pnl-GAIN">' not in page
    sold_row = re.search(r'<tr id="pnl-SOLD">(.*?)</tr>', page, re.S).group(1)
    assert "sold" in sold_row and "-$100.00" in sold_row and "Sold out: no cost left" in sold_row
    assert re.search(r'<tr id="pnl-sector-technology">.*?\$600.00.*?\+\$150.00', page, re.S)
    assert re.search(r'<tr id="pnl-sector-energy">.*?-\$100.00', page, re.S)


# --- Query counts ---------------------------------------------------------------------


@pytest.fixture
def busy_portfolio(portfolio, make_stock):
    """A month of 20-minute snapshots, 30 positions with daily bars, the Composite."""
    age(portfolio, days=31)
    record(portfolio, [1.0] * 2200, step=timedelta(minutes=20))
    for n in range(30):
        stock = make_stock(f"Q{n}", "10.0000")
        trade(portfolio, stock, "buy", 1 + n, "10.0000", key=f"q{n}")
        daily_bars(stock, ["10", "10.5", "10.2", "9.9"])
    now = timezone.now()
    for day in range(40):
        index_bar(datetime.combine((now - timedelta(days=day)).date(), time(), UTC), 1000, "1d")
    return portfolio


def test_the_portfolio_page_query_count_is_fixed_with_and_without_the_section(
    player_client, busy_portfolio, django_assert_max_num_queries
):
    player_client.get(PAGE)  # the session's first request also records the device
    # Session, user, the session's last-seen touch; then portfolio, positions, and the
    # section's two: snapshots (chart, periods, closes) and the Composite.
    with django_assert_max_num_queries(7):
        response = player_client.get(SECTION)
    assert text(response).count('<span id="pos-pnl-Q') == 30
    assert '<polyline class="perf-line perf-line--index"' in text(response)
    # The plain page: the holdings, and the section's placeholder that loads it.
    with django_assert_max_num_queries(5):
        response = player_client.get(PAGE)
    assert text(response).count('<span id="pos-pnl-Q') == 30
    assert 'hx-trigger="load"' in text(response) and "perf-line" not in text(response)
    # Its lazy load: the section alone, and the address bar left as it is.
    with django_assert_max_num_queries(7):
        response = player_client.get(
            PAGE, headers={"HX-Request": "true", "HX-Target": "performance"}
        )
    assert '<polyline class="perf-line perf-line--index"' in text(response)
    assert "HX-Push-Url" not in response and 'id="positions-title"' not in text(response)
    # The live re-fetch (and htmx's) reads the holdings only.
    with django_assert_max_num_queries(5):
        response = player_client.get(PAGE, headers={"X-Live-Refresh": "1"})
    assert 'id="performance"' not in text(response)
    with django_assert_max_num_queries(5):
        player_client.get(PAGE, headers={"HX-Request": "true"})
    # A compared stock adds its lookup; its prices come in the Composite's query.
    with django_assert_max_num_queries(8):
        response = player_client.get(PAGE + "?compare=Q3")
    assert '<polyline class="perf-line perf-line--stock"' in text(response)


def test_the_risk_page_query_count_does_not_grow_with_positions_or_snapshots(
    player_client, busy_portfolio, django_assert_max_num_queries
):
    player_client.get(RISK)
    # As /portfolio/, plus the held stocks' daily closes for the holdings' risk.
    with django_assert_max_num_queries(8):
        response = player_client.get(RISK + "?range=all")
    assert response.status_code == 200
    assert text(response).count('<a href="/stocks/Q') == 30


# --- In a browser -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_range_tabs_and_the_compare_box_swap_the_section(browser_page, make_stock):
    from portfolio.services import portfolio_open
    from tests.factories import PASSWORD

    owner = UserFactory(handle="chartist")
    portfolio = portfolio_open(owner=owner)
    age(portfolio, days=10)
    record(
        portfolio,
        [1 + 0.015 * math.sin(n / 9) - 0.0004 * n for n in range(600)],
        step=timedelta(minutes=20),
    )
    stock = make_stock("WAVE", "100.0000")
    trade(portfolio, stock, "buy", 200, "100.0000", fee="0", key="w")
    daily_bars(stock, ["98", "101", "99.5", "102", "100"])
    now = timezone.now()
    for hours in range(0, 24 * 9, 6):
        index_bar(now - timedelta(hours=hours), 1000 + 20 * math.cos(hours / 20))

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
            and problems.append(f"{page.url}: {m.text}")
        ),
    )
    page.goto("/accounts/login/")
    page.get_by_label("Email or handle").fill("chartist")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    page.goto("/portfolio/")
    assert page.locator("#performance .tabs a.is-active").inner_text() == "1M"
    assert page.locator("#performance polyline.perf-line").count() == 2
    page.screenshot(path="/tmp/portfolio-performance-1m.png", full_page=True)

    page.locator("#performance .tabs").get_by_role("link", name="1W").click()
    page.wait_for_url("**/portfolio/?range=1w")
    page.wait_for_selector("#performance .tabs a.is-active:text-is('1W')")
    assert "Risk, the last 7 days" in page.locator("#risk-title").inner_text()
    assert page.locator('[id="portfolio-live"]').count() == 1  # the holdings stayed

    page.get_by_label("Compare with a stock").fill("wave")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#performance polyline.perf-line--stock")
    page.wait_for_url("**/portfolio/?range=1w&compare=WAVE")
    # A refused symbol shows its message in place.
    page.get_by_label("Compare with a stock").fill("NOPE")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#performance .banner")
    assert "There is no stock with the symbol NOPE" in page.locator("#performance").inner_text()
    page.screenshot(path="/tmp/portfolio-performance-compare.png", full_page=True)

    page.get_by_role("link", name="Performance & risk").click()
    page.wait_for_url("**/portfolio/performance/")
    assert page.locator("svg.perf-chart").count() == 3  # net worth, comparison, drawdown
    page.locator(".tabs").get_by_role("link", name="1D").click()
    page.wait_for_url("**/portfolio/performance/?range=1d")
    page.wait_for_selector(".tabs a.is-active:text-is('1D')")
    assert page.locator("svg.perf-chart").count() == 3
    # The refused symbol is a 400, which the console reports; nothing else went wrong.
    assert [problem for problem in problems if "400" not in problem] == []
