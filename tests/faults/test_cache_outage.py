"""The cache backend while Redis cannot be reached (a closed port: no server is
stopped): reads miss, writes are dropped, nothing raises, and RATELIMIT_FAIL_OPEN
decides whether a limited POST goes through or gets the 429 page."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

pytestmark = pytest.mark.django_db

CLOSED = {
    "default": {
        **settings.CACHES["default"],
        "LOCATION": "redis://127.0.0.1:1/1",
        "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "retry_seconds": 60},
    }
}


@override_settings(CACHES=CLOSED)
def test_an_unreachable_cache_reads_as_empty_and_skips_retries_for_a_while():
    cache = caches["default"]
    assert cache.get("k", "fallback") == "fallback"
    assert cache.add("k", 1) is False
    cache.set("k", 1)
    with pytest.raises(ValueError):
        cache.incr("k")
    assert cache.get_or_set("k", 5) == 5
    assert cache.is_down
    # While it is marked down, calls return at once instead of trying to connect.
    started = time.perf_counter()
    for _ in range(100):
        cache.get("k")
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize("fail_open,status", [(True, 400), (False, 429)])
def test_rate_limited_posts_follow_ratelimit_fail_open_when_the_cache_is_down(
    client, fail_open, status
):
    with override_settings(CACHES=CLOSED, RATELIMIT_FAIL_OPEN=fail_open):
        response = client.post("/accounts/login/", {"username": "x", "password": "wrong-1"})
    assert response.status_code == status
