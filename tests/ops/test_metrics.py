"""/metrics: who may scrape it, and that the business figures are there and move."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as live_settings

from config import metrics
from config.celery import app
from config.metrics import (
    OPEN_WEBSOCKETS,
    ORDERS_PLACED,
    TICK_DURATION,
    TICKS,
)

pytestmark = pytest.mark.django_db

FOREIGN_IP = "203.0.113.9"
BUSINESS_METRICS = [
    "bullpen_ticks_total",
    "bullpen_ticks_skipped_total",
    "bullpen_tick_duration_seconds",
    "bullpen_last_tick_timestamp_seconds",
    "bullpen_provider_failures_total",
    "bullpen_quotes_rejected_total",
    "bullpen_last_history_flush_timestamp_seconds",
    "bullpen_orders_placed_total",
    "bullpen_orders_filled_total",
    "bullpen_orders_cancelled_total",
    "bullpen_offers_created_total",
    "bullpen_offers_settled_total",
    "bullpen_signups_total",
    "bullpen_tasks_total",
    "bullpen_task_duration_seconds",
    "bullpen_open_websockets",
    "bullpen_metrics_store_up",
]


def scrape(client) -> str:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return response.content.decode()


def sample(text: str, series: str) -> float:
    """The value of one exposed series, e.g. 'bullpen_ticks_total' or with {labels}."""
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_loopback_may_scrape_without_a_token(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_a_foreign_address_without_a_token_gets_the_ordinary_404(client):
    response = client.get("/metrics", REMOTE_ADDR=FOREIGN_IP)
    assert response.status_code == 404
    assert b"bullpen_" not in response.content
    assert b"Page not found" in response.content


def test_the_right_bearer_token_is_accepted_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    response = client.get(
        "/metrics", REMOTE_ADDR=FOREIGN_IP, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
    )
    assert response.status_code == 200
    assert b"bullpen_ticks_total" in response.content


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-token", "Bearer ", "Basic s3cret-scrape-token", "s3cret-scrape-token", ""],
)
def test_a_wrong_or_malformed_token_is_refused(client, settings, authorization):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    response = client.get("/metrics", REMOTE_ADDR=FOREIGN_IP, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 404


def test_an_empty_configured_token_never_matches(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR=FOREIGN_IP, HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 404


def test_the_allowlist_takes_networks(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_a_proxied_request_cannot_claim_an_allowed_address(client):
    # daphne --proxy-headers would have copied this header's first entry into REMOTE_ADDR.
    response = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 198.51.100.7"
    )
    assert response.status_code == 404


def test_a_proxied_request_with_the_token_is_accepted(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    response = client.get(
        "/metrics",
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
        HTTP_AUTHORIZATION="Bearer s3cret-scrape-token",
    )
    assert response.status_code == 200


def test_only_get_is_served(client):
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_every_business_metric_is_exposed(client):
    text = scrape(client)
    for name in BUSINESS_METRICS:
        assert f"# TYPE {name} " in text, name
    assert sample(text, "bullpen_metrics_store_up") == 1.0


def test_django_prometheus_request_metrics_are_exposed_too(client):
    client.get("/healthz")
    assert "django_http_requests_total_by_method_total" in scrape(client)


def test_a_counter_increments_when_the_code_path_calls_it(client):
    series = 'bullpen_orders_placed_total{side="buy",type="limit"}'
    before = sample(scrape(client), series)
    ORDERS_PLACED.labels(type="limit", side="buy").inc()
    ORDERS_PLACED.labels(side="buy", type="limit").inc(2)
    assert sample(scrape(client), series) == before + 3


def test_an_unlabelled_counter_increments(client):
    before = sample(scrape(client), "bullpen_ticks_total")
    TICKS.inc()
    assert sample(scrape(client), "bullpen_ticks_total") == before + 1


def test_the_tick_histogram_counts_into_its_buckets(client):
    text = scrape(client)
    count_before = sample(text, "bullpen_tick_duration_seconds_count")
    small_before = sample(text, 'bullpen_tick_duration_seconds_bucket{le="0.05"}')
    inf_before = sample(text, 'bullpen_tick_duration_seconds_bucket{le="+Inf"}')
    TICK_DURATION.observe(0.03)
    TICK_DURATION.observe(7.0)
    with TICK_DURATION.time():
        pass
    text = scrape(client)
    assert sample(text, "bullpen_tick_duration_seconds_count") == count_before + 3
    assert sample(text, 'bullpen_tick_duration_seconds_bucket{le="0.05"}') == small_before + 2
    assert sample(text, 'bullpen_tick_duration_seconds_bucket{le="+Inf"}') == inf_before + 3


def test_the_websocket_gauge_is_per_process(client):
    before = sample(scrape(client), "bullpen_open_websockets")
    OPEN_WEBSOCKETS.inc()
    try:
        assert sample(scrape(client), "bullpen_open_websockets") == before + 1
    finally:
        OPEN_WEBSOCKETS.dec()


def test_labels_must_match_the_declared_names():
    with pytest.raises(ValueError):
        ORDERS_PLACED.labels(type="limit")
    with pytest.raises(ValueError):
        ORDERS_PLACED.inc()
    with pytest.raises(ValueError):
        TICKS.inc(-1)


def test_a_redis_outage_loses_the_figure_but_not_the_caller(client, settings, monkeypatch):
    # A port nothing listens on: the increment must return quietly, and the scrape
    # still answers, saying the shared figures are unavailable.
    settings.REDIS_METRICS_URL = "redis://127.0.0.1:1/4"
    monkeypatch.setattr(metrics, "_writes_paused_until", 0.0)
    ORDERS_PLACED.labels(type="market", side="sell").inc()
    assert metrics._writes_paused_until > 0
    text = scrape(client)
    assert sample(text, "bullpen_metrics_store_up") == 0.0
    assert "bullpen_open_websockets" in text


def test_a_figure_counted_in_another_process_shows_on_this_ones_scrape(client):
    # The worker and the web are separate processes: what the worker counts must
    # appear on the web's /metrics.
    series = 'bullpen_orders_filled_total{side="sell",type="stop"}'
    before = sample(scrape(client), series)
    script = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "django.setup(); from config.metrics import ORDERS_FILLED; "
        "ORDERS_FILLED.labels(type='stop', side='sell').inc(4)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=live_settings.BASE_DIR,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sample(scrape(client), series) == before + 4


def test_probes_and_scrapes_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    login = client.get("/accounts/login/")
    assert login.status_code == 301
    assert login["Location"].startswith("https://")


@app.task(name="ops.metrics_probe")
def metrics_probe(fail: bool = False) -> str:
    if fail:
        raise RuntimeError("probe failed on purpose")
    return "ok"


def test_every_celery_task_is_counted_by_outcome_with_its_duration(client):
    ok = 'bullpen_tasks_total{outcome="succeeded",task="ops.metrics_probe"}'
    failed = 'bullpen_tasks_total{outcome="failed",task="ops.metrics_probe"}'
    timed = 'bullpen_task_duration_seconds_count{task="ops.metrics_probe"}'
    text = scrape(client)
    before = {series: sample(text, series) for series in (ok, failed, timed)}
    metrics_probe.apply()
    metrics_probe.apply(kwargs={"fail": True})
    text = scrape(client)
    assert sample(text, ok) == before[ok] + 1
    assert sample(text, failed) == before[failed] + 1
    assert sample(text, timed) == before[timed] + 2
