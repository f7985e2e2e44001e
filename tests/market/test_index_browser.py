"""The Composite's panel in Chromium: its line chart loads, changes range, follows the
live push, and loads itself when the page found no cached quote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from market import selectors
from market.models import IndexBar

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The last 3-minute bucket of the 1D range (market/selectors.py INDEX_RANGES).
LAST_BUCKET = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _index_history() -> None:
    IndexBar.objects.create(
        resolution="1d",
        start=datetime(2026, 3, 1, tzinfo=UTC),
        open=Decimal("990"),
        high=Decimal("990"),
        low=Decimal("990"),
        close=Decimal("990"),
        constituents=2,
    )
    for index in range(5):
        level = Decimal("1000") + index
        IndexBar.objects.create(
            resolution="1m",
            start=LAST_BUCKET - timedelta(minutes=3 * (4 - index)),
            open=level,
            high=level,
            low=level,
            close=level,
            constituents=2,
        )


def _push(page, *, minute: datetime, level: str) -> None:
    """What the ws extension does with a pushed #bpx-level span: an out-of-band swap."""
    page.evaluate(
        """([time, level]) => htmx.swap(document.body,
             '<span id="bpx-level" hx-swap-oob="true" data-time="' + time + '" data-level="'
               + level + '">' + level + '</span>',
             {swapStyle: "none"})""",
        [int(minute.timestamp()), level],
    )


def test_the_composite_chart_loads_changes_range_and_follows_the_push(browser_page):
    _index_history()
    selectors.index_quote_refresh()
    browser_page.goto("/market/")
    browser_page.wait_for_function("() => window.Bullpen.indexChart.points().length === 5")
    assert browser_page.text_content("#bpx-level") == "1004.00"

    # Two minutes later, still the last bucket: the last point moves.
    _push(browser_page, minute=LAST_BUCKET + timedelta(minutes=2), level="1010.5000")
    points = browser_page.evaluate("window.Bullpen.indexChart.points()")
    assert len(points) == 5 and points[-1]["value"] == 1010.5
    # The next bucket: a new point.
    _push(browser_page, minute=LAST_BUCKET + timedelta(minutes=4), level="1011.2500")
    points = browser_page.evaluate("window.Bullpen.indexChart.points()")
    assert len(points) == 6
    assert points[-1]["time"] == int((LAST_BUCKET + timedelta(minutes=3)).timestamp())

    # 1Y reads the daily bars: one point.
    browser_page.click("[data-chart-range='1y']")
    browser_page.wait_for_function("() => window.Bullpen.indexChart.points().length === 1")
    assert browser_page.get_attribute("[data-chart-range='1y']", "aria-pressed") == "true"
    assert browser_page.get_attribute("[data-chart-range='1d']", "aria-pressed") == "false"


def test_without_a_cached_quote_the_panel_loads_itself_and_draws_its_chart(browser_page):
    _index_history()
    browser_page.goto("/market/")
    browser_page.wait_for_selector("#bpx-level")
    browser_page.wait_for_function("() => window.Bullpen.indexChart.points().length === 5")
    assert browser_page.text_content("#bpx-chgp") == "+1.41%"  # 1004 against 990
