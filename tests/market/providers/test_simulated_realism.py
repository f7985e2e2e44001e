"""Five simulated days of 1-minute bars look like a real market's.

Statistics are computed on 1-minute log returns of the bar closes, per stock, and the
median over stocks is compared, so one quiet or one news-heavy stock cannot decide
the outcome. Kurtosis is the plain (Pearson) kurtosis, 3 for a normal distribution:
above 4 means fat tails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import combinations

import numpy as np
import pytest

from market.providers.base import Listing
from market.providers.simulated import generate_history

SECTORS = ["technology", "energy", "utilities", "health_care", "financials", "real_estate"]
START = datetime(2025, 1, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def returns_and_sectors() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    listings = [
        Listing(
            f"R{i:02d}",
            SECTORS[i % len(SECTORS)],
            Decimal(f"{rng.uniform(20, 300):.2f}"),
            Decimal("0"),
        )
        for i in range(42)
    ]
    history = generate_history(listings, START, START + timedelta(days=5), "1m", seed=42)
    closes = np.array([[float(b.close) for b in history[x.symbol]] for x in listings]).T
    assert closes.shape == (5 * 1440, 42)
    return np.diff(np.log(closes), axis=0), [x.sector for x in listings]


def kurtosis(x: np.ndarray) -> float:
    d = x - x.mean()
    return float((d**4).mean() / (d**2).mean() ** 2)


def abs_autocorrelation_lag1(x: np.ndarray) -> float:
    a = np.abs(x) - np.abs(x).mean()
    return float((a[1:] * a[:-1]).mean() / (a * a).mean())


def test_one_minute_returns_have_fat_tails(returns_and_sectors):
    returns, _ = returns_and_sectors
    per_stock = [kurtosis(returns[:, i]) for i in range(returns.shape[1])]
    print(f"median kurtosis {np.median(per_stock):.1f}")
    assert np.median(per_stock) > 4


def test_volatility_clusters(returns_and_sectors):
    returns, _ = returns_and_sectors
    per_stock = [abs_autocorrelation_lag1(returns[:, i]) for i in range(returns.shape[1])]
    print(f"median lag-1 autocorrelation of |r| {np.median(per_stock):.3f}")
    assert np.median(per_stock) > 0.1


def test_stocks_move_with_their_sector(returns_and_sectors):
    returns, sectors = returns_and_sectors
    corr = np.corrcoef(returns.T)
    within, across = [], []
    for i, j in combinations(range(len(sectors)), 2):
        (within if sectors[i] == sectors[j] else across).append(corr[i, j])
    print(f"mean correlation within sectors {np.mean(within):.2f}, across {np.mean(across):.2f}")
    assert np.mean(within) >= np.mean(across) + 0.2
    assert np.mean(across) > 0  # the market factor moves everything together a little
