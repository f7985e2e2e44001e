"""The performance and risk maths, against series worked out by hand: first the pure
functions, then the report's reads (returns picked from the right snapshots, grants
that are not gains, drawdowns on growth, beta against the Composite's daily closes)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import pytest

from market.models import IndexBar
from portfolio import analytics
from portfolio.analytics import (
    annualised_volatility,
    beta,
    chart_step,
    chart_times,
    close_date,
    compound,
    drawdowns,
    herfindahl,
    max_drawdown,
    nice_ticks,
    paired_returns,
    pairwise_covariance,
    periods_per_year,
    position_pnl,
    rate_per_period,
    risk_shares,
    sector_pnl,
    sharpe_ratio,
    simple_returns,
    time_chart,
)
from portfolio.models import NetWorthSnapshot, Portfolio
from portfolio.selectors import growth_now, growth_step
from tests.factories import PerformanceFactory
from tests.portfolio.trades import settle as trade

D = Decimal


def test_simple_returns_are_each_step_over_the_one_before():
    assert simple_returns([100, 110, 99]) == pytest.approx([0.10, -0.10])


def test_a_step_from_zero_has_no_return_and_keeps_the_others_in_place():
    returns = simple_returns([0, 50, 100])
    assert math.isnan(returns[0])
    assert returns[1] == pytest.approx(1.0)


@pytest.mark.parametrize("values", [[], [100]])
def test_short_series_have_no_returns(values):
    assert simple_returns(values).size == 0


def test_max_drawdown_of_a_known_series():
    # Peaks 100, 120, then 130; the deepest fall is 130 -> 60, i.e. -53.846%.
    fall = max_drawdown([100, 120, 90, 130, 60, 70, 140])
    assert fall.depth == pytest.approx(60 / 130 - 1)
    assert (fall.peak_index, fall.trough_index) == (3, 4)
    assert fall.recovery_index == 6  # 140 is back above the 130 peak


def test_max_drawdown_that_has_not_recovered():
    fall = max_drawdown([100, 80, 90])
    assert fall.depth == pytest.approx(-0.20)
    assert (fall.peak_index, fall.trough_index, fall.recovery_index) == (0, 1, None)


def test_a_series_that_only_rises_has_no_drawdown():
    fall = max_drawdown([100, 101, 105])
    assert fall.depth == 0.0


@pytest.mark.parametrize("values", [[], [100]])
def test_max_drawdown_needs_two_values(values):
    assert max_drawdown(values) is None


def test_drawdowns_are_measured_from_the_running_high():
    assert drawdowns([100, 50, 200, 150]) == pytest.approx([0, -0.5, 0, -0.25])


def test_volatility_is_the_sample_deviation_scaled_by_the_root_of_periods_per_year():
    # Returns +1%, -1%, +1%, -1%: mean 0, sample variance 4 * 0.0001 / 3.
    returns = [0.01, -0.01, 0.01, -0.01]
    expected = math.sqrt(0.0004 / 3) * math.sqrt(365)
    assert annualised_volatility(returns, per_year=365) == pytest.approx(expected)


def test_volatility_ignores_missing_returns_and_needs_two():
    assert annualised_volatility([0.01, float("nan")], per_year=365) is None
    assert annualised_volatility([], per_year=365) is None
    assert annualised_volatility([0.02, float("nan"), 0.0], per_year=1) == pytest.approx(
        np.std([0.02, 0.0], ddof=1)
    )


def test_periods_per_year_counts_intervals_in_a_calendar_year():
    assert periods_per_year(periods=288, span=timedelta(days=1)) == pytest.approx(288 * 365.25)
    assert periods_per_year(periods=0, span=timedelta(days=1)) is None
    assert periods_per_year(periods=3, span=timedelta(0)) is None


def test_sharpe_ratio_with_a_zero_risk_free_rate():
    returns = [0.02, 0.0, 0.01]  # mean 0.01, sample deviation 0.01
    assert sharpe_ratio(returns, per_year=4) == pytest.approx(1.0 * 2)
    assert sharpe_ratio([0.01, 0.01], per_year=4) is None  # no movement: undefined
    assert sharpe_ratio([0.01], per_year=4) is None


def test_a_yearly_rate_per_period_compounds_back_to_the_yearly_rate():
    # 1% a quarter compounds to 1.01^4 - 1 = 4.060401% a year, and back.
    assert rate_per_period(0.04060401, per_year=4) == pytest.approx(0.01)
    assert rate_per_period(0.04, per_year=1) == pytest.approx(0.04)
    # 4% a year over 365.25 daily periods: 1.04^(1/365.25) - 1.
    assert rate_per_period(0.04, per_year=365.25) == pytest.approx(1.04 ** (1 / 365.25) - 1)
    assert (1 + rate_per_period(0.04, per_year=12)) ** 12 == pytest.approx(1.04)


def test_sharpe_ratio_with_and_without_the_risk_free_rate():
    # Quarterly returns 3%, 1%, 2%: mean 2%, sample deviation 1%, √4 = 2.
    returns = [0.03, 0.01, 0.02]
    assert sharpe_ratio(returns, per_year=4) == pytest.approx(0.02 / 0.01 * 2)  # 4.0
    # A risk-free rate of 1% a quarter (4.060401% a year) leaves 1% of excess: 2.0.
    assert sharpe_ratio(returns, per_year=4, risk_free=0.04060401) == pytest.approx(2.0)
    # Returns that only match the risk-free rate on average score 0.
    assert sharpe_ratio([0.02, 0.0, 0.01], per_year=4, risk_free=0.04060401) == pytest.approx(0)
    # Below it, negative: mean 0.5%, deviation 0.5%, excess -0.5% -> -1 × 2.
    assert sharpe_ratio([0.0, 0.01, 0.005], per_year=4, risk_free=0.04060401) == pytest.approx(-2.0)


def test_beta_of_a_series_against_itself_is_one():
    market = [0.01, -0.02, 0.015, 0.0, 0.007, -0.004, 0.02, -0.01, 0.003, 0.005]
    assert beta(market, market) == pytest.approx(1.0)


def test_beta_of_a_known_series_is_its_slope_against_the_market():
    # The market alternates +1% / -1%; the portfolio makes 2% / -1%, i.e. 0.5% + 1.5 × the
    # market's return: covariance 1.5 × the market's variance, so beta is 1.5 whatever
    # the constant.
    market = [0.01, -0.01] * 6
    portfolio = [0.02, -0.01] * 6
    # By hand: var(m) = 12 × 0.0001 / 11 and cov(p, m) = 12 × 0.01 × 0.015 / 11.
    by_hand = (12 * 0.01 * 0.015 / 11) / (12 * 0.0001 / 11)
    assert beta(portfolio, market) == pytest.approx(by_hand) == 1.5


def test_beta_of_a_doubled_series_is_two_and_of_an_inverse_one_is_minus_one():
    market = [0.01, -0.02, 0.015, 0.0, 0.007, -0.004, 0.02, -0.01, 0.003, 0.005]
    assert beta([2 * r for r in market], market) == pytest.approx(2.0)
    assert beta([-r for r in market], market) == pytest.approx(-1.0)


def test_beta_needs_ten_overlapping_returns():
    market = [0.01, -0.02, 0.015, 0.0, 0.007, -0.004, 0.02, -0.01, 0.003]
    assert beta(market, market) is None
    portfolio = [*market, float("nan")]
    assert beta(portfolio, [*market, 0.01]) is None  # the tenth does not overlap


def test_beta_against_a_flat_market_is_undefined():
    assert beta([0.01] * 12, [0.0] * 12) is None


def test_paired_returns_use_only_the_days_both_series_have():
    days = [date(2026, 3, n) for n in range(1, 6)]
    ours = {days[0]: 1.00, days[1]: 1.10, days[2]: 0.99, days[4]: 1.089}
    market = {days[0]: 100.0, days[1]: 105.0, days[2]: 94.5, days[3]: 99.0, days[4]: 99.225}
    portfolio_returns, market_returns = paired_returns(ours, market)
    # Day 4 is missing on our side, so the last return runs from day 3 to day 5 on both.
    assert portfolio_returns == pytest.approx([0.10, -0.10, 0.10])
    assert market_returns == pytest.approx([0.05, -0.10, 0.05])


def test_a_close_snapshot_belongs_to_the_session_whose_close_is_nearest(settings):
    settings.SESSION_CLOSE_UTC = time(21, 0)
    day = date(2026, 3, 10)
    for moment in (time(21, 0), time(20, 55), time(21, 4)):
        assert close_date(datetime.combine(day, moment, tzinfo=UTC)) == day
    # 10:00 is 11 hours before the 11th's close and 13 after the 10th's.
    assert close_date(datetime(2026, 3, 11, 10, 0, tzinfo=UTC)) == date(2026, 3, 11)
    assert close_date(datetime(2026, 3, 11, 8, 0, tzinfo=UTC)) == date(2026, 3, 10)


def test_herfindahl_of_equal_weights_is_one_over_n():
    for n in (1, 2, 4, 10):
        assert herfindahl([250.0] * n) == pytest.approx(1 / n)


def test_herfindahl_of_unequal_weights():
    assert herfindahl([75, 25]) == pytest.approx(0.75**2 + 0.25**2)


def test_herfindahl_of_nothing_is_none():
    assert herfindahl([]) is None
    assert herfindahl([0, 0]) is None


def test_compound_multiplies_the_period_returns():
    assert compound([0.10, -0.10]) == pytest.approx(1.1 * 0.9 - 1)
    assert compound([]) == 0.0


def test_pairwise_covariance_uses_the_periods_both_have():
    returns = np.array([[0.01, 0.02], [np.nan, -0.01], [0.03, 0.0], [-0.02, 0.01]])
    covariance = pairwise_covariance(returns)
    both = returns[[0, 2, 3]]
    assert covariance[0, 1] == pytest.approx(np.cov(both.T)[0, 1])
    assert covariance[1, 1] == pytest.approx(np.var(returns[:, 1], ddof=1))
    assert covariance[0, 0] == pytest.approx(np.var(both[:, 0], ddof=1))


def test_risk_shares_add_up_to_one_and_follow_the_variance():
    # Two uncorrelated holdings of equal weight, one twice as volatile: variances 4:1.
    covariance = np.array([[4.0, 0.0], [0.0, 1.0]])
    shares = risk_shares([0.5, 0.5], covariance)
    assert shares == pytest.approx([0.8, 0.2])


def test_a_holding_without_prices_gets_no_risk_share():
    covariance = np.array([[1.0, np.nan], [np.nan, np.nan]])
    assert risk_shares([0.5, 0.5], covariance) == [pytest.approx(1.0), None]


def test_chart_steps_keep_every_range_within_300_points():
    assert chart_step(timedelta(days=1)) == (timedelta(minutes=5), "5 minutes")
    assert chart_step(timedelta(days=7)) == (timedelta(hours=1), "hour")
    assert chart_step(timedelta(days=30)) == (timedelta(hours=4), "4 hours")
    for days in (1, 7, 30, 365, 3000, 40_000):
        step, _ = chart_step(timedelta(days=days))
        assert timedelta(days=days) / step <= analytics.MAX_POINTS


def test_chart_times_start_at_the_range_sit_on_the_clock_grid_and_end_now():
    since = datetime(2026, 3, 2, 10, 7, tzinfo=UTC)
    now = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    times = chart_times(since, now, timedelta(hours=1))
    assert times == [
        since,
        datetime(2026, 3, 2, 11, tzinfo=UTC),
        datetime(2026, 3, 2, 12, tzinfo=UTC),
        datetime(2026, 3, 2, 13, tzinfo=UTC),
        now,
    ]
    # A start on the grid is not repeated.
    assert chart_times(datetime(2026, 3, 2, 11, tzinfo=UTC), now, timedelta(hours=1))[:2] == [
        datetime(2026, 3, 2, 11, tzinfo=UTC),
        datetime(2026, 3, 2, 12, tzinfo=UTC),
    ]


def test_nice_ticks_are_round_and_inside_the_range():
    assert nice_ticks(98_500, 101_200) == [99_000, 100_000, 101_000]
    assert nice_ticks(-12.3, 0) == [-10.0, -5.0, 0.0]


def test_a_time_chart_places_points_by_time_and_draws_the_reference():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    series = [
        (start, 100.0),
        (start + timedelta(hours=1), 110.0),
        (start + timedelta(hours=4), 90.0),
    ]
    chart = time_chart(series, width=400, height=200, reference=100.0, margins=(0, 0, 0, 0))
    xs = [float(point.split(",")[0]) for point in chart.points.split()]
    assert xs == [0.0, 100.0, 400.0]  # one hour of four is a quarter of the width
    assert chart.reference is not None and 0 < chart.reference.position < 200
    assert chart.x_ticks[0].value == start and chart.x_ticks[-1].value == series[-1][0]


def test_a_time_chart_draws_other_series_on_the_same_scale():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    mine = [(start, 0.0), (start + timedelta(hours=4), 10.0)]
    index = [(start + timedelta(hours=2), 0.0), (start + timedelta(hours=4), -10.0)]
    chart = time_chart(
        mine, others=[index, [(start, 1.0)]], width=400, height=200, margins=(0, 0, 0, 0)
    )
    assert len(chart.lines) == 3 and chart.lines[0] == chart.points
    assert chart.lines[2] == ""  # one point is not a line
    (x1, y1), (x2, y2) = (map(float, p.split(",")) for p in chart.lines[1].split())
    assert (x1, x2) == (200.0, 400.0)  # it starts half way, by time
    # Both series share the y scale: -10..10 padded by 5% each side, 0 in the middle.
    assert y1 == pytest.approx(100.0)
    assert chart.low == pytest.approx(-11.0) and chart.high == pytest.approx(11.0)


def test_a_time_chart_needs_two_points():
    assert time_chart([(datetime(2025, 1, 1, tzinfo=UTC), 1.0)]) is None


def test_dollar_axis_labels_stay_distinct_when_net_worth_barely_moves():
    from portfolio.analytics import dollars

    labels = [dollars(value) for value in (99_960.0, 99_980.0, 100_000.0)]
    assert labels == ["$99,960", "$99,980", "$100k"]
    assert dollars(12_500.0) == "$12.5k"
    assert dollars(950.0) == "$950"


# --- P&L by position and by sector (money, Decimal) -------------------------------


@pytest.mark.django_db
def test_pnl_by_position_and_by_sector_add_up_by_hand(portfolio, make_stock):
    from portfolio.selectors import portfolio_positions

    alpha = make_stock("ALPHA", "100.0000", sector="technology")
    bravo = make_stock("BRAVO", "50.0000", sector="energy")
    charlie = make_stock("CHARL", "10.0000", sector="technology")
    trade(portfolio, alpha, "buy", 10, "100.0000", fee="0", key="a1")
    trade(portfolio, alpha, "sell", 5, "110.0000", fee="0", key="a2")  # realized 5 × 10 = +50
    trade(portfolio, bravo, "buy", 10, "50.0000", fee="0", key="b1")
    trade(portfolio, bravo, "sell", 10, "40.0000", fee="0", key="b2")  # realized -100, sold out
    trade(portfolio, charlie, "buy", 20, "10.0000", fee="0", key="c1")
    alpha.last_price, charlie.last_price = D("120.0000"), D("9.0000")
    alpha.save(), charlie.save()

    positions = list(portfolio_positions(portfolio, include_closed=True))
    rows = {row.position.stock.symbol: row for row in position_pnl(positions, net_worth=D(100_000))}
    # ALPHA: 5 shares left costing 500, worth 600: +100 unrealized, +50 realized.
    assert (rows["ALPHA"].unrealized, rows["ALPHA"].realized, rows["ALPHA"].total) == (
        D("100.00"),
        D("50.00"),
        D("150.00"),
    )
    assert rows["ALPHA"].cost_pct == D("30.00")  # 150 / 500
    assert rows["ALPHA"].weight_pct == D("0.60")  # 600 of 100,000
    # BRAVO is sold out: its cost left with its shares.
    assert (rows["BRAVO"].unrealized, rows["BRAVO"].total) == (D("0"), D("-100.00"))
    assert rows["BRAVO"].cost_pct is None and rows["BRAVO"].weight_pct is None
    # CHARL: 20 shares costing 200, worth 180.
    assert (rows["CHARL"].total, rows["CHARL"].cost_pct) == (D("-20.00"), D("-10.00"))
    # Best total first.
    assert list(rows) == ["ALPHA", "CHARL", "BRAVO"]

    sectors = {
        sector.key: sector for sector in sector_pnl(list(rows.values()), net_worth=D(100_000))
    }
    tech = sectors["technology"]
    assert (tech.market_value, tech.cost_basis) == (D("780.00"), D("700.00"))
    assert (tech.unrealized, tech.realized, tech.total) == (D("80.00"), D("50.00"), D("130.00"))
    assert tech.cost_pct == D("18.57")  # 130 / 700
    assert tech.weight_pct == D("0.78") and tech.positions == 2
    energy = sectors["energy"]
    assert (energy.total, energy.cost_pct, energy.weight_pct) == (D("-100.00"), None, D("0.00"))
    assert energy.label == "Energy"


# --- The report: returns from the right snapshots, grants, drawdown, beta -----------


NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def open_at(portfolio: Portfolio, moment: datetime) -> Portfolio:
    Portfolio.objects.filter(pk=portfolio.pk).update(created_at=moment)
    portfolio.refresh_from_db()
    return portfolio


def snap(portfolio, at, *, growth, net_worth="100000.00", deposits=None, is_close=False):
    return NetWorthSnapshot.objects.create(
        portfolio=portfolio,
        at=at,
        net_worth=D(net_worth),
        cash=D(net_worth),
        net_deposits=D(deposits) if deposits is not None else portfolio.net_deposits,
        growth=D(str(growth)),
        is_close=is_close,
    )


def report_for(portfolio, *, net_worth, range_key="all", now=NOW, **options):
    return analytics.performance_report(
        portfolio, range_key=range_key, positions=[], net_worth=D(net_worth), now=now, **options
    )


@pytest.mark.django_db
def test_the_period_returns_start_from_the_snapshot_at_or_just_before_each_period(portfolio):
    open_at(portfolio, NOW - timedelta(days=40))
    snap(portfolio, NOW - timedelta(days=40), growth="1.00")
    snap(portfolio, NOW - timedelta(days=30, hours=1), growth="1.20")  # the month's start
    snap(portfolio, NOW - timedelta(days=29), growth="1.30")
    snap(portfolio, NOW - timedelta(days=7, minutes=5), growth="1.25")  # the week's start
    snap(portfolio, NOW - timedelta(days=7) + timedelta(minutes=5), growth="1.40")
    snap(portfolio, NOW - timedelta(days=1), growth="1.50")  # exactly a day ago: the day's
    snap(portfolio, NOW - timedelta(hours=23), growth="1.60")
    snap(portfolio, NOW - timedelta(hours=1), growth="1.65", net_worth="165000.00")

    report = report_for(portfolio, net_worth="165000.00")
    assert report.growth == pytest.approx(1.65)  # nothing moved since the last snapshot
    periods = {period.key: period for period in report.periods}
    assert periods["1d"].return_pct == pytest.approx((1.65 / 1.50 - 1) * 100)  # +10%
    assert periods["1w"].return_pct == pytest.approx((1.65 / 1.25 - 1) * 100)  # +32%
    assert periods["1m"].return_pct == pytest.approx((1.65 / 1.20 - 1) * 100)  # +37.5%
    assert periods["all"].return_pct == pytest.approx(65.0)
    assert periods["1d"].start_at == NOW - timedelta(days=1)
    assert periods["1w"].start_at == NOW - timedelta(days=7, minutes=5)
    assert periods["1m"].start_at == NOW - timedelta(days=30, hours=1)
    assert not any(periods[key].from_opening for key in ("1d", "1w", "1m"))
    assert periods["all"].from_opening
    assert [period.label for period in report.periods] == ["Day", "Week", "Month", "All time"]


@pytest.mark.django_db
def test_periods_longer_than_the_portfolio_start_at_its_opening(portfolio):
    open_at(portfolio, NOW - timedelta(days=3))
    snap(portfolio, NOW - timedelta(days=2), growth="1.10")
    snap(portfolio, NOW - timedelta(hours=2), growth="1.21", net_worth="121000.00")
    periods = {p.key: p for p in report_for(portfolio, net_worth="121000.00").periods}
    assert periods["1d"].return_pct == pytest.approx(10.0)  # from the 1.10 two days ago
    for key in ("1w", "1m", "all"):
        assert periods[key].from_opening and periods[key].start_at == NOW - timedelta(days=3)
        assert periods[key].return_pct == pytest.approx(21.0)


@pytest.mark.django_db
def test_a_grant_mid_series_is_not_a_gain(portfolio):
    # By hand: 100k -> 110k is +10%; a 50k grant lands (165k, of which 115k is the 110k
    # grown 4.545%), then -10% to 148.5k. Time-weighted: 1.10 × 1.04545… × 0.90 = 1.035,
    # +3.5%, although net worth against money paid in (150k) is -1%.
    chain = [D(1)]
    steps = [
        (D("100000"), D("100000"), D("110000"), D("100000")),
        (D("110000"), D("100000"), D("165000"), D("150000")),
        (D("165000"), D("150000"), D("148500"), D("150000")),
    ]
    for before, deposits_before, after, deposits_after in steps:
        chain.append(
            growth_step(
                growth=chain[-1],
                previous_net_worth=before,
                previous_deposits=deposits_before,
                net_worth=after,
                net_deposits=deposits_after,
            )
        )
    assert [float(g) for g in chain[1:]] == pytest.approx([1.10, 1.15, 1.035])

    open_at(portfolio, NOW - timedelta(days=3))
    Portfolio.objects.filter(pk=portfolio.pk).update(net_deposits=D("150000"))
    portfolio.refresh_from_db()
    for days, (_, _, worth, deposits), growth in zip((2, 1, 0.5), steps, chain[1:], strict=True):
        snap(
            portfolio,
            NOW - timedelta(days=days),
            growth=growth,
            net_worth=f"{worth}.00",
            deposits=deposits,
        )
    report = report_for(portfolio, net_worth="148500.00")
    assert report.periods[-1].return_pct == pytest.approx(3.5)
    assert report.range_return_pct == pytest.approx(3.5)
    naive = (148_500 / 150_000 - 1) * 100  # what net worth against money paid in says
    assert report.range_return_pct - naive == pytest.approx(4.5)

    # A second grant after the last snapshot is taken out of the live step too.
    Portfolio.objects.filter(pk=portfolio.pk).update(net_deposits=D("160000"))
    portfolio.refresh_from_db()
    later = report_for(portfolio, net_worth="158500.00")
    assert later.periods[-1].return_pct == pytest.approx(3.5)
    # The live growth is selectors.growth_now's, read from the snapshot already in hand.
    last = NetWorthSnapshot.objects.filter(portfolio=portfolio).latest("at")
    PerformanceFactory(
        portfolio=portfolio,
        last_at=last.at,
        last_net_worth=last.net_worth,
        last_net_deposits=last.net_deposits,
        growth=last.growth,
        peak_growth=D("1.15"),
    )
    portfolio = Portfolio.objects.get(pk=portfolio.pk)
    assert later.growth == pytest.approx(float(growth_now(portfolio, net_worth=D("158500.00"))))


@pytest.mark.django_db
def test_the_maximum_drawdown_is_on_growth_so_a_withdrawal_is_not_a_fall(portfolio):
    open_at(portfolio, NOW - timedelta(days=4))
    snap(portfolio, NOW - timedelta(days=3), growth="1.2", net_worth="120000.00")
    # 60k taken out: net worth halves, growth does not move.
    snap(portfolio, NOW - timedelta(days=2), growth="1.2", net_worth="60000.00", deposits="40000")
    snap(portfolio, NOW - timedelta(days=1), growth="1.08", net_worth="54000.00", deposits="40000")
    Portfolio.objects.filter(pk=portfolio.pk).update(net_deposits=D("40000"))
    portfolio.refresh_from_db()
    report = report_for(portfolio, net_worth="54000.00", detail=True)
    # 1.2 -> 1.08 is -10%; net worth fell 55% (120k -> 54k), mostly by the withdrawal.
    assert report.drawdown_pct == pytest.approx(-10.0)
    assert report.drawdown_peak_at is not None and report.drawdown_recovered_at is None
    assert report.drawdown_chart is not None


@pytest.mark.django_db
def test_volatility_and_sharpe_come_from_the_growth_at_each_chart_point(portfolio, settings):
    # Opened four hours before NOW, a snapshot every five minutes: growth alternately
    # +2% and 0%. The chart samples every five minutes, so its 48 returns are exactly
    # those: mean 1%, sample deviation 1% × √(48/47), 48 × (365.25 days / 4 hours) =
    # 105,192 periods a year.
    open_at(portfolio, NOW - timedelta(hours=4))
    growth = D(1)
    for step in range(1, 49):
        if step % 2:
            growth *= D("1.02")
        growth = growth.quantize(D("0.000000000001"))
        snap(
            portfolio,
            NOW - timedelta(hours=4) + timedelta(minutes=5 * step),
            growth=growth,
            net_worth=f"{growth * 100_000:.2f}",
        )
    last = NetWorthSnapshot.objects.filter(portfolio=portfolio).latest("at")
    per_year = 48 * 365.25 * 24 / 4
    deviation = 0.01 * math.sqrt(48 / 47)
    settings.RISK_FREE_RATE = D("0")
    report = report_for(portfolio, net_worth=str(last.net_worth))
    assert report.returns_count == 48 and report.per_year == pytest.approx(per_year)
    assert report.volatility_pct == pytest.approx(deviation * math.sqrt(per_year) * 100, rel=1e-6)
    assert report.sharpe == pytest.approx(0.01 / deviation * math.sqrt(per_year), rel=1e-6)
    settings.RISK_FREE_RATE = D("0.04")
    report = report_for(portfolio, net_worth=str(last.net_worth))
    risk_free = 1.04 ** (1 / per_year) - 1
    assert report.sharpe == pytest.approx(
        (0.01 - risk_free) / deviation * math.sqrt(per_year), rel=1e-6
    )
    assert report.risk_free_rate_pct == pytest.approx(4.0)


def index_bar(start: datetime, level: str, resolution: str = "1d") -> IndexBar:
    value = D(level)
    return IndexBar.objects.create(
        resolution=resolution, start=start, open=value, high=value, low=value, close=value
    )


@pytest.mark.django_db
def test_beta_pairs_the_close_snapshots_with_the_composites_daily_closes(portfolio, settings):
    settings.SESSION_CLOSE_UTC = time(21, 0)
    open_at(portfolio, NOW - timedelta(days=30))
    # 15 sessions: the Composite alternates +1% / -1%, the portfolio +2% / -2%.
    level, growth = 1000.0, 1.0
    first_day = NOW.date() - timedelta(days=15)
    for n in range(15):
        day = first_day + timedelta(days=n)
        if n:
            level *= 1.01 if n % 2 else 0.99
            growth *= 1.02 if n % 2 else 0.98
        index_bar(datetime.combine(day, time(), tzinfo=UTC), f"{level:.4f}")
        snap(
            portfolio,
            datetime.combine(day, time(21, 0), tzinfo=UTC),
            growth=f"{growth:.12f}",
            is_close=True,
        )
    report = report_for(portfolio, net_worth="100000.00", range_key="1m")
    assert report.beta_returns == 14
    assert report.beta == pytest.approx(2.0, abs=0.01)  # closes stored to 4 places
    assert report.has_index

    # A day the portfolio has no close is skipped on both sides: still 2.
    NetWorthSnapshot.objects.filter(
        portfolio=portfolio, at=datetime.combine(first_day + timedelta(days=5), time(21), UTC)
    ).delete()
    report = report_for(portfolio, net_worth="100000.00", range_key="1m")
    assert report.beta_returns == 13 and report.beta == pytest.approx(2.0, abs=0.05)


@pytest.mark.django_db
def test_beta_waits_for_ten_paired_returns_and_for_the_composite(portfolio):
    open_at(portfolio, NOW - timedelta(days=30))
    for n in range(12):
        snap(portfolio, NOW - timedelta(days=12 - n), growth=f"{1 + n / 100}", is_close=True)
    report = report_for(portfolio, net_worth="100000.00")
    assert report.beta is None and report.beta_returns == 0 and not report.has_index


@pytest.mark.django_db
def test_the_comparison_rebases_the_composite_and_a_stock_to_the_range_start(portfolio, make_stock):
    from market.models import PriceBar

    open_at(portfolio, NOW - timedelta(days=10))
    snap(portfolio, NOW - timedelta(days=2), growth="1.00")
    snap(portfolio, NOW - timedelta(hours=1), growth="1.03", net_worth="103000.00")
    # The Composite: a daily close of 1,000 three days ago, minute bars since; 1,050 now.
    index_bar(datetime.combine(NOW.date() - timedelta(days=3), time(), tzinfo=UTC), "1000")
    index_bar(NOW - timedelta(hours=30), "1020.0000", "1m")
    index_bar(NOW - timedelta(minutes=10), "1050.0000", "1m")
    stock = make_stock("CMP", "20.0000")
    PriceBar.objects.create(
        stock=stock,
        resolution="1m",
        start=NOW - timedelta(days=1, hours=1),
        open=D(40),
        high=D(40),
        low=D(40),
        close=D(40),
    )
    PriceBar.objects.create(
        stock=stock,
        resolution="1m",
        start=NOW - timedelta(minutes=3),
        open=D(30),
        high=D(30),
        low=D(30),
        close=D(30),
    )
    report = report_for(portfolio, net_worth="103000.00", range_key="1d", compare=stock)
    lines = {line.key: line for line in report.comparison_lines}
    assert lines["portfolio"].change_pct == pytest.approx(3.0)
    # From 1,020 (the last bar closed a day ago) to 1,050.
    assert lines["index"].change_pct == pytest.approx((1050 / 1020 - 1) * 100)
    assert lines["stock"].change_pct == pytest.approx(-25.0) and lines["stock"].label == "CMP"
    assert all(line.points for line in lines.values())
    # Over the week, the Composite starts from its daily close of 1,000.
    week = report_for(portfolio, net_worth="103000.00", range_key="1w")
    assert week.index_return_pct == pytest.approx(5.0)
    assert week.versus_index_pct == pytest.approx(3.0 - 5.0)
