"""The pure performance and risk functions, against values worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from portfolio import analytics
from portfolio.analytics import (
    annualised_volatility,
    beta,
    chart_step,
    compound,
    drawdowns,
    herfindahl,
    max_drawdown,
    nice_ticks,
    pairwise_covariance,
    periods_per_year,
    risk_shares,
    sharpe_ratio,
    simple_returns,
    time_chart,
)


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


def test_beta_of_a_series_against_itself_is_one():
    market = [0.01, -0.02, 0.015, 0.0, 0.007, -0.004, 0.02, -0.01, 0.003, 0.005]
    assert beta(market, market) == pytest.approx(1.0)


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


def test_a_time_chart_needs_two_points():
    assert time_chart([(datetime(2025, 1, 1, tzinfo=UTC), 1.0)]) is None


def test_dollar_axis_labels_stay_distinct_when_net_worth_barely_moves():
    from portfolio.analytics import dollars

    labels = [dollars(value) for value in (99_960.0, 99_980.0, 100_000.0)]
    assert labels == ["$99,960", "$99,980", "$100k"]
    assert dollars(12_500.0) == "$12.5k"
    assert dollars(950.0) == "$950"
