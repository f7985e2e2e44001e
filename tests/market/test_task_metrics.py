"""The tick and flush tasks count themselves in the business metrics /metrics serves."""

from __future__ import annotations

import re

import pytest

from market import tasks
from tests.factories import StockFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _metric(client, name: str) -> float:
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_tick_counts_once_and_a_duplicate_slot_counts_as_skipped(client, provider):
    StockFactory(symbol="TICK")
    ticks_before = _metric(client, "bullpen_ticks_total")
    skipped_before = _metric(client, "bullpen_ticks_skipped_total")

    assert tasks.tick(slot=900_001) == 1
    assert tasks.tick(slot=900_001) is None

    assert _metric(client, "bullpen_ticks_total") == ticks_before + 1
    assert _metric(client, "bullpen_ticks_skipped_total") == skipped_before + 1
    assert _metric(client, "bullpen_tick_duration_seconds_count") >= 1


def test_a_provider_failure_is_counted(client, provider):
    StockFactory(symbol="FAIL")
    provider.fail = True
    before = _metric(client, "bullpen_provider_failures_total")

    assert tasks.tick(slot=900_002) is None

    assert _metric(client, "bullpen_provider_failures_total") == before + 1
